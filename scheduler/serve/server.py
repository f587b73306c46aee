"""Run an ASGI app on uvicorn over a socket bound here first, so port 0 works: the OS picks the port and the
`listening on http://HOST:PORT` line names it (tests and scripts read it). SIGTERM and Ctrl-C stop accepting,
let requests in flight finish (at most `drain_s`), then return."""

from __future__ import annotations

import socket
import sys
from typing import Any


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)   # connections wait in the backlog until uvicorn accepts them
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_server(app: Any, sock: socket.socket, drain_s: float = 30.0) -> None:
    """Serve `app` on `sock` until a signal; prints the URL first (flushed: a parent reads it from a pipe)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=int(drain_s), lifespan="off")

    class Server(uvicorn.Server):
        """uvicorn re-raises a captured SIGTERM after its graceful shutdown, which would kill this process before
        the workers are stopped; here the signal only ends serving and the caller cleans up."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            getattr(self, "_captured_signals", []).clear()

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            # said once uvicorn accepts and handles SIGTERM: a client reading this line may connect, or stop us
            print(f"listening on {url_of(sock)}", flush=True)
            sys.stderr.flush()

    Server(config).run(sockets=[sock])
