"""The SLA/TCO planning report: figures, Markdown, self-contained HTML, and the terminal plan table."""

from plait.planner.report.render import render_html, render_markdown, write_report

__all__ = ["render_html", "render_markdown", "write_report"]
