"""`plait submit FILE:AGENT --plan DIR`, `plait status NAME`, `plait delete NAME`: an AgentDeployment on a
Kubernetes cluster, made from a plan folder, read back, and removed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from plait.cli._errors import output_console, user_errors

KubeconfigOpt = Annotated[Path | None, typer.Option(
    "--kubeconfig", envvar="KUBECONFIG", help="The cluster's kubeconfig (default: $KUBECONFIG, ~/.kube/config, or "
                                              "the pod's service account).")]
NamespaceOpt = Annotated[str | None, typer.Option(
    "--namespace", "-n", help="Namespace (default: the kubeconfig context's, else 'default').")]


def submit(
    target: Annotated[str, typer.Argument(metavar="FILE:AGENT", help="The agent the plan is of, e.g. "
                                                                    "examples/rag.py:answer.")],
    plan_dir: Annotated[Path, typer.Option("--plan", help="The folder `plait plan --out` wrote (plan.json, "
                                                          "placed.mlir).")],
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="The AgentDeployment's name (default: the agent's "
                                                            "name, dashed).")] = None,
    image: Annotated[str, typer.Option("--image", help="Container image of the workers and the router.")] = (
        "plait:latest"),
    weights: Annotated[str | None, typer.Option(
        "--weights", metavar="pvc:CLAIM|image:REF",
        help="Where LLM pools read checkpoints (/models/MODEL) and search pools indexes (/models/indexes/NAME): a "
             "PersistentVolumeClaim, or an image an init container copies /models from. Default: none (LLMs at "
             "a scaled-down size, random weights).")] = None,
    vllm: Annotated[bool, typer.Option(
        "--vllm", help="Run the plan's unified LLM pools on vLLM's OpenAI server instead of plait's engine (pools "
                       "of a device only another engine runs always do); the router measures and reaches each "
                       "as a remote pool.")] = False,
) -> None:
    """Create or update the AgentDeployment of FILE:AGENT with the pools of --plan, and its ConfigMap."""
    with user_errors():
        from plait.cluster.from_plan import deployment_bundle
        from plait.cluster.submit import Cluster

        if weights is not None and not weights.startswith(("pvc:", "image:")) or weights in ("pvc:", "image:"):
            raise typer.BadParameter(f"expected pvc:CLAIM or image:REF, got {weights!r}", param_hint="--weights")
        bundle = deployment_bundle(target, plan_dir, name, image, weights, vllm)
        cluster = Cluster.connect(kubeconfig, namespace)
        done = cluster.submit(bundle)
    verb = "created" if done.created else "updated"
    typer.echo(f"agentdeployment.plait.dev/{done.name} {verb} in namespace {done.namespace} (generation "
               f"{done.generation}, plan {done.plan_hash[:12]}): {len(bundle.spec.pools)} pools, ConfigMap "
               f"{bundle.config_map['metadata']['name']} with {len(bundle.config_map['data'])} files")
    typer.echo(f"watch it: plait status {done.name}" + (f" -n {done.namespace}" if namespace else ""))


def status(
    name: Annotated[str, typer.Argument(help="The AgentDeployment's name.")],
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Show an AgentDeployment's conditions and pools (planned and ready replicas)."""
    with user_errors():
        from plait.cluster.submit import Cluster

        cluster = Cluster.connect(kubeconfig, namespace)
        obj, state = cluster.status(name)
    _print_status(obj, state)


def delete(
    name: Annotated[str, typer.Argument(help="The AgentDeployment's name.")],
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Delete an AgentDeployment (its pools go with it) and its ConfigMap."""
    with user_errors():
        from plait.cluster.submit import Cluster

        cluster = Cluster.connect(kubeconfig, namespace)
        cluster.delete(name)
    typer.echo(f"agentdeployment.plait.dev/{name} deleted from namespace {cluster.namespace}")


def _print_status(obj: dict[str, Any], state: Any) -> None:
    from rich.table import Table

    console = output_console()
    meta, spec = obj["metadata"], obj.get("spec", {})
    seen = state.observed_generation
    console.print(f"{meta['name']} in namespace {meta['namespace']}: generation {meta.get('generation')}, "
                  f"observed {seen if seen is not None else '-'}; plan {spec.get('planHash', '')[:12]}; "
                  f"endpoint {state.endpoint or '-'}")
    conditions = Table(title="conditions", title_justify="left")
    for column in ("type", "status", "reason", "message", "since"):
        conditions.add_column(column)
    for c in state.conditions:
        conditions.add_row(c.type, c.status, c.reason, c.message, c.last_transition_time or "")
    if not state.conditions:
        conditions.add_row("-", "-", "", "no status yet: is the operator running? (`plait operator`)", "")
    console.print(conditions)
    ready = {p.id: p for p in state.pools}
    pools = Table(title="pools", title_justify="left")
    for column in ("pool", "kind", "device", "replicas", "ready", "requests", "node selector"):
        pools.add_column(column, justify="right" if column in ("replicas", "ready") else "left")
    for p in spec.get("pools", []):
        got = ready.get(p["id"])
        requests = ", ".join(f"{k}={v}" for k, v in p.get("resources", {}).get("requests", {}).items())
        nodes = ", ".join(f"{k}={v}" for k, v in p.get("nodeSelector", {}).items())
        pools.add_row(p["id"], p["kind"], p["device"], str(p["replicas"]),
                      str(got.ready_replicas) if got else "-", requests, nodes or "-")
    console.print(pools)
