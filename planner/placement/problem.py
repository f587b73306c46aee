"""The placement problem and its answer as plain pydantic models of numbers (no IR objects)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- inputs


class Candidate(_Model):
    """One way to run a stage: a (device, batch, mode, tensor-parallel degree) configuration."""

    device: str = Field(description="device type, e.g. 'H100-80GB' or 'cpu-c7i-32'")
    batch: int = Field(default=1, ge=1, description="maximum batch")
    mode: Literal["eager", "graph"] = "eager"
    tp: int = Field(default=1, ge=1, description="devices per replica (tensor-parallel degree)")
    latency_s: float = Field(gt=0, description="seconds one execution takes at this batch (service time)")
    throughput: float = Field(gt=0, description="executions per second one replica sustains")
    price_per_hour: float = Field(ge=0, description="USD per hour for one replica (all tp devices), pro rata "
                                  "to `share`: one whole device of this type costs price_per_hour / (tp * share)")
    share: float = Field(default=1.0, gt=0, le=1, description="fraction of each of its tp devices one replica "
                         "occupies: 1 = whole devices; 0.5, 0.25 = an accelerator slice (MIG partition, MPS "
                         "share); cores / server cores for a tool worker. Slices of one type pack onto whole "
                         "devices, and the fleet pays for whole devices")
    label: str = ""


class LatencyCap(_Model):
    """A per-stage limit on service latency, e.g. TTFT for a prefill or time per output token for a decode.

    A candidate passes when `latency_s / units <= max_s`: for a decode stage whose execution makes 512
    tokens, `units=512, per='token', name='time per output token'`.
    """

    max_s: float = Field(gt=0)
    units: float = Field(default=1.0, gt=0, description="how many `per` one execution is")
    per: str = "execution"
    name: str = "latency cap"


class Stage(_Model):
    """A group of operators placed together (one LLM call's prefill, its decode, a tool, a search)."""

    name: str
    description: str = Field(default="", description="in words, for errors: 'decode of llama-3.1-70b'")
    visits: float = Field(default=1.0, ge=0, description="expected executions per request (loops, branches folded)")
    concurrency: float = Field(default=1.0, ge=1, description="executions of one request that run at the same "
                                                               "time (a map's elements): latency counts "
                                                               "visits / concurrency")
    serial_p95: float | None = Field(default=None, gt=0, description="executions one request runs in turn "
                                     "when it runs long (loops at their p95 iterations); the p95 clock uses it. "
                                     "Default visits / concurrency")
    serial_p50: float | None = Field(default=None, ge=0, description="executions the median request runs in turn "
                                     "(a branch arm most requests skip: 0; the binomial median over loop passes); "
                                     "the reported p50 estimate uses it, the p50 clock the larger of it and visits / "
                                     "concurrency. Default visits / concurrency")
    work_p95: float = Field(default=1.0, ge=1, description="service time of a long execution (p95 work: tokens, "
                            "a tool's latency) over the expected one; the p95 clock stretches latency_s by it")
    work_cs2: float = Field(default=0.0, ge=0, description="squared coefficient of variation of one execution's "
                            "service time (its work spread); the multi-server wait grows with it (queueing.py)")
    loop: str | None = Field(default=None, description="the innermost loop whose passes run this stage again: one "
                             "request's executions queue in turn at its pool, and their waits are correlated "
                             "(queueing.turn_correlation); None outside loops")
    per_pass: float = Field(default=1.0, ge=0, description="executions in turn per pass of `loop` (a branch arm: "
                            "its probability)")
    candidates: list[Candidate] = Field(default_factory=list, description="configurations of this stage alone; "
                                        "may be empty when pool options (PlacementProblem.pools) cover it")
    caps: list[LatencyCap] = []
    first_token: bool = Field(default=False, description="an LLM call's prefill: its first execution ends in the "
                              "call's first token, whose time since the request's arrival SLA.ttft_s bounds")

    @property
    def what(self) -> str:
        return self.description or f"stage '{self.name}'"

    @property
    def runs50(self) -> float:
        """Executions in turn for the median request (the p50 estimate's count)."""
        return self.serial_p50 if self.serial_p50 is not None else self.visits / self.concurrency

    @property
    def clock50(self) -> float:
        """Executions in turn on the p50 clock the solver constrains: the larger of the median request's count
        and the expected one, so the clock is never below the reported estimate nor below the old expected-share
        sum (an arm of p 0.75 counts once, one of p 0.3 at 0.3)."""
        return max(self.runs50, self.visits / self.concurrency)


class PoolMember(_Model):
    """What one stage sees when a pool option serves it: its per-execution sojourn (admission wait + service)."""

    stage: str
    p95_s: float = Field(ge=0, description="per execution, a long request (p95 work) at the stage quantile")
    p50_s: float = Field(ge=0, description="per execution, median")
    service_s: float = Field(default=0.0, ge=0, description="per execution, service time without waiting")
    shared_sd_s: float = Field(default=0.0, ge=0, description="per execution, the part of the p95 - p50 spread (as a "
                               "standard deviation) that every execution in the pool at that time shares: an LLM "
                               "engine's step under the load of the moment (widened for its skew: z times it is "
                               "that part's p95 excess). A map's elements share it (no slowest of n), and a path "
                               "adds it stage by stage, not in quadrature")
    utilization: float = Field(default=0.0, ge=0, description="busy fraction of the pool (KV slots in use)")


class PoolOption(_Model):
    """One pool serving several stages at once: all of them take it or none does (a linked choice).

    A unified LLM replica serves a call's prefill and decode; a shared pool serves the same role of
    several call sites of one model. The caller computes each member's latency (continuous batching,
    admission), so the solver sees numbers only. Its cost and devices count once, however many stages
    it serves, and an edge between two of its members moves nothing (same replica).
    """

    label: str = ""
    role: str = Field(default="", description="unified, prefill, decode, ... (reported, not interpreted)")
    device: str
    tp: int = Field(default=1, ge=1, description="devices per replica")
    replicas: int = Field(ge=1)
    batch: int = Field(default=1, ge=1, description="most sequences one replica runs at once")
    price_per_hour: float = Field(ge=0, description="USD per hour of the whole pool (replicas x tp devices)")
    members: list[PoolMember] = Field(min_length=1)


class Edge(_Model):
    """Data flowing from `src` to `dst`; `bytes` move per traversal."""

    src: str
    dst: str
    bytes: float = Field(default=0.0, ge=0)
    visits: float | None = Field(default=None, ge=0, description="traversals per request; default min of the ends")


class Link(_Model):
    """The link between two pools on device types a and b: bandwidth, latency, and capacity.

    Two different pools always move data, even on one device type (different replicas): `links` entries
    with a == b name that type's link inside a node (NVLink or PCIe); without one, same type is free (the
    model before pools had replicas). With `capacity_gb_s`, the traffic all edges put on the link at the
    planned rate stays within max_utilization of it.
    """

    a: str = "*"
    b: str = "*"
    bandwidth_gb_s: float = Field(default=25.0, gt=0, description="GB/s (1e9 bytes); 25 = 200 Gb/s Ethernet/RoCE")
    latency_s: float = Field(default=10e-6, ge=0)
    capacity_gb_s: float | None = Field(default=None, gt=0, description="GB/s all edges crossing the link share, "
                                        "per direction (MILP rows); None: no limit (a fabric that grows with the "
                                        "fleet). plait plan sets it to the bandwidth: one shared pipe")


class SLA(_Model):
    """End-to-end targets for one request (loops and branches at their expected counts)."""

    p95_s: float | None = Field(default=None, gt=0)
    p50_s: float | None = Field(default=None, gt=0)
    ttft_s: float | None = Field(default=None, gt=0, description="time from the request's arrival to the first "
                                 "token of every `first_token` stage (its start on the p95 clock plus one "
                                 "execution's p95 sojourn)")


class PlacementProblem(_Model):
    """Everything the solver sees: stages, their DAG, candidates, the SLA, the rate and the fleet limits."""

    stages: list[Stage] = Field(min_length=1)
    edges: list[Edge] = []
    sla: SLA = SLA()
    qps: float = Field(default=1.0, ge=0, description="requests per second")
    inventory: dict[str, int] = Field(default_factory=dict, description="device type -> max devices")
    links: list[Link] = Field(default_factory=list, description="per pair of device types; first match wins")
    default_link: Link = Link()
    pools: list[PoolOption] = Field(default_factory=list, description="linked options serving several stages")
    hosts: dict[str, str] = Field(default_factory=dict, description=(
        "host type -> the device type whose servers carry it: candidates on a host type run on the host CPUs "
        "of devices the fleet rents anyway (share = cores / host cores per device, price 0); its units stay "
        "within the devices of the carrier type"))

    @model_validator(mode="after")
    def _names(self) -> PlacementProblem:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"stage names must be unique; repeated: {dup}")
        covered = {m.stage for p in self.pools for m in p.members}
        for st in self.stages:
            if not st.candidates and st.name not in covered:
                raise ValueError(f"stage '{st.name}' has no candidate and no pool option serves it; "
                                 "give it a candidate or a PoolOption member")
        for p in self.pools:
            unknown = [m.stage for m in p.members if m.stage not in names]
            if unknown:
                raise ValueError(f"pool option '{p.label}' serves unknown stages {unknown}; name the problem's stages")
        return self

    def link(self, a: str, b: str) -> Link | None:
        """The link between pools on device types a and b: for a != b the first of `links` naming both, else
        the default; for a == b the first entry naming exactly (a, a), else None (co-located, free)."""
        if a == b:
            return next((ln for ln in self.links if ln.a == ln.b == a), None)
        for ln in self.links:
            if ln.a == ln.b and ln.a != "*":
                continue
            if (ln.a in (a, "*") and ln.b in (b, "*")) or (ln.a in (b, "*") and ln.b in (a, "*")):
                return ln
        return self.default_link


