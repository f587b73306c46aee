"""From a lowered module to a Plan: stages, their candidates from the cost model, the MILP, the baselines.

    module (op dialect) --extract_stages--> stages --build_problem--> PlacementProblem
        --placement.solve--> Placement --to_plan--> Plan (plan.json, the report)

Nothing here launches anything: the planner returns a plan (SkyPilot's optimizer keeps the same line).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr
from xdsl.ir import Operation

from plait import __version__
from plait.ir.dialects.agent import DistAttr
from plait.ir.module import context
from plait.planner.alternatives import plan_rows
from plait.planner.catalog import Catalog, load_catalog
from plait.planner.contract import plan_pools
from plait.planner.costmodel import FREE_DEVICE_USD, PriceBasis, price_assumptions, price_per_hour
from plait.planner.endpoint import REMOTE_PREFIX
from plait.planner.explain import serving_decision
from plait.planner.factors import builtin_factors
from plait.planner.grouping import StageGraph, StageWork, extract_stages
from plait.planner.inventory import Inventory
from plait.planner.links import link_between, network
from plait.planner.placement import (
    SLA,
    Candidate,
    Edge,
    InfeasiblePlacement,
    LatencyCap,
    Link,
    Placement,
    PlacementProblem,
    SolveOptions,
    Stage,
    solve,
)
from plait.planner.placement.sweep import covered, frontier, homogeneous_baselines
from plait.planner.plan import (
    Baseline,
    FrontierPoint,
    PathStep,
    Plan,
    SolverStats,
    StageChoice,
    graph_hash,
)
from plait.planner.pooling import Caps, PoolInfo, is_llm, pool_options
from plait.planner.remote import remote_options
from plait.planner.ruledout import explained, no_cpu, ruled_out
from plait.planner.runtime import HOST_CPU, runnable, server
from plait.planner.sharing import shared_options
from plait.planner.stage import candidates as cost_candidates
from plait.planner.workload import OpSpec
from plait.sdk.graph import AgentGraph
from plait.sdk.models import at_scale, kind_of

BATCHES = (1, 2, 4, 8, 16, 32, 64)
SHARING_NOTE = ("small stages may take a half or a quarter of an accelerator (MIG or MPS), running proportionally "
                "slower, and tool workers take cores of a CPU server; the solver packs these slices onto whole "
                "devices and minimizes the whole-device bill, which is the plan's $/hour")
QUEUEING_NOTE = ("p95 per stage: M/D/c queueing (Erlang C wait quantile) plus service time, times expected "
                 "visits; end-to-end p95 bounded by the sum of stage p95s along the critical path. A stage's "
                 "p95 takes a long request: p95 token counts and tool latencies (prefill time scaled by its "
                 "p95 prompt), loops at their p95 iterations; branch arms count by probability, and load and "
                 "p50 use the expected sizes")


@dataclass(frozen=True)
class Targets:
    """What the user asks for: the rate, the end-to-end SLA and the optional per-LLM-stage bounds (seconds)."""

    qps: float
    p95_s: float | None = None
    p50_s: float | None = None
    ttft_s: float | None = None
    tpot_s: float | None = None
    runnable_only: bool = False     # only device types plait's own engine runs on (not remote-only ones)


def _devices(catalog: Catalog, inventory: Inventory | None) -> list[str]:
    counts = inventory.counts() if inventory is not None else None
    if counts is None:   # any type, unlimited: not the machines one has (plait calibrate's `local`)
        return sorted(name for name, dev in catalog.devices.items() if not dev.inventory_only)
    return sorted(name for name, n in counts.items() if n > 0)


_MEMO: dict[int, tuple[Catalog, dict[tuple[object, ...], list[tuple[Candidate, tuple[str, ...]]]]]] = {}
SHARES = (0.5, 0.25)
"""Fractions of one accelerator a small stage may take (MIG partitions or MPS-style sharing)."""


@dataclass(frozen=True)
class Option:
    """A candidate for the solver, with the assumptions behind its numbers."""

    candidate: Candidate
    notes: tuple[str, ...] = ()   # unsourced figures and assumed factors behind this option's numbers


def stage_candidates(stage: StageWork, devices: list[str], basis: PriceBasis, catalog: Catalog,
                     max_degree: dict[str, int] | None = None) -> list[Option]:
    """The (device, batch, mode, degree, share) configurations of one stage, as numbers the solver reads.

    A stage whose footprint fits in a fraction of an accelerator may also take a slice of it (half or a
    quarter: a MIG partition, or MPS sharing): the slice costs that fraction of the device's price and
    runs that many times slower, so small encoders and searches need not rent a whole GPU each.
    """
    if stage.kind == "tool":
        return tool_candidates(stage, devices, basis, catalog)
    limit = max_degree or {}
    own = [Option(c, notes) for c, notes in _model_candidates(stage.spec, stage.steps, tuple(devices), basis, catalog)
           if c.tp <= limit.get(c.device, c.tp)]   # a tensor-parallel group stays inside one node
    return own + (host_candidates(stage, devices, catalog) if stage.kind in ("encode", "search") else [])


def host_candidates(stage: StageWork, devices: list[str], catalog: Catalog) -> list[Option]:
    """An encoder or a vector search on the host CPUs of a GPU type in the fleet, free like a tool worker there:
    the work costed on HOST_CPU's cores and slowed by the cores it holds (all, half or a quarter of one
    device's host cores, servers.yaml)."""
    ref = catalog.device(HOST_CPU)
    if ref.cores is None:
        return []
    base = cost_candidates(stage.spec, [HOST_CPU], batches=(1,), modes=("eager",), catalog=catalog,
                           factors=builtin_factors())
    if not base:
        return []
    out = []
    for name in devices:
        h = server(name).host_cores
        if catalog.device(name).kind != "gpu" or h < 4:
            continue
        for share in (1.0, 0.5, 0.25):
            latency = base[0].latency_s * ref.cores.value / (h * share)
            out.append(Option(Candidate(device=name + HOST, batch=1, mode="eager", tp=1, latency_s=latency,
                                        throughput=1.0 / latency, price_per_hour=0.0, share=share,
                                        label=f"{name} host CPU ({h * share:g} cores)"),
                              (f"{stage.description} on the host CPUs of {name} servers: costed on {HOST_CPU}'s "
                               f"cores, {h} host cores per device assumed (planner/catalog/servers.yaml)",)))
    return out


