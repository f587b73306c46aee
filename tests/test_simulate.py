"""`plait.planner.simulate` on real agents, real SimPy runs and the real cost model: the serving model's
semantics (split and unified LLM pools, paged KV with preemption, chunked prefill), the control-flow walk
(loops, branch arms, maps, sub-agents) and the self-checks (Little's law on every pool)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plait.cli._agent import traced
from plait.planner.catalog import load_catalog
from plait.planner.costmodel import estimate
from plait.planner.plan import CallSite, Pool
from plait.planner.planning import plan_agent
from plait.planner.simulate import SimOptions, SimResult, SimulateError, pools_of, simulate
from plait.planner.simulate.sites import node_stages
from plait.planner.workload import OpSpec
from plait.sdk import trace
from plait.sdk.graph import AgentGraph

sys.path.insert(0, str(Path(__file__).parent))
import _ir_agents as agents  # noqa: E402

CATALOG = load_catalog()
RAG = "examples/rag.py:answer"
PROMPT, MODEL = 900, "llama-3.1-8b"


def one_pool_per_stage(graph: AgentGraph, gpu: str = "h100-sxm", replicas: int = 2, *, unified: bool = False,
                       chunk: int | None = None, kv_blocks: int | None = None, max_sequences: int = 32) -> list[Pool]:
    """Pools built by hand: one per stage of `graph` (LLM calls split, or unified), on `gpu` and a CPU server."""
    pools: list[Pool] = []
    for per in node_stages(graph, CATALOG).values():
        for kind, st in per.items():
            site = [CallSite(stage=st.name, loc=st.loc, visits=st.visits)]
            pid = st.name.replace(":", "-").replace("@", "-")
            if kind in ("prefill", "decode"):
                if unified and kind == "prefill":
                    continue
                if unified:
                    site.append(CallSite(stage="prefill" + st.name[len("decode"):], loc=st.loc, visits=st.visits))
                role = "unified" if unified else kind
                peer = None if unified else ("decode" if kind == "prefill" else "prefill") + pid[len(kind):]
                pools.append(Pool(id=pid, kind="llm", model=st.spec.model, role=role, peer=peer, device=gpu,
                                  replicas=replicas, batch=4, max_sequences=max_sequences, kv_blocks=kv_blocks,
                                  block_tokens=16, prefill_chunk_tokens=chunk, call_sites=site))
            elif kind == "tool":
                pools.append(Pool(id=pid, kind="tool", device="genoa-64", replicas=replicas, cpu_cores=1,
                                  call_sites=site))
            else:
                pools.append(Pool(id=pid, kind="search" if kind == "search" else "encoder", model=st.spec.model,
                                  device=gpu, replicas=replicas, batch=8, call_sites=site))
    return pools


def run(graph: AgentGraph, pools: list[Pool], requests: int = 300, qps: float = 4.0, **kw: object) -> SimResult:
    return simulate(graph, pools, SimOptions(requests=requests, qps=qps, **kw), catalog=CATALOG)  # type: ignore[arg-type]


def pool(result: SimResult, prefix: str) -> object:
    return next(p for p in result.pools if p.id.startswith(prefix))


@pytest.fixture(scope="module")
def rag() -> AgentGraph:
    return traced(RAG)


def test_split_pools_follow_the_cost_model_and_littles_law(rag: AgentGraph) -> None:
    r = run(rag, one_pool_per_stage(rag), requests=400)
    assert r.requests == 400 and r.e2e.p50 > 0
    for p in r.pools:                                 # every request visits each pool once
        assert p.jobs == 400, p.id
        assert p.littles_l == pytest.approx(p.littles_lambda_w, rel=1e-6, abs=1e-9), p.id
    (call,) = r.calls
    prefill = estimate(OpSpec(op="prefill", model=MODEL, tokens=PROMPT), "h100-sxm", 1, catalog=CATALOG).seconds
    step1 = estimate(OpSpec(op="decode", model=MODEL, ctx=PROMPT), "h100-sxm", 1, catalog=CATALOG).seconds
    assert call.ttft.p50 >= prefill * 0.999           # at least the prefill itself
    assert call.tpot.p50 >= step1 * 0.99              # at least a batch-1 step
    assert r.e2e.p50 >= call.ttft.p50 + 150 * call.tpot.p50 * 0.9


def test_when_kv_blocks_run_out_the_newest_sequence_is_preempted_and_recomputed(rag: AgentGraph) -> None:
    # 120 blocks of 16 tokens: two 900-token prompts are admitted (57 blocks each), and cannot both grow
    tight = run(rag, one_pool_per_stage(rag, replicas=1, kv_blocks=120), requests=200, qps=8.0)
    roomy = run(rag, one_pool_per_stage(rag, replicas=1), requests=200, qps=8.0)
    dec_tight, dec_roomy = pool(tight, "decode"), pool(roomy, "decode")
    assert dec_tight.preemptions > 0 and dec_roomy.preemptions == 0          # type: ignore[attr-defined]
    assert dec_tight.max_batch <= 2 < dec_roomy.max_batch                    # type: ignore[attr-defined]
    assert tight.e2e.p95 > roomy.e2e.p95


def test_a_unified_replica_chunks_its_prefill_and_decodes_alongside(rag: AgentGraph) -> None:
    small = run(rag, one_pool_per_stage(rag, unified=True, chunk=128), requests=200)
    whole = run(rag, one_pool_per_stage(rag, unified=True, chunk=4096), requests=200)
    assert [p.id for p in small.pools if p.kind == "llm"] == ["decode-llama-3.1-8b-rag.py-20"]
    # 900 prompt tokens in chunks of 128 take 8 steps, each also running the decode batch
    assert small.calls[0].ttft.p50 > whole.calls[0].ttft.p50
    assert pool(small, "decode").mean_batch > 1.0                           # type: ignore[attr-defined]


def test_the_same_seed_replays_the_same_run_and_edf_serves_everyone(rag: AgentGraph) -> None:
    pools = one_pool_per_stage(rag, replicas=1)
    a, b = run(rag, pools, requests=150, seed=7), run(rag, pools, requests=150, seed=7)
    assert a.e2e == b.e2e
    assert run(rag, pools, requests=150, seed=8).e2e != a.e2e
    edf = run(rag, pools, requests=150, seed=7, policy="edf", sla_p95_s=2.0)
    assert edf.requests == 150 and edf.within_sla is not None and edf.goodput_qps is not None


def test_react_walks_its_loop_and_branch_arms_at_their_figures() -> None:
    graph = traced("examples/react.py:solve")
    plan = plan_agent(graph, source="examples/react.py:solve", catalog=CATALOG, sweep_points=0).plan
    pools = pools_of(plan)
    r = run(graph, pools, requests=1500, qps=plan.qps)
    jobs = {p.id: p.jobs for p in r.pools}
    checks = jobs[next(k for k in jobs if "is-done" in k or "is_done" in k)]
    search = jobs[next(k for k in jobs if k.startswith("tool-search"))]
    assert checks / 1500 == pytest.approx(3.0, rel=0.05)        # round(uniform(2, 4)) iterations: mean 3
    assert search / checks == pytest.approx(0.55, rel=0.06)     # the search arm's probability
    calls = {c.site: c.ttft.n for c in r.calls}
    assert calls == {"prefill:llama-3.1-8b@react.py:115": checks,   # the thought, once per iteration
                     "prefill:llama-3.1-8b@react.py:125": 1500}     # the answer after the loop, once per request
    (llm,) = [p for p in plan.pools if p.kind == "llm"]           # the planner shares one pool between both calls
    assert len(llm.call_sites) == 4 and jobs[llm.id] == checks + 1500
    for p in r.pools:
        assert p.littles_l == pytest.approx(p.littles_lambda_w, rel=1e-6, abs=1e-9), p.id


def test_maps_fan_out_and_sub_agents_called_twice_get_their_own_sites() -> None:
    mapped = trace(agents.mapped)
    r = run(mapped, one_pool_per_stage(mapped), requests=200)
    llm = pool(r, "prefill-llama-3.2-1b")
    assert llm.jobs == 4 * 200                                  # type: ignore[attr-defined]  # k=4 docs
    twice = trace(agents.calls_twice)
    r2 = run(twice, one_pool_per_stage(twice), requests=100)
    assert sorted(c.site for c in r2.calls) == ["prefill:llama-3.1-8b@_ir_agents.py:56",
                                                "prefill:llama-3.1-8b@_ir_agents.py:56#2"]


def test_a_call_site_without_a_pool_is_named_with_the_closest_pools(rag: AgentGraph) -> None:
    pools = [p for p in one_pool_per_stage(rag) if not p.id.startswith("search")]
    with pytest.raises(SimulateError, match=r"no pool of the plan serves 'search:wiki@rag.py:19' \(rag.py:19\)"):
        run(rag, pools, requests=5)


def test_decode_runs_replay_what_step_by_step_decoding_gives(rag: AgentGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    import plait.planner.simulate.llm as llm

    pools = one_pool_per_stage(rag, replicas=1, kv_blocks=400)
    fast = run(rag, pools, requests=200, qps=6.0)
    monkeypatch.setattr(llm, "MAX_RUN", 1)
    slow = run(rag, pools, requests=200, qps=6.0)
    assert pool(fast, "decode").executions == pool(slow, "decode").executions    # type: ignore[attr-defined]
    assert fast.e2e.p50 == pytest.approx(slow.e2e.p50, rel=0.01)
    assert fast.e2e.p95 == pytest.approx(slow.e2e.p95, rel=0.01)
    assert pool(fast, "decode").preemptions == pool(slow, "decode").preemptions  # type: ignore[attr-defined]


@pytest.mark.parametrize(("target", "calls"), [("examples/voice.py:assistant", 3), ("examples/refine.py:code_review", 2)])
def test_speech_and_sub_agent_examples_simulate_on_their_plans(target: str, calls: int) -> None:
    graph = traced(target)
    plan = plan_agent(graph, source=target, catalog=CATALOG, sweep_points=0).plan
    pools = pools_of(plan)
    r = run(graph, pools, requests=150, qps=plan.qps)
    assert r.requests == 150 and len(r.calls) == calls          # stt, llm and tts each make an LLM call
    for p in r.pools:
        assert p.jobs > 0 and p.littles_l == pytest.approx(p.littles_lambda_w, rel=1e-6, abs=1e-9), p.id


def test_encoders_and_searches_on_host_cpus_are_costed_on_the_cores_they_hold(rag: AgentGraph) -> None:
    """A pool on the host CPUs of a GPU server (host_cpu, device = the GPU type) runs on HOST_CPU's cores scaled
    to its cpu_cores, as the planner costs it, not on the GPU it names."""
    from plait.planner.simulate.service import HOST_CPU, Coster

    def on_host(cores: int) -> list[Pool]:
        return [p.model_copy(update={"host_cpu": True, "cpu_cores": cores, "batch": 1})
                if p.kind in ("encoder", "search") else p for p in one_pool_per_stage(rag)]

    encode = next(per["encode"] for per in node_stages(rag, CATALOG).values() if "encode" in per)
    ref = CATALOG.device(HOST_CPU).cores
    assert ref is not None
    eight = on_host(8)[0]
    assert eight.kind == "encoder"
    seconds = Coster(CATALOG).seconds(eight, encode.spec, 1)
    assert seconds == pytest.approx(estimate(encode.spec, HOST_CPU, 1, "eager", 1, catalog=CATALOG).seconds
                                    * ref.value / 8)
    assert seconds > 5 * estimate(encode.spec, "h100-sxm", 1, catalog=CATALOG).seconds
    few, many = run(rag, on_host(8), requests=300), run(rag, on_host(32), requests=300)
    for kind in ("encode", "search"):     # a quarter of the cores: four times the busy time
        assert pool(few, kind).utilization == pytest.approx(4 * pool(many, kind).utilization, rel=0.05)  # type: ignore[attr-defined]
        assert pool(few, kind).device == "h100-sxm/host"                                                  # type: ignore[attr-defined]


def test_split_pools_on_one_type_move_the_kv_cache_over_its_scaleup_link(rag: AgentGraph,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefill and decode pools are different replicas even on one device type: each call's KV cache crosses
    NVLink over the type's link, as the planner charges it (planner/links.py)."""
    from plait.planner.links import link_between
    from plait.planner.planning import links_for
    from plait.planner.simulate.link import Link
    from plait.planner.workload import kv_cache_bytes

    sent: list[tuple[str, float, float]] = []
    send = Link.send

    def record(self: Link, nbytes: float) -> object:
        sent.append((self.name, self.bandwidth, nbytes))
        return send(self, nbytes)

    monkeypatch.setattr(Link, "send", record)
    run(rag, one_pool_per_stage(rag), requests=100)
    kv = [(name, bw, n) for name, bw, n in sent if n > 1e6]     # KV caches; text moves a few kB
    assert len(kv) == 100
    assert {name for name, _, _ in kv} == {"h100-sxm<->h100-sxm"}
    planned = next(ln for ln in links_for(["h100-sxm"], CATALOG, None) if ln.a == ln.b == "h100-sxm")
    assert kv[0][1] == pytest.approx(planned.bandwidth_gb_s * 1e9)
    assert link_between("h100-sxm", "h100-sxm", CATALOG)[0] == planned.bandwidth_gb_s
    per_token = kv_cache_bytes(CATALOG.model(MODEL), 1000) / 1000
    assert sum(n for _, _, n in kv) / 100 == pytest.approx(PROMPT * per_token, rel=0.15)


BRANCH_AFTER_A_SLOW_SELECTOR = '''
import plait


@plait.tool(latency_ms=400)
def route(text: str) -> str:
    return "fast"


@plait.tool(latency_ms=1)
def fast(text: str) -> str:
    return text


@plait.tool(latency_ms=1)
def slow(text: str) -> str:
    return text


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=1)
def main(q: str) -> str:
    return plait.branch(route(q), q, arms=[fast, slow], p=[0.5, 0.5])
'''


def test_a_branch_arm_waits_for_its_selector(tmp_path: Path) -> None:
    # the arms take only the request's input: without the selector's control edge they finished in 1 ms
    (tmp_path / "routed.py").write_text(BRANCH_AFTER_A_SLOW_SELECTOR)
    graph = traced(f"{tmp_path / 'routed.py'}:main")
    r = run(graph, one_pool_per_stage(graph, replicas=4), requests=200, qps=1.0)
    assert r.e2e.p50 >= 0.400 and r.e2e.p95 < 0.5
