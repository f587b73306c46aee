"""`plait serve` as a user meets it: real servers started as subprocesses on port 0 (their port read from the
`listening on` line), real workers, stdlib HTTP clients. The agent server: invoke end to end, 422 naming the
field, 401, 413, 503 with Retry-After, 504 with its further steps cancelled, a disconnect cancelling, metrics that
count it all; the refusal to listen beyond loopback without a key; admission order (fifo, edf)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plait.scheduler.serve.admission import Admission, QueueFull

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key-0123456789"
ECHO = "tests/agents/serve_echo.py:echo"


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    lines: list[str]

    def stop(self) -> int:
        """SIGTERM (the server drains and stops its workers), then the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start(args: list[str], env: dict[str, str] | None = None, timeout_s: float = 180.0) -> Server:
    """`plait serve ARGS --port 0`, returned once it prints its URL (its output kept in Server.lines)."""
    cmd = [sys.executable, "-m", "plait.cli", "serve", *args, "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("listening on "):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while not found.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("plait serve did not start:\n" + "\n".join(lines))
    url = next(line for line in lines if line.startswith("listening on ")).split()[-1]
    return Server(proc, url, lines)


def call(url: str, path: str, body: Any = None, key: str | None = KEY, raw: bytes | None = None,
         timeout: float = 60.0) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON or text) of one request; HTTP errors are answers, not exceptions."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET")
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, headers, text = resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        status, headers, text = err.code, dict(err.headers), err.read().decode()
    try:
        return status, headers, json.loads(text)
    except ValueError:
        return status, headers, text


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of /metrics, read with prometheus_client's own parser (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    status, _, text = call(url, "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def wait_for(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