HOST = "/host"
"""Suffix of a host type: `l4/host` is the host CPUs of the L4 servers in the fleet."""


def tool_candidates(stage: StageWork, devices: list[str], basis: PriceBasis, catalog: Catalog) -> list[Option]:
    """A tool replica is one worker process holding k = ceil(cpu) whole cores for each call's declared latency.

    On a CPU server of C cores it blocks 1 / floor(C / k) of the server (packing counts cores: two 40-core
    workers never share a 64-core server) and pays that share. On the host CPUs of a GPU type in the
    fleet (h cores per device, planner/catalog/servers.yaml) it is free, within the devices rented.
    """
    cores = math.ceil(stage.tool_cpu - 1e-9)
    latency = max(stage.tool_latency_s, 1e-4)
    out: list[Option] = []
    for name in devices:
        dev = catalog.device(name)
        total = dev.cores.value if dev.kind == "cpu" and dev.cores is not None else server(name).host_cores
        if total < cores:
            continue
        share = 1.0 / math.floor(total / cores)
        price = price_per_hour(dev, basis) * share if dev.kind == "cpu" else 0.0
        where = name if dev.kind == "cpu" else name + HOST
        out.append(Option(Candidate(device=where, batch=1, mode="eager", tp=1, latency_s=latency,
                                    throughput=1.0 / latency, price_per_hour=price, share=share,
                                    label=f"{where} worker ({cores} cores)"),
                          tuple(price_assumptions(dev, basis)) if dev.kind == "cpu" else
                          (f"tool workers on the host CPUs of {name} servers: {server(name).host_cores} cores per "
                           "device, assumed (planner/catalog/servers.yaml)",)))
    return out


