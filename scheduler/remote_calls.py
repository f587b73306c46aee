"""A remote pool's worker side: whole LLM calls sent to an OpenAI-compatible endpoint through the official client.

The endpoint tokenizes, computes and detokenizes; the worker sends the prompt's text and streams the answer back
(so a streamed call's pieces reach the driver as they come), one thread per call in flight, each bounded by the
endpoint's timeout and retries. Finished calls (Done) and pieces (Partial) go to the worker's main loop through
`finish`, which wakes it (only the main loop touches the sockets). The same interface as LLMCalls.

`probe` checks an endpoint before a run starts (and `plait cost --remote` measures with it): reachable, the key
accepted, the model served; each failure is a RemoteError naming the input and the fix.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plait.planner.endpoint import RemoteEndpoint
from plait.scheduler.messages import Done, Partial, Run
from plait.sdk.errors import PlaitError


class RemoteError(PlaitError):
    """An endpoint that cannot be used: unreachable, refusing the key, not serving the model, a missing variable."""


def api_key(endpoint: RemoteEndpoint, where: str) -> str:
    """The key from the variable `endpoint.api_key_env` names ('none' without one: the client wants a string)."""
    if endpoint.api_key_env is None:
        return "none"
    key = os.environ.get(endpoint.api_key_env)
    if not key:
        raise RemoteError(f"{where}: environment variable {endpoint.api_key_env} (api_key_env) is not set, so "
                          f"there is no API key for {endpoint.base_url}\n  To fix: export {endpoint.api_key_env}=KEY "
                          "before starting plait (the inventory names the variable, never the key).")
    return key


def client(endpoint: RemoteEndpoint, key: str, timeout_s: float | None = None, retries: int | None = None) -> Any:
    import openai

    return openai.OpenAI(base_url=endpoint.base_url, api_key=key, timeout=timeout_s or endpoint.timeout_s,
                         max_retries=endpoint.max_retries if retries is None else retries)


def explain(err: Exception, endpoint: RemoteEndpoint, where: str) -> RemoteError:
    """A RemoteError for an openai exception: what failed at which URL and how to fix it."""
    import openai

    url = endpoint.base_url
    if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
        var = endpoint.api_key_env
        fix = (f"set {var} to the key the server expects" if var else
               "name the variable holding its key with api_key_env (plait cost: --api-key-env VAR)")
        return RemoteError(f"{where}: {url} refused the API key ({err.status_code})\n  To fix: {fix}.")
    if isinstance(err, openai.NotFoundError):
        return RemoteError(f"{where}: {url} does not serve model {endpoint.served_model!r} ({err.message})\n"
                           f"  To fix: use one of the ids its {url}/models lists (served_model; plait cost: --model).")
    if isinstance(err, openai.APITimeoutError):
        return RemoteError(f"{where}: {url} did not answer within {endpoint.timeout_s:g} s\n  To fix: check the "
                           "server is up and not overloaded, or raise timeout_s.")
    if isinstance(err, openai.APIConnectionError):
        return RemoteError(f"{where}: cannot reach {url} ({err.__cause__ or err})\n  To fix: start the server, or "
                           "correct base_url (it ends in /v1, e.g. http://HOST:8000/v1).")
    return RemoteError(f"{where}: {url} failed: {type(err).__name__}: {err}")


def probe(endpoint: RemoteEndpoint, where: str, timeout_s: float = 10.0, check_model: bool = True) -> list[str]:
    """Check that the endpoint answers, takes the key and serves `served_model` (unless not `check_model`); the
    model ids it lists."""
    import openai

    api = client(endpoint, api_key(endpoint, where), timeout_s, retries=0)
    try:
        ids = [m.id for m in api.models.list()]
    except openai.APIError as err:
        raise explain(err, endpoint, where) from None
    if check_model and ids and endpoint.served_model not in ids:
        from plait.planner.catalog import did_you_mean

        raise RemoteError(f"{where}: {endpoint.base_url} does not serve model {endpoint.served_model!r}."
                          f"{did_you_mean(endpoint.served_model, ids)}\n  To fix: use one of {', '.join(ids)} "
                          "(served_model; plait cost: --model).")
    return ids


@dataclass
class _Call:
    run: Run
    start: float
    start_ns: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    stream: Any = None


class RemoteCalls:
    """The calls of one remote pool in flight, each on its own thread (LLMCalls' interface)."""

    def __init__(self, endpoint: RemoteEndpoint, program: Any, finish: Callable[[Done | Partial], None]) -> None:
        self.endpoint, self.program, self.finish = endpoint, program, finish
        self.api = client(endpoint, api_key(endpoint, f"remote pool {program.pool.id}"))
        self.calls: dict[int, _Call] = {}
        self.lock = threading.Lock()
        self.sent = 0

    def __len__(self) -> int:
        return len(self.calls)

    def busy(self) -> bool:
        return False   # nothing to step here: finished calls wake the main loop through `finish`

    def step(self) -> list[Done | Partial]:
        return []

    def health(self) -> dict[str, Any]:
        return {"remote": self.endpoint.base_url, "served_model": self.endpoint.served_model, "calls_sent": self.sent}

    def cancel(self, request: int) -> list[Done]:
        """Stop every call of `request` (its stream is closed: the endpoint aborts it); each answers its error."""
        out = []
        with self.lock:
            for call_id, call in list(self.calls.items()):
                if call.run.request == request:
                    call.cancelled.set()
                    if call.stream is not None:   # the endpoint sees the connection close and aborts the call
                        try:
                            call.stream.close()
                        except Exception:   # closing under the reading thread: it stops either way
                            pass
                    del self.calls[call_id]
                    out.append(Done(call_id, error="cancelled: the request's deadline passed or its client left"))
        return out

    def add(self, run: Run, args: list[Any]) -> None:
        call = _Call(run, time.perf_counter(), time.time_ns())
        with self.lock:
            self.calls[run.call] = call
            self.sent += 1
        threading.Thread(target=self._one, args=(call, str(args[0])), daemon=True,
                         name=f"plait-remote-{run.call}").start()

    def _sampling(self, run: Run) -> dict[str, Any]:
        decodes = [s for s in self.program.steps if s.op == "op.decode"]
        attrs = next((s.attrs for s in decodes if s.loc == run.loc), decodes[0].attrs if decodes else {})
        s = attrs.get("sampling") or {}
        out: dict[str, Any] = {"max_tokens": int(run.max_tokens or attrs.get("max_tokens", 16)),
                               "temperature": float(s.get("temperature", 0.0)), "top_p": float(s.get("top_p", 1.0))}
        if s.get("stop"):
            out["stop"] = [str(x) for x in s["stop"]]
        if s.get("seed") is not None:
            out["seed"] = int(s["seed"])
        if run.ignore_eos:   # --follow-figures: the drawn output length (vLLM's and plait's extension)
            out["extra_body"] = {"ignore_eos": True}
        return out

    def _one(self, call: _Call, prompt: str) -> None:
        import openai

        run = call.run
        pieces: list[str] = []
        first: float | None = None
        tokens = 0
        try:
            stream = self.api.completions.create(model=self.endpoint.served_model, prompt=prompt, stream=True,
                                                 stream_options={"include_usage": True}, **self._sampling(run))
            call.stream = stream
            if call.cancelled.is_set():
                stream.close()
            with stream:
                for chunk in stream:
                    if call.cancelled.is_set():
                        return   # closing the stream drops the connection: the endpoint aborts the call
                    if chunk.usage is not None:
                        tokens = chunk.usage.completion_tokens
                    text = chunk.choices[0].text if chunk.choices else ""
                    if not text:
                        continue
                    first = first or time.perf_counter()
                    pieces.append(text)
                    if run.stream:
                        self.finish(Partial(run.call, text))
            now = time.perf_counter()
            n = tokens or len(pieces)
            done = Done(run.call, value="".join(pieces), tokens=n,
                        ttft_s=(first or now) - call.start,
                        tpot_s=(now - first) / (n - 1) if first is not None and n > 1 else None)
        except openai.APIError as err:
            done = Done(run.call, error=str(explain(err, self.endpoint, f"remote pool {self.program.pool.id}")))
        except Exception as err:   # the request fails, the worker lives on
            done = Done(run.call, error=f"remote pool {self.program.pool.id}: {type(err).__name__}: {err}")
        with self.lock:
            if self.calls.pop(run.call, None) is None:
                return   # cancelled meanwhile: its Done went out already
        done.start_ns, done.end_ns = call.start_ns, time.time_ns()
        self.finish(done)
