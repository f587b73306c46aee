"""A run on this machine: the plan and programs to run (made here, or read and checked), the workers, the
requests (at a rate or a concurrency), and the latency summary.

    with LocalRun.start(graph, programs, run_dir, ...) as run:
        records = run.many(inputs, requests=20, concurrency=4)
"""

from __future__ import annotations

import logging
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from plait import __version__
from plait.codegen.program import Program
from plait.planner.catalog import LOCAL_DEVICE
from plait.scheduler.driver import Driver, Figures, Record
from plait.scheduler.remote_calls import probe
from plait.scheduler.worker import WorkerSpec
from plait.scheduler.workers import MAX_RESTARTS, WORK_WEIGHT, Attach, Workers, core_shares
from plait.sdk.errors import PlaitError
from plait.sdk.graph import AgentGraph

LOCAL_RUNTIMES = ("cpu",)


class StalePlanError(PlaitError):
    """A plan or program made by another plait version or from another graph."""


@dataclass(frozen=True)
class Prepared:
    programs: list[Program]
    notes: list[str]
    driver_prompts: dict[str, str]   # file:line -> template of the prompts placed in the driver (no operands)
    graph: AgentGraph                # the graph the plan is of (its LLMs at the plan's scale)
    plan: Any = None                 # the Plan
    local: bool = False              # planned now for this machine (the `local` device)


def check_plan(plan: Any, graph: AgentGraph, where: str) -> None:
    """Refuse a plan made by another plait or from another version of the agent: it must be re-planned."""
    from plait.planner.plan import graph_hash

    if plan.plait_version != __version__:
        raise StalePlanError(f"{where} was made by plait {plan.plait_version or '(unknown)'}, this is plait "
                             f"{__version__}\n  To fix: re-plan: `plait plan {plan.source} --out DIR`.")
    if plan.graph_hash != graph_hash(graph):
        raise StalePlanError(f"{where} was made from another version of {plan.source} (graph "
                             f"{plan.graph_hash[:12]}, now {graph_hash(graph)[:12]})\n"
                             f"  To fix: re-plan: `plait plan {plan.source} --out DIR`.")


def prepare(graph: AgentGraph, target: str, plan_dir: Path | None, remap_cpu: bool, qps: float | None = None,
            scale: str = "tiny", max_replicas: int = 1, endpoints: dict[str, str] | None = None,
            attached: bool = False, endpoint_wait_s: float = 0.0) -> Prepared:
    """The device programs to run: from `plan_dir` (plan.json and placed.mlir of `plait plan --out`), checked
    against the traced graph (at the plan's scale), or from a plan made now for this machine (`local_plan`).
    Pools planned for devices this machine lacks run as CPU workers only with `remap_cpu`; remote pools send their
    calls to their endpoint (at the URL `endpoints` gives for its model, else the planned one). `attached`: the
    pools run elsewhere (pods attach to this driver), so no device of the plan need be here; a remote pool's
    endpoint is then waited for up to `endpoint_wait_s` (a vLLM pool's pods load their model meanwhile)."""
    from plait.codegen.build import build_programs
    from plait.planner.catalog import load_catalog
    from plait.planner.plan import Plan
    from plait.sdk.models import at_scale

    catalog = load_catalog()
    notes: list[str] = []
    local = plan_dir is None
    if plan_dir is None:
        try:
            result, notes = local_plan(graph, target, catalog, qps, scale, max_replicas)
            graph = at_scale(graph, scale)
        except NoLocalPlan as err:   # e.g. speech models too slow here: the fleet's plan, remapped
            from plait.planner.planning import plan_agent

            result, local, remap_cpu = plan_agent(graph, source=target, catalog=catalog, sweep_points=0), False, True
            notes = [f"no plan fits this machine ({err}): planned for a fleet instead and run here on CPU "
                     "workers; the predictions are that fleet's, not this machine's"]
        plan, placed = result.plan, result.placed
        where = "the plan made now"
    else:
        from plait.ir.module import parse_module

        files = [plan_dir / "plan.json", plan_dir / "placed.mlir"]
        for f in files:
            if not f.is_file():
                raise PlaitError(f"--plan {plan_dir}: no {f.name}\n  To fix: write one with "
                                 f"`plait plan {target} --out {plan_dir}`.")
        plan = Plan.model_validate_json(files[0].read_text())
        if plan.scale is not None:
            graph = at_scale(graph, plan.scale)
        check_plan(plan, graph, str(files[0]))
        placed = parse_module(files[1].read_text())
        where = str(files[0])
    plan = with_endpoints(plan, endpoints or {}, where, endpoint_wait_s)   # first: a pool an endpoint serves is not absent
    absent = sorted({f"{p.id} ({p.device}, {p.runtime})" for p in plan.pools
                     if p.runtime not in LOCAL_RUNTIMES and p.endpoint is None})
    if attached:
        absent = []
    if absent and not remap_cpu:
        raise PlaitError(f"{where} places pools on devices this machine does not have: {', '.join(absent)}\n"
                         "  To fix: pass --remap-cpu to run every pool as CPU worker processes here (LLMs at a "
                         f"scaled-down size), or plan for this machine: `plait plan {target} --device local`.")
    programs = build_programs(placed, plan, catalog)
    for pool in plan.pools:   # before any worker starts: reachable, the key taken, the model served
        if pool.endpoint is not None:
            _probe_until(pool.endpoint, f"remote pool {pool.id} of {where}", endpoint_wait_s)
            notes.append(f"remote pool {pool.id}: its LLM calls go whole to {pool.endpoint.base_url} (model "
                         f"{pool.endpoint.served_model}) through the openai client")
    if absent:
        devices = sorted({p.device for p in plan.pools if p.runtime not in LOCAL_RUNTIMES and p.endpoint is None})
        notes.append(f"remapped {len(absent)} pool(s) planned for {', '.join(devices)} "
                     "onto CPU worker processes on this machine")
    return Prepared(programs, notes, driver_prompts(placed), graph, plan, local)