class SolveOptions(_Model):
    """Knobs of option enumeration and of HiGHS."""

    max_utilization: float = Field(default=0.85, gt=0, lt=1, description="replicas run at most this busy")
    extra_replicas: int = Field(default=8, ge=0, description="replica counts tried above the minimum stable one")
    stage_quantile: float = Field(default=0.95, gt=0.5, lt=1, description="per-stage quantile summed for the p95")
    prune: bool = True
    time_limit_s: float = Field(default=30.0, gt=0, description="for LP, rounding and MILP together")
    mip_rel_gap: float = Field(default=1e-6, ge=0)
    lp_rounding_above: int = Field(default=2000, ge=0, description="binaries above which HiGHS starts from an "
                                   "incumbent rounded from the LP relaxation")
    min_mip_s: float = Field(default=0.25, ge=0, description="with an LP incumbent, run the MILP only when at "
                             "least this much of the time limit is left")
    check_floors: bool = True
    max_device_types: int | None = Field(default=None, ge=1, description="at most this many device types in the "
                                         "fleet (milp.limit_device_types); None: no limit")


# ---------------------------------------------------------------- outputs


class Choice(_Model):
    """The (candidate, replicas) pair chosen for one stage, with what the queueing model predicts."""

    stage: str
    candidate: int = Field(description="index into the stage's candidates (-1: a pool option)")
    pool_option: int | None = Field(default=None, description="index into PlacementProblem.pools, when one "
                                    "serves the stage (its cost is on its first member's choice)")
    device: str
    replicas: int
    devices_per_replica: int
    share: float = Field(default=1.0, description="fraction of each device one replica occupies")
    batch: int
    mode: str
    label: str
    visits: float
    service_s: float
    latency_p50_s: float = Field(description="per request: visits x p50 sojourn (queueing + service)")
    latency_p95_s: float = Field(description="per request: visits x stage-quantile sojourn")
    utilization: float
    cost_per_hour: float = Field(description="this stage's pro-rata share (replicas x price_per_hour). Slices "
                                 "are billed as whole devices, so the choices need not sum to "
                                 "Placement.cost_per_hour")


