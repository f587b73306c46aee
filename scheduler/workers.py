"""The driver's side of the worker processes: spawn one per pool replica; calls go out on a ROUTER socket and
answers come back on a PULL socket.

Every call is a msgspec message; the worker acknowledges it (ZeroMQ drops messages to a dead peer silently)
and later answers Done. The driver keeps each call's future, so a worker that dies fails its calls with the
last lines of its log instead of leaving requests hanging.

Why two sockets: a ZeroMQ socket is not thread-safe. Request threads send on the ROUTER (under a lock that
only senders take); the I/O thread alone reads the PULL socket and blocks in poll() until an answer comes, so
an answer is delivered as soon as it arrives (no sleep-and-retry loop, no lock shared with the senders). The
ROUTER reads only the workers' Hellos, in the constructor, before any call is sent.

A worker that dies while serving is restarted (same pool, same replica key, same cores) by a supervisor thread
while the pool's other replicas keep serving: its calls in flight fail with WorkerLost (the driver retries their
steps), it gets a new `generation` (tensors it held are gone: the driver recomputes them), and calls to it wait
until the new process answers a Ping. A crash loop (more than `max_restarts` deaths within `restart_window_s`)
is not restarted again: its calls fail with CrashLoop, which says so.

Attached workers (`Attach`: a router on Kubernetes) are started by something else, each pod one replica: the driver
binds its sockets and TCPStore on a cluster address at known ports, spawns nothing, and waits for each planned
replica's Hello. A worker whose connection closes (its pod died: the kernel closed its socket, or ZeroMQ's
heartbeats went unanswered) is seen as unroutable (ROUTER_MANDATORY) and handled as a death, but not restarted:
Kubernetes restarts the pod, and the driver takes the replica back at its next Hello (a new `boot`).
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plait.scheduler.messages import (
    Ack,
    Cancel,
    Done,
    Hello,
    Leaving,
    MessageError,
    Partial,
    Ping,
    Refused,
    Release,
    Stop,
    decode,
    encode,
    waiting,
)
from plait.scheduler.worker import HEARTBEAT_MS, HEARTBEAT_TIMEOUT_MS, WorkerSpec, main
from plait.sdk.errors import PlaitError

log = logging.getLogger("plait.driver")
ACK_TIMEOUT_S = 30.0
CHECK_EVERY_S = 0.05   # how often the I/O thread looks for late acknowledgements and dead workers
MAX_RESTARTS = 3        # deaths of one worker within RESTART_WINDOW_S that are restarted; one more is a crash loop
RESTART_WINDOW_S = 300.0
PROBE_EVERY_S = 0.5     # a restarting worker is pinged this often until it answers (a Ping sent before its socket
                        # connected is dropped by the ROUTER)
ROUTE_CHECK_S = 0.5     # attached workers: how often the I/O thread checks each one is still connected
CONTROL_PORTS = (5555, 5556, 5557)   # attached workers reach a router at these: calls, answers, the TCPStore


@dataclass(frozen=True)
class Attach:
    """Workers started elsewhere (a router's pods) attach to the driver: it listens on `host` at these ports (0: the
    OS picks one, reported through `on_bound`) and spawns none but those of `local_pools` (remote pools, whose
    worker only forwards whole calls to an endpoint such as a vLLM pool's Service)."""

    host: str = "0.0.0.0"
    calls: int = CONTROL_PORTS[0]
    answers: int = CONTROL_PORTS[1]
    store: int = CONTROL_PORTS[2]
    local_pools: frozenset[str] = frozenset()

    @staticmethod
    def ports(text: str, where: str) -> tuple[int, int, int]:
        """CALLS,ANSWERS,STORE as written in `where` (a flag or an environment variable)."""
        parts = text.split(",")
        try:
            ports = tuple(int(p) for p in parts)
        except ValueError:
            ports = ()
        if len(ports) != 3 or not all(0 <= p <= 65535 for p in ports):
            raise PlaitError(f"{where} is {text!r}, not three ports\n  To fix: give CALLS,ANSWERS,STORE, e.g. "
                             f"{','.join(map(str, CONTROL_PORTS))} (0 lets the OS pick, printed).")
        return ports[0], ports[1], ports[2]


class WorkerError(RuntimeError):
    """A worker failed to start, died, or did not acknowledge a message."""


class WorkerLost(WorkerError):
    """A call's worker died (or was restarting): the call did not finish; the step may be run again."""

    def __init__(self, message: str, key: str, sent: bool = True) -> None:
        super().__init__(message)
        self.key = key
        self.sent = sent   # False: the call never left the driver (its worker was already restarting)


class CrashLoop(WorkerError):
    """A worker died more often than its restart budget allows: it is not restarted again."""


class NotAttached(WorkerError, PlaitError):
    """Attached workers (pods) that did not say Hello in time: a user's setup to fix, not a crash."""


def log_tail(path: str | Path, lines: int = 12) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


class Workers:
    """The processes of a run, the ROUTER they connect to, and the TCPStore their Gloo edges meet at."""

    def __init__(self, specs: list[WorkerSpec], run_dir: Path, start_timeout_s: float = 300.0,
                 max_restarts: int = MAX_RESTARTS, restart_window_s: float = RESTART_WINDOW_S,
                 attach: Attach | None = None, on_bound: Callable[[str], None] | None = None) -> None:
        import torch.distributed as dist
        import zmq

        self.run_dir = run_dir
        self.attach = attach
        host = attach.host if attach is not None else "127.0.0.1"
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)   # calls out (request threads, under self.lock)
        self.sock.setsockopt(zmq.LINGER, 0 if attach is None else 1000)   # attached: the Stops reach their pods
        self.sock.setsockopt(zmq.ROUTER_HANDOVER, 1)   # a restarted worker takes its key over from the dead one
        self.answers = self.ctx.socket(zmq.PULL)   # Acks, Dones, Refused in (the I/O thread only)
        self.answers.setsockopt(zmq.LINGER, 0)
        if attach is not None:   # a send to a worker whose connection closed raises, instead of being dropped
            self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            for sock in (self.sock, self.answers):
                sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
                sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
                sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)
        ports = (attach.calls, attach.answers, attach.store) if attach is not None else (0, 0, 0)
        self.sock.bind(f"tcp://{host}:{ports[0] or '*'}")   # port 0: the OS picks; workers are told the port
        self.endpoint = str(self.sock.getsockopt_string(zmq.LAST_ENDPOINT))
        self.answers.bind(f"tcp://{host}:{ports[1] or '*'}")
        self.answers_endpoint = str(self.answers.getsockopt_string(zmq.LAST_ENDPOINT))
        self.store = dist.TCPStore(host, ports[2], is_master=True, wait_for_workers=False)
        self.ports = (int(self.endpoint.rsplit(":", 1)[1]), int(self.answers_endpoint.rsplit(":", 1)[1]),
                      int(self.store.port))
        log.info("control ROUTER on %s, answers on %s, TCPStore on port %d", self.endpoint, self.answers_endpoint,
                 self.store.port)
        self.attached = {s.key for s in specs if attach is not None and s.pool not in attach.local_pools}
        if on_bound is not None and attach is not None:
            on_bound(f"waiting for {len(self.attached)} worker(s) to attach on {host}: ports {self.ports[0]} (calls), "
                     f"{self.ports[1]} (answers), {self.ports[2]} (store); a worker pod's "
                     f"PLAIT_CONTROL_PORTS={','.join(map(str, self.ports))}")
        self.lock = threading.Lock()
        self.pending: dict[int, tuple[str, Future[Done]]] = {}
        self.unacked: dict[int, float] = {}
        self.partials: dict[int, Any] = {}   # call -> what takes its streamed text (a server's request)
        self.refused: list[str] = []
        self.calls = itertools.count()
        self.specs = {s.key: s for s in specs}
        self.load: dict[str, int] = dict.fromkeys(self.specs, 0)
        self.ready: dict[str, Hello] = {}
        self.procs: dict[str, Any] = {}
        # restarts: each key is "ready", "restarting" or "failed" (a crash loop); `changed` wakes callers waiting
        # for a replica; deaths go to the supervisor thread through `lost`
        self.state: dict[str, str] = dict.fromkeys(self.specs, "ready")
        self.changed = threading.Condition(self.lock)
        self.crashes: dict[str, str] = {}          # key -> the report of its last death
        self.deaths: dict[str, list[float]] = {k: [] for k in self.specs}   # monotonic times of each death
        self.restarts: dict[str, int] = dict.fromkeys(self.specs, 0)       # restarts begun, per key
        self.max_restarts, self.restart_window_s, self.start_timeout_s = max_restarts, restart_window_s, start_timeout_s
        self.lost: queue.Queue[str] = queue.Queue()
        self.stopping = False
        # attached workers: keys whose connection closed (a send raised), or whose Hello came from a new start
        # while the old one was thought alive; each is handled as a death by the I/O thread
        self.unroutable: set[str] = set()
        self.replaced: set[str] = set()
        self.attaching: dict[str, Hello] = {}   # the Hello of a replica's next start, taken back by the supervisor
        self.unsent: set[int] = set()           # calls whose send failed (attached workers)
        for spec in specs:
            spec.driver, spec.answers, spec.store_port = self.endpoint, self.answers_endpoint, self.store.port
            if spec.key not in self.attached:
                self._spawn(spec)
        self.closed = False
        self._await_hellos(start_timeout_s)
        self.thread = threading.Thread(target=self._receive, daemon=True, name="plait-driver-io")
        self.thread.start()
        # restarts are spawned from this long-lived thread: a worker's PR_SET_PDEATHSIG fires when the *thread*
        # that forked it ends, so a short-lived thread per restart would take its worker with it
        self.supervisor = threading.Thread(target=self._supervise, daemon=True, name="plait-supervisor")
        self.supervisor.start()

    def _spawn(self, spec: WorkerSpec) -> None:
        proc = mp.get_context("spawn").Process(target=main, args=(json.dumps(asdict(spec)),),
                                               name=f"plait-{spec.key}", daemon=True)
        proc.start()
        self.procs[spec.key] = proc

    def _await_hellos(self, timeout_s: float) -> None:
        """Each worker's Hello, on the ROUTER: once it came, the ROUTER knows the worker's identity and routes
        calls to it (it drops messages for identities it has not seen)."""
        import zmq

        deadline = time.monotonic() + timeout_s
        while len(self.ready) < len(self.specs):
            self._check_alive()
            if time.monotonic() > deadline:
                missing = sorted(set(self.specs) - set(self.ready))
                if self.attach is not None:
                    self.sock.close()   # the ports are free again for the next router
                    self.answers.close()
                    self.ctx.term()
                    raise NotAttached(f"workers {missing} did not attach within {timeout_s:g} s\n  To fix: start "
                                      "their pods (the plait image with PLAIT_ROLE=worker) with PLAIT_ROUTER_HOST "
                                      "naming this router and PLAIT_CONTROL_PORTS="
                                      f"{','.join(map(str, self.ports))}; see why they did not in their logs.")
                raise WorkerError(f"workers {missing} did not start within {timeout_s:g} s; see {self.run_dir}")
            if not self.sock.poll(50, zmq.POLLIN):
                continue
            frames = self.sock.recv_multipart()
            if len(frames) != 2:   # not a DEALER's single frame (the port is open to the cluster)
                log.warning("refused a %d-part message on the control port", len(frames))
                continue
            msg = self._hello(*frames)
            if msg is not None:
                self.ready[frames[0].decode()] = msg

    def _hello(self, key_b: bytes, frame: bytes) -> Hello | None:
        """The Hello in `frame` from worker `key_b`, if it is one this driver takes: an attached worker of another
        replica or program (e.g. a pod of an older plan, still rolling) is told to stop."""
        key = key_b.decode(errors="replace")
        try:
            msg = decode(frame)
        except MessageError as err:
            log.warning("from %s: %s", key, err)
            return None
        if not isinstance(msg, Hello):
            return None
        if self.attach is None or key in self.specs and key not in self.attached:
            return msg   # a worker this driver spawned
        spec = self.specs.get(key)
        why = (f"no replica {key} is planned (the pools are {sorted({s.pool for s in self.specs.values()})})"
               if spec is None else f"it runs graph {msg.graph_hash[:12]}, this plan graph {spec.graph_hash[:12]}"
               if msg.graph_hash != spec.graph_hash else "")
        if why:
            log.warning("refused worker %s (pid %d at %s): %s; told it to stop", key, msg.pid, msg.address or "?", why)
            self._route(key, encode(Stop()))
            return None
        return msg

    def _route(self, key: str, frame: bytes) -> bool:
        """Under self.lock (or before the I/O thread runs): send `frame` to worker `key`; False when it did not
        go. An attached worker whose connection closed is marked unroutable (the I/O thread fails its calls); one
        whose queue is full (alive, not reading) is not waited for under the lock: the frame is not sent."""
        import zmq

        try:
            self.sock.send_multipart([key.encode(), frame], zmq.NOBLOCK if self.attach is not None else 0)
            return True
        except zmq.Again:
            log.warning("worker %s is not reading its messages (its queue is full): a message to it was dropped", key)
            return False
        except zmq.ZMQError as err:
            if err.errno != zmq.EHOSTUNREACH:
                raise
            if key in self.attached:   # not a refused stranger's key: that one is nobody's to fail
                self.unroutable.add(key)
            return False

    # --- sending ----------------------------------------------------------------------------------------------
    def call(self, key: str, make: Any, on_partial: Any = None) -> Future[Done]:
        """Send `make(call_id)` to worker `key`; the future resolves with its Done (`on_partial` takes the pieces
        of a streamed call's text before that). A worker that is restarting fails the call at once (WorkerLost),
        one given up fails it with CrashLoop."""
        with self.lock:
            if self.state[key] != "ready":
                future: Future[Done] = Future()
                future.set_exception(self._unavailable(key))
                return future
            return self._send_call(key, make, on_partial)[1]

    def _send_call(self, key: str, make: Any, on_partial: Any = None) -> tuple[int, Future[Done]]:
        """Under self.lock: register a call and send it."""
        future: Future[Done] = Future()
        call = next(self.calls)
        if on_partial is not None:
            self.partials[call] = on_partial
        self.pending[call] = (key, future)
        self.unacked[call] = time.monotonic()
        self.load[key] += 1
        if not self._route(key, encode(make(call))):
            self.unsent.add(call)   # a WorkerLost for it says it never left: a step that must not re-run may
        return call, future

    def _unavailable(self, key: str) -> WorkerError:
        if self.stopping or self.closed:
            return WorkerError(f"worker {key} is stopping: the run is over")
        if self.state[key] == "failed":
            return CrashLoop(self.crashes.get(key, f"worker {key} was given up"))
        if self.state[key] == "leaving":
            return WorkerLost(f"worker {key} is leaving (its pod is stopping)", key, sent=False)
        return WorkerLost(f"worker {key} is restarting after it died:\n{self.crashes.get(key, '')}", key, sent=False)

    def send(self, key: str, msg: Any) -> None:
        with self.lock:
            if self.state[key] == "ready":   # a restarting worker holds nothing of an earlier start
                self._route(key, encode(msg))

    def is_ready(self, key: str) -> bool:
        return self.state[key] == "ready"

    def raw(self, key: str, frame: bytes) -> None:
        """Send a frame as is (tests: a pickle a worker must refuse)."""
        with self.lock:
            self._route(key, frame)

    def least_loaded(self, pool: str, cancel: threading.Event | None = None) -> str:
        """The ready replica of `pool` with the fewest calls in flight. When every replica is restarting, wait for
        one (until `cancel` is set: WorkerLost); when every one is given up, CrashLoop."""
        keys = [k for k, s in self.specs.items() if s.pool == pool]
        with self.changed:
            while True:
                ready = [k for k in keys if self.state[k] == "ready"]
                if ready:
                    return min(ready, key=lambda k: self.load[k])
                if all(self.state[k] == "failed" for k in keys) or self.closed or self.stopping:
                    raise self._unavailable(keys[0])
                if cancel is not None and cancel.is_set():   # not WorkerLost: a cancelled step is not retried
                    raise WorkerError(f"pool {pool} has no replica ready (restarting), and the request was "
                                      "cancelled while it waited")
                self.changed.wait(0.05)

    def health(self, timeout_s: float = 5.0, keys: list[str] | None = None) -> dict[str, dict[str, Any] | str]:
        """Each worker's (or those of `keys`) answer to a Ping (its pool, pid, work in flight), or why it gave
        none. A worker busy in a tool answers at once (the tool runs on its own thread) and names it."""
        futures = {key: self.call(key, Ping) for key in (self.specs if keys is None else keys)}
        out: dict[str, dict[str, Any] | str] = {}
        for key, future in futures.items():
            try:
                out[key] = future.result(timeout=timeout_s).value
            except Exception as err:   # a dead worker fails its future; a stuck one times out
                out[key] = f"no answer: {err or type(err).__name__}"
        return out

    def generation(self, key: str) -> int:
        return self.specs[key].generation

    def cancel(self, request: int) -> None:
        """Every worker drops the LLM calls of `request` still in its engine (they answer with an error)."""
        for key in self.specs:
            self.send(key, Cancel(request))

    def release(self, request: int) -> None:
        for key in self.specs:
            self.send(key, Release(request))

    # --- receiving --------------------------------------------------------------------------------------------
    def _receive(self) -> None:
        """The I/O thread: block until answers arrive, deliver each; every CHECK_EVERY_S, fail the calls of
        dead workers and of messages not acknowledged in time."""
        checked = routed = time.monotonic()
        while not self.closed:
            try:
                checked, routed = self._receive_once(checked, routed)
            except Exception:   # the driver's only reader: a bad message must not stop every answer
                log.exception("the driver's I/O thread caught an error; it goes on")
                time.sleep(CHECK_EVERY_S)

    def _receive_once(self, checked: float, routed: float) -> tuple[float, float]:
        """One turn of the I/O thread: the answers waiting (or a wait of CHECK_EVERY_S for them), then its checks."""
        import zmq

        if self.answers.poll(int(CHECK_EVERY_S * 1e3), zmq.POLLIN):
            for msg in waiting(self.answers):
                if isinstance(msg, MessageError):
                    log.warning("on the answers socket: %s", msg)
                else:
                    self._deliver(msg)
        if self.attach is not None:
            self._read_hellos()
            if time.monotonic() - routed >= ROUTE_CHECK_S:
                self._check_routes()
                routed = time.monotonic()
        if time.monotonic() - checked >= CHECK_EVERY_S:
            self._check_timeouts()
            checked = time.monotonic()
        return checked, routed

    def _read_hellos(self) -> None:
        """Attached workers: the Hellos on the ROUTER (read under the senders' lock: a socket is not thread-safe).
        A replica's Hello from a new start is kept for the supervisor, which takes the replica back once its old
        start was handled as a death."""
        import zmq

        frames = []
        with self.lock:
            while True:
                try:
                    frames.append(self.sock.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
        for parts in frames:
            if len(parts) != 2:
                log.warning("refused a %d-part message on the control port", len(parts))
                continue
            key_b, frame = parts
            with self.lock:
                hello = self._hello(key_b, frame)
                key = key_b.decode(errors="replace")
                if hello is None or key not in self.attached or self.state[key] == "ready" and \
                        self.ready[key].boot == hello.boot:
                    continue   # a spawned worker's restart is the supervisor's; a known start says Hello again
                self.attaching[key] = hello
                if self.state[key] == "ready":   # restarted before a route check saw the old start go
                    self.replaced.add(key)

    def _check_routes(self) -> None:
        """Attached workers: a Ping nobody waits for to each ready one; a closed connection makes it unroutable."""
        import zmq

        with self.lock:
            for key, state in self.state.items():
                if state in ("ready", "leaving") and key in self.attached and key not in self.unroutable:
                    try:
                        self.sock.send_multipart([key.encode(), encode(Ping(-1))], zmq.NOBLOCK)
                    except zmq.Again:   # its queue is full: connected, and busy
                        pass
                    except zmq.ZMQError as err:
                        if err.errno != zmq.EHOSTUNREACH:
                            raise
                        self.unroutable.add(key)

    def _deliver(self, msg: Any) -> None:
        if isinstance(msg, Leaving):   # its pod stops: nothing new goes to it; its calls in flight finish
            key = f"{msg.pool}/{msg.replica}"
            with self.lock:
                hello = self.ready.get(key)
                if key in self.attached and self.state[key] == "ready" and hello is not None and hello.boot == msg.boot:
                    self.state[key] = "leaving"
                    log.warning("worker %s is leaving (its pod stops): no new calls go to it", key)
        elif isinstance(msg, Refused):
            self.refused.append(msg.why)
        elif isinstance(msg, Ack):
            self.unacked.pop(msg.call, None)
        elif isinstance(msg, Partial):
            taker = self.partials.get(msg.call)
            if taker is not None:
                taker(msg.text)
        elif isinstance(msg, Done):
            with self.lock:
                entry = self.pending.pop(msg.call, None)
                self.unacked.pop(msg.call, None)
                self.partials.pop(msg.call, None)
                if entry is not None:
                    self.load[entry[0]] -= 1
                    if msg.tensor is not None:   # named by the start it came from (an attached worker cannot know)
                        msg.tensor.generation = self.specs[entry[0]].generation
            if entry is not None:
                entry[1].set_result(msg)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        late = [c for c, t in list(self.unacked.items()) if now - t > ACK_TIMEOUT_S]
        for call in late:
            self.unacked.pop(call, None)
        with self.lock:
            dead = {k for k in self._dead() if self.state[k] in ("ready", "leaving")}
            for key in dead:   # reported once, before its pending calls fail: their retries wait for the restart
                self.crashes[key] = self._crash(key, "died")
                self.specs[key].generation += 1
                self.state[key] = "restarting"
                if not self.stopping:
                    self.lost.put(key)
            failed = [(c, k, f) for c, (k, f) in self.pending.items() if k in dead or c in late]
            for c, k, _ in failed:
                del self.pending[c]
                self.partials.pop(c, None)
                self.load[k] -= 1
            if dead:
                self.changed.notify_all()
            unsent = {c for c, _, _ in failed if c in self.unsent}
            self.unsent -= unsent
        for call, key, future in failed:
            if key in dead and not self.stopping:
                future.set_exception(WorkerLost(self.crashes[key], key, sent=call not in unsent))
            elif key in dead:
                future.set_exception(WorkerError(self.crashes[key]))
            else:
                future.set_exception(WorkerError(self._crash(key, f"did not acknowledge within {ACK_TIMEOUT_S:g} s")))

    # --- restarts ---------------------------------------------------------------------------------------------
    def _supervise(self) -> None:
        """The supervisor thread: restart each worker the I/O thread found dead, and mark it ready once the new
        process answers a Ping; a worker past its restart budget, or that does not start, is given up."""
        starting: dict[str, tuple[float, float, list[tuple[int, Future[Done]]]]] = {}   # key -> (deadline, last
        # probe sent, the probes: call ids and futures)
        while not self.closed:
            try:
                key = self.lost.get(timeout=0.05)
                if self.stopping:
                    pass
                elif key in self.attached:   # its pod is restarted by Kubernetes, not here
                    self.deaths[key].append(time.monotonic())
                    log.warning("%s\nwaiting for it to attach again", self.crashes.get(key, f"worker {key} died"))
                else:
                    self._restart(key, starting)
            except queue.Empty:
                pass
            if self.attach is not None:
                self._take_back()
            for key, (deadline, probed, probes) in list(starting.items()):
                if any(f.done() and f.exception() is None for _, f in probes):   # a probe's Done came
                    self._ready(key, probes)
                    del starting[key]
                elif self.stopping or not self.procs[key].is_alive() or time.monotonic() > deadline:
                    del starting[key]
                    self._start_failed(key, probes)
                elif time.monotonic() - probed >= PROBE_EVERY_S:
                    with self.lock:
                        probes.append(self._send_call(key, Ping))
                    starting[key] = (deadline, time.monotonic(), probes)

    def _restart(self, key: str, starting: dict[str, tuple[float, float, list[tuple[int, Future[Done]]]]]) -> None:
        now = time.monotonic()
        deaths = [t for t in self.deaths[key] if now - t <= self.restart_window_s] + [now]
        self.deaths[key] = deaths
        if len(deaths) > self.max_restarts:
            self._give_up(key, f"worker {key} died {len(deaths)} times within {self.restart_window_s:g} s, and "
                               f"a worker is restarted at most {self.max_restarts} time(s) in that time: a crash "
                               "loop, so it is not restarted again and its pool's calls fail.\n  To fix: see why "
                               f"it dies in its log, then restart the server. The last death:\n"
                               f"{self.crashes.get(key, '')}")
            return
        log.warning("restarting worker %s (start %d): %s", key, self.specs[key].generation,
                    self.crashes.get(key, "died"))
        self.restarts[key] += 1
        self._spawn(self.specs[key])
        starting[key] = (now + self.start_timeout_s, 0.0, [])

    def _take_back(self) -> None:
        """Attached workers: each replica whose next start said Hello after its death was handled is ready again."""
        with self.lock:
            for key, hello in list(self.attaching.items()):
                if self.state[key] != "restarting":
                    continue
                del self.attaching[key]
                self.ready[key] = hello
                self.unroutable.discard(key)
                self.replaced.discard(key)
                self.restarts[key] += 1
                self.state[key] = "ready"
                self.changed.notify_all()
                log.warning("worker %s attached again (start %d, pid %d at %s)", key, self.specs[key].generation,
                            hello.pid, hello.address or "?")

    def _ready(self, key: str, probes: list[tuple[int, Future[Done]]]) -> None:
        with self.lock:
            for call, _ in probes:   # the unanswered probes (sent before its socket connected) are forgotten
                if self.pending.pop(call, None) is not None:
                    self.load[key] -= 1
                self.unacked.pop(call, None)
            self.state[key] = "ready"
            self.changed.notify_all()
        log.warning("worker %s is back (start %d, pid %s)", key, self.specs[key].generation, self.procs[key].pid)

    def _start_failed(self, key: str, probes: list[tuple[int, Future[Done]]]) -> None:
        proc = self.procs[key]
        if proc.is_alive():   # did not answer in time
            proc.kill()
            proc.join(2)
        with self.lock:
            for call, _ in probes:
                if self.pending.pop(call, None) is not None:
                    self.load[key] -= 1
                self.unacked.pop(call, None)
            self.crashes[key] = self._crash(key, "died while restarting")
        if not self.stopping:
            self.lost.put(key)   # counts against its budget like any death

    def _give_up(self, key: str, why: str) -> None:
        log.error("%s", why)
        with self.lock:
            self.crashes[key] = why
            self.state[key] = "failed"
            self.changed.notify_all()

    def dead_crash(self, keys: set[str], within_s: float = 2.0, starts: dict[str, int] | None = None) -> str:
        """The crash report of whichever of `keys` died (with `starts`: died since that start of it), waiting up
        to `within_s` for a dying process to be seen as dead (a Gloo peer's error can arrive before its exit);
        '' if all are alive."""
        deadline = time.monotonic() + within_s
        while True:
            dead = sorted(k for k in keys if k in self._dead() or starts is not None and k in starts
                          and self.specs[k].generation != starts[k])
            if dead or time.monotonic() >= deadline:
                return "\n".join(self.crashes.get(k) or self._crash(k, "died") for k in dead)
            time.sleep(0.05)

    def _dead(self) -> set[str]:
        if self.closed:
            return set()
        gone = {k for k in self.unroutable | self.replaced if k in self.attached}
        return gone | {k for k, p in list(self.procs.items()) if not p.is_alive()}

    def _crash(self, key: str, why: str) -> str:
        if key in self.attached:
            hello = self.ready.get(key)
            where = f" (pid {hello.pid} at {hello.address or 'an attached worker'})" if hello is not None else ""
            return (f"worker {key}{where} {why}: its connection to this driver closed (or its pod restarted); see "
                    "the worker's own log (a pod's: kubectl logs POD)")
        proc = self.procs[key]
        code = f" (exit code {proc.exitcode})" if proc.exitcode is not None else ""
        return (f"worker {key} {why}{code}; the last lines of {self.specs[key].log}:\n{log_tail(self.specs[key].log)}")

    def _check_alive(self) -> None:
        for key in self._dead():
            raise WorkerError(self._crash(key, "exited while starting"))

    # --- stopping ---------------------------------------------------------------------------------------------
    def close(self, timeout_s: float = 10.0) -> None:
        if self.closed:
            return
        self.stopping = True   # workers exiting on Stop are not restarted
        for key in self.specs:
            try:
                with self.lock:
                    self._route(key, encode(Stop()))
            except Exception:   # a dead worker's socket: nothing to stop
                pass
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self.procs.values():
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        self.closed = True
        with self.changed:
            self.changed.notify_all()
        self.thread.join(2)
        self.supervisor.join(2)
        self.sock.close()
        self.answers.close()
        self.ctx.term()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.pid is not None]


WORK_WEIGHT = {"llm": 1.0, "encoder": 1.0, "search": 0.3, "tool": 0.1}
"""How much of a core a pool's worker keeps busy, to deal cores by: engines and encoders compute, a search is
short, a tool mostly waits (on 2 cores, round-robin put rag's LLM and encoder on one core: docs/predict_vs_run.md)."""


def core_shares(weights: list[float]) -> list[list[int]]:
    """The cores of each worker (one weight per worker, WORK_WEIGHT of its pool's kind): with fewer cores than
    workers, each worker gets the core with the least weight dealt so far, heaviest workers first; with more,
    every worker gets one and the rest go round-robin, heaviest first."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    order = sorted(range(len(weights)), key=lambda i: -weights[i])   # stable: equal weights keep their order
    shares: list[list[int]] = [[] for _ in weights]
    if len(weights) >= len(cores):
        dealt = dict.fromkeys(cores, 0.0)
        for i in order:
            core = min(cores, key=lambda c: dealt[c])
            shares[i].append(core)
            dealt[core] += weights[i]
        return shares
    for k, core in enumerate(cores):
        shares[order[k % len(order)]].append(core)
    return shares
