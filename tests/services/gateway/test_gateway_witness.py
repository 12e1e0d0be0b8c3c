"""The gateway's /v1/health reports catalogd degraded while its audit witness refuses publishes
(issue 18): catalogd stays live, its /health names the failing check, and it recovers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lakehouse_common.audit.checkpoint import CheckpointLog
from lakehouse_common.audit.signing import load_public_key, load_signing_key, public_key_path
from lakehouse_common.config import signing_key_path
from tests.support.stack import LiveStack


def until(check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_witness_failure_shows_as_degraded_through_the_gateway(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    extra = {"audit": {"checkpoint_interval_s": 0.1, "witness_dir": str(blocker / "w")}}
    stack = LiveStack.create(tmp_path, extra)
    # A checkpoint written but never published: catalogd publishes it on its first tick.
    signing = signing_key_path(stack.settings)
    CheckpointLog.load(
        stack.settings.data_dir / "subjects" / "checkpoints.jsonl",
        load_public_key(public_key_path(signing)),
    ).append(load_signing_key(signing), {})
    blocker.write_bytes(b"")  # the witness directory cannot be created
    with stack.running("catalogd", "gateway"), stack.client("gateway") as gw:
        degraded = until(
            lambda: gw.get("/v1/health").json()["daemons"]["catalogd"]["status"] == "degraded"
        )
        body = gw.get("/v1/health").json()
        assert degraded, body
        assert body["status"] == "degraded"
        check = body["daemons"]["catalogd"]["checks"]["audit_witness"]
        assert "cannot publish checkpoint 1" in check["error"]
        blocker.unlink()
        assert until(lambda: gw.get("/v1/health").json()["daemons"]["catalogd"]["status"] == "ok")
    assert (blocker / "w" / "checkpoint-000000000001.json").exists()
