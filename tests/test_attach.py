"""The driver's attach mode against hand-made ZeroMQ peers (real sockets on loopback, the real driver): what a
cluster's open control port may receive must not stop the driver's I/O thread: a message of extra frames, a
stranger's Hello from a pod that is already gone; and a pod that leaves (its SIGTERM) gets no new call."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq

from plait.scheduler.messages import Done, Hello, Leaving, Ping, decode, encode
from plait.scheduler.worker import WorkerSpec
from plait.scheduler.workers import Attach, WorkerLost, Workers


def _spec(tmp_path: Path) -> WorkerSpec:
    return WorkerSpec(pool="p", replica=0, program="", driver="", store_port=0, cores=[], log=str(tmp_path / "p.log"),
                      plait_version="0", graph_hash="g" * 64)


class FakePod:
    """A worker's two sockets, answering Pings by hand."""

    def __init__(self, ctx: zmq.Context, ports: tuple[int, int, int], key: str, graph_hash: str) -> None:
        self.dealer = ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.IDENTITY, key.encode())
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(f"tcp://127.0.0.1:{ports[0]}")
        self.push = ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(f"tcp://127.0.0.1:{ports[1]}")
        pool, replica = key.split("/")
        self.dealer.send(encode(Hello(pool, int(replica), 1, [], boot="b1", graph_hash=graph_hash)))

    def answer_pings(self, seconds: float) -> list[object]:
        got: list[object] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.dealer.poll(20):
                msg = decode(self.dealer.recv())
                got.append(msg)
                if isinstance(msg, Ping):
                    self.push.send(encode(Done(msg.call, value={"pool": "p"})))
        return got

    def close(self) -> None:
        self.dealer.close()
        self.push.close()


@pytest.fixture()
def attached(tmp_path: Path):
    import threading

    ctx = zmq.Context()
    ports: list[tuple[int, int, int]] = []
    made: list[Workers] = []

    def start() -> None:
        made.append(Workers([_spec(tmp_path)], tmp_path, start_timeout_s=20,
                            attach=Attach("127.0.0.1", 0, 0, 0),
                            on_bound=lambda line: ports.append(tuple(int(p) for p in line.rsplit("=", 1)[1].split(",")))))

    thread = threading.Thread(target=start)
    thread.start()
    while not ports:
        time.sleep(0.01)
    pod = FakePod(ctx, ports[0], "p/0", "g" * 64)
    thread.join(20)
    assert made, "the driver did not take the pod's Hello"
    yield made[0], pod, ctx, ports[0]
    made[0].close()
    pod.close()
    ctx.term()


def test_odd_messages_and_a_vanished_strangers_hello_leave_the_driver_serving(attached) -> None:
    workers, pod, ctx, ports = attached
    noise = ctx.socket(zmq.DEALER)
    noise.setsockopt(zmq.LINGER, 0)
    noise.connect(f"tcp://127.0.0.1:{ports[0]}")
    noise.send_multipart([b"", b"not", b"plait"])   # three frames at the ROUTER (a REQ client's shape)
    stranger = ctx.socket(zmq.DEALER)
    stranger.setsockopt(zmq.IDENTITY, b"x/7")
    stranger.setsockopt(zmq.LINGER, 0)
    stranger.connect(f"tcp://127.0.0.1:{ports[0]}")
    stranger.send(encode(Hello("x", 7, 2, [], boot="s", graph_hash="g" * 64)))
    time.sleep(0.05)
    stranger.close()   # gone before the driver's Stop can reach it
    noise.close()
    future = workers.call("p/0", Ping)
    pod.answer_pings(1.0)
    assert future.result(5).value == {"pool": "p"}
    assert workers.thread.is_alive() and "x/7" not in workers.state and not workers.unroutable


def test_a_leaving_pod_gets_no_new_call_and_its_disconnect_is_a_death(attached) -> None:
    workers, pod, _, _ = attached
    pod.push.send(encode(Leaving("p", 0, "b1")))   # its pod's SIGTERM
    deadline = time.monotonic() + 5
    while workers.state["p/0"] != "leaving":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(WorkerLost, match="is leaving") as lost:
        workers.call("p/0", Ping).result(1)
    assert lost.value.sent is False   # never left the driver: safe to run elsewhere
    pod.close()   # it finished and exited
    deadline = time.monotonic() + 5
    while workers.state["p/0"] != "restarting":   # handled as a death: waiting for its next start's Hello
        assert time.monotonic() < deadline
        time.sleep(0.02)
