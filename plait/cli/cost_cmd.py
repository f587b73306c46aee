"""`plait cost`: predict operator latencies from JSON lines, or print the cost model's fit report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from plait.cli._errors import user_errors
from plait.sdk.errors import PlaitError

RUN_KEYS = ("device", "batch", "mode", "tp")


class CostInputError(PlaitError, ValueError):
    """A line of `plait cost --jsonl` input is not a valid operator."""


def _line_error(where: str, msg: str) -> CostInputError:
    return CostInputError(f"{where}: {msg}")


def cost_line(obj: Any, where: str, catalog: Any) -> dict[str, Any]:
    """One input object with "seconds" added. Raises CostInputError naming `where` (file:line)."""
    from pydantic import ValidationError

    from plait.planner.catalog import CatalogError, did_you_mean
    from plait.planner.costmodel import estimate
    from plait.planner.workload import OP_KINDS, OpSpec

    if not isinstance(obj, dict):
        raise _line_error(where, f"expected a JSON object, got {type(obj).__name__}.\n"
                                 'To fix: write one object per line, e.g. {"device": "h200", "op": "decode", ...}.')
    if "device" not in obj or "op" not in obj:
        missing = " and ".join(k for k in ("device", "op") if k not in obj)
        raise _line_error(where, f"missing {missing}.\nTo fix: every line needs \"device\" and \"op\".")
    if obj["op"] not in OP_KINDS:
        raise _line_error(where, f"unknown op {obj['op']!r}.{did_you_mean(str(obj['op']), list(OP_KINDS))}\n"
                                 f"To fix: use one of {', '.join(OP_KINDS)}.")
    fields = {k: v for k, v in obj.items() if k not in RUN_KEYS and k != "seconds"}
    known = [*OpSpec.model_fields, *RUN_KEYS]
    for key in fields:
        if key not in OpSpec.model_fields:
            raise _line_error(where, f"unknown field {key!r}.{did_you_mean(key, known)}\n"
                                     f"To fix: use only {', '.join(known)}.")
    try:
        op = OpSpec.model_validate(fields)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        raise _line_error(where, f"field {loc!r}: {e['msg']}.\nTo fix: correct that value.") from None
    mode = {"cudagraph": "graph"}.get(str(obj.get("mode", "graph")), str(obj.get("mode", "graph")))
    batch, tp = obj.get("batch", 1), obj.get("tp", 1)
    for name, val in (("batch", batch), ("tp", tp)):
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            raise _line_error(where, f"{name} must be a positive integer, got {val!r}.\nTo fix: e.g. \"{name}\": 1.")
    try:
        c = estimate(op, str(obj["device"]), batch, mode, tp, catalog=catalog)  # type: ignore[arg-type]
    except CatalogError as exc:
        raise _line_error(where, str(exc)) from None
    out = {**obj, "seconds": float(f"{c.seconds:.6g}")}
    if not c.fits:   # the time is what it would be; say that it cannot run so
        out["fits"] = False
    return out


def _read(path: str) -> tuple[str, list[str]]:
    if path == "-":
        return "<stdin>", sys.stdin.read().splitlines()
    p = Path(path)
    if not p.is_file():
        raise CostInputError(f"input file {path!r} does not exist.\nTo fix: pass a JSON-lines file, or - for stdin.")
    return path, p.read_text().splitlines()


def cost(
    jsonl: Annotated[str | None, typer.Option("--jsonl", help="JSON-lines file of operators ('-': stdin); prints "
                                                              "each line with \"seconds\" added.")] = None,
    fit_report: Annotated[bool, typer.Option("--fit-report", help="Print the fitted efficiency factors and the "
                                                                  "residual of every calibration row, by regime.")] = False,
    catalog: Annotated[str | None, typer.Option("--catalog", help="Extra catalog YAML (devices/models).")] = None,
    remote: Annotated[str | None, typer.Option("--remote", metavar="URL", help=(
        "Measure an OpenAI-compatible endpoint (its base URL, e.g. http://HOST:8000/v1) and print the inventory "
        "lines of a remote pool."))] = None,
    model: Annotated[str | None, typer.Option("--model", help="With --remote: the model name the endpoint "
                                                              "serves (default: the first it lists).")] = None,
    api_key_env: Annotated[str | None, typer.Option("--api-key-env", metavar="VAR", help=(
        "With --remote: the environment variable holding its API key."))] = None,
    price_per_hour: Annotated[float, typer.Option("--price-per-hour", min=0.0, help=(
        "With --remote: USD per hour the endpoint costs, for the inventory lines."))] = 0.0,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help=(
        "With --remote: calls at once in the loaded measurement."))] = 4,
    budget_s: Annotated[float, typer.Option("--budget-s", min=5.0, help=(
        "With --remote: the most seconds the measurement takes."))] = 60.0,
) -> None:
    """Predict operator latencies with plait's cost model, show how it was fitted, or measure an endpoint."""
    with user_errors():
        if jsonl is None and not fit_report and remote is None:
            raise CostInputError("nothing to do.\nTo fix: pass --jsonl FILE (or - for stdin), --fit-report, or "
                                 "--remote URL.")
        from plait.planner.catalog import load_catalog

        cat = load_catalog(catalog)
        if remote is not None:
            _remote(remote, model, api_key_env, price_per_hour, concurrency, budget_s, cat)
        if fit_report:
            from plait.planner.fitreport import fit_report as render

            typer.echo(render(cat), nl=False)
        if jsonl is not None:
            name, lines = _read(jsonl)
            out = []
            for i, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _line_error(f"{name} line {i}", f"not valid JSON ({exc.msg} at column {exc.colno}).\n"
                                                     "To fix: one JSON object per line.") from None
                out.append(json.dumps(cost_line(obj, f"{name} line {i}", cat)))
            for line in out:
                typer.echo(line)