INVOKE = "/v1/agents/echo/invoke"


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One request at a time, one more may wait: the queue fills deterministically with a sleeping tool."""
    server = start([ECHO, "--concurrency", "1", "--max-queue", "1", "--max-body-bytes", "4096",
                    "--run-dir", str(tmp_path_factory.mktemp("serve"))], env={"PLAIT_API_KEY": KEY})
    status, _, health = call(server.url, "/healthz")
    pids = [w["pid"] for w in health["workers"].values()]
    yield server
    assert server.stop() == 0, "\n".join(server.lines)
    assert server.lines[-1] == "stopped"
    for pid in pids:   # no orphans: every worker exited with the server
        wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), 10)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "Z"


def test_invoke_runs_the_agent_end_to_end(echo: Server) -> None:
    status, _, health = call(echo.url, "/healthz")
    assert status == 200 and health["status"] == "ok"
    assert {w["pool"] for w in health["workers"].values()} == {"tool-pause-0", "tool-length-0", "llm-llama-3.2-1b-tiny-0"}
    status, _, out = call(echo.url, INVOKE, {"inputs": {"text": "hello"}})
    assert status == 200, out
    assert out["agent"] == "echo" and isinstance(out["output"], str)
    assert [s["step"] for s in out["steps"]] == ["tool pause", "tool length", "prompt prompt_1", "llm llama-3.2-1b@tiny"]
    assert 0 < out["seconds"] < 20


def test_a_bad_body_gets_422_naming_the_field(echo: Server) -> None:
    cases = [({"inputs": {}}, "inputs.text", "Field required"),
             ({"inputs": {"text": 5}}, "inputs.text", "valid string"),
             ({"inputs": {"text": "a", "extra": 1}}, "inputs.extra", "Extra inputs"),
             ({"text": "a"}, "inputs", "Field required"),
             ({"inputs": {"text": "a"}, "timeout_s": -1}, "timeout_s", "greater than 0")]
    for body, field, why in cases:
        status, _, out = call(echo.url, INVOKE, body)
        assert status == 422 and out["error"]["param"] == field and why in out["error"]["message"], (body, out)
    status, _, out = call(echo.url, INVOKE, {"text": "a"})   # the inputs not under "inputs": the fix is shown
    assert status == 422 and 'To fix: put the agent\'s inputs under "inputs": {"inputs": {"text": "..."}}' \
        in out["error"]["message"]
    status, _, out = call(echo.url, INVOKE, raw=b"{not json")
    assert status == 422 and "not JSON" in out["error"]["message"]
    status, _, out = call(echo.url, "/v1/agents/other/invoke", {"inputs": {"text": "a"}})
    assert status == 404 and "'echo'" in out["error"]["message"]


def test_auth_and_body_cap(echo: Server) -> None:
    for key in (None, "wrong-key-0123456789"):
        for path, body in ((INVOKE, {"inputs": {"text": "a"}}), ("/metrics", None), ("/healthz", None)):
            status, headers, out = call(echo.url, path, body, key=key)
            assert status == 401 and headers.get("www-authenticate") == "Bearer", (key, path, out)
            assert out["error"]["type"] == "authentication_error"
    status, _, out = call(echo.url, INVOKE, {"inputs": {"text": "x" * 5000}})
    assert status == 413 and "4096 bytes" in out["error"]["message"]


def _background(url: str, body: Any, results: list[Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(call(url, INVOKE, body)), daemon=True)
    thread.start()
    return thread


def test_a_full_queue_gets_503_with_retry_after(echo: Server) -> None:
    answered = metric(echo.url, "plait_requests_total", status="200")
    first: list[Any] = []
    second: list[Any] = []
    a = _background(echo.url, {"inputs": {"text": "sleep:2 a"}}, first)
    wait_for(lambda: metric(echo.url, "plait_in_flight") == 1)
    b = _background(echo.url, {"inputs": {"text": "b"}}, second)
    wait_for(lambda: metric(echo.url, "plait_queue_depth") == 1)
    status, headers, out = call(echo.url, INVOKE, {"inputs": {"text": "c"}})
    assert status == 503 and int(headers["retry-after"]) >= 1, out
    assert "--max-queue 1" in out["error"]["message"]
    a.join(30)
    b.join(30)
    assert first[0][0] == 200 and second[0][0] == 200   # the waiting one ran once the first finished
    assert metric(echo.url, "plait_requests_total", status="200") == answered + 2


def test_a_passed_deadline_gets_504_and_cancels_the_rest(echo: Server) -> None:
    llm = metric(echo.url, "plait_step_seconds_count", step="llm llama-3.2-1b@tiny")
    tool = metric(echo.url, "plait_step_seconds_count", step="tool pause")
    timeouts = metric(echo.url, "plait_requests_total", status="504")
    start = time.monotonic()
    status, _, out = call(echo.url, INVOKE, {"inputs": {"text": "sleep:1.5 x"}, "timeout_s": 0.5})
    assert status == 504 and "deadline of 0.5 s passed" in out["error"]["message"]
    assert time.monotonic() - start < 1.4   # answered at the deadline, not when the tool finished
    wait_for(lambda: metric(echo.url, "plait_in_flight") == 0)   # the driver thread ended after the tool
    assert metric(echo.url, "plait_step_seconds_count", step="tool pause") == tool + 1
    assert metric(echo.url, "plait_step_seconds_count", step="llm llama-3.2-1b@tiny") == llm   # never sent
    # a request whose deadline passes while it waits for a slot never starts
    held: list[Any] = []
    a = _background(echo.url, {"inputs": {"text": "sleep:1.5 a"}}, held)
    wait_for(lambda: metric(echo.url, "plait_in_flight") == 1)
    status, _, out = call(echo.url, INVOKE, {"inputs": {"text": "b"}, "timeout_s": 0.3})
    assert status == 504 and "never started" in out["error"]["message"]
    a.join(30)
    assert metric(echo.url, "plait_requests_total", status="504") == timeouts + 2


def test_a_client_that_disconnects_cancels_its_request(echo: Server) -> None:
    llm = metric(echo.url, "plait_step_seconds_count", step="llm llama-3.2-1b@tiny")
    host, port = echo.url.removeprefix("http://").split(":")
    body = json.dumps({"inputs": {"text": "sleep:1 gone"}}).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST {INVOKE} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_for(lambda: metric(echo.url, "plait_in_flight") == 1)
    wait_for(lambda: metric(echo.url, "plait_requests_total", status="499") == 1)
    wait_for(lambda: metric(echo.url, "plait_in_flight") == 0)
    assert metric(echo.url, "plait_step_seconds_count", step="llm llama-3.2-1b@tiny") == llm


def test_a_passed_deadline_aborts_the_llm_call_in_its_engine(echo: Server) -> None:
    """The long arm decodes 1024 tokens (--max-tokens caps its 4000: ~3 s on an idle machine); at the 1 s deadline
    the worker drops the call from its engine, so it stops far short of its 1024 tokens. Counted in the engine's
    own tokens, not in wall-clock seconds: a loaded machine decodes slower, and the check holds all the same (a
    call that ran on to its end would make 1024)."""
    engine = "llm-llama-3.2-1b-tiny-0/0"
    before = metric(echo.url, "plait_engine_decode_tokens_total", engine=engine)
    start = time.monotonic()
    status, _, out = call(echo.url, INVOKE, {"inputs": {"text": "long story"}, "timeout_s": 1})
    assert status == 504, out
    wait_for(lambda: metric(echo.url, "plait_in_flight") == 0)
    freed = time.monotonic() - start
    assert metric(echo.url, "plait_engine_running", engine=engine) == 0
    assert metric(echo.url, "plait_engine_kv_blocks_used", engine=engine) == 0
    decoded = metric(echo.url, "plait_engine_decode_tokens_total", engine=engine)
    made = decoded - before
    # it ran in this engine before its deadline, and was dropped well before its 1024th token
    assert 0 < made < 1024 * 3 / 4, f"{made:g} tokens decoded; the slot freed after {freed:.2f} s"
    time.sleep(0.5)
    assert metric(echo.url, "plait_engine_decode_tokens_total", engine=engine) == decoded   # nothing more


def test_healthz_answers_while_a_tool_runs(echo: Server) -> None:
    """A tool runs on its worker's own thread: the worker answers the health ping at once, naming the tool,
    instead of after it returns (5 s of tool used to make /healthz a 503)."""
    held: list[Any] = []
    slow = _background(echo.url, {"inputs": {"text": "sleep:3 x"}}, held)
    wait_for(lambda: metric(echo.url, "plait_in_flight") == 1)
    time.sleep(0.3)   # the tool is in its sleep now
    status, _, health = call(echo.url, "/healthz")
    slow.join(30)
    assert status == 200 and health["status"] == "ok", health
    tools = [w.get("tools_running") for w in health["workers"].values() if w["pool"] == "tool-pause-0"]
    # answered while the tool ran (before the fix the worker answered after it, and named no tool)
    assert tools and tools[0] and tools[0][0]["tool"] == "pause" and tools[0][0]["seconds"] < 3, health
    assert held[0][0] == 200


def test_metrics_count_every_request(echo: Server) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    before = metric(echo.url, "plait_requests_total", status="200")
    for _ in range(2):
        assert call(echo.url, INVOKE, {"inputs": {"text": "count"}})[0] == 200
    assert call(echo.url, INVOKE, {"inputs": {}})[0] == 422
    status, headers, text = call(echo.url, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"plait_requests", "plait_request_seconds", "plait_step_seconds", "plait_llm_ttft_seconds",
            "plait_queue_depth", "plait_in_flight", "plait_requests_within_sla"} <= names
    assert metric(echo.url, "plait_requests_total", status="200") == before + 2
    answered = metric(echo.url, "plait_requests_total", status="200")
    assert metric(echo.url, "plait_request_seconds_count") == answered   # one latency per answer
    assert metric(echo.url, "plait_requests_within_sla_total") == answered   # 20 s SLA: all within


def test_a_non_loopback_address_needs_a_key() -> None:
    proc = subprocess.run([sys.executable, "-m", "plait.cli", "serve", ECHO, "--host", "0.0.0.0", "--port", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "PLAIT_API_KEY"})
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0, which is not a loopback address, without an API key" in proc.stderr
    assert "--api-key" in proc.stderr and "listening" not in proc.stdout


def test_admission_orders_fifo_and_edf() -> None:
    async def order(policy: str) -> list[str]:
        admission = Admission(slots=1, max_queue=3, policy=policy)
        await admission.acquire(deadline=0.0)   # the one running
        got: list[str] = []

        async def one(name: str, deadline: float) -> None:
            await admission.acquire(deadline)
            got.append(name)

        tasks = [asyncio.create_task(one(n, d)) for n, d in (("late", 30.0), ("soon", 10.0), ("middle", 20.0))]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await admission.acquire(1.0)
        for _ in range(3):
            admission.release()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        admission.release()
        assert admission.running == 0 and admission.waiting == 0
        return got

    assert asyncio.run(order("fifo")) == ["late", "soon", "middle"]
    assert asyncio.run(order("edf")) == ["soon", "middle", "late"]


def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    async def scenario() -> tuple[int, int]:
        admission = Admission(slots=1, max_queue=1)
        await admission.acquire(0.0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(admission.acquire(0.0), 0.01)
        waiting = admission.waiting
        admission.release()   # no one waits any more: the slot is free again
        return waiting, admission.running

    assert asyncio.run(scenario()) == (0, 0)


# --- plait serve --model: the engine behind the official openai client ------------------------------------------
TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system "
            "messages') }}{% endif %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
            "{% if add_generation_prompt %}[assistant] {% endif %}")


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """llama-3.1-8b@tiny from a checkpoint folder (random weights saved as safetensors) whose
    tokenizer_config.json carries a chat template."""
    from plait.codegen.checkpoint import engine_config_for
    from plait.codegen.engine import ModelConfig
    from plait.codegen.engine.weights import random_checkpoint, save_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    config = ModelConfig(**engine_config_for("llama-3.1-8b@tiny"), name="llama-3.1-8b@tiny")
    save_checkpoint(folder, config, random_checkpoint(config, seed=3))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": TEMPLATE, "bos_token": "<s>"}))
    server = start(["--model", "llama-3.1-8b@tiny", "--weights", str(folder), "--max-tokens", "64"],
                   env={"PLAIT_API_KEY": KEY})
    assert f"the chat_template of {folder}/tokenizer_config.json" in server.lines[0]
    yield server
    assert server.stop() == 0, "\n".join(server.lines)


def _client(server: Server, key: str = KEY) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)


def test_openai_client_completions_whole_and_streamed(model_server: Server) -> None:
    client = _client(model_server)
    assert [m.id for m in client.models.list().data] == ["llama-3.1-8b@tiny"]
    whole = client.completions.create(model="llama-3.1-8b@tiny", prompt="Hello there", max_tokens=12,
                                      temperature=0)
    assert whole.object == "text_completion" and whole.usage is not None
    assert whole.usage.prompt_tokens == len(b"Hello there")   # no tokenizer.json: one token per byte
    assert whole.choices[0].finish_reason in ("length", "stop")
    assert 1 <= whole.usage.completion_tokens <= 12
    chunks = list(client.completions.create(model="llama-3.1-8b@tiny", prompt="Hello there", max_tokens=12,
                                            temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text   # greedy: the same answer
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_openai_client_chat_uses_the_checkpoints_template(model_server: Server) -> None:
    import openai

    client = _client(model_server)
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Bye"}]
    whole = client.chat.completions.create(model="llama-3.1-8b@tiny", messages=messages, max_tokens=10,  # type: ignore[arg-type]
                                           temperature=0)
    rendered = "<s>[user] Hi\n[assistant] Hello\n[user] Bye\n[assistant] "
    assert whole.usage is not None and whole.usage.prompt_tokens == len(rendered.encode())
    assert whole.choices[0].message.role == "assistant"
    stream = client.chat.completions.create(model="llama-3.1-8b@tiny", messages=messages, max_tokens=10,  # type: ignore[arg-type]
                                            temperature=0, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    with pytest.raises(openai.UnprocessableEntityError, match="no system messages"):   # the template's own refusal
        client.chat.completions.create(model="llama-3.1-8b@tiny", max_tokens=2,
                                       messages=[{"role": "system", "content": "x"}])
    with pytest.raises(openai.UnprocessableEntityError, match="max_tokens: 65 is more than this server allows"):
        client.chat.completions.create(model="llama-3.1-8b@tiny", messages=messages, max_tokens=65)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.completions.create(model="gpt-4o", prompt="x", max_tokens=2)
    with pytest.raises(openai.AuthenticationError):
        _client(model_server, key="wrong-key-0123456789").models.list()


def test_a_stream_whose_client_leaves_is_aborted_in_the_engine(model_server: Server) -> None:
    host, port = model_server.url.removeprefix("http://").split(":")
    body = json.dumps({"model": "llama-3.1-8b@tiny", "prompt": "go on", "max_tokens": 64, "stream": True,
                       "temperature": 0, "stop": ["never-said-0", "never-said-1"]}).encode()
    steps = metric(model_server.url, "plait_engine_steps_total")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert b"200 OK" in sock.recv(4096)
    wait_for(lambda: metric(model_server.url, "plait_in_flight") == 0)
    wait_for(lambda: metric(model_server.url, "plait_engine_running") == 0)
    assert metric(model_server.url, "plait_engine_kv_blocks_used") == 0   # its blocks went back
    assert metric(model_server.url, "plait_engine_steps_total") - steps < 64   # stopped before max_tokens


def test_engine_abort_frees_the_sequence() -> None:
    from plait.codegen.engine import SamplingParams
    from plait.codegen.llm import build_engine

    engine = build_engine("llama-3.1-8b@tiny", max_batch=4)
    keep = engine.add_request("keep going", SamplingParams(max_tokens=6, ignore_eos=True))
    drop = engine.add_request("stop me", SamplingParams(max_tokens=6, ignore_eos=True))
    late = engine.add_request("never admitted", SamplingParams(max_tokens=6, ignore_eos=True))
    engine.abort(late)   # still waiting
    engine.step()
    assert engine.stats()["running"] == 2 and engine.stats()["waiting"] == 0
    engine.abort(drop)   # running: out of the batch, blocks freed
    assert engine.stats()["running"] == 1
    made = []
    while engine.has_unfinished():
        made += [o.request_id for o in engine.step()]
    assert set(made) == {keep} and len(engine.output(keep).token_ids) == 6
    assert engine.stats()["kv_blocks_used"] == 0
    engine.abort(drop)   # unknown by now: ignored


def test_plain_chat_template() -> None:
    from plait.scheduler.serve.chat import ChatTemplate

    template = ChatTemplate.load(None)
    assert template.render([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi!"}]) \
        == "<|system|>\nYou are terse.\n<|user|>\nHi!\n<|assistant|>\n"


def _stream(url: str, body: Any) -> list[tuple[str, Any, float]]:
    """(event, data, seconds since the request) of each server-sent event, read as they arrive."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    start = time.monotonic()
    conn.request("POST", INVOKE, body=json.dumps(body), headers={"Authorization": f"Bearer {KEY}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type", "").startswith("text/event-stream")
    events, kind = [], ""
    for raw in resp:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((kind, json.loads(line.removeprefix("data: ")), time.monotonic() - start))
    conn.close()
    return events


def test_invoke_streams_the_final_llm_calls_text(echo: Server) -> None:
    events = _stream(echo.url, {"inputs": {"text": "long tale"}, "stream": True, "timeout_s": 30})
    kinds = [k for k, _, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"token"}, kinds[-3:]
    done = events[-1][1]
    assert "".join(d["text"] for k, d, _ in events if k == "token") == done["output"]   # pieces add up
    assert events[0][2] < events[-1][2] - 1.0   # the first piece came long before the end: streamed, not batched
    events = _stream(echo.url, {"inputs": {"text": "sleep:1.5 x"}, "timeout_s": 0.5, "stream": True})
    assert [k for k, _, _ in events] == ["error"] and events[0][1]["error"]["type"] == "timeout"
    wait_for(lambda: metric(echo.url, "plait_in_flight") == 0)


def test_text_stream_pieces_add_up_and_hold_back_a_stop_string() -> None:
    from plait.codegen.engine.tokenizer import ByteTokenizer
    from plait.scheduler.textstream import TextStream

    stream = TextStream(ByteTokenizer(), stop=["STOP"])
    pieces = [stream.push(b) for b in "héllo STO".encode()]
    assert "".join(pieces) == "héllo "   # 'STO' may begin the stop string; 'é' came out whole, once complete
    assert "" in pieces[1:3]   # the first byte of 'é' alone was held back
    assert "".join(pieces) + stream.finish("héllo ") == "héllo "   # the engine cut at the stop string


def test_loopback_addresses() -> None:
    from plait.scheduler.serve.security import check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    check_bind("0.0.0.0", "a-long-enough-key")   # with a key: allowed
    from plait.sdk.errors import PlaitError

    with pytest.raises(PlaitError, match="use at least 8"):
        check_bind("127.0.0.1", "short")
