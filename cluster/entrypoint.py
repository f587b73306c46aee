"""The container's entrypoint (`python -m plait.cluster.entrypoint`): one worker replica of one pool, or the
router, configured from the mounted ConfigMap and the environment, running the local runtime's own code.

Environment (the operator's StatefulSet and Deployment set it; cluster.reconcile's container contract):
    PLAIT_ROLE          worker | router
    PLAIT_AGENT_DIR     the mounted ConfigMap: the agent file, plan.json, placed.mlir, <pool>.program.json
                        (default /etc/plait/agent)
    PLAIT_AGENT         router: FILE:AGENT under PLAIT_AGENT_DIR (default: plan.json's agent, found there)
    PLAIT_POOL_ID       worker: the pool id (a key `<pool>.program.json` of the ConfigMap)
    PLAIT_POD_NAME      worker: the StatefulSet pod's name; its ordinal suffix is the replica index
                        (PLAIT_REPLICA overrides it)
    PLAIT_RENDEZVOUS    worker: the pool's headless Service (NAME.NAMESPACE.svc); with the pod's name it is the
                        replica's stable DNS name, where its Gloo pairs listen for their peers
    PLAIT_ADDRESS       worker: that address, given outright (default POD_NAME.RENDEZVOUS)
    PLAIT_ROUTER        worker: the router's Service (HOST:PORT); the worker attaches to HOST
    PLAIT_ROUTER_HOST   worker: the router's host, given outright (default: PLAIT_ROUTER's host)
    PLAIT_CONTROL_PORTS the router's ports for its workers: calls, answers, TCPStore (default 5555,5556,5557;
                        the router's may be 0,0,0: the OS picks, printed)
    PLAIT_HEALTH_PORT   worker: port of GET /healthz (default 8081; 0: the OS picks, printed)
    PLAIT_ROUTER_PORT   router: port of `plait serve` (default 8000); its API key is PLAIT_API_KEY
    PLAIT_ATTACH_TIMEOUT_S  router: how long it waits for every worker pod to attach (default 600)
    PLAIT_CPUS          worker: its CPU request in whole cores (torch's threads at most; 0 or unset: none)
    PLAIT_BIND          the address the router's ports and a worker's health check listen on (default 0.0.0.0,
                        the pod's addresses; 127.0.0.1 runs a whole deployment on one machine)
    PLAIT_RUN_DIR       a writable folder for programs and logs (default /tmp/plait)
    PLAIT_WEIGHTS_DIR   a folder of checkpoints, one subfolder per catalog model (/models/llama-3.1-8b), and
    PLAIT_WEIGHTS       MODEL=DIR,... more; without one an LLM runs at PLAIT_SCALE (default: the plan's scale,
                        else tiny) with random weights
    PLAIT_INDEXES_DIR   a folder of vector indexes (`plait index build --out`), one subfolder per index name
    PLAIT_INDEXES       (/models/indexes/wiki), and NAME=DIR,... more: a search pool's

A worker pod runs the pool's worker (scheduler.worker, the code `plait run` spawns) in the container's own
process, attached to the router: the router's `plait serve --attach` is its driver, as `plait run` is a local
worker's. It answers GET /healthz: 200 once connected to the router, 503 before (the readiness probe). It exits
when the router goes away (its tensors and Gloo pairs were that router's), and Kubernetes starts it again clean.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from plait.cluster.from_plan import program_key
from plait.scheduler.workers import CONTROL_PORTS, Attach
from plait.sdk.errors import PlaitError

DEFAULT_AGENT_DIR = "/etc/plait/agent"
ROLES = ("worker", "router")


class EntrypointError(PlaitError):
    """The container's environment or mounted ConfigMap is not what the entrypoint needs."""


