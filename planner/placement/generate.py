"""Seeded placement problems: small random ones for the optimality tests, and a large agent graph."""

from __future__ import annotations

import random

from plait.planner.placement.problem import (
    SLA,
    Candidate,
    Edge,
    Link,
    PlacementProblem,
    PoolMember,
    PoolOption,
    Stage,
)

# 15 device types: (name, $/hour, compute speed, memory-bandwidth speed), relative to an H100 = 1.0.
# Illustrative numbers for the benchmark, not a catalog (the catalog lives in planner/catalog/).
DEVICES: list[tuple[str, float, float, float]] = [
    ("B200", 9.50, 2.2, 2.4), ("H200", 6.80, 1.0, 1.4), ("H100", 5.90, 1.0, 1.0),
    ("MI300X", 5.20, 1.3, 1.6), ("Gaudi3", 4.10, 1.1, 1.1), ("A100-80", 3.40, 0.32, 0.6),
    ("A100-40", 2.90, 0.32, 0.46), ("L40S", 1.90, 0.36, 0.26), ("A40", 1.30, 0.15, 0.21),
    ("A10G", 1.00, 0.13, 0.18), ("L4", 0.80, 0.12, 0.09), ("T4", 0.50, 0.04, 0.09),
    ("cpu-96", 3.60, 0.012, 0.09), ("cpu-32", 1.30, 0.004, 0.03), ("cpu-8", 0.34, 0.001, 0.008),
]
GPUS = [d for d in DEVICES if not d[0].startswith("cpu")]
CPUS = [d for d in DEVICES if d[0].startswith("cpu")]


def random_problem(seed: int, n_stages: int | None = None, dag: bool | None = None,
                   n_cands: tuple[int, int] = (2, 4)) -> PlacementProblem:
    """A small random chain or DAG over 3 device types, with an SLA between its floor and its cheapest."""
    rng = random.Random(seed)
    n = n_stages or rng.randint(2, 5)
    dag = rng.random() < 0.5 if dag is None else dag
    types = ["gpu-a", "gpu-b", "cpu"]
    stages = []
    for i in range(n):
        cands = []
        for _ in range(rng.randint(n_cands[0], n_cands[1] if n < 5 else 3)):
            dev = rng.choice(types)
            lat = rng.uniform(0.005, 0.2)
            batch = rng.choice([1, 4])
            cands.append(Candidate(device=dev, batch=batch, tp=rng.choice([1, 1, 2]), latency_s=lat,
                                   throughput=batch / lat * rng.uniform(0.5, 1.0),
                                   price_per_hour=rng.uniform(0.2, 5.0)))
        stages.append(Stage(name=f"s{i}", visits=rng.choice([1.0, 1.0, 2.0, 0.5]), candidates=cands))
    edges = [Edge(src=f"s{i}", dst=f"s{i + 1}", bytes=rng.choice([0.0, 1e6, 5e8])) for i in range(n - 1)]
    if dag and n >= 3:
        for _ in range(rng.randint(1, n)):
            a, b = sorted(rng.sample(range(n), 2))
            if all((e.src, e.dst) != (f"s{a}", f"s{b}") for e in edges):
                edges.append(Edge(src=f"s{a}", dst=f"s{b}", bytes=rng.choice([0.0, 2e8, 2e9])))
    qps = rng.uniform(1.0, 40.0)
    lo = sum(min(c.latency_s for c in s.candidates) * s.visits for s in stages)
    sla = SLA(p95_s=lo * rng.uniform(0.9, 3.0), p50_s=lo * rng.uniform(1.5, 3.0) if rng.random() < 0.3 else None)
    inventory = {"gpu-a": rng.randint(1, 16)} if rng.random() < 0.4 else {}
    return PlacementProblem(stages=stages, edges=edges, sla=sla, qps=qps, inventory=inventory)