class Transfer(_Model):
    """A value crossing from one pool to another on an edge (different types, or two pools of one type)."""

    src_stage: str
    dst_stage: str
    src_device: str
    dst_device: str
    src_pool: str = Field(default="", description="plan.json: the pool id the value leaves (filled by the planner)")
    dst_pool: str = Field(default="", description="plan.json: the pool id it reaches")
    bytes_per_request: float
    bandwidth_gb_s: float = Field(description="GB/s the edge needs at the planned rate")
    seconds: float = Field(description="latency the transfer adds per request")


class Stats(_Model):
    """Size of the model and how the solve went."""

    stages: int
    candidates: int = Field(description="(device, batch, mode, tp) candidates in the input")
    options_enumerated: int = Field(description="(candidate, replicas) pairs before pruning")
    options_kept: int = Field(description="pairs after dropping dominated ones")
    variables: int = 0
    constraints: int = 0
    status: str = ""
    objective: float = 0.0
    mip_gap: float = 0.0
    build_s: float = 0.0
    solve_s: float = 0.0
    total_s: float = 0.0


class Placement(_Model):
    """The answer: one choice per stage, its cost and its predicted end-to-end latency."""

    choices: list[Choice]
    cost_per_hour: float = Field(description="the whole-device bill: sum over device types of price x devices")
    p95_s: float = Field(description="end-to-end p95 estimate: along the path, medians at p95 loop counts plus the "
                         "executions' independent spread (graph.path_estimate); at most p95_bound_s")
    p95_bound_s: float = Field(default=0.0, description="longest path of per-stage p95s and transfers: what the "
                               "solver keeps within the SLA (every stage long at once)")
    p50_s: float = Field(description="end-to-end p50 estimate: the longest path of stage medians at the median "
                         "request's counts (serial_p50: branch arms at their median, not their expected share)")
    p50_bound_s: float = Field(default=0.0, description="the p50 clock the solver keeps within the SLA's p50 target: "
                               "stage medians at the larger of the median and the expected count")
    critical_path: list[str]
    start_s: dict[str, float] = Field(description="p95 clock: when each stage starts on the critical-path model")
    ttft_s: dict[str, float] = Field(default_factory=dict, description="per `first_token` stage: an estimate of "
                                     "the p95 time from arrival to its first execution's first token "
                                     "(evaluate.ttft_estimates), at most ttft_bound_s and the p95 estimate")
    ttft_bound_s: dict[str, float] = Field(default_factory=dict, description="per `first_token` stage: the TTFT "
                                           "bound the solver keeps within the SLA, its start on the p95 clock plus "
                                           "one execution's p95 sojourn")
    transfers: list[Transfer] = []
    devices: dict[str, int] = Field(description="device type -> whole devices rented (slices packed, rounded up)")
    feasible: bool = True
    violations: list[str] = []
    stats: Stats | None = None

    def choice(self, stage: str) -> Choice:
        return next(c for c in self.choices if c.stage == stage)
