"""`plait operator [--kubeconfig F] [-n NS]`: run the AgentDeployment operator (kopf) against a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plait.cli._errors import user_errors


def operator(
    kubeconfig: Annotated[Path | None, typer.Option(
        "--kubeconfig", help="Kubeconfig to connect with. Default: the pod's service account inside a cluster, "
                             "else $KUBECONFIG or ~/.kube/config.")] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", "-n", help="The namespace whose AgentDeployments to serve. Default: the pod's own, else "
                                  "the kubeconfig context's.")] = None,
    resync_s: Annotated[float, typer.Option(
        "--resync-s", min=0.5, help="Seconds between full reconciles of each resource (drift of Services and "
                                    "ConfigMaps, retries of conflicts the watch saw).")] = 30.0,
) -> None:
    """Serve AgentDeployments in one namespace: a StatefulSet per pool, Services, the router; status follows."""
    with user_errors():
        from plait.sdk.errors import PlaitError

        if kubeconfig is not None and not kubeconfig.is_file():
            raise PlaitError(f"--kubeconfig {kubeconfig}: no such file\n  To fix: give the path of a kubeconfig, "
                             "or leave the option out inside a cluster")
        from plait.cluster.operator import default_namespace, run

        served = namespace or default_namespace(kubeconfig)
        typer.echo(f"plait operator: serving AgentDeployments in namespace {served!r} (Ctrl-C stops)", err=True)
        run(kubeconfig, served, resync_s)
