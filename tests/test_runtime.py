"""The local runtime with real processes on loopback: rag and react end to end, a Gloo transfer between two
workers, a refused pickle, a stale plan, a crashed worker's log in the error, and no orphans after SIGKILL."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plait.scheduler.driver import Figures
from plait.scheduler.local import LocalRun, StalePlanError, prepare, summary

ROOT = Path(__file__).resolve().parents[1]
RAG, REACT = "examples/rag.py:answer", "examples/react.py:solve"
PASSAGES = ("The Eiffel Tower in Paris is 330 metres tall.\n\nMount Everest is 8,849 metres high.\n\n"
            "Light travels at 299,792,458 metres per second.\n\nPython was first released in 1991.\n")


def _traced(target: str) -> object:
    from plait.cli._agent import traced

    return traced(str(ROOT / target.split(":")[0]) + ":" + target.split(":")[1])


@pytest.fixture(scope="module")
def wiki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plait.codegen.kernels.encoder import TextEncoder
    from plait.codegen.kernels.index import build_index

    docs = tmp_path_factory.mktemp("docs")
    (docs / "facts.txt").write_text(PASSAGES)
    out = tmp_path_factory.mktemp("wiki")
    encoder = TextEncoder("minilm-l6")
    encoder.load()
    build_index(docs, out, "minilm-l6", encoder.embed)
    return out


@pytest.fixture(scope="module")
def rag(wiki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    graph = _traced(RAG)
    prepared = prepare(graph, RAG, None, remap_cpu=True)   # type: ignore[arg-type]
    with LocalRun(prepared.graph, prepared.programs, tmp_path_factory.mktemp("run"), Figures(),   # type: ignore[arg-type]
                  indexes={"wiki": str(wiki)}, driver_prompts=prepared.driver_prompts) as run:
        yield run


def test_rag_end_to_end(rag: LocalRun) -> None:
    records = rag.many([{"question": "How tall is the Eiffel Tower?"}], requests=3, concurrency=3)
    assert [r.error for r in records] == [None] * 3
    assert all(isinstance(r.output, str) and r.output for r in records)
    steps = {name.split()[0] for r in records for name, _ in r.steps}
    assert {"embed", "transfer", "retrieve", "prompt", "llm"} <= steps   # the embedding crossed pools by Gloo
    rows = {what: n for what, n, _ in summary(records)}
    assert rows["end to end"] == 3 and rows["TTFT llm_1 llama-3.1-8b@tiny"] == 3   # planned for local: at @tiny


def test_traces_are_otlp_and_chrome_json(rag: LocalRun, tmp_path: Path) -> None:
    import json

    from plait.scheduler.traces import write_traces

    records = rag.many([{"question": "What is Mount Everest?"}], requests=2, concurrency=2)
    otlp, chrome = write_traces(records, "answer", tmp_path / "trace.json")
    spans = json.loads(otlp.read_text())["resourceSpans"][0]["scopeSpans"][0]["spans"]
    names = [s["name"] for s in spans]
    assert names.count("request 0") + names.count("request 1") <= 2 and "queued" in names and "computing" in names
    assert "transferring" in names and all(len(s["traceId"]) == 32 for s in spans)
    roots = [s for s in spans if "parentSpanId" not in s]
    assert len(roots) == 2 and len({s["traceId"] for s in spans}) == 2   # one trace per request
    events = json.loads(chrome.read_text())["traceEvents"]
    assert {e["ph"] for e in events} == {"X", "M"} and all(e["dur"] >= 0 for e in events if e["ph"] == "X")


def test_rag_follow_figures(rag: LocalRun) -> None:
    rag.driver.figures = Figures(follow=True, seed=1)
    try:
        records = rag.many([{"question": "What is Python?"}], requests=4, concurrency=4)
    finally:
        rag.driver.figures = Figures()
    tokens = [n for r in records for _, _, _, n in r.llm]
    assert [r.error for r in records] == [None] * 4
    assert len(set(tokens)) > 1 and all(40 < n < 256 for n in tokens)   # drawn from normal(160, 40), ignore-EOS


def test_gloo_transfer_between_workers(rag: LocalRun, wiki: Path) -> None:
    """The question's embedding stays on the encoder worker and reaches the search worker over their Gloo pair:
    the passages found there are the ones an in-process search of the same embedding finds."""
    from plait.codegen.kernels.encoder import TextEncoder
    from plait.codegen.kernels.search import VectorSearch
    from plait.scheduler.driver import Record
    from plait.scheduler.messages import TensorRef

    driver, rec = rag.driver, Record(request=10_000)
    embed, retrieve = (n for n in driver.graph.steps if n.kind in ("embed", "retrieve"))
    ref = driver._leaf(embed, ["How high is Mount Everest?"], rec)
    assert isinstance(ref, TensorRef) and ref.shape == [384] and ref.dtype == "float32"
    found = driver._leaf(retrieve, [ref], rec)
    assert any(name.startswith("transfer encoder") for name, _ in rec.steps)
    encoder = TextEncoder("minilm-l6")
    expected = VectorSearch(wiki, k=int(retrieve.attrs["k"]))(encoder("How high is Mount Everest?"))
    assert found == expected and "Everest" in found[0]
    rag.workers.release(rec.request)


def test_every_worker_answers_a_health_check(rag: LocalRun) -> None:
    health = rag.workers.health()
    assert set(health) == set(rag.workers.specs)
    for key, answer in health.items():
        assert isinstance(answer, dict) and answer["pid"] == rag.workers.procs[key].pid


def test_pickle_is_refused(rag: LocalRun) -> None:
    key = next(iter(rag.workers.specs))
    rag.workers.raw(key, pickle.dumps(os.system))   # would run a command if anyone unpickled it
    deadline = time.monotonic() + 10
    while not rag.workers.refused and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rag.workers.refused and "not a plait control message" in rag.workers.refused[0]
    assert rag.many([{"question": "Still there?"}], requests=1)[0].error is None


def test_sigterm_drains_in_flight_requests(rag: LocalRun) -> None:
    """SIGTERM stops admitting requests; those in flight finish (none is cut off), then many() returns."""
    import threading

    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    start = time.monotonic()
    records = rag.many([{"question": "What is light?"}], requests=1000, concurrency=2, drain_s=30)
    assert 0 < len(records) < 1000 and time.monotonic() - start < 30 and rag.interrupted
    assert [r.error for r in records] == [None] * len(records)


def test_crashed_worker_is_restarted_with_its_log_in_the_driver_log(rag: LocalRun) -> None:
    """A killed worker is restarted in its place (tests/test_faults.py kills workers mid-request); its crash
    report, with the last lines of its log, is in the driver's log."""
    key = next(k for k in rag.workers.specs if k.startswith("llm"))
    os.kill(rag.workers.procs[key].pid, signal.SIGKILL)
    record = rag.many([{"question": "Anyone?"}], requests=1)[0]
    assert record.error is None and rag.workers.restarts[key] == 1
    assert f"worker {key} died" in rag.workers.crashes[key] and "plait.worker: " in rag.workers.crashes[key]