def random_shared_problem(seed: int, n_stages: int | None = None) -> PlacementProblem:
    """A small random chain or DAG where candidates may take a slice (share 1/2, 1/4) of a device.

    Each type has one device price; a candidate costs price x tp x share and a slice runs 1/share times
    slower. Low rates keep replica counts small, so slices of several stages can share a device.
    """
    rng = random.Random(10_000 + seed)
    n = n_stages or rng.randint(2, 5)
    price = {"gpu-a": rng.uniform(3.0, 6.0), "gpu-b": rng.uniform(1.0, 3.0), "cpu": rng.uniform(0.3, 1.0)}
    stages = []
    for i in range(n):
        cands = []
        for _ in range(rng.randint(2, 4 if n < 5 else 3)):
            dev = rng.choice(list(price))
            share = rng.choice([1.0, 0.5, 0.25, 0.25])
            tp = rng.choice([1, 1, 2]) if share == 1 else 1
            lat = rng.uniform(0.005, 0.1) / share
            batch = rng.choice([1, 4])
            cands.append(Candidate(device=dev, batch=batch, tp=tp, share=share, latency_s=lat,
                                   throughput=batch / lat * rng.uniform(0.5, 1.0),
                                   price_per_hour=price[dev] * tp * share))
        stages.append(Stage(name=f"s{i}", visits=rng.choice([1.0, 1.0, 2.0, 0.5]), candidates=cands))
    edges = [Edge(src=f"s{i}", dst=f"s{i + 1}", bytes=rng.choice([0.0, 1e6, 5e8])) for i in range(n - 1)]
    if rng.random() < 0.5 and n >= 3:
        for _ in range(rng.randint(1, n)):
            a, b = sorted(rng.sample(range(n), 2))
            if all((e.src, e.dst) != (f"s{a}", f"s{b}") for e in edges):
                edges.append(Edge(src=f"s{a}", dst=f"s{b}", bytes=rng.choice([0.0, 2e8])))
    qps = rng.uniform(0.5, 12.0)
    lo = sum(min(c.latency_s for c in s.candidates) * s.visits for s in stages)
    sla = SLA(p95_s=lo * rng.uniform(0.8, 3.0), p50_s=lo * rng.uniform(1.5, 3.0) if rng.random() < 0.3 else None)
    inventory = {"gpu-a": rng.randint(1, 3)} if rng.random() < 0.4 else {}
    return PlacementProblem(stages=stages, edges=edges, sla=sla, qps=qps, inventory=inventory)


def random_pooled_problem(seed: int) -> PlacementProblem:
    """random_problem plus pool options (one serving one stage, or two: a unified replica, a shared pool),
    same-type links (two pools of one type move data), links narrow enough that capacity binds, and
    workers on the host CPUs of gpu-a servers (free, within the gpu-a devices rented)."""
    base = random_problem(50_000 + seed, n_stages=random.Random(seed).randint(2, 4))
    rng = random.Random(90_000 + seed)
    names = [s.name for s in base.stages]
    pools = []
    for _ in range(rng.randint(1, 3)):
        members = sorted(rng.sample(names, rng.choice([1, 2, 2])))
        dev = rng.choice(["gpu-a", "gpu-b"])
        lat = {m: rng.uniform(0.005, 0.15) for m in members}
        pools.append(PoolOption(label=f"pool {'+'.join(members)} on {dev}", device=dev, tp=rng.choice([1, 2]),
                                replicas=rng.randint(1, 3), price_per_hour=rng.uniform(0.5, 6.0),
                                members=[PoolMember(stage=m, p95_s=lat[m] * 1.5, p50_s=lat[m]) for m in members]))
    links = []
    for d in ("gpu-a", "gpu-b"):
        if rng.random() < 0.7:
            bw = rng.choice([5.0, 50.0])
            links.append(Link(a=d, b=d, bandwidth_gb_s=bw, latency_s=5e-6, capacity_gb_s=bw))
    if rng.random() < 0.5:
        bw = rng.choice([2.0, 20.0])
        links.append(Link(a="gpu-a", b="cpu", bandwidth_gb_s=bw, capacity_gb_s=bw))
    stages = []
    for st in base.stages:   # some stages may also run on the host CPUs of gpu-a servers, for free
        if rng.random() < 0.5:
            took = rng.uniform(0.01, 0.2)
            host = Candidate(device="gpu-a/host", share=rng.choice([0.25, 0.5, 1.0]), latency_s=took,
                             throughput=1.0 / took, price_per_hour=0.0, label="host worker")
            st = st.model_copy(update={"candidates": [*st.candidates, host]})
        stages.append(st)
    return base.model_copy(update={"pools": pools, "links": links, "stages": stages,
                                   "hosts": {"gpu-a/host": "gpu-a"}})


def _llm_candidates(rng: random.Random, kind: str, work: float, devices: list[tuple[str, float, float, float]],
                    ) -> list[Candidate]:
    """Candidates of an LLM stage: prefill is compute-bound, decode bandwidth-bound; batch, mode, tp vary."""
    out = []
    for name, price, flops, bw in devices:
        speed = flops if kind == "prefill" else bw
        for tp in (1, 2):
            for batch in (1, 8, 32):
                for mode in ("eager", "graph"):
                    launch = 0.004 * (0.4 if mode == "graph" else 1.0)
                    lat = work / (speed * tp ** 0.85) * (1 + 0.04 * (batch - 1)) + launch
                    out.append(Candidate(device=name, batch=batch, mode=mode, tp=tp, latency_s=lat,
                                         throughput=batch / lat, price_per_hour=price * tp,
                                         label=f"{kind} b{batch} tp{tp} {mode}"))
    return out


