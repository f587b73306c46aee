"""`plait manifests --out DIR`: write the manifests that install plait on a cluster (the CRD, the operator's
RBAC and its Deployment)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def manifests(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the YAML files into (made if missing).")] = Path(
        "manifests"),
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the operator and of the "
                                                                     "AgentDeployments it serves.")] = "plait",
    image: Annotated[str, typer.Option("--image", help="The operator's container image.")] = "plait:latest",
) -> None:
    """Write the AgentDeployment CRD, the operator's least-privilege RBAC and its Deployment as YAML."""
    from plait.cluster.manifests import write_manifests

    for path in write_manifests(out, namespace, image):
        typer.echo(f"wrote {path}")
    typer.echo(f"install: kubectl apply -f {out}/")
