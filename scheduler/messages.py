"""Control messages between the driver and its workers: msgspec structs, msgpack-encoded, over ZeroMQ.

Nothing received is unpickled: a frame is decoded as one of the structs below or refused (`decode` raises
MessageError), so a peer can send data, never code. Tensors do not travel here; their shape and dtype do,
ahead of the torch.distributed transfer that moves their bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec


class MessageError(ValueError):
    """A frame that is not one of plait's control messages (e.g. a pickle): it is refused, not executed."""


class _Msg(msgspec.Struct, tag=True):
    pass


class Hello(_Msg):
    """Worker -> driver once its kernels are loaded: its pool, replica, pid and cores; `boot` names this start of
    it (a pod's restarted worker may reuse the pid), `graph_hash` the program it loaded, and `address` where its
    peers reach it (an attached worker's stable name through its pool's headless Service)."""

    pool: str
    replica: int
    pid: int
    cores: list[int]
    boot: str = ""
    graph_hash: str = ""
    address: str = ""


class TensorRef(_Msg):
    """A tensor that stays in the worker holding it: the driver keeps only its id, shape and dtype."""

    holder: str          # worker key `pool/replica`
    value: int           # the holder's value id
    shape: list[int]
    dtype: str
    generation: int = 0  # which start of the holder made it: a restarted worker (a later one) holds nothing


class Run(_Msg):
    """Driver -> worker: run one agent-level step (node) of one request with these operands.

    args are JSON values, or TensorRefs this worker holds. `max_tokens`/`ignore_eos` override the LLM call's
    sampling (--follow-figures draws them from the output_tokens figure).
    """

    call: int
    request: int
    kind: str            # the AgentGraph node kind: prompt, llm, embed, retrieve, tool, stt, tts
    target: str
    loc: str
    args: list[Any]
    held: dict[int, int] = {}      # operand index -> the id of a tensor this worker holds (its arg is None)
    max_tokens: int | None = None
    ignore_eos: bool = False
    sleep_s: float | None = None   # --tool-latency declared: sleep this long instead of calling the tool
    op: str = ""                   # a speech step's op on this pool (op.encode, op.prefill, op.decode, op.vocode);
                                   # for an LLM call split over pools, op.prefill or op.decode
    sampling: dict[str, Any] | None = None   # a split LLM call's prefill: the decode step's attrs (sampling,
                                             # max_tokens), since the first token is sampled on the prefill pool
    stream: bool = False           # an LLM call: send its text as it comes (Partial), before its Done
    prompt_tokens: int | None = None   # --follow-figures: the prompt's length drawn from its figure (a scaled-down
                                       # model's byte tokenizer makes ~4x the tokens the plan counts)
    deadline: float | None = None  # `plait serve --policy edf`: the request's deadline (time.time() seconds); the
                                   # engine admits its waiting calls earliest deadline first


class Send(_Msg):
    """Driver -> worker: send held tensor `value` to the peer over `edge` (a two-rank Gloo group) with `tag`."""

    call: int
    edge: str
    rank: int
    value: int
    tag: int


class Recv(_Msg):
    """Driver -> worker: receive a tensor of this shape and dtype from `edge` with `tag`, hold it as a new value."""

    call: int
    request: int
    edge: str
    rank: int
    tag: int
    shape: list[int]
    dtype: str


class Release(_Msg):
    """Driver -> worker: forget the tensors of a finished request."""

    request: int


class Ping(_Msg):
    """Driver -> worker: a health check; the worker answers Done with its pool, pid and work in flight."""

    call: int


class Cancel(_Msg):
    """Driver -> worker: drop the LLM calls of `request` (its deadline passed or its client left); each is
    answered Done with an error."""

    request: int


class Stop(_Msg):
    """Driver -> worker: finish what is queued and exit."""


class Leaving(_Msg):
    """Worker -> driver: an attached worker was told to stop (its pod's SIGTERM): it finishes what it holds and
    exits; the driver sends it nothing new (`boot` names the start that leaves)."""

    pool: str
    replica: int
    boot: str


class Ack(_Msg):
    """Worker -> driver: `call` was received and queued (ZeroMQ drops silently; the driver waits for this)."""

    call: int


class Done(_Msg):
    """Worker -> driver: `call` finished; value is a JSON value or a TensorRef (tensors stay on the worker).

    A split LLM call's prefill answers with its KV cache as `tensor` (k and v stacked: [2, layers, tokens, kv heads,
    head_dim]) and the engine's export header (token ids, shapes, dtype) as `value`."""

    call: int
    value: Any = None
    tensor: TensorRef | None = None   # set instead of value when the result is a tensor the worker keeps
    error: str | None = None
    ttft_s: float | None = None
    tpot_s: float | None = None
    tokens: int | None = None
    token_ids: list[int] | None = None   # a finished LLM call's output tokens
    start_ns: int = 0   # when the worker began computing (time.time_ns: one clock on one machine)
    end_ns: int = 0


class Partial(_Msg):
    """Worker -> driver: the next piece of a streamed LLM call's text (its Done follows with the whole)."""

    call: int
    text: str


class Refused(_Msg):
    """Worker -> driver: a frame that was not a control message was dropped, unread."""

    why: str


Message = (Hello | Run | Send | Recv | Release | Ping | Cancel | Stop | Leaving | Ack | Done | Partial | Refused
           | TensorRef)
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode(msg: _Msg) -> bytes:
    return _encoder.encode(msg)


def decode(frame: bytes) -> Any:
    """The message in `frame`; MessageError (never an unpickle) when it is not one."""
    try:
        return _decoder.decode(frame)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise MessageError(f"refused a {len(frame)}-byte frame that is not a plait control message: {err}") from None


def waiting(sock: Any, most: int = 1 << 30) -> Iterator[Any]:
    """The messages waiting on ZeroMQ socket `sock` (at most `most`), decoded, without blocking; a frame that is
    not a control message comes as its MessageError, for the caller to log or answer."""
    import zmq

    for _ in range(most):
        try:
            frame = sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            return
        try:
            yield decode(frame)
        except MessageError as err:
            yield err
