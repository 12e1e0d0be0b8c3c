"""validatord's lifespan, in-process: a failed start closes what it had opened (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

import services.validatord.app as validatord_app
from lakehouse_common.ops.stack import ephemeral_config
from tests.support.failed_start import assert_start_fails, refuse, watch_opened


async def test_failed_start_closes_observer_and_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, settings = ephemeral_config(tmp_path)
    opened = watch_opened(monkeypatch, validatord_app)
    refuse(monkeypatch, validatord_app, "IterateLoop")  # the last: everything else is open

    await assert_start_fails(validatord_app.create_app(settings))

    assert len(opened.sessions) == 1
    assert len(opened.observers) == 1
    opened.assert_all_closed()