def _model_candidates(spec: OpSpec, steps: float, devices: tuple[str, ...], basis: PriceBasis,
                      catalog: Catalog) -> list[tuple[Candidate, tuple[str, ...]]]:
    """Candidates of a model stage; memoized per catalog, since agents repeat the same call shapes."""
    key = (spec, steps, devices, basis)
    memo = _MEMO.setdefault(id(catalog), (catalog, {}))[1]
    if key in memo:
        return memo[key]
    usable = catalog.default("usable_memory_fraction").value
    out: list[tuple[Candidate, tuple[str, ...]]] = []
    # Graph mode (CUDA graphs) is never slower than eager at the same price in the cost model (eager adds
    # host launch time the device cannot hide), so accelerators are costed in graph mode only; CPUs run eager.
    for c in cost_candidates(spec, list(devices), batches=BATCHES, modes=("graph",), basis=basis,
                             catalog=catalog, factors=builtin_factors(), extra_degrees=3):   # every degree that fits
        latency = c.latency_s * steps          # a decode execution generates `steps` tokens
        dev = catalog.device(c.device)
        for share in (1.0, *SHARES):
            if share < 1.0 and (dev.kind != "gpu" or c.tp > 1 or server(c.device).slice == "none"
                                or c.footprint_bytes > share * dev.mem_gb.value * 1e9 * usable):
                continue
            slow = latency / share
            label = f"{c.device} tp{c.tp} b{c.batch} {c.mode}" + (f" {share:g} slice" if share < 1 else "")
            out.append((Candidate(device=c.device, batch=c.batch, mode=c.mode, tp=c.tp, latency_s=slow,
                                  throughput=c.batch / slow, price_per_hour=c.usd_per_hour * share,
                                  label=label, share=share), c.assumptions))
    memo[key] = out
    return out


def _caps(stage: StageWork, targets: Targets) -> list[LatencyCap]:
    if kind_of(stage.spec.model or "") != "llm":
        return []
    if stage.kind == "prefill" and targets.ttft_s is not None:
        return [LatencyCap(max_s=targets.ttft_s, name="time to first token")]
    if stage.kind == "decode" and targets.tpot_s is not None:
        return [LatencyCap(max_s=targets.tpot_s, units=stage.steps, per="token", name="time per output token")]
    return []


@dataclass(frozen=True)
class Problem:
    """The solver's input, what each candidate occupies, and the assumptions behind the numbers."""

    placement: PlacementProblem
    options: dict[str, list[Option]]
    assumptions: list[str]   # about the stages themselves (index sizes, speech frames, ...)
    pools: list[PoolInfo] = field(default_factory=list)   # parallel to placement.pools


def links_for(devices: list[str], catalog: Catalog, inventory: Inventory | None) -> list[Link]:
    """The links between pools, every one also a capacity (one shared pipe per pair of types, per direction).

    The inventory's links first (first match wins); two pools of one GPU type: its scale-up link (NVLink)
    or, without one, PCIe peer to peer; across vendors: staged through host memory (PCIe out, the
    network, PCIe in, one after the other); any other pair: the network. The network is the catalog's.
    """
    out = [Link(a=ln.between[0], b=ln.between[1], bandwidth_gb_s=ln.bandwidth_gb_s,
                latency_s=ln.latency_us * 1e-6, capacity_gb_s=ln.bandwidth_gb_s)
           for ln in (inventory.links if inventory is not None else [])]
    specs = {d: catalog.device(d) for d in devices}
    pairs = [(d, d) for d in specs]
    gpus = [d for d, dev in specs.items() if dev.kind == "gpu"]
    pairs += [(a, b) for i, a in enumerate(gpus) for b in gpus[i + 1:] if specs[a].vendor != specs[b].vendor]
    for a, b in pairs:   # the other pairs take the default link: the network (planner/links.py)
        bw, lat = link_between(a, b, catalog)
        out.append(Link(a=a, b=b, bandwidth_gb_s=bw, latency_s=lat, capacity_gb_s=bw))
    return out