@dataclass(frozen=True)
class Settings:
    """What the environment says this container is."""

    role: str
    agent_dir: Path
    run_dir: Path
    agent: str = ""          # router: FILE:AGENT of the mounted agent
    pool: str = ""
    replica: int = 0
    address: str = ""        # the replica's stable DNS name through the headless Service ('' outside a cluster)
    router: str = ""
    router_host: str = ""    # worker: where the router's control ports are
    control_ports: tuple[int, int, int] = CONTROL_PORTS
    attach_timeout_s: float = 600.0
    bind: str = "0.0.0.0"
    cpus: int = 0            # worker: its CPU request in whole cores (PLAIT_CPUS, the downward API); 0: none
    health_port: int = 8081
    port: int = 8000
    weights: tuple[tuple[str, str], ...] = ()
    indexes: tuple[tuple[str, str], ...] = ()
    scale: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        role = env.get("PLAIT_ROLE", "")
        if role not in ROLES:
            raise EntrypointError(f"PLAIT_ROLE is {role!r}\n  To fix: set PLAIT_ROLE to worker or router.")
        agent_dir = Path(env.get("PLAIT_AGENT_DIR", DEFAULT_AGENT_DIR))
        if not (agent_dir / "plan.json").is_file():
            raise EntrypointError(f"{agent_dir} holds no plan.json: the agent's ConfigMap is not mounted there\n"
                                  "  To fix: mount the ConfigMap `plait submit` made at PLAIT_AGENT_DIR.")
        ports = env.get("PLAIT_CONTROL_PORTS") or ",".join(map(str, CONTROL_PORTS))
        try:
            control_ports = Attach.ports(ports, "PLAIT_CONTROL_PORTS")
        except PlaitError as err:
            raise EntrypointError(str(err)) from None
        common: dict[str, Any] = dict(role=role, agent_dir=agent_dir, run_dir=Path(env.get("PLAIT_RUN_DIR", "/tmp/plait")),
                                      health_port=int(env.get("PLAIT_HEALTH_PORT", "8081")),
                                      port=int(env.get("PLAIT_ROUTER_PORT", "8000")), weights=_weights(env),
                                      indexes=_weights(env, "INDEXES"),
                                      scale=env.get("PLAIT_SCALE") or None, control_ports=control_ports,
                                      bind=env.get("PLAIT_BIND") or "0.0.0.0")
        if role == "router":
            return cls(**common, agent=env.get("PLAIT_AGENT") or _planned_agent(agent_dir),
                       attach_timeout_s=float(env.get("PLAIT_ATTACH_TIMEOUT_S", "600")))
        pool = env.get("PLAIT_POOL_ID", "")
        if not (agent_dir / program_key(pool)).is_file():
            have = sorted(p.name.removesuffix(".program.json") for p in agent_dir.glob("*.program.json"))
            raise EntrypointError(f"PLAIT_POOL_ID is {pool!r}, which has no program in {agent_dir}\n"
                                  f"  To fix: set PLAIT_POOL_ID to one of {', '.join(have) or '(none: re-submit)'}.")
        pod = env.get("PLAIT_POD_NAME", "")
        replica = env.get("PLAIT_REPLICA") or (m.group(1) if (m := re.search(r"-(\d+)$", pod)) else "0")
        service = env.get("PLAIT_RENDEZVOUS", "")
        router = env.get("PLAIT_ROUTER", "")
        router_host = env.get("PLAIT_ROUTER_HOST") or router.rpartition(":")[0] or router
        if not router_host:
            raise EntrypointError("a worker attaches to its router, but neither PLAIT_ROUTER nor PLAIT_ROUTER_HOST "
                                  "is set\n  To fix: set PLAIT_ROUTER to the router Service's HOST:PORT (the "
                                  "operator does).")
        address = env.get("PLAIT_ADDRESS") or (f"{pod}.{service}" if pod and service else "")
        try:
            cpus = int(env.get("PLAIT_CPUS") or 0)
        except ValueError:
            raise EntrypointError(f"PLAIT_CPUS is {env['PLAIT_CPUS']!r}\n  To fix: whole cores, e.g. 2 (the "
                                  "operator sets it from the container's CPU request).") from None
        return cls(**common, pool=pool, replica=int(replica), address=address, router=router,
                   router_host=router_host, cpus=cpus)


def _weights(env: dict[str, str], kind: str = "WEIGHTS") -> tuple[tuple[str, str], ...]:
    """NAME -> folder (a model's checkpoint; with kind INDEXES an index): each subfolder of PLAIT_<kind>_DIR,
    then PLAIT_<kind>'s pairs."""
    found: dict[str, str] = {}
    folder = Path(env.get(f"PLAIT_{kind}_DIR", "") or "/nonexistent")
    if folder.is_dir():
        found.update({sub.name: str(sub) for sub in sorted(folder.iterdir()) if sub.is_dir()})
    for pair in env.get(f"PLAIT_{kind}", "").split(","):
        model, sep, where = pair.partition("=")
        if sep:
            found[model] = where
    return tuple(found.items())


def _planned_agent(agent_dir: Path) -> str:
    """FILE:AGENT of the agent plan.json was made from, as mounted in `agent_dir`."""
    source = json.loads((agent_dir / "plan.json").read_text())["source"]
    file, _, agent = source.rpartition(":")
    return f"{agent_dir / Path(file).name}:{agent}"


