"""What stands in front of both servers: bearer-token auth, a cap on request bodies, and the rule that a
server reachable from other machines must have an API key. Errors are OpenAI-shaped JSON
({"error": {"message", "type", "param", "code"}}), which the openai client and curl users both read."""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from typing import Any

from pydantic import ValidationError

from plait.sdk.errors import PlaitError

Scope = dict[str, Any]


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def validation_error(err: ValidationError) -> dict[str, Any]:
    """A 422 body naming each field that is wrong (`inputs.question: Field required`)."""
    problems = [(".".join(str(x) for x in e["loc"]) or "body", e["msg"]) for e in err.errors()]
    message = "; ".join(f"{where}: {msg}" for where, msg in problems)
    return error_body(f"invalid request body: {message}", param=problems[0][0])


async def send_json(send: Any, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (127.0.0.0/8, ::1); a name is resolved."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in infos)


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond this machine without an API key: anyone who reaches it could run the agent."""
    if api_key is None and not is_loopback(host):
        raise PlaitError(f"refusing to listen on {host}, which is not a loopback address, without an API key: "
                         "anyone who can reach it could run requests\n  To fix: pass --api-key KEY (or set "
                         "PLAIT_API_KEY); clients then send `Authorization: Bearer KEY`. Or keep --host 127.0.0.1.")
    if api_key is not None and len(api_key) < 8:
        raise PlaitError(f"the API key is {len(api_key)} characters long; use at least 8 (e.g. "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`)")


class BearerAuth:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <key>` (compared in constant time)."""

    def __init__(self, app: Any, key: str | None) -> None:
        self.app, self.key = app, None if key is None else key.encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.key is None:
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.key):
            why = "no Authorization header" if not header else "a wrong API key or scheme"
            await send_json(send, 401, error_body(
                f"unauthorized: {why}. Send `Authorization: Bearer <the server's API key>`.",
                "authentication_error", code="invalid_api_key"), ((b"www-authenticate", b"Bearer"),))
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413, by its Content-Length or, for a chunked one,
    by reading it here first (it is small by then: at most `max_bytes`) and handing it on whole."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_body(f"request body too large: the limit is {self.max_bytes} bytes (--max-body-bytes)",
                               code="body_too_large")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit():
            if int(length) > self.max_bytes:
                await send_json(send, 413, too_large)
                return
            await self.app(scope, receive, send)
            return
        chunks, seen = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return   # the client went away while sending
            chunks.append(msg.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                await send_json(send, 413, too_large)
                return
            if not msg.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def guarded(app: Any, api_key: str | None, max_body_bytes: int) -> Any:
    """`app` behind the body limit and (outermost) the API key."""
    return BearerAuth(BodyLimit(app, max_body_bytes), api_key)