def test_react_follow_figures(tmp_path: Path) -> None:
    graph = _traced(REACT)
    prepared = prepare(graph, REACT, None, remap_cpu=True)   # type: ignore[arg-type]
    with LocalRun(prepared.graph, prepared.programs, tmp_path, Figures(follow=True, seed=3),   # type: ignore[arg-type]
                  driver_prompts=prepared.driver_prompts) as run:
        records = run.many([{"question": "How tall is the Eiffel Tower?"}], requests=2, concurrency=2)
    assert [r.error for r in records] == [None] * 2
    for r in records:
        plans = [node for node, *_ in r.llm if node.startswith("llm_1 ")]
        assert 2 <= len(plans) <= 4   # expected_iters uniform(2, 4)
        tools = [name for name, _ in r.steps if name.startswith("tool")]
        assert any(t in ("tool search", "tool calculator", "tool finish") for t in tools)   # an arm ran
        assert isinstance(r.output, str)


def test_stale_plan_is_refused(tmp_path: Path) -> None:
    from plait.planner.planning import plan_agent

    graph = _traced(RAG)
    result = plan_agent(graph, source=RAG, sweep_points=0)   # type: ignore[arg-type]
    (tmp_path / "placed.mlir").write_text(result.placed_text)
    (tmp_path / "plan.json").write_text(result.plan.model_copy(update={"graph_hash": "0" * 64}).model_dump_json())
    with pytest.raises(StalePlanError, match="(?s)another version of .*re-plan"):
        prepare(graph, RAG, tmp_path, remap_cpu=True)   # type: ignore[arg-type]
    (tmp_path / "plan.json").write_text(result.plan.model_copy(update={"plait_version": "0.0.1"}).model_dump_json())
    with pytest.raises(StalePlanError, match="(?s)plait 0.0.1.*re-plan"):
        prepare(graph, RAG, tmp_path, remap_cpu=True)   # type: ignore[arg-type]
    (tmp_path / "plan.json").write_text(result.plan.model_dump_json())
    with pytest.raises(Exception, match="(?s)does not have.*--remap-cpu"):
        prepare(graph, RAG, tmp_path, remap_cpu=False)   # type: ignore[arg-type]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_no_orphans_after_the_driver_is_killed(wiki: Path, tmp_path: Path) -> None:
    driver = subprocess.Popen([sys.executable, "-m", "plait.cli", "run", RAG, "--input", "What is Python?",
                               "--requests", "1000", "--concurrency", "2", "--follow-figures",
                               "--index", f"wiki={wiki}", "--run-dir", str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            logs = list(tmp_path.glob("*/worker-*.log"))
            if len(logs) == 3 and all("loaded kernels" in p.read_text() for p in logs):
                break
            time.sleep(0.2)
        workers = [p for p in _children(driver.pid) if _alive(p)]
        assert len(workers) >= 3, "the workers did not start"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)]