def build_problem(stages: StageGraph, targets: Targets, *, basis: PriceBasis, catalog: Catalog,
                  inventory: Inventory | None = None) -> Problem:
    """The placement problem for `stages`, with each candidate's device share and the assumptions used."""
    if inventory is not None:
        catalog = inventory.apply(catalog)      # nodes' scale-up links replace the catalog's figures
    devices = [d for d in _devices(catalog, inventory) if runnable(d) or not targets.runnable_only]
    max_degree = {d: n for d in devices if inventory is not None and (n := inventory.max_degree(d)) is not None}
    notes = list(stages.assumptions)
    pools = pool_options(stages, targets.qps, Caps(targets.ttft_s, targets.tpot_s), devices, basis, catalog,
                         max_degree)
    remote_why: dict[str, list[str]] = {}
    pools += remote_options(stages, targets.qps, inventory.remote if inventory is not None else [],
                            ruled_out=remote_why)
    pooled = {m.stage for p, _ in pools for m in p.members}
    problem_stages = []
    options: dict[str, list[Option]] = {}
    for st in stages.stages:
        only_pools = st.kind == "decode" and is_llm(st) and st.name in pooled   # continuous batching
        options[st.name] = [] if only_pools else stage_candidates(st, devices, basis, catalog, max_degree)
    # Host cores come with their servers: a GPU type's host CPUs are an option only where some stage may run
    # on that GPU (the MILP prices the carrier from its own candidates). A tool-only agent runs on CPU servers.
    carriers = {o.candidate.device for opts in options.values() for o in opts
                if not o.candidate.device.endswith(HOST)} | {p.device for p, _ in pools}
    for name, opts in options.items():
        options[name] = [o for o in opts if not o.candidate.device.endswith(HOST)
                         or o.candidate.device.removesuffix(HOST) in carriers]
    for st in stages.stages:
        cands = [o.candidate for o in options[st.name]]
        if not cands and st.name not in pooled:
            if st.kind == "tool":
                raise InfeasiblePlacement(no_cpu(st, inventory, catalog))
            where = "the inventory" if inventory is not None and inventory.counts() is not None else "the catalog"
            remote = "".join(f"\n  remote endpoint {why}" for why in remote_why.get(st.spec.model or "", []))
            raise explained(InfeasiblePlacement(
                f"{st.description} ({st.loc}) fits on no device in {where}.{remote}\n"
                "To fix: add a device with more memory (or more of them for tensor parallelism) to the "
                "inventory, or use a smaller model."),
                ruled_out([st], inventory, {st.name: _caps(st, targets)}, basis, catalog))
        problem_stages.append(Stage(name=st.name, description=st.description, visits=st.visits,
                                    concurrency=max(st.concurrency, 1.0), serial_p95=st.serial_p95,
                                    serial_p50=st.serial_p50,
                                    work_p95=st.work_p95, work_cs2=st.work_cs2, loop=st.loop,
                                    per_pass=st.per_pass, candidates=cands, caps=_caps(st, targets),
                                    first_token=st.kind == "prefill" and is_llm(st)))
    net, net_lat = network(catalog)
    default = Link(bandwidth_gb_s=net, latency_s=net_lat, capacity_gb_s=net)
    pools += shared_options(stages, {st.name: st.candidates for st in problem_stages}, targets.qps)
    hosts = {c.device: c.device.removesuffix(HOST) for st in problem_stages for c in st.candidates
             if c.device.endswith(HOST)}
    host_links = [default.model_copy(update={"a": h, "b": h}) for h in sorted(hosts)]   # workers on two servers
    problem = PlacementProblem(
        stages=problem_stages, edges=[Edge(src=e.src, dst=e.dst, bytes=e.bytes) for e in stages.edges],
        sla=SLA(p95_s=targets.p95_s, p50_s=targets.p50_s, ttft_s=targets.ttft_s), qps=targets.qps,
        inventory=(inventory.counts() or {}) if inventory else {},
        links=[*links_for(devices, catalog, inventory), *host_links], default_link=default,
        pools=[p for p, _ in pools], hosts=hosts)
    return Problem(problem, options, notes, [info for _, info in pools])