def _probe_until(endpoint: Any, where: str, wait_s: float) -> None:
    """probe(), again every few seconds for up to `wait_s` while it fails (an endpoint still starting)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            probe(endpoint, where)
            return
        except PlaitError as err:
            if time.monotonic() >= deadline:
                raise
            logging.getLogger("plait.driver").warning("%s not ready yet (%s); trying again", endpoint.base_url,
                                                      str(err).splitlines()[0])
            time.sleep(min(3.0, max(0.0, deadline - time.monotonic())))


def with_endpoints(plan: Any, endpoints: dict[str, str], where: str, wait_s: float = 0.0) -> Any:
    """`plan` with each remote pool of a model `endpoints` names reached at that URL (plait.yaml's `endpoints`: the
    same server behind another address). A unified LLM pool of such a model that plait's engine would run, or no
    engine here can (runtime remote, e.g. Gaudi), is served by that endpoint instead: a cluster's vLLM pool, which
    the operator names so. It is waited for (up to `wait_s`) and measured as `plait cost --remote` does, so the
    pool's endpoint carries measured figures. PlaitError for a model no such pool of the plan serves."""
    if not endpoints:
        return plan
    remote = {p.endpoint.model: p for p in plan.pools if p.endpoint is not None}
    served = {p.model for p in plan.pools if p.endpoint is None and p.kind == "llm" and p.role in (None, "unified")}
    for model in endpoints:
        if model not in remote and model not in served:
            raise PlaitError(f"plait.yaml's endpoints names model {model!r}, but no remote pool of {where} serves it "
                             f"(remote pools: {', '.join(f'{p.id} ({m})' for m, p in remote.items()) or 'none'}; "
                             f"unified LLM pools: {', '.join(sorted(served)) or 'none'})\n"
                             "  To fix: declare the endpoint in the inventory's `remote:` list and re-plan "
                             "(`plait plan FILE:AGENT --inventory FILE --out DIR`), or remove the key.")
    pools = []
    for p in plan.pools:
        if p.endpoint is not None and p.endpoint.model in endpoints:
            p = p.model_copy(update={"endpoint": p.endpoint.model_copy(update={"base_url": endpoints[
                p.endpoint.model].rstrip("/")})})
        elif p.endpoint is None and p.model in endpoints and p.model in served:
            p = p.model_copy(update={"runtime": "remote", "endpoint": _measured(p, endpoints[p.model], where, wait_s)})
        pools.append(p)
    return plan.model_copy(update={"pools": pools})


