"""SIGTERM drains in-flight requests: an upload under way when the daemon is told to stop
completes, is acknowledged, and is there after a restart."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lakehouse_common.ops.stack import is_alive, pid_file, read_pid
from tests.support.stack import LiveStack


@pytest.mark.fault
def test_sigterm_lets_an_inflight_upload_finish(tmp_path: Path) -> None:
    stack = LiveStack.create(tmp_path, {"server": {"shutdown_grace_s": 10.0}})
    stack.start("storaged")
    try:
        record = read_pid(pid_file(stack.settings, "storaged"))
        assert record is not None
        first_chunk_sent = threading.Event()

        def slow_body() -> Iterator[bytes]:
            yield b"a" * 1024
            first_chunk_sent.set()
            for _ in range(4):
                time.sleep(0.3)
                yield b"b" * 1024

        result: dict[str, httpx.Response] = {}

        def upload() -> None:
            with stack.client("storaged") as c:
                result["put"] = c.put("/v1/storage/objects/lakehouse/slow", content=slow_body())

        uploader = threading.Thread(target=upload)
        uploader.start()
        assert first_chunk_sent.wait(10)
        time.sleep(0.1)
        os.kill(record.pid, signal.SIGTERM)
        uploader.join(20)
        assert result["put"].status_code == 200
        assert result["put"].json()["size"] == 5 * 1024
        deadline = time.monotonic() + 15
        while is_alive(record) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_alive(record), "storaged did not exit after draining"
        pid_file(stack.settings, "storaged").unlink()
        stack.start("storaged")
        with stack.client("storaged") as c:
            assert c.get("/v1/storage/objects/lakehouse/slow").content.startswith(b"a" * 1024)
    finally:
        stack.stop()
