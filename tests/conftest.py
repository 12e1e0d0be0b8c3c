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

SERVICES = Path(__file__).resolve().parent / "services"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests for `--dist loadgroup` (the Makefile's XDIST, issue 15).

    A daemon package whose conftest starts a package-scoped stack is one group: its modules run
    on one worker one after the other, so the stack (embedd's model, queryd's lake…) starts
    once. Under `--dist loadfile` the package's modules were spread over the workers and
    interleaved with others', and pytest tore the package stack down and started it again each
    time a worker came back to the package. Every other module is a group of its own, as with
    `loadfile`. Without xdist the marks do nothing.
    """
    for item in items:
        path = item.path
        package = path.parent
        if package.parent == SERVICES and (package / "conftest.py").exists():
            group = package.relative_to(SERVICES.parent.parent).as_posix()
        else:
            group = path.relative_to(SERVICES.parent.parent).as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


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