def _remote(url: str, model: str | None, api_key_env: str | None, price: float, concurrency: int, budget_s: float,
            catalog: Any) -> None:
    """`plait cost --remote URL`: the endpoint's figures, then the inventory lines to paste."""
    from pydantic import ValidationError

    from plait.planner.endpoint import RemoteEndpoint
    from plait.planner.validation import first_problem
    from plait.scheduler.remote_calls import probe
    from plait.scheduler.remote_measure import inventory_snippet, measure

    def endpoint(served: str) -> RemoteEndpoint:
        try:
            return RemoteEndpoint(name="remote-a", model=served, base_url=url, served_model=served,
                                  price_per_hour=price, prefill_tokens_per_s=1, decode_tokens_per_s={1: 1},
                                  max_sequences=concurrency, overhead_s=0, api_key_env=api_key_env,
                                  timeout_s=budget_s, max_retries=0)
        except ValidationError as err:
            raise CostInputError(f"plait cost --remote: {first_problem(err)}\n  To fix: --remote "
                                 "http://HOST:PORT/v1, and --api-key-env VAR names a variable.") from None

    served = model
    if served is None:   # the first model it lists
        ids = probe(endpoint("?"), "plait cost --remote", timeout_s=min(10.0, budget_s), check_model=False)
        if not ids:
            raise CostInputError(f"plait cost --remote: {url}/models lists no model\n  To fix: pass --model NAME.")
        served = ids[0]
    m = measure(endpoint(served), concurrency=concurrency, budget_s=budget_s)
    base = served.split("@")[0]
    known = served if served in catalog.models else base if base in catalog.models else None
    typer.echo(f"measured {url} (model {served}) with {m.requests} streamed requests in "
               f"{m.seconds:.1f} s (plait cost --remote)")
    typer.echo(f"  overhead (a 1-word prompt, 1 token out; median of 3)   {m.overhead_s * 1e3:8.1f} ms")
    typer.echo(f"  prefill ({m.long_prompt.prompt_tokens}-token prompt, 1 token out in "
               f"{m.long_prompt.total_s * 1e3:.1f} ms; median of 3)   {m.prefill_tps:8.0f} prompt tokens/s")
    for n, tps in m.decode.items():
        typer.echo(f"  decode, {n} call(s) at once   {tps:8.1f} tokens/s per call ({tps * n:.1f} together)")
    typer.echo("paste into the inventory file (`plait plan --inventory FILE`):")
    name = re.sub(r"[^a-z0-9]+", "-", served.rsplit("/", 1)[-1].split("@")[0].lower()).strip("-") or "remote"
    snippet = inventory_snippet(m, known or "CATALOG-MODEL", name, price, max(m.decode))
    typer.echo(snippet if known else snippet.replace("CATALOG-MODEL", "CATALOG-MODEL   # the catalog model it serves"
                                                     " (plait catalog models)"), nl=False)
