"""matrixd's search in-process, fakes at the HTTP edge (no daemons): embedd's float32 vector goes
to vectord as it is, in one request for both searches, and vectord's hits come back ranked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from lakehouse_common.config import load_settings
from lakehouse_common.contracts.embed import EmbedClient
from lakehouse_common.contracts.matrix import SearchRequest
from lakehouse_common.contracts.query import QueryClient
from lakehouse_common.contracts.vectors import VectorClient
from lakehouse_common.http import HttpClient, ServiceClient
from services.matrixd.routes import search_answer
from services.matrixd.service import MatrixService

QUERY = np.array([[0.6, 0.8, 0.0]], dtype=np.float32)
ORGANIC = [
    {"id": "w-1", "distance": 0.1, "metadata": {"city": "Aurora"}},
    {"id": "w-2", "distance": 0.4, "metadata": {"city": "Joliet"}},
]
RECORDING = {"answer_id": "w-2", "score": 1.0, "role_norm": "welder", "index": "workers"}


class Fake(ServiceClient):
    """A daemon answering canned JSON per path; keeps what it was sent (as the bytes written)."""

    def __init__(self, daemon: str, answers: Mapping[str, Any]) -> None:
        super().__init__(HttpClient(), daemon, f"http://{daemon}")
        self.answers = answers
        self.sent: list[tuple[str, Any, bytes]] = []

    async def request(
        self, method: str, path: str, *, json: Any = None, **kwargs: Any
    ) -> tuple[int, Mapping[str, str], bytes]:
        self.sent.append((path, json, orjson.dumps(json, option=orjson.OPT_SERIALIZE_NUMPY)))
        return 200, {}, orjson.dumps(self.answers[path], option=orjson.OPT_SERIALIZE_NUMPY)


class Quiet:
    def report(self, stream: str, event: dict[str, Any], trace_id: str | None = None) -> None:
        self.event = event

    async def record_if_governed(self, **kwargs: Any) -> None:
        return None


@pytest.fixture
def vectord() -> Fake:
    recordings = [{"id": "pb-0123456789abcdef", "distance": 0.05, "metadata": RECORDING}]
    return Fake("vectord", {"/v1/vectors/search": {"results": [ORGANIC, recordings]}})


@pytest.fixture
def service(vectord: Fake) -> MatrixService:
    settings = load_settings(environ={})
    embedd = Fake("embedd", {"/v1/embed": {"vectors": QUERY, "dimension": 3, "model": "m"}})
    quiet = Quiet()
    return MatrixService(
        settings,
        embed=EmbedClient(embedd),
        vectors=VectorClient(vectord),
        query=QueryClient(Fake("queryd", {})),
        observer=quiet,  # type: ignore[arg-type]
        auditor=quiet,  # type: ignore[arg-type]
        registry=CollectorRegistry(),
    )


async def test_the_query_vector_reaches_vectord_as_embedd_answered_it(
    service: MatrixService, vectord: Fake
) -> None:
    req = SearchRequest(query_text="welder", query_role="Welder", k=2, use_playbook=True)
    ranked = await service.search(req)
    ((path, body, written),) = vectord.sent
    assert path == "/v1/vectors/search"
    organic, playbooks = body["searches"]
    # The array itself (the cached one), not a list of Python floats made from it.
    assert organic["vector"] is playbooks["vector"]
    assert isinstance(organic["vector"], np.ndarray) and organic["vector"].dtype == np.float32
    assert written == (
        b'{"searches":[{"index":"workers","k":2,"vector":[0.6,0.8,0.0]},'
        b'{"index":"playbook_memory","k":32,"filter":{"role_norm":"welder","index":"workers"},'
        b'"missing_ok":true,"vector":[0.6,0.8,0.0]}]}'
    )
    # w-2's recording halves its distance: 0.4 → 0.2, still behind w-1.
    assert search_answer(ranked) == {
        "results": [
            {
                "rank": 0,
                "id": "w-1",
                "distance": 0.1,
                "boosted": False,
                "injected": False,
                "metadata": {"city": "Aurora"},
            },
            {
                "rank": 1,
                "id": "w-2",
                "distance": pytest.approx(0.2),
                "boosted": True,
                "injected": False,
                "metadata": {"city": "Joliet"},
            },
        ],
        "boosted": 1,
        "injected": 0,
    }