def _measured(pool: Any, url: str, where: str, wait_s: float) -> Any:
    """The endpoint at `url` that serves `pool`'s model under its catalog name (vLLM's --served-model-name), with
    its figures measured now (a few bounded requests). Its key is the router's own (PLAIT_API_KEY, the
    deployment's Secret, which the operator gives the vLLM pods as VLLM_API_KEY), where one is set."""
    import os
    import re

    from plait.planner.endpoint import RemoteEndpoint
    from plait.scheduler.remote_measure import measure

    endpoint = RemoteEndpoint(name=re.sub(r"[^a-z0-9-]+", "-", pool.id.lower()).strip("-") or "pool",
                              model=pool.model, base_url=url, served_model=pool.model, price_per_hour=0.0,
                              prefill_tokens_per_s=1.0, decode_tokens_per_s={1: 1.0},   # replaced by the measured
                              max_sequences=pool.max_sequences or 1, overhead_s=0.0,
                              api_key_env="PLAIT_API_KEY" if os.environ.get("PLAIT_API_KEY") else None)
    _probe_until(endpoint, f"pool {pool.id} of {where}, served at {url}", wait_s)
    m = measure(endpoint, budget_s=60.0)
    logging.getLogger("plait.driver").warning(
        "pool %s is served by %s: measured overhead %.1f ms, prefill %.0f tokens/s, decode %s tokens/s per call "
        "(concurrency: rate)", pool.id, url, m.overhead_s * 1e3, m.prefill_tps,
        ", ".join(f"{n}: {r:.1f}" for n, r in m.decode.items()))
    return endpoint.model_copy(update={"prefill_tokens_per_s": m.prefill_tps, "decode_tokens_per_s": m.decode,
                                       "overhead_s": m.overhead_s})


def local_plan(graph: AgentGraph, target: str, catalog: Any, qps: float | None, scale: str,
               max_replicas: int = 1) -> tuple[Any, list[str]]:
    """A plan for this machine: the `local` device only (`plait plan --device local`), LLMs at `scale`, at the
    rate `qps` (default: the agent's), with at most `max_replicas` per pool (what the run starts). Where this
    machine cannot meet the agent's SLA at that rate, it plans without the SLA, at half the rate, and so on down
    to LIGHT_QPS; the notes say which."""
    from plait.planner.inventory import one_type
    from plait.planner.placement import InfeasiblePlacement
    from plait.planner.planning import Targets, plan_agent, targets_of

    catalog.device(LOCAL_DEVICE)   # missing: says to run `plait calibrate --cpu`
    declared = targets_of(graph)
    rate = qps or declared.qps
    tries = [replace(declared, qps=rate)]
    r = rate
    while r > LIGHT_QPS * 1.0001:
        tries.append(Targets(qps=r))
        r = max(r / 2, LIGHT_QPS)
    tries.append(Targets(qps=LIGHT_QPS))
    why = last = ""
    for targets in tries:
        try:
            result = plan_agent(graph, source=target, catalog=catalog, sweep_points=0, inventory=one_type(LOCAL_DEVICE),
                                targets=targets, scale=scale)
        except InfeasiblePlacement as err:
            last = str(err).splitlines()[0].rstrip(".")
            why = why or last
            continue
        most = max((p.replicas for p in result.plan.pools), default=1)
        if most > max_replicas:
            last = f"a pool needs {most} replicas, and the run starts at most {max_replicas} (--max-replicas)"
            why = why or last
            continue
        if targets is tries[0]:
            return result, []
        sla = "" if declared.p95_s is None and declared.ttft_s is None else " and without the agent's SLA"
        return result, [f"this machine cannot serve the agent as declared ({rate:g} req/s within its SLA: {why}); "
                        f"planned at {targets.qps:g} req/s{sla} (`--qps {targets.qps:g}` loads it as planned)"]
    raise NoLocalPlan(f"even at {LIGHT_QPS:g} req/s without an SLA: {last}")


