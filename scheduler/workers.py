"""The driver's side of the worker processes: spawn one per pool replica; calls go out on a ROUTER socket and
answers come back on a PULL socket.

Every call is a msgspec message; the worker acknowledges it (ZeroMQ drops messages to a dead peer silently)
and later answers Done. The driver keeps each call's future, so a worker that dies fails its calls with the
last lines of its log instead of leaving requests hanging.

Why two sockets: a ZeroMQ socket is not thread-safe. Request threads send on the ROUTER (under a lock that
only senders take); the I/O thread alone reads the PULL socket and blocks in poll() until an answer comes, so
an answer is delivered as soon as it arrives (no sleep-and-retry loop, no lock shared with the senders). The
ROUTER reads only the workers' Hellos, in the constructor, before any call is sent.
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict
from pathlib import Path
from typing import Any

from plait.scheduler.messages import (
    Ack,
    Cancel,
    Done,
    Hello,
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
from plait.scheduler.worker import WorkerSpec, main

log = logging.getLogger("plait.driver")
ACK_TIMEOUT_S = 30.0
CHECK_EVERY_S = 0.05   # how often the I/O thread looks for late acknowledgements and dead workers


class WorkerError(RuntimeError):
    """A worker failed to start, died, or did not acknowledge a message."""


def log_tail(path: str | Path, lines: int = 12) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


class Workers:
    """The processes of a run, the ROUTER they connect to, and the TCPStore their Gloo edges meet at."""

    def __init__(self, specs: list[WorkerSpec], run_dir: Path, start_timeout_s: float = 300.0) -> None:
        import torch.distributed as dist
        import zmq

        self.run_dir = run_dir
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)   # calls out (request threads, under self.lock)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("tcp://127.0.0.1:*")   # port 0: the OS picks; workers are told the port
        self.endpoint = str(self.sock.getsockopt_string(zmq.LAST_ENDPOINT))
        self.answers = self.ctx.socket(zmq.PULL)   # Acks, Dones, Refused in (the I/O thread only)
        self.answers.setsockopt(zmq.LINGER, 0)
        self.answers.bind("tcp://127.0.0.1:*")
        self.answers_endpoint = str(self.answers.getsockopt_string(zmq.LAST_ENDPOINT))
        self.store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
        log.info("control ROUTER on %s, answers on %s, TCPStore on port %d", self.endpoint, self.answers_endpoint,
                 self.store.port)
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
        spawn = mp.get_context("spawn")
        for spec in specs:
            spec.driver, spec.answers, spec.store_port = self.endpoint, self.answers_endpoint, self.store.port
            proc = spawn.Process(target=main, args=(json.dumps(asdict(spec)),), name=f"plait-{spec.key}", daemon=True)
            proc.start()
            self.procs[spec.key] = proc
        self.closed = False
        self._await_hellos(start_timeout_s)
        self.thread = threading.Thread(target=self._receive, daemon=True, name="plait-driver-io")
        self.thread.start()

    def _await_hellos(self, timeout_s: float) -> None:
        """Each worker's Hello, on the ROUTER: once it came, the ROUTER knows the worker's identity and routes
        calls to it (it drops messages for identities it has not seen)."""
        import zmq

        deadline = time.monotonic() + timeout_s
        while len(self.ready) < len(self.specs):
            self._check_alive()
            if time.monotonic() > deadline:
                missing = sorted(set(self.specs) - set(self.ready))
                raise WorkerError(f"workers {missing} did not start within {timeout_s:g} s; see {self.run_dir}")
            if not self.sock.poll(50, zmq.POLLIN):
                continue
            key_b, frame = self.sock.recv_multipart()
            try:
                msg = decode(frame)
            except MessageError as err:
                log.warning("from %s: %s", key_b.decode(errors="replace"), err)
                continue
            if isinstance(msg, Hello):
                self.ready[key_b.decode()] = msg

    # --- sending ----------------------------------------------------------------------------------------------
    def call(self, key: str, make: Any, on_partial: Any = None) -> Future[Done]:
        """Send `make(call_id)` to worker `key`; the future resolves with its Done (`on_partial` takes the pieces
        of a streamed call's text before that)."""
        future: Future[Done] = Future()
        with self.lock:
            call = next(self.calls)
            if on_partial is not None:
                self.partials[call] = on_partial
            self.pending[call] = (key, future)
            self.unacked[call] = time.monotonic()
            self.load[key] += 1
            self.sock.send_multipart([key.encode(), encode(make(call))])
        return future

    def send(self, key: str, msg: Any) -> None:
        with self.lock:
            self.sock.send_multipart([key.encode(), encode(msg)])

    def raw(self, key: str, frame: bytes) -> None:
        """Send a frame as is (tests: a pickle a worker must refuse)."""
        with self.lock:
            self.sock.send_multipart([key.encode(), frame])

    def least_loaded(self, pool: str) -> str:
        keys = [k for k, s in self.specs.items() if s.pool == pool]
        return min(keys, key=lambda k: self.load[k])

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
        import zmq

        checked = time.monotonic()
        while not self.closed:
            if self.answers.poll(int(CHECK_EVERY_S * 1e3), zmq.POLLIN):
                for msg in waiting(self.answers):
                    if isinstance(msg, MessageError):
                        log.warning("on the answers socket: %s", msg)
                    else:
                        self._deliver(msg)
            if time.monotonic() - checked >= CHECK_EVERY_S:
                self._check_timeouts()
                checked = time.monotonic()

    def _deliver(self, msg: Any) -> None:
        if isinstance(msg, Refused):
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
            if entry is not None:
                entry[1].set_result(msg)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        late = [c for c, t in list(self.unacked.items()) if now - t > ACK_TIMEOUT_S]
        dead = self._dead()
        for call in late:
            self.unacked.pop(call, None)
        with self.lock:
            failed = [(c, k, f) for c, (k, f) in self.pending.items() if k in dead or c in late]
            for c, _, _ in failed:
                del self.pending[c]
        for _, key, future in failed:
            why = "died" if key in dead else f"did not acknowledge within {ACK_TIMEOUT_S:g} s"
            future.set_exception(WorkerError(self._crash(key, why)))

    def dead_crash(self, keys: set[str], within_s: float = 2.0) -> str:
        """The crash report of whichever of `keys` died, waiting up to `within_s` for a dying process to be seen
        as dead (a Gloo peer's error can arrive before its exit); '' if all are alive."""
        deadline = time.monotonic() + within_s
        while True:
            dead = sorted(k for k in keys & self._dead())
            if dead or time.monotonic() >= deadline:
                return "\n".join(self._crash(k, "died") for k in dead)
            time.sleep(0.05)

    def _dead(self) -> set[str]:
        return {k for k, p in self.procs.items() if not p.is_alive()} if not self.closed else set()

    def _crash(self, key: str, why: str) -> str:
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
        for key in self.specs:
            try:
                self.send(key, Stop())
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
        self.thread.join(2)
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
