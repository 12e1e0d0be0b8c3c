"""queryd's lifespan, in-process: a failed start closes what it had opened (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

import services.queryd.app as queryd_app
from lakehouse_common.ops.stack import ephemeral_config
from tests.support.failed_start import assert_start_fails, refuse, watch_opened


async def test_failed_start_closes_pool_store_and_view_refresher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, settings = ephemeral_config(tmp_path)
    opened = watch_opened(monkeypatch, queryd_app)
    refuse(monkeypatch, queryd_app, "QueryService")  # the last: everything else is open

    await assert_start_fails(queryd_app.create_app(settings))

    assert len(opened.sessions) == 1
    assert len(opened.stores) == 1
    opened.assert_all_closed()