class NoLocalPlan(PlaitError):
    """No plan for the `local` device alone fits the agent (at any rate tried, with at most the run's replicas)."""


LIGHT_QPS = 0.1
"""The rate a plan for this machine falls back to when it cannot serve the agent's: requests one at a time."""


def driver_prompts(placed: Any) -> dict[str, str]:
    """The templates of op.format ops the placement left to the driver (constant prompts), by the user's line."""
    from xdsl.dialects.builtin import StringAttr

    from plait.ir.location import user_loc
    from plait.ir.place import DRIVER, pool_of

    out = {}
    for op in placed.walk():
        template = op.attributes.get("template")
        if op.name == "op.format" and pool_of(op) in (None, DRIVER) and isinstance(template, StringAttr):
            out[user_loc(op) or ""] = template.data
    return out


class LocalRun:
    """Workers for `programs` and a driver over them; a context manager that stops the workers."""

    def __init__(self, graph: AgentGraph, programs: list[Program], run_dir: Path, figures: Figures,
                 checkpoints: dict[str, str] | None = None, indexes: dict[str, str] | None = None,
                 scale: str = "tiny", max_replicas: int = 1, driver_prompts: dict[str, str] | None = None,
                 max_tokens: int | None = None, max_restarts: int = MAX_RESTARTS, attach: Attach | None = None,
                 on_bound: Callable[[str], None] | None = None, start_timeout_s: float = 300.0) -> None:
        """With `attach`, the workers are not started here: every planned replica (not `max_replicas`) attaches
        from elsewhere (its pod); `on_bound` hears where before the wait for them."""
        from plait.codegen.program import dump_program

        run_dir.mkdir(parents=True, exist_ok=True)
        replicas = [(p, r) for p in programs
                    for r in range(p.pool.replicas if attach is not None else min(p.pool.replicas, max_replicas))]
        specs = []
        weights = [WORK_WEIGHT["tool" if p.pool.endpoint else p.pool.kind] for p, _ in replicas]   # remote: waits
        for (program, replica), cores in zip(replicas, core_shares(weights), strict=True):
            path = run_dir / f"{program.pool.id}.program.json"
            path.write_text(dump_program(program))
            specs.append(WorkerSpec(pool=program.pool.id, replica=replica, program=str(path), driver="",
                                    store_port=0, cores=cores,
                                    log=str(run_dir / f"worker-{program.pool.id}-{replica}.log"),
                                    plait_version=__version__, graph_hash=program.graph_hash, scale=scale,
                                    checkpoints=checkpoints or {}, indexes=indexes or {}))
        handler = logging.FileHandler(run_dir / "driver.log")   # the ports it bound, crashes, refused frames
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
        driver_log = logging.getLogger("plait.driver")
        driver_log.addHandler(handler)
        driver_log.setLevel(logging.INFO)
        self._log_handler = handler
        if attach is not None:   # a remote pool's worker forwards whole calls: it runs beside the driver
            attach = replace(attach, local_pools=frozenset(p.pool.id for p in programs if p.pool.endpoint))
        self.workers = Workers(specs, run_dir, start_timeout_s=start_timeout_s, max_restarts=max_restarts,
                               attach=attach, on_bound=on_bound)
        self.driver = Driver(graph, programs, self.workers, figures, driver_prompts or {}, max_tokens)
        self.draining = threading.Event()
        self.interrupted = False   # the last many() was stopped by SIGTERM or Ctrl-C (and drained)

    def __enter__(self) -> LocalRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.workers.close()
        logging.getLogger("plait.driver").removeHandler(self._log_handler)
        self._log_handler.close()

    def _admit(self, slots: threading.BoundedSemaphore) -> bool:
        """Wait for a free slot; False once a drain began."""
        while not self.draining.is_set():
            if slots.acquire(timeout=0.05):
                if not self.draining.is_set():
                    return True
                slots.release()
        return False

    def many(self, inputs: list[dict[str, Any]], requests: int, qps: float | None = None,
             concurrency: int | None = None, drain_s: float = 30.0,
             progress: Any = None) -> list[Record]:
        """`requests` requests (cycling through `inputs`), at `qps` (Poisson-free: evenly spaced) or with at most
        `concurrency` in flight. SIGTERM or Ctrl-C stops admitting new ones and waits up to `drain_s` for those
        in flight."""
        width = concurrency or max(1, requests)
        pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="plait-request")
        slots = threading.BoundedSemaphore(width)   # admission: a request starts only when one is free
        futures: list[Future[Record]] = []

        def finished(_: Future[Record]) -> None:
            slots.release()
            if progress is not None:
                progress()

        with _draining(self.draining):
            start = time.perf_counter()
            for i in range(requests):
                if qps is not None:
                    wait = start + i / qps - time.perf_counter()
                    if wait > 0 and self.draining.wait(wait):
                        break
                if not self._admit(slots):
                    break
                future = pool.submit(self.driver.run, inputs[i % len(inputs)])
                future.add_done_callback(finished)
                futures.append(future)
            # drain: what is in flight finishes (within drain_s once a signal came); nothing new starts
            deadline: float | None = None
            records = []
            for f in futures:
                while not f.done():
                    if deadline is None and self.draining.is_set():
                        deadline = time.monotonic() + drain_s
                    if deadline is not None and time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                if f.done():
                    records.append(f.result())
        self.interrupted = self.draining.is_set()
        self.draining.clear()
        pool.shutdown(wait=False, cancel_futures=True)
        return records