def worker_spec(settings: Settings) -> Any:
    """The WorkerSpec of this replica: its program copied into the run folder, naming the mounted agent file."""
    from plait import __version__
    from plait.codegen.program import dump_program, load_program
    from plait.planner.plan import Plan
    from plait.scheduler.worker import WorkerSpec

    where = settings.agent_dir / program_key(settings.pool)
    program = load_program(where.read_text(), str(where))
    file, _, agent = program.source.rpartition(":")
    program = program.model_copy(update={"source": f"{settings.agent_dir / Path(file).name}:{agent}"})
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path = settings.run_dir / program_key(settings.pool)
    path.write_text(dump_program(program))
    plan = Plan.model_validate_json((settings.agent_dir / "plan.json").read_text())
    host, (calls, answers, store) = settings.router_host, settings.control_ports
    return WorkerSpec(pool=settings.pool, replica=settings.replica, program=str(path), driver=f"tcp://{host}:{calls}",
                      answers=f"tcp://{host}:{answers}", store_host=host, store_port=store,
                      cores=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
                      log=str(settings.run_dir / f"worker-{settings.pool}-{settings.replica}.log"),
                      plait_version=__version__, graph_hash=program.graph_hash,
                      scale=settings.scale or plan.scale or "tiny", checkpoints=dict(settings.weights),
                      indexes=dict(settings.indexes), address=settings.address, attached=True)


def worker_threads(cores: int, limit: int | None, request: int) -> int:
    """torch's threads in a pod: the cores it may use, at most its CPU limit and its CPU request (0: none)."""
    return max(1, min(cores, limit or cores, request or cores))


def cpu_limit(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """The container's CPU limit in whole cores (cgroup v2's quota over its period, rounded up), or None: a pod's
    affinity is the whole node's CPUs, so threads by affinity alone would be throttled far past the limit."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        return None if quota == "max" else max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        return None


def serve_health(worker: Any, settings: Settings, port: int) -> ThreadingHTTPServer:
    """GET /healthz on `port` (all addresses: the kubelet probes the pod's IP): 200 once the worker is connected
    to its router, 503 before (it waits for the router, or the router is gone and it is exiting)."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:   # noqa: N802 -- http.server's name
            if self.path not in ("/healthz", "/readyz"):
                self.send_error(404)
                return
            status = worker.status()
            ok = bool(status["connected"])
            body = json.dumps({"pool": settings.pool, "replica": settings.replica, "address": settings.address,
                               "router": settings.router, "ok": ok, "worker": status}).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:   # probes every few seconds: keep the log for the worker
            pass

    server = ThreadingHTTPServer((settings.bind, port), Health)
    threading.Thread(target=server.serve_forever, daemon=True, name="plait-health").start()
    return server


def run_worker(settings: Settings, stop: threading.Event) -> int:
    """Load the worker, serve its health check, and serve the router until `stop` (SIGTERM sets it) or a Stop from
    the router: 0. When the router goes away: 1, and Kubernetes starts the container again clean."""
    import torch

    from plait.scheduler.worker import Worker

    spec = worker_spec(settings)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(worker_threads(len(spec.cores), cpu_limit(), settings.cpus))
    worker = Worker(spec)   # loads its kernels: weights, the index, the user's tools
    worker.stop_requested = stop
    server = serve_health(worker, settings, settings.health_port)
    try:
        print(f"worker {spec.key} loaded ({settings.address or 'no Service address'}); attaching to the router at "
              f"{spec.driver}; health on http://{settings.bind}:{server.server_address[1]}/healthz", flush=True)
        if worker.serve():
            return 0
        print(f"worker {spec.key}: the router at {spec.driver} went away; exiting so the pod starts clean",
              file=sys.stderr, flush=True)
        return 1
    finally:
        server.shutdown()


def router_argv(settings: Settings) -> list[str]:
    """`plait serve` of the mounted agent and plan, listening on all addresses (an API key is required there)."""
    argv = [sys.executable, "-m", "plait.cli", "serve", settings.agent, "--plan", str(settings.agent_dir), "--host", settings.bind,
            "--port", str(settings.port), "--run-dir", str(settings.run_dir / "serve"),
            "--attach", ",".join(map(str, settings.control_ports)),
            "--attach-timeout-s", f"{settings.attach_timeout_s:g}"]
    for model, folder in settings.weights:
        argv += ["--weights", f"{model}={folder}"]
    return argv


def main(env: dict[str, str] | None = None) -> int:
    import signal

    try:
        settings = Settings.from_env(dict(os.environ) if env is None else env)
        if settings.role == "router":
            argv = router_argv(settings)
            os.execvp(argv[0], argv)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        return run_worker(settings, stop)
    except PlaitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