def _assumptions(placement: Placement, problem: Problem, catalog: Catalog) -> list[str]:
    """What the chosen plan's numbers rest on: the models, the fitted factors, unsourced figures it used."""
    factors = builtin_factors()
    kinds = {catalog.device(c.device.removesuffix(HOST)).kind for c in placement.choices
             if not c.device.startswith(REMOTE_PREFIX)}   # an endpoint's figures are measured, not fitted
    fitted = [f"{kind} efficiency factors (planner/catalog/factors.yaml, fitted on "
              f"{(f := factors.for_kind(kind)).fitted_on or 'nothing: assumed'}): compute "
              f"{f.compute_eff:.2f} of peak, bandwidth {f.bw_eff:.2f} of peak, launch {f.launch_eager_s * 1e6:.1f} us "
              f"eager / {f.launch_graph_s * 1e6:.2f} us graph, fixed {f.fixed_s * 1e6:.1f} us per op"
              for kind in sorted(kinds)]
    used = [n for c in placement.choices
            for n in (problem.pools[c.pool_option].notes if c.pool_option is not None
                      else problem.options[c.stage][c.candidate].notes)]
    return list(dict.fromkeys([QUEUEING_NOTE, SHARING_NOTE, *fitted, *problem.assumptions, *used]))


def to_plan(placement: Placement, problem: Problem, stages: StageGraph, *, agent: str, source: str,
            catalog: Catalog, basis: PriceBasis, targets: Targets, baselines: list[Baseline],
            points: list[FrontierPoint], options: SolveOptions | None = None) -> Plan:
    by_name = {s.name: s for s in stages.stages}
    choices = [StageChoice(stage=c.stage, description=by_name[c.stage].description,
                           ops=[f"{op.name}" + (f"@{by_name[c.stage].loc}" if by_name[c.stage].loc else "")
                                for op in by_name[c.stage].ops],
                           model=op_model(by_name[c.stage].ops[0]), figures=op_figures(by_name[c.stage].ops[0]),
                           device=c.device, replicas=c.replicas, devices_per_replica=c.devices_per_replica,
                           share=c.share, batch=c.batch, mode=c.mode, visits=c.visits, service_s=c.service_s,
                           latency_p50_s=c.latency_p50_s, latency_p95_s=c.latency_p95_s,
                           ttft_s=placement.ttft_s.get(c.stage),
                           utilization=c.utilization, cost_per_hour=c.cost_per_hour)
               for c in placement.choices]
    xfer = {(t.src_stage, t.dst_stage): t.seconds for t in placement.transfers}
    hops = zip([None, *placement.critical_path], placement.critical_path, strict=False)
    path = [PathStep(stage=name, device=placement.choice(name).device, p50_s=placement.choice(name).latency_p50_s,
                     p95_s=placement.choice(name).latency_p95_s, transfer_s=xfer.get((prev or "", name), 0.0))
            for prev, name in hops]
    transfers = list(placement.transfers)
    stats = placement.stats
    assert stats is not None
    cost = placement.cost_per_hour          # whole devices: slices and tool workers packed onto them
    free = sum(n for d, n in placement.devices.items()   # devices one has: their tie-break price is no cost
               if (dev := catalog.devices.get(d)) is not None and price_per_hour(dev, basis) == FREE_DEVICE_USD)
    cost = max(0.0, cost - free * FREE_DEVICE_USD)
    per_million = cost / (targets.qps * 3600.0) * 1e6 if targets.qps > 0 else 0.0
    pools, of_stage = plan_pools(placement, problem.placement.pools, problem.pools, stages, catalog)
    transfers = [t.model_copy(update={"src_pool": of_stage[t.src_stage], "dst_pool": of_stage[t.dst_stage]})
                 for t in transfers]
    rows, note = plan_rows(problem.placement, placement, pools, of_stage, catalog, options)
    llm = [st for st in stages.stages if kind_of(st.spec.model or "") == "llm"]
    # TTFT from the request's arrival (upstream stages, queueing, prefill): the bound the MILP keeps
    ttft = max((t for t in placement.ttft_s.values() if t is not None), default=None)
    tpot = max((placement.choice(st.name).service_s / st.steps for st in llm if st.kind == "decode"), default=None)
    return Plan(plait_version=__version__, pools=pools, agent=agent, source=source, qps=targets.qps,
                sla_p50_s=targets.p50_s, sla_p95_s=targets.p95_s, sla_ttft_s=targets.ttft_s, sla_tpot_s=targets.tpot_s,
                ttft_p95_s=ttft, tpot_s=tpot,
                price_basis=basis, stages=choices, fleet=dict(sorted(placement.devices.items())),
                cost_per_hour=cost, cost_per_million_requests=per_million,
                p50_s=placement.p50_s, p50_bound_s=placement.p50_bound_s,
                p95_s=placement.p95_s, p95_bound_s=placement.p95_bound_s,
                critical_path=path, transfers=transfers,
                baselines=baselines, frontier=points,
                candidates=rows, candidates_note=note,
                assumptions=_assumptions(placement, problem, catalog),
                solver=SolverStats(status=stats.status, objective=stats.objective, mip_gap=stats.mip_gap,
                                   seconds=stats.total_s, variables=stats.variables, constraints=stats.constraints))


