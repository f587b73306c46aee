"""`plait serve FILE:AGENT` (the agent behind an HTTP API) or `plait serve --model NAME` (the built-in engine
as an OpenAI-compatible server): both on uvicorn, authenticated, bounded, with Prometheus metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plait.cli._errors import user_errors

if TYPE_CHECKING:
    from plait.scheduler.driver import Figures
    from plait.scheduler.workers import Attach


def serve(
    target: Annotated[str | None, typer.Argument(metavar="[FILE:AGENT]", help="The agent to serve, e.g. "
                                                  "examples/rag.py:answer (or give --model).")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Serve this catalog model (e.g. llama-3.1-8b) with the built-in engine as "
                        "/v1/completions and /v1/chat/completions instead of an agent.")] = None,
    weights: Annotated[list[str] | None, typer.Option(
        "--weights", help="With --model: DIR, a local checkpoint (else the model's @tiny size, random weights). "
                          "With an agent: MODEL=DIR per model.")] = None,
    plan_dir: Annotated[Path | None, typer.Option(
        "--plan", help="The folder `plait plan --out` wrote. Default: plan now, every pool on this machine's "
                       "CPU.")] = None,
    remap_cpu: Annotated[bool, typer.Option(
        "--remap-cpu", help="Run a --plan made for absent devices as CPU workers here.")] = False,
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Other than loopback only with an "
                                                     "API key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port; 0 lets the OS pick (printed).")] = 8000,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="PLAIT_API_KEY", show_envvar=True,
        help="Require `Authorization: Bearer KEY` on every request.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Requests run at once.")] = 4,
    max_queue: Annotated[int, typer.Option(
        "--max-queue", min=0, help="Requests admitted to wait for a slot; past it: 503 with Retry-After.")] = 16,
    policy: Annotated[str, typer.Option(
        "--policy", help="The waiting requests' order: fifo, or edf (earliest deadline first).")] = "fifo",
    deadline_s: Annotated[float | None, typer.Option(
        "--deadline-s", help="A request's deadline when its body gives no timeout_s. Default: the agent's SLA "
                             "p95 target (60 s without one).")] = None,
    max_timeout_s: Annotated[float, typer.Option(
        "--max-timeout-s", help="The largest timeout_s a request may ask for.")] = 600.0,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", min=1, help="Larger bodies get 413.")] = 1 << 20,
    max_tokens: Annotated[int, typer.Option(
        "--max-tokens", min=1, help="Cap on every decode (an agent's LLM calls; an OpenAI request asking for "
                                    "more gets 422).")] = 1024,
    index: Annotated[list[str] | None, typer.Option(
        "--index", help="NAME=DIR: the folder `plait index build` wrote (default out/NAME).")] = None,
    max_replicas: Annotated[int, typer.Option("--max-replicas", min=1, help="Replicas of a pool started here.")] = 1,
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Where workers write their logs.")] = Path("out/serve"),
    follow_figures: Annotated[bool, typer.Option(
        "--follow-figures/--no-follow-figures", help="Serve the declared workload: each request's prompt lengths, output tokens, arms "
                                 "and loop counts drawn from the agent's figures (as `plait run --follow-figures`; "
                                 "a load test against `plait simulate`).")] = False,
    tool_latency: Annotated[str, typer.Option(
        "--tool-latency", help="real: call the tools; declared: sleep their declared latency (tools that stand in "
                               "for a network service).")] = "real",
    seed: Annotated[int, typer.Option("--seed", help="Seed of --follow-figures' draws.")] = 0,
    attach: Annotated[str | None, typer.Option(
        "--attach", metavar="CALLS,ANSWERS,STORE",
        help="Start no workers: every replica of --plan's pools attaches from elsewhere (a worker pod: the plait "
             "image with PLAIT_ROLE=worker) on these ports of --host (0: the OS picks, printed).")] = None,
    attach_timeout_s: Annotated[float, typer.Option(
        "--attach-timeout-s", help="With --attach: how long to wait for every replica to attach.")] = 600.0,
) -> None:
    """Serve FILE:AGENT (POST /v1/agents/NAME/invoke) or --model NAME (OpenAI-compatible) over HTTP."""
    from plait.cli._agent import check_positive

    check_positive(deadline_s=deadline_s, max_timeout_s=max_timeout_s, attach_timeout_s=attach_timeout_s)
    if attach is not None and (plan_dir is None or target is None):
        raise typer.BadParameter("attached workers run the pools of a plan: give FILE:AGENT and --plan DIR",
                                 param_hint="--attach")
    if (target is None) == (model is None):
        raise typer.BadParameter("give FILE:AGENT to serve an agent, or --model NAME to serve a model (one of them)",
                                 param_hint="FILE:AGENT")
    if policy not in ("fifo", "edf"):
        raise typer.BadParameter(f"expected fifo or edf, got {policy!r}", param_hint="--policy")
    if tool_latency not in ("real", "declared"):
        raise typer.BadParameter(f"expected real or declared, got {tool_latency!r}", param_hint="--tool-latency")
    with user_errors():
        from plait.scheduler.driver import Figures
        from plait.scheduler.serve.security import check_bind
        from plait.scheduler.workers import Attach

        check_bind(host, api_key)   # before anything slow: a refused address fails at once
        attached = None if attach is None else Attach(host, *Attach.ports(attach, "--attach"))
        if model is not None:
            _serve_model(model, weights or [], host, port, api_key, concurrency, max_queue, max_tokens,
                         max_body_bytes)
            return
        assert target is not None
        _serve_agent(target, weights or [], plan_dir, remap_cpu, host, port, api_key, concurrency, max_queue,
                     policy, deadline_s, max_timeout_s, max_body_bytes, max_tokens, index or [], max_replicas,
                     run_dir, Figures(follow=follow_figures, tool_latency_declared=tool_latency == "declared",
                                      seed=seed), attached, attach_timeout_s)


def _serve_agent(target: str, weights: list[str], plan_dir: Path | None, remap_cpu: bool, host: str, port: int,
                 api_key: str | None, concurrency: int, max_queue: int, policy: str, deadline_s: float | None,
                 max_timeout_s: float, max_body_bytes: int, max_tokens: int, index: list[str], max_replicas: int,
                 run_dir: Path, figures: Figures, attach: Attach | None = None,
                 attach_timeout_s: float = 600.0) -> None:
    from plait.cli._agent import traced
    from plait.cli._settings import load_settings
    from plait.cli.run_cmd import _index_names, _pairs
    from plait.scheduler.local import LocalRun, prepare
    from plait.scheduler.serve.agent_app import AgentServeOptions, AgentServer, create_agent_app
    from plait.scheduler.serve.server import bind, run_server

    graph = traced(target)
    # plait.yaml beside the agent: its endpoints move the plan's remote pools (a router's vLLM pools), and its
    # weights and indexes are defaults the flags override, as for `plait run`
    settings, _ = load_settings(Path(target.rpartition(":")[0] or target))
    checkpoints = {**settings.weights, **_pairs(weights, "--weights")}
    indexes = {**settings.index, **_pairs(index, "--index")}
    for name in _index_names(graph):
        indexes.setdefault(name, str(Path("out", name).resolve()))
    prepared = prepare(graph, target, plan_dir, remap_cpu, max_replicas=max_replicas, endpoints=settings.endpoints,
                       attached=attach is not None, endpoint_wait_s=attach_timeout_s if attach else 0.0)
    graph = prepared.graph   # at the plan's scale (a plan for this machine runs its models scaled down)
    sla_s = graph.sla.p95_ms / 1e3 if graph.sla is not None and graph.sla.p95_ms is not None else None
    deadline = deadline_s or sla_s or 60.0
    where = "--deadline-s" if deadline_s else "the agent's SLA p95" if sla_s else "the default"
    engines_here = any(p.pool.kind == "llm" and p.pool.endpoint is None for p in prepared.programs)
    if attach is not None:
        procs = sum(p.pool.replicas for p in prepared.programs if not p.pool.endpoint)
        typer.echo(f"serving {target}: {procs} attached workers (their pods) for {len(prepared.programs)} pools")
    else:
        procs = sum(min(p.pool.replicas, max_replicas) for p in prepared.programs)
        typer.echo(f"serving {target}: {procs} worker processes for {len(prepared.programs)} pools on this "
                   "machine's CPU" + ("; LLMs without --weights at their @tiny size (random weights)"
                                      if engines_here else ""))
    for note in prepared.notes:
        typer.echo(note)
    if figures.follow or figures.tool_latency_declared:
        typer.echo("workload: " + ", ".join(
            ([f"--follow-figures (prompt lengths, output tokens, arms and loop counts drawn from the agent's "
              f"figures, seed {figures.seed})"] if figures.follow else [])
            + (["--tool-latency declared (tools sleep their declared latency)"] if figures.tool_latency_declared
               else [])))
    typer.echo(f"deadline per request: {deadline:g} s ({where}; a body's timeout_s may set up to {max_timeout_s:g}); "
               f"{concurrency} at once, {max_queue} waiting at most, {policy} order; "
               + ("API key required" if api_key else "no API key (loopback only)"))
    folder = run_dir / time.strftime("%Y%m%d-%H%M%S")
    options = AgentServeOptions(deadline_s=deadline, max_timeout_s=max_timeout_s, concurrency=concurrency,
                                max_queue=max_queue, policy=policy, api_key=api_key, max_body_bytes=max_body_bytes,
                                sla_s=sla_s)
    sock = bind(host, port)
    with LocalRun(graph, prepared.programs, folder, figures, checkpoints, indexes, max_replicas=max_replicas,
                  driver_prompts=prepared.driver_prompts, max_tokens=max_tokens, attach=attach,
                  on_bound=lambda line: typer.echo(line), start_timeout_s=attach_timeout_s if attach else 300.0) as local:
        engines = [key for key, spec in local.workers.specs.items()
                   if any(p.pool.id == spec.pool and p.pool.kind == "llm" for p in prepared.programs)]
        server = AgentServer(graph, local.driver.run, local.workers.health, options,
                             lambda: local.workers.health(1.0, engines), lambda: dict(local.workers.restarts))
        typer.echo(f"workers ready; logs in {folder}/; POST /v1/agents/{graph.agent_name}/invoke")
        try:
            run_server(create_agent_app(server), sock)
        finally:
            server.pool.shutdown(wait=False, cancel_futures=True)
        typer.echo(server.summary())
    typer.echo("stopped")


def _serve_model(model: str, weights: list[str], host: str, port: int, api_key: str | None, concurrency: int,
                 max_queue: int, max_tokens: int, max_body_bytes: int) -> None:
    from plait.scheduler.serve.openai_app import ModelServeOptions, create_model_app, load_model
    from plait.scheduler.serve.server import bind, run_server
    from plait.sdk.errors import PlaitError

    if len(weights) > 1 or weights and "=" in weights[0] and not Path(weights[0]).is_dir():
        raise PlaitError(f"--weights with --model takes one checkpoint folder, got {weights}\n"
                         "  To fix: --weights DIR (a local Hugging Face folder: config.json, *.safetensors).")
    served = load_model(model, weights[0] if weights else None, max_batch=concurrency)
    typer.echo(served.banner)
    options = ModelServeOptions(api_key=api_key, concurrency=concurrency, max_queue=max_queue,
                                max_tokens=max_tokens, max_body_bytes=max_body_bytes)
    sock = bind(host, port)
    app, loop = create_model_app(served, options)
    try:
        run_server(app, sock)
    finally:
        loop.stop()
    typer.echo("stopped")