@contextmanager
def _draining(flag: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `flag` (stop admitting; drain) instead of killing the driver mid-request."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: Any) -> None:
        flag.set()

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 (nearest rank: a run of few requests reports measured values, not interpolations)."""
    if not values:
        return (float("nan"),) * 3   # type: ignore[return-value]
    xs = sorted(values)
    pick = [xs[min(len(xs) - 1, max(0, round(q * len(xs) + 0.5) - 1))] for q in (0.50, 0.95, 0.99)]
    return pick[0], pick[1], pick[2]


def summary(records: list[Record]) -> list[tuple[str, int, tuple[float, float, float]]]:
    """(what, samples, (p50, p95, p99) in seconds): end to end, then each step kind, then TTFT and TPOT per LLM
    call."""
    rows = [("end to end", len(records), percentiles([r.seconds for r in records if r.error is None]))]
    steps: dict[str, list[float]] = {}
    for r in records:
        for name, s in r.steps:
            steps.setdefault(name, []).append(s)
    rows += [(name, len(v), percentiles(v)) for name, v in steps.items()]
    llm: dict[str, tuple[list[float], list[float]]] = {}
    for r in records:
        for node, ttft, tpot, _ in r.llm:
            t = llm.setdefault(node, ([], []))
            t[0].append(ttft)
            if tpot is not None:
                t[1].append(tpot)
    for node, (ttfts, tpots) in llm.items():
        rows.append((f"TTFT {node}", len(ttfts), percentiles(ttfts)))
        rows.append((f"TPOT {node}", len(tpots), percentiles(tpots)))
    return rows


def mean_tokens(records: list[Record]) -> float:
    counts = [n for r in records for _, _, _, n in r.llm]
    return statistics.fmean(counts) if counts else 0.0


def faults(records: list[Record], restarts: dict[str, int]) -> str:
    """The run summary's line on worker deaths: workers restarted and steps run again (by pool and kind)."""
    restarted = {k: n for k, n in restarts.items() if n}
    retried = Counter((r.pool, r.kind, r.why) for rec in records for r in rec.retries)
    parts = [f"{n} {kind} on {pool}" + (" (a lost tensor made again)" if why == "recompute" else "")
             for (pool, kind, why), n in sorted(retried.items())]
    return (f"worker restarts: {sum(restarted.values())}"
            + (f" ({', '.join(f'{k} x{n}' for k, n in sorted(restarted.items()))})" if restarted else "")
            + f"; steps run again: {sum(retried.values())}" + (f" ({', '.join(parts)})" if parts else ""))