def test_voice_end_to_end_follow_figures(tmp_path: Path) -> None:
    """stt (encoder, prefill, decode pools) -> tool -> llm -> tts (prefill, decode, vocoder pools), from a WAV."""
    import math

    import torch

    from plait.codegen.kernels.audio import read_wav, write_wav
    from plait.planner.catalog import load_catalog

    wav = tmp_path / "question.wav"
    write_wav(wav, 0.3 * torch.sin(torch.arange(16000 * 2) * (2 * math.pi * 220 / 16000)), 16000)   # 2 s tone
    out = subprocess.run([sys.executable, "-m", "plait.cli", "run", "examples/voice.py:assistant", "--input",
                          str(wav), "--follow-figures", "--max-tokens", "4", "--run-dir", str(tmp_path / "runs")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "speech models at the catalog's shapes: parler-tts-mini, whisper-small" in out.stdout
    rows = {line.split("  ")[0] for line in out.stdout.splitlines()}
    for stage in ("stt whisper-small encode", "stt whisper-small prefill", "stt whisper-small decode",
                  "tool web_search", "llm llama-3.1-8b", "tts parler-tts-mini prefill", "tts parler-tts-mini decode",
                  "tts parler-tts-mini vocode", "end to end"):
        assert any(r.startswith(stage) for r in rows), (stage, out.stdout)
    assert any(r.startswith("transfer ") for r in rows)   # encoder states and KV caches crossed pools by Gloo
    voc = load_catalog().model("parler-tts-mini").vocoder
    assert voc is not None
    samples = 4 * math.prod(voc.upsample_rates)   # 4 frames (--max-tokens 4), each the codec's hop of samples
    assert f"<tensor float32[{samples}]> audio at {voc.sample_rate} Hz" in out.stdout
    [written] = (tmp_path / "runs").glob("*/request0-*-parler-tts-mini.wav")
    audio, rate = read_wav(written)
    assert rate == voc.sample_rate and audio.shape == (samples,) and audio.abs().max() > 0


def test_audio_input_must_be_a_wav_file(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "plait.cli", "run", "examples/voice.py:assistant", "--input",
                          "hello there"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "input 'audio' is audio" in out.stdout + out.stderr and "WAV" in out.stdout + out.stderr


AGENT = '''
import plait


@plait.tool(latency_ms=1)
def shout(text: str) -> str:
    return text.upper()


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=1)
def tiny(question: str) -> str:
    return plait.llm("llama-3.2-1b", prompt=shout(question), max_tokens=16, prompt_tokens=20, output_tokens=8)
'''


def _run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plait.cli", "run", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=150)


def test_run_without_plan_plans_for_this_machine(tmp_path: Path) -> None:
    """No --plan: planned for `local` (conftest's user catalog), LLMs at @tiny, real workers end to end; plait.yaml
    beside the agent sets max_tokens, and the command line overrides it."""
    (tmp_path / "agent.py").write_text(AGENT)
    (tmp_path / "plait.yaml").write_text("max_tokens: 3\nfollow_figures: true\n")
    out = _run_cli("agent.py:tiny", "--input", "hello", "--requests", "2", "--run-dir", str(tmp_path / "runs"),
                   cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("planned for this machine (device 'local', ") and "LLMs at @tiny" in first
    assert "predicted p50" in first
    assert "llama-3.2-1b@tiny" in out.stdout and "2 of 2 requests answered" in out.stdout
    assert f"settings from {tmp_path / 'plait.yaml'}" in out.stdout
    assert "mean output tokens per LLM call: 3.0" in out.stdout   # plait.yaml's max_tokens took effect
    again = _run_cli("agent.py:tiny", "--input", "hello", "--max-tokens", "2", "--run-dir", str(tmp_path / "runs"),
                     cwd=tmp_path)
    assert again.returncode == 0 and "mean output tokens per LLM call: 2.0" in again.stdout   # the flag wins


def test_bad_plait_yaml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(AGENT)
    (tmp_path / "plait.yaml").write_text("max_token: 3\n")
    out = _run_cli("agent.py:tiny", "--input", "hello", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "plait.yaml: unknown key 'max_token'. Did you mean: max_tokens?" in out.stderr
    (tmp_path / "plait.yaml").write_text("scale: huge\n")
    out = _run_cli("agent.py:tiny", "--input", "hello", cwd=tmp_path)
    assert out.returncode == 2 and "plait.yaml: scale:" in out.stderr and "To fix" in out.stderr


def test_worker_refuses_a_stale_program(tmp_path: Path) -> None:
    """A worker given a program from another plait version or graph refuses it (its log says re-plan)."""
    from plait import __version__
    from plait.codegen.program import dump_program
    from plait.scheduler.worker import WorkerSpec
    from plait.scheduler.workers import WorkerError, Workers

    graph = _traced(RAG)
    prepared = prepare(graph, RAG, None, remap_cpu=True)   # type: ignore[arg-type]
    program = next(p for p in prepared.programs if p.pool.kind == "search")
    path = tmp_path / "search.program.json"
    path.write_text(dump_program(program))
    for version, graph_hash in ((__version__, "f" * 64), ("0.0.1", program.graph_hash)):
        spec = WorkerSpec(pool=program.pool.id, replica=0, program=str(path), driver="", store_port=0, cores=[],
                          log=str(tmp_path / f"worker-{version}.log"), plait_version=version, graph_hash=graph_hash)
        with pytest.raises(WorkerError, match="(?s)re-plan"):
            Workers([spec], tmp_path, start_timeout_s=60)
