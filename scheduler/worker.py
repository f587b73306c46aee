"""A worker process: one replica of one pool. It loads its device program's kernels, takes Run/Send/Recv
messages from the driver over a DEALER socket, and keeps the tensors it made until the driver releases them.

The LLM engine is stepped between messages, so the calls of every request and call site of the pool join one
continuously batched engine. Transfers run on a thread per edge (a two-rank Gloo group), so a send waiting for
its peer never stalls the kernels; a finished transfer wakes the main loop through a pipe, which sends its Done
(only the main loop touches the sockets). Tools run on a thread of their own the same way, one call at a time, so
a worker busy in a long tool still answers pings (health) and cancels. Answers go out on a PUSH socket to the driver's PULL (the driver's
I/O thread reads it alone). A worker exits with its driver: PR_SET_PDEATHSIG, and a parent-pid check.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import queue
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from plait.scheduler.buffers import RecvBuffers
from plait.scheduler.llm_calls import LLMCalls
from plait.scheduler.messages import (
    Ack,
    Cancel,
    Done,
    Hello,
    Leaving,
    MessageError,
    Partial,
    Ping,
    Recv,
    Refused,
    Release,
    Run,
    Send,
    Stop,
    TensorRef,
    encode,
    waiting,
)
from plait.scheduler.remote_calls import RemoteCalls

PR_SET_PDEATHSIG = 1
HEARTBEAT_MS = 1000        # an attached worker and its driver ping each other at the ZeroMQ level (libzmq's I/O
HEARTBEAT_TIMEOUT_MS = 5000  # thread, so a worker busy in a kernel still answers): a peer silent this long is gone
ACK_AFTER_S = 0.002   # a transfer still running this long after its Send/Recv came is acknowledged; a faster
                      # one is acknowledged by its Done alone (one message to the driver, not two)
log = logging.getLogger("plait.worker")


@dataclass
class WorkerSpec:
    """What the driver tells a worker at spawn (as JSON: the child reads no pickle from the driver)."""

    pool: str
    replica: int
    program: str           # path of its <pool>.program.json
    driver: str            # tcp://127.0.0.1:PORT of the driver's ROUTER (calls in, Hello out)
    store_port: int        # the driver's TCPStore (edges' Gloo groups rendezvous there)
    cores: list[int]
    log: str
    plait_version: str
    graph_hash: str
    scale: str = "tiny"    # models without --weights run at this catalog scale (random weights)
    checkpoints: dict[str, str] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)
    answers: str = ""      # tcp://127.0.0.1:PORT of the driver's PULL socket (Acks, Dones, Refused out)
    generation: int = 0    # 0 at the first start; the driver counts up at each restart (stale TensorRefs tell)
    store_host: str = "127.0.0.1"   # where the driver's TCPStore listens (an attached worker: the router's host)
    address: str = ""      # the address its Gloo pairs listen on, where peers reach it ('' lets Gloo pick from
                           # the hostname); a pod's is its stable name through the pool's headless Service
    attached: bool = False  # started by something other than its driver (a pod): it connects to a driver that
                            # may not be up yet, and exits when that driver goes away (its state would be stale)

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.replica}"


def run_model(model: str, checkpoint: str | None, scale: str) -> str:
    """The model a worker runs for a planned `model`: itself with a checkpoint or when already named at a
    scale (`qwen2.5-32b@small`), else its catalog `scale` (random weights at a size this machine runs)."""
    return model if checkpoint is not None or "@" in model else f"{model}@{scale}"


def main(spec_json: str) -> None:
    """The spawn target: set up the process, then serve until Stop or the driver's death."""
    spec = WorkerSpec(**json.loads(spec_json))
    _die_with_parent()
    logfile = open(spec.log, "a", buffering=1)   # noqa: SIM115 -- the process's stdout/stderr from here on
    os.dup2(logfile.fileno(), 1)
    os.dup2(logfile.fileno(), 2)
    logging.basicConfig(stream=logfile, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if spec.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, spec.cores)   # its share of the cores, so workers on few cores do not thrash
    import torch

    torch.set_num_threads(max(1, len(spec.cores)))
    log.info("worker %s (start %d) pid %d cores %s threads %d", spec.key, spec.generation, os.getpid(), spec.cores,
             torch.get_num_threads())
    Worker(spec).serve()


