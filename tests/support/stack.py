"""Real daemons for the tests that cross daemons: a `LiveStack` started through
`lakehouse_common.ops.stack` — the same code `make run` uses — and a real S3 server process.

Fixtures that hand these out live in tests/conftest.py; tests import the types from here.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.ops.stack import (
    ephemeral_config,
    free_port,
    health_of,
    is_alive,
    log_file,
    pid_file,
    read_pid,
    start_daemon,
    stop_stack,
)
from lakehouse_common.topology import BY_NAME


def stack_config(
    tmp: Path, extra: dict[str, dict[str, Any]] | None = None
) -> tuple[Path, LakehouseSettings]:
    """A config with every daemon on a free port and its data dir under `tmp`."""
    return ephemeral_config(tmp, {"gateway": {"upstream_timeout_s": 10.0}, **(extra or {})})


class LiveStack:
    """Daemons started for real (detached subprocesses, pid files) from one config file."""

    def __init__(self, config_path: Path, settings: LakehouseSettings) -> None:
        self.config_path = config_path
        self.settings = settings
        self.started: list[str] = []

    @classmethod
    def create(cls, root: Path, extra: dict[str, dict[str, Any]] | None = None) -> LiveStack:
        root.mkdir(parents=True, exist_ok=True)
        return cls(*stack_config(root, extra))

    def start(self, *names: str, timeout_s: float = 60.0) -> None:
        for name in names:
            start_daemon(
                self.settings,
                BY_NAME[name],
                config_path=self.config_path,
                timeout_s=timeout_s,
                echo=lambda _: None,
            )
            self.started.append(name)

    def stop(self) -> None:
        stop_stack(self.settings, grace_s=5.0, echo=lambda _: None)

    @contextmanager
    def running(self, *names: str, timeout_s: float = 60.0) -> Iterator[LiveStack]:
        """Start `names`, and stop everything this stack started when the block ends."""
        try:
            self.start(*names, timeout_s=timeout_s)
            yield self
        finally:
            self.stop()

    def pid(self, name: str) -> int:
        record = read_pid(pid_file(self.settings, name))
        assert record is not None, f"no pid file for {name}"
        return record.pid

    def kill_9(self, name: str, timeout_s: float = 20.0) -> None:
        """SIGKILL `name` and wait until the process has exited and nothing answers on its port.

        The kill is asynchronous: until the kernel has torn the process down, its listening
        socket still accepts connections, and a restart would find the port held.
        """
        record = read_pid(pid_file(self.settings, name))
        assert record is not None, f"no pid file for {name}"
        os.kill(record.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while is_alive(record) or health_of(self.url(name), name, timeout_s=0.2) != "down":
            assert time.monotonic() < deadline, f"{name} still answers after SIGKILL"
            time.sleep(0.02)

    def log(self, name: str) -> str:
        return log_file(self.settings, name).read_text()

    def url(self, name: str) -> str:
        return self.settings.url_of(name)

    def client(self, name: str, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url(name), timeout=30.0, **kwargs)


class S3Server:
    def __init__(self, endpoint: str, proc: subprocess.Popen[bytes]) -> None:
        self.endpoint = endpoint
        self.proc = proc


@contextmanager
def s3_server_process(log_dir: Path) -> Iterator[S3Server]:
    """A real S3-protocol server process (moto's standalone server) on a loopback port."""
    port = free_port()
    log = (log_dir / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(endpoint, timeout=1.0)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    try:
        yield S3Server(endpoint, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def backend_config(request: pytest.FixtureRequest, backend: str) -> dict[str, dict[str, Any]]:
    """Config sections that put a stack's Store on `backend` (`fs`, or `s3` on the session's
    real S3 server with a bucket prefix of its own)."""
    if backend == "fs":
        return {}
    s3: S3Server = request.getfixturevalue("s3_server")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return {
        "storage": {"backend": "s3"},
        "storage.s3": {"endpoint_url": s3.endpoint, "bucket_prefix": f"t{secrets.token_hex(3)}-"},
    }
