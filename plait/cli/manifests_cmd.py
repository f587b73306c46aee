"""`plait manifests --out DIR [--apply]`: write the manifests that install plait on a cluster (the CRD, the
operator's RBAC and its Deployment), and with --apply create or update them there (no kubectl needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plait.cli._errors import user_errors


def manifests(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the YAML files into (made if missing).")] = Path(
        "manifests"),
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the operator and of the "
                                                                     "AgentDeployments it serves.")] = "plait",
    image: Annotated[str, typer.Option("--image", help="The operator's container image.")] = "plait:latest",
    apply: Annotated[bool, typer.Option("--apply", help="Also create or update every object on the cluster of "
                                                        "--kubeconfig (an admin's credentials).")] = False,
    kubeconfig: Annotated[Path | None, typer.Option(
        "--kubeconfig", envvar="KUBECONFIG", help="With --apply: the cluster's kubeconfig (default: $KUBECONFIG, "
                                                  "~/.kube/config).")] = None,
) -> None:
    """Write the AgentDeployment CRD, the operator's least-privilege RBAC and its Deployment as YAML."""
    from plait.cluster.manifests import manifest_files, write_manifests

    for path in write_manifests(out, namespace, image):
        typer.echo(f"wrote {path}")
    if not apply:
        typer.echo(f"install: kubectl apply -f {out}/   (or: plait manifests --out {out} --apply)")
        return
    with user_errors():
        from plait.cluster.install import apply_objects
        from plait.cluster.submit import Cluster

        cluster = Cluster.connect(kubeconfig, namespace)
        for objects in manifest_files(namespace, image).values():
            for line in apply_objects(cluster.api, objects, cluster.server):
                typer.echo(line)