def _die_with_parent() -> None:
    parent = os.getppid()
    try:   # Linux: the kernel sends SIGKILL when the driver dies, however it dies
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() != parent:   # the driver died before prctl took effect
        os._exit(1)

    def watch() -> None:   # elsewhere (and as a second guard): poll the parent pid
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="plait-parent-watch").start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C reaches the whole group: the driver drains, then stops us


class Worker:
    def __init__(self, spec: WorkerSpec) -> None:
        import zmq

        from plait.codegen.program import load_program

        self.spec = spec
        self.boot = uuid.uuid4().hex   # this start of the worker (a restarted pod may reuse its pid)
        self.connected = False         # an attached worker: the driver's ROUTER has answered its handshake
        self.stop_requested = threading.Event()   # SIGTERM in a pod: finish what is queued, then exit
        text = Path(spec.program).read_text()
        self.program = load_program(text, spec.program)
        if self.program.plait_version != spec.plait_version or self.program.graph_hash != spec.graph_hash:
            raise RuntimeError(f"{spec.program} was made by plait {self.program.plait_version} from graph "
                               f"{self.program.graph_hash[:12]}, but this run is plait {spec.plait_version}, graph "
                               f"{spec.graph_hash[:12]}\n  To fix: re-plan (`plait plan FILE:AGENT --out DIR`).")
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, spec.key.encode())
        self.sock.setsockopt(zmq.LINGER, 1000)
        self.out = self.ctx.socket(zmq.PUSH)
        self.out.setsockopt(zmq.LINGER, 1000)
        self.monitor: Any = None
        if spec.attached:   # across machines: a vanished peer (no FIN) is noticed by heartbeats, not never
            for sock in (self.sock, self.out):
                sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
                sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
                sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)
            self.monitor = self.sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        self.kernels: dict[tuple[str, str, str], Any] = {}
        self.engine: Any = None
        self.values: dict[int, Any] = {}
        self.received: set[int] = set()          # value ids made by a Recv: their storage is reused once released
        self.buffers = RecvBuffers()
        self.owner: dict[int, int] = {}          # value id -> request
        self.next_value = 0
        self.lock = threading.Lock()
        self.finished: queue.Queue[Done | Partial | Ack] = queue.Queue()   # from transfer, tool, remote-call threads
        self.wake_r, self.wake_w = os.pipe()   # a transfer thread writes a byte when it put a Done in `finished`
        self.ack_due: dict[int, float] = {}      # transfer call -> when (monotonic) to acknowledge it if not done
        os.set_blocking(self.wake_r, False)
        self.edges: dict[str, tuple[Any, queue.Queue[Any]]] = {}
        self.store: Any = None
        # tools run on their own thread, one at a time in arrival order, so the main loop answers pings (health)
        # and cancels while a tool runs for seconds
        self.tool_runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plait-tool")
        self.tools_running: dict[int, tuple[str, float]] = {}   # call -> (tool, monotonic start)
        self._load()
        # connected once loaded: a driver routes to a connection at once, and an attached worker's earlier start
        # may still be thought alive, so nothing should reach this one before it can say Hello
        self.sock.connect(spec.driver)
        self.out.connect(spec.answers)
        endpoint = self.program.pool.endpoint   # a remote pool: whole calls go to its endpoint, no engine here
        self.llm: Any = (RemoteCalls(endpoint, self.program, self._finish) if endpoint is not None
                         else LLMCalls(self.engine, self.program, self._done))

    # --- kernels --------------------------------------------------------------------------------------------
    def _load(self) -> None:
        """Instantiate and load every kernel of the program once (weights, the index, the user's tools)."""
        from plait.codegen.kernels.runtime import KernelContext, instantiate

        self.speech = any(s.kernel in ("speech-decoder", "vocoder") for s in self.program.steps)
        context = KernelContext(checkpoints={k: Path(v) for k, v in self.spec.checkpoints.items()},
                                indexes={k: Path(v) for k, v in self.spec.indexes.items()},
                                source=self.program.source)
        for step in self.program.steps:
            if step.kernel == "llm-engine":   # one engine per worker, in its pool's role (a split side, or unified)
                if self.engine is None and self.program.pool.endpoint is None:
                    self.engine = self._engine(step.model or "", step.role or "unified")
                continue
            speech = step.kernel in ("speech-decoder", "vocoder") or step.kernel == "tokenizer" and self.speech
            if step.kernel in ("transfer", "glue") or not speech and (step.kernel == "tokenizer"
                                                                       or step.op == "op.prefill"):
                continue   # transfers are the driver's; the engine and encoder tokenize themselves, speech does not
            key = (step.op, step.loc or "", _key_attr(step))
            if key not in self.kernels:
                kernel = instantiate(step, self.program, context)
                kernel.load()
                self.kernels[key] = kernel
        log.info("loaded kernels %s%s", sorted(k[0] + " " + k[2] for k in self.kernels),
                 " and the LLM engine" if self.engine is not None else "")

    def _engine(self, model: str, role: str) -> Any:
        from plait.codegen.llm import build_engine

        weights = self.spec.checkpoints.get(model)
        name = run_model(model, weights, self.spec.scale)
        log.info("LLM engine %s, %s role (%s)", name, role, weights or "random weights")
        return build_engine(name, weights, role=role, max_batch=32, kv_cache_bytes=64 << 20)

    def _kernel(self, op: str, run: Run) -> Any:
        exact = self.kernels.get((op, run.loc, run.target))
        if exact is not None:
            return exact
        for (kop, _, attr), kernel in self.kernels.items():
            if kop == op and (attr == run.target or op == "op.format" and _ == run.loc):
                return kernel
        raise RuntimeError(f"pool {self.spec.pool} has no {op} step for {run.kind} {run.target!r} at {run.loc}")

    # --- the loop -------------------------------------------------------------------------------------------
    def serve(self) -> bool:
        """Serve until Stop (or, attached, SIGTERM): True. An attached worker whose driver went away: False (its
        tensors and Gloo pairs belong to that driver's run, so it exits and its pod starts clean)."""
        import zmq

        if self.stop_requested.is_set():   # told to stop while it loaded: never said Hello, nothing to finish
            self._close()
            return True
        self.sock.send(encode(Hello(self.spec.pool, self.spec.replica, os.getpid(), self.spec.cores, boot=self.boot,
                                    graph_hash=self.program.graph_hash, address=self.spec.address)))
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.wake_r, zmq.POLLIN)
        if self.monitor is not None:
            poller.register(self.monitor, zmq.POLLIN)
        stopping = False
        while True:
            busy = self.llm.busy()
            # idle, block until a message or a finished transfer comes, or an acknowledgement is due
            wait_ms = 0 if busy else 100 if not self.ack_due else max(0, (min(self.ack_due.values())
                                                                            - time.monotonic()) * 1e3)
            ready = dict(poller.poll(math.ceil(wait_ms)))
            if self.monitor is not None and self.monitor in ready and not self._driver_connected():
                log.error("the driver at %s went away: exiting, so this worker starts clean for the next one",
                          self.spec.driver)
                self._close()
                return False
            if self.stop_requested.is_set() and not stopping:   # SIGTERM: the driver sends nothing new from here
                stopping = True
                self.out.send(encode(Leaving(self.spec.pool, self.spec.replica, self.boot)))
            for msg in waiting(self.sock, 64) if self.sock in ready else ():
                if isinstance(msg, MessageError):
                    log.warning("%s", msg)
                    self.out.send(encode(Refused(str(msg))))
                elif isinstance(msg, Stop):
                    stopping = True
                else:
                    self._handle(msg)
            if busy:
                for out in self.llm.step():   # Partial pieces of streamed calls, and Done
                    self.out.send(encode(out))
            if self.wake_r in ready:   # empty the pipe: the Dones themselves are in self.finished
                try:
                    while os.read(self.wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            while not self.finished.empty():
                done = self.finished.get()
                self.ack_due.pop(done.call, None)   # the Done acknowledges it
                self.out.send(encode(done))
            if self.ack_due:
                now = time.monotonic()
                for call in [c for c, due in self.ack_due.items() if due <= now]:
                    del self.ack_due[call]
                    self.out.send(encode(Ack(call)))
            if stopping and not busy and not len(self.llm) and not self.tools_running and self.finished.empty():
                log.info("stopping")
                self._close()
                return True

    def _driver_connected(self) -> bool:
        """Read the DEALER's monitor events: False once the driver disconnected after a handshake."""
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        while self.monitor.poll(0, zmq.POLLIN):
            event = recv_monitor_message(self.monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.connected = True
                log.info("connected to the driver at %s", self.spec.driver)
            elif event == zmq.EVENT_DISCONNECTED and self.connected:
                self.connected = False
                return False
        return True

    def _close(self) -> None:
        if self.monitor is not None:
            self.sock.disable_monitor()
            self.monitor.close()
        self.sock.close()
        self.out.close()
        self.ctx.term()

    def status(self) -> dict[str, Any]:
        """What a pod's health check reports (read from another thread: plain attributes only)."""
        return {"pool": self.spec.pool, "replica": self.spec.replica, "pid": os.getpid(), "boot": self.boot,
                "driver": self.spec.driver, "connected": self.connected, "llm_running": len(self.llm),
                "tensors_held": len(self.values)}

    def _handle(self, msg: Any) -> None:
        if isinstance(msg, Ping):   # answered from the main loop: a worker stuck in a kernel does not answer
            now = time.monotonic()
            tools = [{"tool": name, "seconds": round(now - start, 3)}
                     for name, start in list(self.tools_running.values())]   # a copy: the tool thread pops
            self.out.send(encode(Done(msg.call, value={"pool": self.spec.pool, "replica": self.spec.replica,
                                                         "pid": os.getpid(), "boot": self.boot,
                                                         "llm_running": len(self.llm),
                                                         "tensors_held": len(self.values), **self.llm.health(),
                                                         **({"tools_running": tools} if tools else {})})))
            return
        if isinstance(msg, Cancel):
            for done in self.llm.cancel(msg.request):
                self.out.send(encode(done))
            return
        if isinstance(msg, Release):
            freed = []
            with self.lock:
                for vid in [v for v, r in self.owner.items() if r == msg.request]:
                    value = self.values.pop(vid, None)
                    self.owner.pop(vid, None)
                    if vid in self.received:
                        self.received.discard(vid)
                        freed.append(value)
            while freed:   # one reference each (this variable), so RecvBuffers can tell nobody else holds it
                value = freed.pop()
                self.buffers.give(value)
                del value
            return
        if isinstance(msg, Send | Recv):
            self.ack_due[msg.call] = time.monotonic() + ACK_AFTER_S
            self._edge(msg.edge, msg.rank)[1].put(msg)
            return
        if isinstance(msg, Run):
            if msg.kind != "tool" or msg.sleep_s is not None:   # a tool's call: acknowledged if it runs long
                self.out.send(encode(Ack(msg.call)))
            if msg.kind == "tool":
                self.tools_running[msg.call] = (msg.target, time.monotonic())
                self.tool_runner.submit(self._guarded, msg, self._finish)
                return
            self._guarded(msg, lambda m: self.out.send(encode(m)))

    def _guarded(self, run: Run, send: Any) -> None:
        """Run `run`, its answers through `send`; a failure fails the request, and the worker lives on."""
        try:
            self._run(run, send)
        except Exception as err:
            log.exception("call %d (%s %s) failed", run.call, run.kind, run.target)
            send(Done(run.call, error=f"{type(err).__name__}: {err}"))
        finally:
            self.tools_running.pop(run.call, None)

    def _args(self, run: Run) -> list[Any]:
        with self.lock:
            return [self.values[run.held[i]] if i in run.held else a for i, a in enumerate(run.args)]

    def _run(self, run: Run, send: Any) -> None:
        args = self._args(run)
        if run.kind == "llm":
            self.llm.add(run, args)
            return
        start, start_ns = time.perf_counter(), time.time_ns()
        if run.kind == "prompt":
            value = self._kernel("op.format", run)(*args)
        elif run.kind == "embed":
            value = self._kernel("op.encode", run)(args[0])["embedding"]
        elif run.kind == "retrieve":
            value = self._kernel("op.ann_search", run)(args[0])
        elif run.kind == "tool":
            if run.sleep_s is not None:   # --tool-latency declared: the declared latency, not the tool
                time.sleep(run.sleep_s)
                value = None
            else:   # a tool that returns within SLOW_AFTER_S is acknowledged by its Done (one message, not two)
                value = self._kernel("op.py_call", run)(*args, on_slow=lambda: send(Ack(run.call)))
        elif run.kind in ("stt", "tts"):
            value = self._speech(run, args)
        else:
            raise RuntimeError(f"a worker does not run {run.kind} steps")
        log.debug("call %d %s %s: %.1f ms", run.call, run.kind, run.target, (time.perf_counter() - start) * 1e3)
        wav = None
        if run.op == "op.vocode":   # the vocoder: keep the waveform, report its WAV
            value, wav = value["audio"], {"wav": value["wav"], "sample_rate": value["sample_rate"]}
        done = self._done(run.call, run.request, value)
        if wav is not None:
            done.value = wav
        done.start_ns, done.end_ns = start_ns, time.time_ns()
        send(done)

    def _speech(self, run: Run, args: list[Any]) -> Any:
        """One op of a speech step (the planner splits stt and tts over pools): stt is encode -> prefill ->
        decode (+ detokenize, text back to the driver); tts is prefill (tokenize) -> decode -> vocode. Decoder
        state crosses pools as one packed tensor (SpeechState.pack)."""
        x = args[0]
        if run.op == "op.encode":
            return self._kernel("op.encode", run)(x)["hidden"]
        if run.op == "op.prefill":
            decoder = self._kernel("op.prefill", run)
            if run.kind == "stt":
                return decoder.prefill(context=x).pack()
            return decoder.prefill(self._kernel("op.tokenize", run)(x)).pack()
        if run.op == "op.decode":
            decoder = self._kernel("op.decode", run)
            tokens = decoder.decode(decoder.unpack(x), run.max_tokens, ignore_eos=run.ignore_eos)
            return self._kernel("op.detokenize", run)(tokens) if run.kind == "stt" else tokens
        if run.op == "op.vocode":
            from plait.codegen.kernels.audio import write_wav

            out = self._kernel("op.vocode", run)(x)
            wav = Path(self.spec.log).parent / f"request{run.request}-call{run.call}-{run.target}.wav"
            write_wav(wav, out["audio"], out["sample_rate"])
            return {"audio": out["audio"], "wav": str(wav), "sample_rate": out["sample_rate"]}
        raise RuntimeError(f"a worker does not run {run.op!r} of a {run.kind} step")

    def _done(self, call: int, request: int, value: Any) -> Done:
        import torch

        if isinstance(value, torch.Tensor):   # tensors stay here; the driver gets their shape and dtype
            with self.lock:
                vid = self.next_value
                self.next_value += 1
                self.values[vid], self.owner[vid] = value, request
            ref = TensorRef(self.spec.key, vid, list(value.shape), str(value.dtype).removeprefix("torch."),
                            self.spec.generation)
            return Done(call, tensor=ref)
        return Done(call, value=value)

    # --- transfers: a two-rank Gloo group per edge ----------------------------------------------------------
    def _edge(self, edge: str, rank: int) -> tuple[Any, queue.Queue[Any]]:
        if edge not in self.edges:
            jobs: queue.Queue[Any] = queue.Queue()
            thread = threading.Thread(target=self._transfers, args=(edge, rank, jobs), daemon=True,
                                      name=f"plait-edge-{edge}")
            self.edges[edge] = (thread, jobs)
            thread.start()
        return self.edges[edge]

    def _transfers(self, edge: str, rank: int, jobs: queue.Queue[Any]) -> None:
        import torch

        try:
            group = self._pair(edge, rank)
        except Exception as err:   # an unresolvable address, a peer that never came: each transfer fails, none hangs
            log.exception("edge %s: no Gloo pair", edge)
            while True:
                msg = jobs.get()
                self._finish(Done(msg.call, error=f"transfer on edge {edge} failed: no Gloo pair ({err})"))
        while True:
            msg = jobs.get()
            start_ns = time.time_ns()
            try:
                if isinstance(msg, Send):
                    with self.lock:
                        tensor = self.values[msg.value].contiguous()
                    group.send([tensor], 1 - rank, msg.tag).wait()  # type: ignore[attr-defined]
                    done = Done(msg.call, start_ns=start_ns, end_ns=time.time_ns())
                else:
                    tensor = self.buffers.take(msg.shape, getattr(torch, msg.dtype))
                    group.recv([tensor], 1 - rank, msg.tag).wait()  # type: ignore[attr-defined]
                    done = self._done(msg.call, msg.request, tensor)
                    assert done.tensor is not None
                    with self.lock:
                        self.received.add(done.tensor.value)
                    done.start_ns, done.end_ns = start_ns, time.time_ns()
                del tensor   # held by self.values alone now: once released, its storage can be reused
            except Exception as err:
                log.exception("transfer %d on edge %s failed", msg.call, edge)
                done = Done(msg.call, error=f"transfer on edge {edge} failed: {err}")
            self._finish(done)

    def _pair(self, edge: str, rank: int) -> Any:
        """This worker's side of `edge`'s two-rank Gloo group, met through the driver's TCPStore."""
        import torch.distributed as dist

        store = dist.TCPStore(self.spec.store_host, self.spec.store_port, is_master=False)
        prefixed = dist.PrefixStore(f"edge/{edge}/", store)
        if self.spec.address:   # listen where peers reach this worker (the store tells them the address)
            options = dist.ProcessGroupGloo._Options()  # type: ignore[attr-defined]
            options._timeout = timedelta(seconds=120)
            options._devices = [dist.ProcessGroupGloo.create_device(hostname=self.spec.address)]
            group = dist.ProcessGroupGloo(prefixed, rank, 2, options)
        else:
            group = dist.ProcessGroupGloo(prefixed, rank, 2, timedelta(seconds=120))
        log.info("edge %s: rank %d of a Gloo pair", edge, rank)
        return group

    def _finish(self, done: Done | Partial | Ack) -> None:
        """From a transfer, tool or remote-call thread: hand `done` to the main loop and wake it (it sends; sockets
        are its alone)."""
        self.finished.put(done)
        os.write(self.wake_w, b"\0")


def _key_attr(step: Any) -> str:
    """What tells two steps of one op apart: the tool, index or model they run."""
    for attr in ("tool", "index"):
        if attr in step.attrs:
            return str(step.attrs[attr])
    return step.model or ""


if __name__ == "__main__":   # pragma: no cover -- spawned through multiprocessing, not run directly
    main(sys.argv[1])