def sla_sweep(target: float, points: int = 9) -> list[float]:
    """SLA targets from a quarter of the chosen one to four times it, evenly spaced in log scale."""
    return [target * 4 ** ((i - (points - 1) / 2) / ((points - 1) / 2)) for i in range(points)]


def _baselines(problem: PlacementProblem, stages: StageGraph, options: SolveOptions | None) -> list[Baseline]:
    """The cheapest fleet of each device type that can run a model stage; tools keep their CPU workers, and
    model stages the type cannot run keep their own devices (the note says which)."""
    kind = {s.name: s.kind for s in stages.stages}
    out = []
    for b in homogeneous_baselines(problem, options):
        on_type = covered(problem, b.device)
        covered_ = [st.name for st in problem.stages if st.name in on_type]
        if all(kind[name] == "tool" for name in covered_):
            continue   # a type that runs only tools would just be the mixed plan again
        kept = [st.name for st in problem.stages if st.name not in on_type and kind[st.name] != "tool"]
        note = f"cannot run {', '.join(kept)}: kept on their own devices" if kept else ""
        out.append(Baseline(device=b.device, feasible=b.feasible, cost_per_hour=b.cost_per_hour, p95_s=b.p95_s,
                            reason=b.reason if not b.feasible else note))
    return out


def plan_module(module: ModuleOp, *, agent: str, source: str, targets: Targets, basis: PriceBasis,
                catalog: Catalog, inventory: Inventory | None = None, sweep_points: int = 9,
                options: SolveOptions | None = None,
                progress: Callable[[int, int, float], None] | None = None) -> tuple[Plan, StageGraph, Placement]:
    """Plan a lowered module: the cheapest placement that meets `targets`, with baselines and frontier."""
    stages = extract_stages(module, catalog, agent)
    problem = build_problem(stages, targets, basis=basis, catalog=catalog, inventory=inventory)
    try:
        placement = solve(problem.placement, options)
    except InfeasiblePlacement as err:   # with an inventory: why each owned type could not take a stage
        caps = {st.name: _caps(st, targets) for st in stages.stages}
        raise explained(err, ruled_out(stages.stages, inventory, caps, basis, catalog)) from None
    baselines = _baselines(problem.placement, stages, options)
    points: list[FrontierPoint] = []
    if targets.p95_s is not None and sweep_points > 0:
        points = [FrontierPoint(sla_p95_s=p.sla_p95_s, cost_per_hour=p.cost_per_hour, p95_s=p.p95_s,
                                pools=plan_pools(p.placement, problem.placement.pools, problem.pools, stages, catalog)[0]
                                if p.placement is not None else [])
                  for p in frontier(problem.placement, sla_sweep(targets.p95_s, sweep_points), options, progress)]
    plan = to_plan(placement, problem, stages, agent=agent, source=source, catalog=catalog, basis=basis,
                   targets=targets, baselines=baselines, points=points, options=options)
    plan = plan.model_copy(update={"decisions": serving_decision(problem.placement, placement, options)})
    return plan, stages, placement


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    placed: ModuleOp
    placed_text: str


