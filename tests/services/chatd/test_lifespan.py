"""chatd's lifespan, in-process: a failed start closes what it had opened (issue 15)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

import services.chatd.app as chatd_app
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.ops.stack import ephemeral_config
from tests.support.failed_start import assert_start_fails, refuse, watch_opened


async def test_failed_start_closes_provider_session_observer_and_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, settings = ephemeral_config(tmp_path)
    opened = watch_opened(monkeypatch, chatd_app)
    provider_sessions: list[aiohttp.ClientSession] = []

    def watched_provider_session(settings: LakehouseSettings) -> aiohttp.ClientSession:
        session = real_provider_session(settings)
        provider_sessions.append(session)
        return session

    real_provider_session = chatd_app.provider_session
    monkeypatch.setattr(chatd_app, "provider_session", watched_provider_session)
    refuse(monkeypatch, chatd_app, "ChatService")  # the last: everything else is open

    await assert_start_fails(chatd_app.create_app(settings))

    assert len(opened.sessions) == 1
    assert len(opened.observers) == 1
    assert len(provider_sessions) == 1
    assert provider_sessions[0].closed
    opened.assert_all_closed()
