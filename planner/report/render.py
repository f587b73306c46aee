"""Write the planning report: report.md (figures beside it) and report.html (figures embedded)."""

from __future__ import annotations

import base64
from pathlib import Path

from plait.planner.plan import Plan
from plait.planner.report import figures, tables

# Which figure follows which table, so each picture sits next to the numbers it draws.
_FIGURE_AFTER = {"critical_path": "Critical path", "baselines": "Homogeneous baselines (same SLA and rate)",
                 "frontier": "TCO versus SLA"}   # a title's start: the frontier's names its price basis


def _markdown_table(table: tables.Table) -> str:
    lines = [f"## {table.title}", ""]
    header = table.header if any(table.header) else ["", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def render_markdown(plan: Plan, figure_files: dict[str, str] | None = None) -> str:
    parts = [f"# plait plan for {plan.source}\n"]
    for table in tables.all_tables(plan):
        parts.append(_markdown_table(table))
        for name, after in _FIGURE_AFTER.items():
            if table.title.startswith(after) and figure_files and name in figure_files:
                parts.append(f"![{figures.FIGURES[name][1]}]({figure_files[name]})\n")
    parts.append("## Assumptions\n\n" + "\n".join(f"- {a}" for a in plan.assumptions) + "\n")
    return "\n".join(parts)


def render_html(plan: Plan, pngs: dict[str, bytes]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("plait.planner.report", "."),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    all_tables = tables.all_tables(plan)
    figures_after: dict[str, list[tuple[str, str, str]]] = {}
    for name, data in pngs.items():
        title = next((t.title for t in all_tables if t.title.startswith(_FIGURE_AFTER[name])), _FIGURE_AFTER[name])
        figures_after.setdefault(title, []).append(
            (name, figures.FIGURES[name][1], base64.b64encode(data).decode()))
    return env.get_template("template.html.j2").render(plan=plan, tables=all_tables, figures_after=figures_after)


def write_report(plan: Plan, out: Path) -> dict[str, Path]:
    """Write plan.json, report.md (+ PNGs) and report.html into `out`; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    pngs = {name: draw(plan) for name, (draw, _caption) in figures.FIGURES.items()}
    written = {"plan": out / "plan.json", "markdown": out / "report.md", "html": out / "report.html"}
    written["plan"].write_text(plan.model_dump_json(indent=2) + "\n")
    for name, data in pngs.items():
        (out / f"{name}.png").write_bytes(data)
        written[name] = out / f"{name}.png"
    written["markdown"].write_text(render_markdown(plan, {n: f"{n}.png" for n in pngs}))
    written["html"].write_text(render_html(plan, pngs))
    return written
