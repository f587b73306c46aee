"""The `plait` command. Each subcommand lives in its own module and imports its layer lazily."""

from __future__ import annotations

import typer

from plait.cli import (
    calibrate_cmd,
    catalog_cmd,
    cost_cmd,
    graph_cmd,
    index_cmd,
    ir_cmd,
    manifests_cmd,
    operator_cmd,
    plan_cmd,
    run_cmd,
    serve_cmd,
    simulate_cmd,
    submit_cmd,
)

app = typer.Typer(
    name="plait",
    help="Compile agent workflows, plan them onto a mixed GPU/CPU fleet under an SLA, and run them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("graph")(graph_cmd.graph)
app.command("ir")(ir_cmd.ir)
app.command("cost")(cost_cmd.cost)
app.command("plan")(plan_cmd.plan)
app.command("simulate")(simulate_cmd.simulate)
app.command("run")(run_cmd.run)
app.command("serve")(serve_cmd.serve)
app.command("catalog")(catalog_cmd.catalog)
app.command("calibrate")(calibrate_cmd.calibrate)
app.command("manifests")(manifests_cmd.manifests)
app.command("submit")(submit_cmd.submit)
app.command("status")(submit_cmd.status)
app.command("delete")(submit_cmd.delete)
app.command("operator")(operator_cmd.operator)
app.add_typer(index_cmd.index_app, name="index")


def main() -> None:
    app()
