"""What `plait serve` adds over the driver: client-side latency of invoke requests against the server's own
`seconds` (admission + the driver's run), sequentially and 4 at a time. The difference is the HTTP layer
(uvicorn, FastAPI, JSON, the loopback connection); the ratio sets it against the whole request.

The agent is tests/agents/serve_echo.py:echo (a tool, then an 8-token LLM call at @tiny, random weights).
Writes bench/results/serve_overhead.json. Run: `.venv/bin/python bench/serve_overhead.py` (about 40 s).
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP, REQUESTS = 10, 60


def invoke(url: str, i: int) -> tuple[float, float]:
    req = urllib.request.Request(url, data=json.dumps({"inputs": {"text": f"hi {i}"}}).encode(), method="POST")
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        out = json.loads(resp.read())
    return time.perf_counter() - start, float(out["seconds"])


def measure(url: str, concurrency: int) -> dict[str, float]:
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda i: invoke(url, i), range(WARMUP)))
        rows = list(pool.map(lambda i: invoke(url, i), range(REQUESTS)))
    client = [c for c, _ in rows]
    layer = [c - s for c, s in rows]
    return {"concurrency": concurrency, "requests": REQUESTS, "client_p50_ms": statistics.median(client) * 1e3,
            "server_p50_ms": statistics.median([s for _, s in rows]) * 1e3,
            "http_layer_p50_ms": statistics.median(layer) * 1e3,
            "http_layer_share": statistics.median(layer) / statistics.median(client)}


def main() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "plait.cli", "serve", "tests/agents/serve_echo.py:echo",
                             "--port", "0", "--run-dir", str(ROOT / "out" / "bench-serve")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        base = next(line.split()[-1] for line in proc.stdout if line.startswith("listening on "))
        url = base + "/v1/agents/echo/invoke"
        rows = [measure(url, 1), measure(url, 4)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    print(f"{'in flight':>9} {'client p50 ms':>14} {'server p50 ms':>14} {'HTTP layer ms':>14} {'share':>6}")
    for r in rows:
        print(f"{r['concurrency']:9d} {r['client_p50_ms']:14.1f} {r['server_p50_ms']:14.1f} "
              f"{r['http_layer_p50_ms']:14.1f} {r['http_layer_share']:6.1%}")
    out = ROOT / "bench" / "results" / "serve_overhead.json"
    out.write_text(json.dumps({"agent": "tests/agents/serve_echo.py:echo", "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
