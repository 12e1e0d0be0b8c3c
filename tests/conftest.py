"""Fixtures shared by every test: JSON logs, live stacks stopped at teardown, a real S3 server.

Helpers (`LiveStack`, `backend_config`, the in-process tier, envelope checks…) live in
`tests.support`; this module only defines fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakehouse_common.logging import configure_logging
from tests.support.stack import LiveStack, S3Server, s3_server_process


@pytest.fixture(autouse=True, scope="session")
def _json_logs() -> None:
    """Log as daemons do (JSON lines), not with structlog's slow dev console renderer."""
    configure_logging("tests", "info")


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Any]:
    """Factory: `make_stack(extra_config)` → a `LiveStack` stopped at teardown."""
    stacks: list[LiveStack] = []

    def factory(extra: dict[str, dict[str, Any]] | None = None) -> LiveStack:
        stack = LiveStack.create(tmp_path / f"stack{len(stacks)}", extra)
        stacks.append(stack)
        return stack

    yield factory
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-protocol server process (moto's standalone server) on a loopback port."""
    with s3_server_process(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """Credentials the S3 backend reads from the environment (moto accepts any)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return s3_server
