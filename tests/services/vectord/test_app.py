"""vectord's app in-process: the typed State its lifespan opens and closes, even when a later
step fails to start."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

import services.vectord.app as vectord_app
from lakehouse_common.config import LakehouseSettings, load_settings
from services.vectord.app import create_app
from services.vectord.service import VectorService
from services.vectord.state import State


@pytest.fixture
def settings(tmp_path: Path) -> LakehouseSettings:
    return load_settings(environ={}, overrides={"server": {"data_dir": str(tmp_path)}})


class SeenService(VectorService):
    """Remembers the last instance and whether it was closed."""

    last: SeenService | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = False
        SeenService.last = self

    def close(self) -> None:
        super().close()
        self.closed = True


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> type[SeenService]:
    SeenService.last = None
    monkeypatch.setattr(vectord_app, "VectorService", SeenService)
    return SeenService


async def test_the_state_routes_use_is_opened_and_closed(
    settings: LakehouseSettings, seen: type[SeenService]
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert isinstance(app.state.lakehouse_state, State)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vectord") as client:
            resp = await client.put("/v1/vectors/indexes/ix", json={"dim": 4})
            assert resp.status_code == 201, resp.text
            resp = await client.post(
                "/v1/vectors/search", json={"searches": [{"index": "ix", "vector": [1, 0, 0, 0]}]}
            )
            assert resp.json() == {"results": [[]]}
        assert seen.last is not None and not seen.last.closed
    assert seen.last.closed
    # Closing snapshotted the index: a fresh start finds it.
    again = VectorService(settings.data_dir / "vectors", settings.vector)
    again.open()
    assert [i.name for i in again.list_indexes()] == ["ix"]
    again.close()


async def test_a_failure_after_the_indexes_opened_closes_them(
    settings: LakehouseSettings, seen: type[SeenService], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(service: VectorService, poll_s: float) -> Any:
        raise RuntimeError("no snapshotter")

    monkeypatch.setattr(vectord_app, "snapshot_loop", refuse)
    app = create_app(settings)
    with pytest.raises(RuntimeError, match="no snapshotter"):
        async with app.router.lifespan_context(app):
            pytest.fail("the lifespan must not start")
    assert seen.last is not None and seen.last.closed


async def test_stopping_cancels_the_snapshotter(settings: LakehouseSettings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        tasks = {t for t in asyncio.all_tasks() if t.get_coro().__name__ == "snapshot_loop"}
        assert len(tasks) == 1
    (task,) = tasks
    assert task.cancelled()