def _callees(graph: AgentGraph) -> list[AgentGraph]:
    """Every sub-agent graph called (at any depth) from `graph`."""
    out: list[AgentGraph] = []
    for node in graph.steps:
        for key, region in node.regions.items():
            if node.kind == "call" and key == "callee":
                out.append(region)
            out += _callees(region)
    return out


def targets_of(graph: AgentGraph) -> Targets:
    """The rate and SLA the traced graph carries (the decorator's, or the command line's overrides)."""
    sla = graph.sla

    def seconds(ms: float | None) -> float | None:
        return None if ms is None else ms / 1e3

    return Targets(qps=graph.qps or 1.0, p95_s=seconds(sla.p95_ms) if sla else None,
                   p50_s=seconds(sla.p50_ms) if sla else None, ttft_s=seconds(sla.ttft_ms) if sla else None,
                   tpot_s=seconds(sla.tpot_ms) if sla else None)


def plan_agent(graph: AgentGraph, *, source: str, inventory: Inventory | None = None,
               price_basis: PriceBasis = "cloud", sweep_points: int = 9, catalog: Catalog | None = None,
               options: SolveOptions | None = None, runnable_only: bool = False,
               progress: Callable[[int, int, float], None] | None = None,
               targets: Targets | None = None, scale: str | None = None) -> PlanResult:
    """Compile `graph` to the ops stage, plan it, and place the module (every op in a pool, xfer at borders).

    `targets` replaces the graph's rate and SLA (a re-plan with a tightened internal target). `scale` plans the
    dense LLMs at that catalog scale (`at_scale`); the plan records it, and its graph hash is the scaled graph's."""
    from plait.ir.module import print_module, verify_module
    from plait.ir.pipeline import compile_graph
    from plait.ir.place import PlacePass

    if scale is not None:
        graph = at_scale(graph, scale)
    cat = catalog or load_catalog()
    module = compile_graph(graph, "ops")
    targets = replace(targets or targets_of(graph), runnable_only=runnable_only)
    plan, stages, placement = plan_module(module, agent=graph.name, source=source, targets=targets,
                                          basis=price_basis, catalog=cat, inventory=inventory,
                                          sweep_points=sweep_points, options=options, progress=progress)
    ignored = [f"sub-agent '{g.name}' declares its own SLA ({g.sla}); plait plans the top-level agent's SLA only"
               for g in _callees(graph) if g.sla is not None]
    if ignored:
        plan = plan.model_copy(update={"assumptions": [*plan.assumptions, *dict.fromkeys(ignored)]})
    plan = plan.model_copy(update={"graph_hash": graph_hash(graph), "scale": scale})
    edge_bytes = tuple((e.src, e.dst, int(e.bytes)) for e in stages.edges)
    of_stage = {site.stage: pool.id for pool in plan.pools for site in pool.call_sites}
    PlacePass(pools=tuple(sorted(of_stage.items())), edge_bytes=edge_bytes).apply(context(), module)
    verify_module(module)
    return PlanResult(plan=plan, placed=module, placed_text=print_module(module, generic=True))


def op_model(op: Operation) -> str | None:
    """The `model` attribute of an op, if it has one."""
    model = op.attributes.get("model")
    return model.data if isinstance(model, StringAttr) else None


def op_figures(op: Operation) -> dict[str, float]:
    """An op's planning figures by attribute name: a #agent.dist's mean, an integer's value."""
    figures: dict[str, float] = {}
    for name, attr in op.attributes.items():
        if isinstance(attr, DistAttr):
            figures[name] = attr.values[0]
        elif isinstance(attr, IntegerAttr):
            figures[name] = float(attr.value.data)
    return figures
