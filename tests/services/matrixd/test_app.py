"""matrixd's app in-process (no daemons): the typed State its lifespan opens and closes, and the
search answer the route writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import services.matrixd.app as matrixd_app
from lakehouse_common.config import LakehouseSettings, load_settings
from lakehouse_common.contracts.matrix import SearchResponse, SearchResult
from lakehouse_common.http import HttpClient
from lakehouse_common.observer import Observer
from services.matrixd.app import create_app
from services.matrixd.ranking import Ranked
from services.matrixd.routes import search_answer
from services.matrixd.service import MatrixService
from services.matrixd.state import State


@pytest.fixture
def settings(tmp_path: Path) -> LakehouseSettings:
    return load_settings(environ={}, overrides={"server": {"data_dir": str(tmp_path)}})


class Opened:
    """The HttpClient and Observer `open_state` made, caught as they are built."""

    http: HttpClient | None = None
    observer: Observer | None = None


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Opened:
    seen = Opened()

    class SeenHttp(HttpClient):
        async def open(self) -> None:
            await super().open()
            seen.http = self

    class SeenObserver(Observer):
        async def start(self) -> None:
            await super().start()
            seen.observer = self

    monkeypatch.setattr(matrixd_app, "HttpClient", SeenHttp)
    monkeypatch.setattr(matrixd_app, "Observer", SeenObserver)
    return seen


def assert_closed(seen: Opened) -> None:
    assert seen.http is not None and seen.observer is not None
    with pytest.raises(RuntimeError, match="before open"):
        seen.http.session  # noqa: B018 - the property raises once the pool is closed
    seen.observer.report("search_runs", {"after": "close"})
    assert seen.observer.dropped_by_reason["closed"] == 1


@asynccontextmanager
async def asgi(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://matrixd") as client:
        yield client


class TestLifespan:
    async def test_a_failure_opening_a_later_resource_closes_the_earlier_ones(
        self, settings: LakehouseSettings, opened: Opened, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse(*args: Any, **kwargs: Any) -> MatrixService:
            raise RuntimeError("the service cannot open")

        monkeypatch.setattr(matrixd_app, "MatrixService", refuse)
        app = create_app(settings)
        with pytest.raises(RuntimeError, match="cannot open"):
            async with app.router.lifespan_context(app):
                pytest.fail("the lifespan must not start")
        assert_closed(opened)
        assert not hasattr(app.state, "lakehouse_state")

    async def test_opens_the_state_routes_use_and_closes_it_on_the_way_out(
        self, settings: LakehouseSettings, opened: Opened
    ) -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            state = app.state.lakehouse_state
            assert isinstance(state, State) and isinstance(state.matrix, MatrixService)
            assert opened.http is not None and not opened.http.session.closed
            async with asgi(app) as client:
                # Refused by the service itself (no daemon call): the route reached the State.
                resp = await client.get("/v1/matrix/playbooks/not-an-id")
                assert resp.status_code == 404, resp.text
                assert resp.json()["error"]["details"] == {"playbook_id": "not-an-id"}
        assert_closed(opened)

    async def test_a_route_before_start_answers_503_not_500(
        self, settings: LakehouseSettings
    ) -> None:
        async with asgi(create_app(settings)) as client:
            resp = await client.get("/v1/matrix/playbooks/not-an-id")
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "service_unavailable"


class TestSearchAnswer:
    ranked = [
        Ranked("w-2", 0.05, True, True, {"city": "Aurora", "n": 1}),
        Ranked("w-1", 0.125, True, False, {}),
        Ranked("w-3", 0.5, False, False, {"nested": {"a": [1, 2.5, None]}}),
    ]

    def test_is_the_search_response_the_model_would_write(self) -> None:
        answer = search_answer(self.ranked)
        expected = SearchResponse(
            results=[
                SearchResult(
                    rank=rank,
                    id=r.id,
                    distance=r.distance,
                    boosted=r.boosted,
                    injected=r.injected,
                    metadata=r.metadata,
                )
                for rank, r in enumerate(self.ranked)
            ],
            boosted=2,
            injected=1,
        ).model_dump(mode="json")
        assert answer == expected
        # Same key order too: the bytes on the wire are the model's.
        assert list(answer) == list(expected)
        assert [list(r) for r in answer["results"]] == [list(r) for r in expected["results"]]

    def test_no_results(self) -> None:
        assert search_answer([]) == {"results": [], "boosted": 0, "injected": 0}
