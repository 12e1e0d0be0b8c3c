"""The benchmark load driver: exact request counts, loopback only, errors abort."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lakehouse_common.loadgen import drive
from tests.conftest import LiveStack


@pytest.fixture(scope="module")
def storaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("loadgen"))
    with live.running("storaged"):
        yield live


def test_sends_exactly_the_requested_count(storaged: LiveStack) -> None:
    run = drive(storaged.url("storaged") + "/health", requests=57, concurrency=4)
    assert run.requests == len(run.latencies_s) == 57
    assert run.rps > 0
    assert run.percentile_ms(50) <= run.percentile_ms(99)


def test_error_answers_abort_the_run(storaged: LiveStack) -> None:
    with pytest.raises(RuntimeError, match="HTTP 404"):
        drive(storaged.url("storaged") + "/v1/storage/objects/lakehouse/none", requests=3)


@pytest.mark.parametrize("url", ["http://10.0.0.1/x", "http://example.com/", "http://192.168.1.2/"])
def test_refuses_anything_but_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        drive(url, requests=1)
