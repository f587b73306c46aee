"""`plait run FILE:AGENT --input TEXT`: run the agent's plan on this machine (worker processes per pool replica)
and print the outputs, then per-step and end-to-end p50/p95/p99, TTFT and TPOT per LLM call."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from plait.cli._agent import check_positive
from plait.cli._errors import user_errors


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, folder = v.partition("=")
        if not sep or not name or not folder:
            raise typer.BadParameter(f"expected NAME=DIR, got {v!r}", param_hint=flag)
        out[name] = str(Path(folder).resolve())
    return out


def _inputs(graph: Any, text: str | None, as_json: str | None, jsonl: Path | None) -> list[dict[str, Any]]:
    from plait.sdk.errors import PlaitError

    names = [p.name for p in graph.params]
    given = [x for x in (text, as_json, jsonl) if x is not None]
    if len(given) != 1:
        raise PlaitError("give the request's input one way: --input TEXT, --input-json JSON or --inputs FILE.jsonl\n"
                         f"  The agent takes: {', '.join(names)}.")
    if text is not None:
        if len(names) != 1:
            raise PlaitError(f"--input gives one text, but the agent takes {len(names)} inputs ({', '.join(names)})\n"
                             "  To fix: --input-json '{" + ", ".join(f'"{n}": ...' for n in names) + "}'.")
        rows = [{names[0]: text}]
    else:
        rows = [json.loads(as_json)] if as_json is not None else [
            json.loads(line) for line in Path(str(jsonl)).read_text().splitlines() if line.strip()]
    for i, row in enumerate(rows):
        missing = [n for n in names if not isinstance(row, dict) or n not in row]
        if missing:
            raise PlaitError(f"input {i + 1} lacks {', '.join(missing)}\n  To fix: give an object with the keys "
                             f"{', '.join(names)}.")
        for p in graph.params:
            if str(p.type) == "audio":
                row[p.name] = _wav_path(p.name, row[p.name])
    return rows


def _wav_path(name: str, value: Any) -> str:
    """An audio input is a WAV file's path (workers read it themselves; audio bytes do not travel as JSON):
    checked here, so a wrong input fails before any worker starts."""
    from plait.codegen.errors import CodegenError
    from plait.codegen.kernels.audio import read_wav
    from plait.sdk.errors import PlaitError

    fix = (f"  To fix: give {name} as the path of a PCM WAV file, e.g. --input speech.wav "
           "(`sox in.mp3 -b 16 speech.wav` converts other formats).")
    path = Path(str(value))
    if not isinstance(value, str) or not path.is_file():
        raise PlaitError(f"input {name!r} is audio, but {str(value)[:60]!r} is not a file\n{fix}")
    try:
        read_wav(path)
    except CodegenError as err:
        raise PlaitError(f"input {name!r}: {str(err).splitlines()[0]}\n{fix}") from None
    return str(path.resolve())


def run(
    target: Annotated[str, typer.Argument(metavar="FILE:AGENT", help="e.g. examples/rag.py:answer")],
    text: Annotated[str | None, typer.Option(
        "--input", help="The request's one input: a text, or for an audio input (plait.stt's) a WAV file's "
                        "path.")] = None,
    input_json: Annotated[str | None, typer.Option("--input-json", help="The inputs as a JSON object.")] = None,
    inputs_file: Annotated[Path | None, typer.Option("--inputs", help="A JSON object per line; requests cycle "
                                                                       "through them.")] = None,
    plan_dir: Annotated[Path | None, typer.Option(
        "--plan", help="The folder `plait plan --out` wrote. Default: plan now, every pool on this machine's CPU.")] = None,
    requests: Annotated[int, typer.Option("--requests", min=1, help="Requests to send.")] = 1,
    qps: Annotated[float | None, typer.Option("--qps", help="Send at this rate (requests/s).")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, help="At most this many in flight.")] = None,
    weights: Annotated[list[str] | None, typer.Option(
        "--weights", help="MODEL=DIR: a local checkpoint for a model (else the catalog's @tiny size, random "
                          "weights).")] = None,
    index: Annotated[list[str] | None, typer.Option(
        "--index", help="NAME=DIR: the folder `plait index build` wrote for plait.retrieve(index=NAME). "
                        "Default: out/NAME.")] = None,
    follow_figures: Annotated[bool | None, typer.Option(
        "--follow-figures/--no-follow-figures", help="Run the declared workload: output tokens, arms and loop "
                                                     "counts drawn from the agent's figures (ignore-EOS decode).",
        show_default=False)] = None,
    tool_latency: Annotated[str | None, typer.Option(
        "--tool-latency", help="real (default): call the tools; declared: sleep their declared latency.")] = None,
    remap_cpu: Annotated[bool, typer.Option(
        "--remap-cpu", help="Run a --plan made for absent devices as CPU workers here.")] = False,
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Where workers write their logs and programs.")] = Path(
        "out/runs"),
    max_replicas: Annotated[int | None, typer.Option(
        "--max-replicas", min=1, help="Start at most this many replicas of a pool here (default 1: this machine "
                                      "has few cores; the plan's count is for its fleet).")] = None,
    scale: Annotated[str | None, typer.Option(
        "--scale", help="Without --plan: the catalog size the dense LLMs are planned and run at (tiny, small; "
                        "default tiny).")] = None,
    trace: Annotated[Path | None, typer.Option(
        "--trace", help="Write per-request traces: FILE as OTLP JSON (OpenTelemetry) and FILE.chrome.json as Chrome "
                        "trace events (Perfetto opens it).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --follow-figures' draws.")] = 0,
    max_tokens: Annotated[int | None, typer.Option(
        "--max-tokens", min=1, help="Cap every decode at N tokens (LLM text, whisper's text, parler-tts's audio "
                                    "frames), to keep a CPU run short.")] = None,
) -> None:
    """Run FILE:AGENT on this machine (planned for it, or --plan DIR) and print its outputs and latencies.

    A plait.yaml beside the agent file may hold the same settings (docs/runtime.md); flags override it."""
    check_positive(qps=qps)
    if qps is not None and concurrency is not None:
        raise typer.BadParameter("give --qps or --concurrency, not both", param_hint="--qps")
    if tool_latency not in (None, "real", "declared"):
        raise typer.BadParameter(f"expected real or declared, got {tool_latency!r}", param_hint="--tool-latency")
    if scale not in (None, "tiny", "small"):
        raise typer.BadParameter(f"expected tiny or small, got {scale!r}", param_hint="--scale")
    with user_errors():
        from plait.cli._agent import traced
        from plait.cli._settings import load_settings
        from plait.scheduler.driver import Figures
        from plait.scheduler.local import LocalRun, faults, mean_tokens, prepare, summary

        settings, settings_file = load_settings(Path(target.rpartition(":")[0] or target))
        scale = scale or settings.scale or "tiny"
        max_replicas = max_replicas or settings.max_replicas or 1
        max_tokens = max_tokens or settings.max_tokens
        tool_latency = tool_latency or settings.tool_latency or "real"
        follow_figures = follow_figures if follow_figures is not None else bool(settings.follow_figures)
        graph = traced(target)
        rows = _inputs(graph, text, input_json, inputs_file)
        checkpoints = {**settings.weights, **_pairs(weights or [], "--weights")}
        indexes = {**settings.index, **_pairs(index or [], "--index")}
        for name in _index_names(graph):
            indexes.setdefault(name, str(Path("out", name).resolve()))
        measured = _calibrated() if plan_dir is None else ""
        prepared = prepare(graph, target, plan_dir, remap_cpu, qps=qps, scale=scale, max_replicas=max_replicas,
                           endpoints=settings.endpoints)
        graph = prepared.graph
        from plait.scheduler.worker import run_model  # what each LLM worker will run, said up front

        runs = {m: run_model(m, None, scale) for p in prepared.programs
                if p.pool.kind == "llm" and (m := p.pool.model) and m not in checkpoints and p.pool.endpoint is None
                and any(s.kernel == "llm-engine" for s in p.steps)}
        scaled = sorted(m if r == m else f"{m} -> {r}" for m, r in runs.items())
        # speech kernels have no scaled-down size or checkpoint loader: catalog shapes, seeded random weights
        speech = sorted({s.model for p in prepared.programs for s in p.steps
                         if s.kernel in ("speech-encoder", "speech-decoder", "vocoder") and s.model})
        procs = sum(min(p.pool.replicas, max_replicas) for p in prepared.programs)
        notes = list(prepared.notes)
        if prepared.local:   # the first line says what the plan was made for
            typer.echo(_planned_line(prepared.plan, measured))
        elif plan_dir is None and notes:   # no plan fits this machine: planned for a fleet instead
            typer.echo(notes.pop(0))
        typer.echo(f"running {target} on this machine's CPU: {procs} worker processes for "
                   f"{len(prepared.programs)} pools (at most {max_replicas} replica(s) each)"
                   + (f"; models at a scaled-down size: {', '.join(scaled)} (random weights)" if scaled else "")
                   + (f"; speech models at the catalog's shapes: {', '.join(speech)} (random weights: the audio "
                      "and transcripts are noise)" if speech else ""))
        for note in notes:
            typer.echo(note)
        if settings_file is not None:
            typer.echo(f"settings from {settings_file} (flags override them)")
        folder = run_dir / time.strftime("%Y%m%d-%H%M%S")
        figures = Figures(follow=follow_figures, tool_latency_declared=tool_latency == "declared", seed=seed)
        with LocalRun(graph, prepared.programs, folder, figures, checkpoints, indexes, max_replicas=max_replicas,
                      driver_prompts=prepared.driver_prompts, max_tokens=max_tokens) as local:
            with _progress(requests) as tick:
                records = local.many(rows, requests, qps=qps, concurrency=concurrency, progress=tick)
            interrupted = local.interrupted
            restarts = dict(local.workers.restarts)
    if trace is not None:
        from plait.scheduler.traces import write_traces

        otlp, chrome = write_traces(records, graph.agent_name, trace)
        typer.echo(f"traces: {otlp} (OTLP JSON), {chrome} (Chrome trace events)")
    failed = [r for r in records if r.error is not None]
    for r in records[:5]:
        typer.echo(f"[{r.request}] " + (f"error: {r.error}" if r.error else _short(r.output)))
    if len(records) > 5:
        typer.echo(f"... ({len(records) - 5} more)")
    if interrupted:
        typer.echo("stopped by a signal (SIGTERM or Ctrl-C): no new requests; the ones in flight were drained")
    typer.echo(f"\n{len(records) - len(failed)} of {requests} requests answered; logs in {folder}/")
    typer.echo(f"{'':40} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}")
    for what, n, (p50, p95, p99) in summary(records):
        typer.echo(f"{what[:40]:40} {n:5d} {p50 * 1e3:9.1f} {p95 * 1e3:9.1f} {p99 * 1e3:9.1f}")
    typer.echo(f"mean output tokens per LLM call: {mean_tokens(records):.1f}")
    typer.echo(faults(records, restarts))
    if failed:
        raise typer.Exit(1)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text.startswith("<tensor"):   # a tensor's description, e.g. the WAV file it was written to: whole
        return text
    text = text.encode("ascii", "backslashreplace").decode()   # random weights write bytes a terminal mangles
    return text if len(text) <= 100 else text[:97] + "..."


def _index_names(graph: Any) -> set[str]:
    names = set()
    for _, node in graph.walk():
        if node.kind == "retrieve":
            names.add(node.target)
    return names


def _calibrated() -> str:
    """How this machine was measured (its `local` device's source); measured now when the user catalog has no
    `local` device yet, since a plan for this machine needs one (about 10 s, said on stderr first)."""
    from plait.planner.catalog import LOCAL_DEVICE, load_catalog
    from plait.planner.catalog.user import user_catalog_path

    catalog = load_catalog()
    if LOCAL_DEVICE in catalog.devices:
        return catalog.devices[LOCAL_DEVICE].flops["fp32"].source or ""
    from plait.cli.calibrate_cmd import measure_and_save

    typer.echo(f"no {LOCAL_DEVICE!r} device in {user_catalog_path()}: measuring this machine first "
               "(`plait calibrate --cpu`, about 10 s)", err=True)
    device, _, _ = measure_and_save(None)
    return f"{device.flops['fp32'].source} just now"


def _planned_line(plan: Any, measured: str) -> str:
    """The first line of a run planned here: what the plan is for, and what it predicts."""
    scale = f", LLMs at @{plan.scale}" if plan.scale else ""
    return (f"planned for this machine (device 'local', {measured}) at {plan.qps:g} req/s{scale}: predicted "
            f"p50 {plan.p50_s * 1e3:.0f} ms, p95 {plan.p95_s * 1e3:.0f} ms end to end")


@contextmanager
def _progress(requests: int) -> Iterator[Any]:
    """A bar on stderr while many requests run (never on stdout, which tests and scripts parse); None for one."""
    if requests <= 1:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("requests"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("requests", total=requests)
        yield lambda: bar.advance(task)
