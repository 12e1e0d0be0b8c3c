"""`make smoke` and `make parity` against `make run`'s stack (SPEC §9, issue 9).

One stack for the module, started the way a developer starts it (`make run CONFIG=… WORKERS=300`)
on free ports with its own data dir. Its chat provider is an *echo* server on loopback that
speaks the OpenAI API and answers every chat with the user's last message: the chatd smoke makes
a real chat call, and the parity probes can observe extract_json and accepted / exhausted
sessions through validatord (`ECHO_MODEL`). `PEER_URL` names the same gateway, so the
second-runtime comparisons run too (against themselves). The last test stops two daemons on
purpose, so it stays last.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lakehouse_common.ops.probes.smoke import SMOKES
from lakehouse_common.ops.stack import is_alive, pid_file, read_pid
from lakehouse_common.topology import DAEMON_NAMES
from tests.support.paths import repo_root
from tests.support.stack import LiveStack

ROOT = repo_root()
ECHO_MODEL = "openai_compatible/echo"
PROBES = (
    "validator_parity",
    "extract_json_parity",
    "session_log_parity",
    "materializer_parity",
    "embed_parity",
    "subject_audit_parity",
)


class _EchoHandler(BaseHTTPRequestHandler):
    """OpenAI chat completions that answer with the last user message (no streaming)."""

    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.path.rstrip("/").endswith("/models"):
            model = {"id": "echo", "object": "model", "created": 0, "owned_by": "tests"}
            self._send(200, {"object": "list", "data": [model]})
        else:
            self._send(404, {"error": {"message": "no such path", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if not self.path.endswith("/chat/completions") or body.get("stream"):
            self._send(400, {"error": {"message": "echo: chat, no stream", "type": "bad"}})
            return
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        content = users[-1]["content"] if users else ""
        self._send(
            200,
            {
                "id": "chatcmpl-echo",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "echo"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    def log_message(self, format: str, *args: Any) -> None:
        pass


def run(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**_top_level(os.environ), **(env or {})},
    )


def _top_level(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without make's recursion variables: under `make test` (CI) a nested
    `make smoke` would otherwise print "make[1]: Leaving directory" after the summary line."""
    return {k: v for k, v in environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, echo_url: str) -> Iterator[LiveStack]:
    live = LiveStack.create(
        tmp_path_factory.mktemp("smoke_parity"),
        {
            "chat": {"default_model": ECHO_MODEL},
            "chat.providers.openai_compatible": {"base_url": echo_url, "api_key_env": ""},
        },
    )
    config = f"CONFIG={live.config_path}"
    try:
        started = run(["make", "run", config, "WORKERS=300"])
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        yield live
    finally:
        run(["make", "stop", config])


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_one_smoke_per_daemon_in_start_order() -> None:
    assert tuple(SMOKES) == DAEMON_NAMES


@pytest.mark.slow
def test_make_smoke_passes(stack: LiveStack) -> None:
    result = run(["make", "smoke", f"CONFIG={stack.config_path}"])
    out = result.stdout
    assert result.returncode == 0, out[-5000:] + result.stderr[-2000:]
    assert re.fullmatch(r"\d+ passed, 0 failed", _last_line(out)), _last_line(out)
    for name in DAEMON_NAMES:
        assert f"[{name}] {stack.url(name)}" in out
    assert "[story 6/6] audit verify" in out
    # The echo provider is reachable, so chatd's smoke makes its real chat call.
    assert f"PASS  one chat call to {ECHO_MODEL}" in out
    assert "FAIL" not in out and "SKIP" not in out


@pytest.mark.slow
def test_make_parity_passes(stack: LiveStack) -> None:
    env = {"PEER_URL": stack.url("gateway"), "ECHO_MODEL": ECHO_MODEL}
    result = run(["make", "parity", f"CONFIG={stack.config_path}"], env=env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:] + result.stderr[-2000:]
    summary = out[out.rindex("parity probes:") :]
    for probe in PROBES:
        assert re.search(rf"^  {probe} +(\d+)/\1$", summary, re.M), summary
    assert re.search(r"^  total +(\d+)/\1$", summary, re.M), summary
    assert _last_line(out) == "parity: all passed"
    assert "FAIL" not in out
    # With the echo model nothing of the four live probes is skipped.
    assert "SKIP  extract_json through validatord" not in out
    assert "SKIP  accepted and max_iter_exhausted sessions" not in out
    assert "the peer answers the same" in out and "≈ the peer's" in out


def _stop(stack: LiveStack, name: str) -> None:
    record = read_pid(pid_file(stack.settings, name))
    assert record is not None
    os.kill(record.pid, signal.SIGTERM)
    for _ in range(200):
        if not is_alive(record):
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} did not stop")


@pytest.mark.slow
def test_a_daemon_down_fails_its_smoke_and_probe(stack: LiveStack) -> None:
    _stop(stack, "pathwayd")
    _stop(stack, "validatord")
    smoke = run([str(ROOT / "scripts/smoke/pathwayd.sh"), "--config", str(stack.config_path)])
    assert smoke.returncode == 1, smoke.stdout
    assert _last_line(smoke.stdout) == "0 passed, 1 failed"
    assert "FAIL  pathwayd /health" in smoke.stdout

    probe = run(
        [str(ROOT / "scripts/parity/validator_parity.sh"), "--config", str(stack.config_path)]
    )
    assert probe.returncode == 1, probe.stdout
    match = re.fullmatch(
        r"validator_parity: (\d+)/(\d+) assertions passed", _last_line(probe.stdout)
    )
    assert match and int(match[1]) < int(match[2]), probe.stdout[-2000:]
    assert "502" in probe.stdout and "validatord" in probe.stdout
