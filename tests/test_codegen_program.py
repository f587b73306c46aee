"""Device programs (codegen 1): one per pool, ops bound to kernels, buffers with dtype and shape, transfers that
pair up, exact JSON round trips, `plait ir --stage program` for every example, and the no-kernel error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app
from plait.codegen.build import build_programs
from plait.codegen.errors import CodegenError, NoKernelError
from plait.codegen.program import Program, dump_program, load_program
from plait.planner.catalog import load_catalog
from plait.planner.planning import plan_agent
from plait.sdk import trace
from plait.sdk.loader import load_agent

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def rag() -> list[Program]:
    target = str(ROOT / "examples/rag.py:answer")
    result = plan_agent(trace(load_agent(target)), source=target, sweep_points=0)
    return build_programs(result.placed, result.plan, load_catalog())


def test_one_program_per_pool_with_every_op_bound_to_its_kernel(rag: list[Program]) -> None:
    assert [p.pool.id for p in rag] == ["encoder-minilm-l6-0", "search-wiki-0", "llm-llama-3.1-8b-0"]
    llm = rag[2]
    kernels = [(s.op, s.kernel) for s in llm.steps]
    assert kernels == [("xfer.recv", "transfer"), ("agent.box", "glue"), ("agent.box", "glue"),
                       ("op.format", "format"), ("op.tokenize", "tokenizer"), ("op.prefill", "llm-engine"),
                       ("op.decode", "llm-engine"), ("op.detokenize", "tokenizer")]
    decode = next(s for s in llm.steps if s.op == "op.decode")
    assert (decode.model, decode.role, decode.reads, decode.writes) == ("llama-3.1-8b", "unified", ["%llm_kv"],
                                                                       ["%llm_gen"])
    assert decode.attrs["max_tokens"] == 256 and decode.loc == "rag.py:20"
    assert llm.from_driver == ["%question"] and llm.to_driver == ["%llm"]
    assert llm.graph_hash and len(llm.graph_hash) == 64 and llm.plait_version


def test_buffers_carry_dtype_and_planned_shape(rag: list[Program]) -> None:
    buffers = {b.name: b for b in rag[2].buffers}
    kv = buffers["%llm_kv"].tensor
    assert kv is not None and kv.dtype == "bfloat16" and kv.shape == [32, 2, 8, 900, 128]   # llama-3.1-8b, p95 prompt
    assert kv.dims == ["layers", "kv", "kv_heads", "tokens", "head_dim"] and kv.dynamic == ["tokens"]
    tokens = buffers["%llm_tokens"].tensor
    assert tokens is not None and (tokens.dtype, tokens.shape) == ("int64", [900])
    generated = buffers["%llm_gen"].tensor
    assert generated is not None and generated.shape == [256]                    # the max_tokens cap
    assert buffers["%question"].origin == "driver" and buffers["%question"].tensor is None


def test_transfers_pair_up_with_dtype_and_shape_known_before_the_move(rag: list[Program]) -> None:
    ends = {(s.transfer.direction, s.transfer.channel): (p.pool.id, s.transfer)
            for p in rag for s in p.steps if s.transfer is not None}
    sends = [k for k in ends if k[0] == "send"]
    assert len(sends) == 2 and len(ends) == 4
    for _, channel in sends:
        src, send = ends[("send", channel)]
        dst, recv = ends[("recv", channel)]
        assert (send.peer, recv.peer) == (dst, src) and send.tensor == recv.tensor and send.bytes == recv.bytes
    _, embedding = ends[("send", "%0")]
    assert (embedding.tensor.dtype, embedding.tensor.shape, embedding.peer) == ("float32", [384], "search-wiki-0")
    _, docs = ends[("recv", "%2")]
    assert docs.tensor.dtype == "uint8" and docs.tensor.shape[0] >= docs.bytes   # room for what was planned


def test_programs_round_trip_exactly(rag: list[Program], tmp_path: Path) -> None:
    for program in rag:
        text = dump_program(program)
        again = load_program(text)
        assert again == program and dump_program(again) == text
    with pytest.raises(CodegenError, match=r"^bad.json is not a plait program: steps: Field required"):
        load_program(dump_program(rag[0]).replace('"steps"', '"stepz"'), "bad.json")
    with pytest.raises(CodegenError, match=r"has format 'plait.program/0', but this plait reads 'plait.program/1'"):
        load_program(dump_program(rag[0]).replace("plait.program/1", "plait.program/0"))


@pytest.mark.parametrize("example", ["rag.py:answer", "react.py:solve", "refine.py:code_review"])
def test_plait_ir_prints_the_programs_of_each_example(example: str) -> None:
    done = runner.invoke(app, ["ir", str(ROOT / "examples" / example), "--stage", "program", "--no-verify"])
    assert done.exit_code == 0, done.output
    sections = [line for line in done.output.splitlines() if line.startswith("program ")]
    assert sections and all(" | graph " in s and ", TP " in s for s in sections)
    assert "op.decode       llm-engine(" in done.output


def test_the_text_names_kernels_buffers_and_transfers(rag: list[Program]) -> None:
    from plait.codegen.render import render_programs

    text = render_programs(rag)
    assert text.startswith(f"// device programs of {ROOT}/examples/rag.py:answer (plait ")
    lines = text.splitlines()
    assert ("    5  op.prefill      llm-engine(llama-3.1-8b, unified)  %llm_kv: bfloat16[layers 32, kv 2, kv_heads 8, "
            "tokens 900*, head_dim 128] = (%llm_tokens)  rag.py:20") in lines
    assert any(line.startswith("    0  xfer.recv       transfer                           %3 <- search-wiki-0 "
                               "[channel %2, 3600 B]: uint8[bytes 3600*]") for line in lines)
    assert render_programs(rag) == text                                          # deterministic


def test_voice_binds_every_op_to_a_kernel() -> None:
    done = runner.invoke(app, ["ir", str(ROOT / "examples/voice.py:assistant"), "--stage", "program", "--no-verify"])
    assert done.exit_code == 0, done.output
    assert "no kernel" not in done.output
    for kernel in ("speech-encoder(whisper-small)", "speech-decoder(whisper-small)", "speech-decoder(parler-tts-mini)",
                   "vocoder(parler-tts-mini)", "python", "tokenizer(llama-3.1-8b)"):
        assert kernel in done.output, kernel


def test_a_mixture_of_experts_model_has_no_kernel(tmp_path: Path) -> None:
    agent = tmp_path / "moe.py"
    agent.write_text(textwrap.dedent("""
        import plait

        @plait.agent(qps=2)
        def ask(q: str) -> str:
            return plait.llm("mixtral-8x7b", prompt=q, max_tokens=64)
    """))
    with pytest.raises(NoKernelError, match=r"^no kernel for op.prefill of model 'mixtral-8x7b' yet \(codegen 2\)"):
        result = plan_agent(trace(load_agent(f"{agent}:ask")), source=f"{agent}:ask", sweep_points=0)
        build_programs(result.placed, result.plan, load_catalog())


def test_out_writes_one_program_file_per_pool(tmp_path: Path) -> None:
    target = str(ROOT / "examples/rag.py:answer")
    done = runner.invoke(app, ["ir", target, "--stage", "program", "--no-verify", "--out", str(tmp_path / "p")])
    assert done.exit_code == 0, done.output
    files = sorted((tmp_path / "p").glob("*.program.json"))
    assert [f.name for f in files] == ["encoder-minilm-l6-0.program.json", "llm-llama-3.1-8b-0.program.json",
                                       "search-wiki-0.program.json"]
    program = load_program(files[1].read_text())
    assert program.pool.id == "llm-llama-3.1-8b-0" and dump_program(program) == files[1].read_text()
    wrong = runner.invoke(app, ["ir", target, "--stage", "ops", "--out", str(tmp_path / "q")])
    assert wrong.exit_code == 2 and wrong.output.startswith("error: --out writes device programs, but --stage is 'ops'")


def test_split_pools_move_the_kv_cache_with_its_shape_known() -> None:
    """Prefill and decode in pools of their own (the split role): the KV cache is the transfer between them."""
    from plait.codegen.build import Origin, programs_for
    from plait.ir.module import context, verify_module
    from plait.ir.pipeline import compile_graph
    from plait.ir.place import PlacePass
    from plait.planner.grouping import extract_stages
    from plait.planner.plan import CallSite, Pool

    graph = trace(load_agent(str(ROOT / "examples/rag.py:answer")))
    module = compile_graph(graph, "ops")
    stages = {st.kind: st.name for st in extract_stages(module, load_catalog()).stages}   # tags ops with `stage`
    pools = [Pool(id=kind, kind=kind if kind == "search" else "encoder" if kind == "encode" else "llm",
                  model={"encode": "minilm-l6", "search": "wiki"}.get(kind, "llama-3.1-8b"),
                  role=kind if kind in ("prefill", "decode") else None, device="h100-sxm", replicas=1,
                  call_sites=[CallSite(stage=name, loc="rag.py:20", visits=1)]) for kind, name in stages.items()]
    PlacePass(pools=tuple(sorted((name, kind) for kind, name in stages.items())),
              edge_bytes=((stages["prefill"], stages["decode"], 1_000_000),)).apply(context(), module)
    verify_module(module)
    programs = {p.pool.id: p for p in programs_for(module, pools, load_catalog(), Origin("answer", "rag", "0" * 64))}
    prefill, decode = programs["prefill"], programs["decode"]
    send = next(s for s in prefill.steps if s.transfer is not None and s.transfer.peer == "decode")
    recv = next(s for s in decode.steps if s.transfer is not None and s.transfer.peer == "prefill")
    assert recv.transfer.channel == send.transfer.channel and send.reads == ["%llm_kv"]  # type: ignore[union-attr]
    kv = recv.transfer.tensor  # type: ignore[union-attr]
    assert (kv.dtype, kv.shape, recv.transfer.bytes) == ("bfloat16", [32, 2, 8, 900, 128], 1_000_000)  # type: ignore[union-attr]
    assert [s.role for s in prefill.steps if s.kernel == "llm-engine"] == ["prefill"]
    assert [s.role for s in decode.steps if s.kernel == "llm-engine"] == ["decode"]