def _simple_candidates(rng: random.Random, work: float, devices: list[tuple[str, float, float, float]],
                       shares: tuple[float, ...] = (1.0,)) -> list[Candidate]:
    """Candidates of a tool, embed or search stage; a share < 1 (a slice) runs 1/share times slower."""
    out = []
    for name, price, flops, _ in devices:
        for batch in (1, 16):
            base = 0.002 + work / (flops ** 0.5) * (1 + 0.05 * (batch - 1))
            for share in shares:
                lat = base / share
                out.append(Candidate(device=name, batch=batch, share=share, latency_s=lat, throughput=batch / lat,
                                     price_per_hour=price * share,
                                     label=f"b{batch}" + (f" {share:g} slice" if share < 1 else "")))
    return out


def agent_graph(seed: int = 0, n_stages: int = 1000, qps: float = 5.0, slack: float = 0.35,
                slices: bool = False) -> PlacementProblem:
    """A large agent: chains of LLM calls (prefill, decode), tools, embeds and searches, with fan-out/in.

    The SLA sits `slack` of the way from the fastest possible critical path to the cheapest-per-stage one.
    With `slices`, embeds and searches may also take a half or a quarter of a GPU, and tools a quarter
    or an eighth of a CPU server (the same random draws: only candidates are added).
    """
    rng = random.Random(seed)
    stages: list[Stage] = []
    edges: list[Edge] = []

    def add(kind: str, visits: float) -> str:
        name = f"{kind}{len(stages)}"
        if kind in ("prefill", "decode"):
            work = rng.uniform(0.01, 0.06) if kind == "prefill" else rng.uniform(0.3, 2.0)
            cands = _llm_candidates(rng, kind, work, GPUS)
        elif kind == "tool":
            cands = _simple_candidates(rng, rng.uniform(0.0005, 0.003), CPUS,
                                       (1.0, 0.25, 0.125) if slices else (1.0,))
        else:  # embed, search: GPU or CPU
            gpus = rng.sample(GPUS, 4)
            work = rng.uniform(0.0002, 0.002)
            cands = (_simple_candidates(rng, work, gpus, (1.0, 0.5, 0.25) if slices else (1.0,))
                     + _simple_candidates(rng, work, CPUS))
        stages.append(Stage(name=name, description=f"{kind} #{len(stages)}", visits=visits, candidates=cands))
        return name

    def link(a: str, b: str, nbytes: float) -> None:
        edges.append(Edge(src=a, dst=b, bytes=nbytes))

    def llm_call(prev: str | None, visits: float) -> str:
        p = add("prefill", visits)
        if prev is not None:
            link(prev, p, 4e3)
        d = add("decode", visits)
        link(p, d, rng.choice([5e7, 2e8, 1e9]))  # the KV cache
        return d

    last: str | None = None
    while len(stages) < n_stages - 8:
        visits = rng.choice([1.0, 1.0, 1.0, 2.0, 3.0, 0.5])
        if rng.random() < 0.35:  # fan out to parallel branches, fan back in to an LLM call
            outs = []
            for _ in range(rng.randint(2, 4)):
                head = add(rng.choice(["tool", "search", "embed"]), visits)
                if last is not None:
                    link(last, head, 4e3)
                tail = head
                if rng.random() < 0.5:
                    tail = llm_call(head, visits)
                outs.append(tail)
            join = add("prefill", 1.0)
            for o in outs:
                link(o, join, 8e3)
            d = add("decode", 1.0)
            link(join, d, 2e8)
            last = d
        else:
            nxt = add(rng.choice(["tool", "search", "embed"]), visits)
            if last is not None:
                link(last, nxt, 4e3)
            last = llm_call(nxt, visits)
    while len(stages) < n_stages:  # top up with tool calls at the end
        nxt = add("tool", 1.0)
        if last is not None:
            link(last, nxt, 4e3)
        last = nxt
    problem = PlacementProblem(stages=stages, edges=edges, sla=SLA(p95_s=1.0), qps=qps)
    return _set_sla(problem, slack)


def _set_sla(problem: PlacementProblem, slack: float) -> PlacementProblem:
    """Put the p95 SLA `slack` of the way from the floor critical path to the cheapest-per-stage one."""
    from plait.planner.placement.graph import build_graph, longest_path
    from plait.planner.placement.options import enumerate_options
    from plait.planner.placement.problem import SolveOptions

    g = build_graph(problem)
    en = enumerate_options(problem, SolveOptions())
    fast = [float(s.d95.min()) for s in en.stages]
    cheap = [float(s.d95[s.cost.argmin()]) for s in en.stages]
    lo, _, _ = longest_path(g, fast, [0.0] * len(g.edges))
    hi, _, _ = longest_path(g, cheap, [0.0] * len(g.edges))
    return problem.model_copy(update={"sla": SLA(p95_s=lo + slack * (hi - lo))})
