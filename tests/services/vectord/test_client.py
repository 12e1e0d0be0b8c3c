"""The search path's shapes in-process (no daemons): `IndexQuery` writes what `IndexSearch` wrote,
`Hit` is `SearchHit` on the wire, `VectorClient` decodes answers into `Hit`s once and refuses
a malformed one as vectord's fault."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
import pytest

from lakehouse_common.contracts.vectors import (
    Hit,
    IndexQuery,
    IndexSearch,
    SearchHit,
    VectorClient,
    wire_vectors,
)
from lakehouse_common.errors import UpstreamError
from lakehouse_common.http import HttpClient, ServiceClient

VECTOR = np.random.default_rng(3).normal(size=6).astype(np.float32)


def sent_bytes(body: Any) -> bytes:
    """What `ServiceClient` writes for a JSON body."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


class TestIndexQuery:
    @pytest.mark.parametrize(
        "fields",
        [
            {"index": "workers"},
            {"index": "workers", "k": 5, "filter": {"state": "IL"}, "exclude_ids": ["w-1"]},
            {"index": "workers", "k": 10, "ef": 64, "filter": {}},
            {"index": "pb", "k": 32, "filter": {"role_norm": "welder"}, "missing_ok": True},
        ],
    )
    def test_writes_the_bytes_index_search_wrote(self, fields: dict[str, Any]) -> None:
        before = IndexSearch(vector=VECTOR.tolist(), **fields)
        old = {
            **before.model_dump(exclude_defaults=True, exclude={"vector"}),
            "vector": wire_vectors(before.vector),
        }
        assert sent_bytes(IndexQuery(vector=VECTOR, **fields).wire()) == sent_bytes(old)

    def test_a_float32_vector_is_sent_without_a_copy(self) -> None:
        assert IndexQuery("workers", VECTOR).wire()["vector"] is VECTOR


class TestHit:
    def test_is_search_hit_on_the_wire(self) -> None:
        assert [f.name for f in dataclasses.fields(Hit)] == list(SearchHit.model_fields)
        hit = Hit("w-1", 0.25, {"city": "Aurora"})
        assert orjson.dumps(hit) == orjson.dumps(SearchHit(**dataclasses.asdict(hit)).model_dump())


class Canned(ServiceClient):
    """vectord answering `answer` to any request."""

    def __init__(self, answer: Any) -> None:
        super().__init__(HttpClient(), "vectord", "http://vectord")
        self.answer = orjson.dumps(answer)

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Mapping[str, str], bytes]:
        return 200, {}, self.answer


class TestDecoding:
    hits = [
        {"id": "a", "distance": 0.0, "metadata": {"n": 1}},
        {"id": "b", "distance": 0.5, "metadata": {}},
    ]

    async def test_answers_decode_into_hits(self) -> None:
        single = VectorClient(Canned({"results": self.hits}))
        assert await single.search("ix", VECTOR) == [Hit("a", 0.0, {"n": 1}), Hit("b", 0.5, {})]
        batch = VectorClient(Canned({"results": [self.hits, []]}))
        rows = await batch.search_indexes([IndexQuery("ix", VECTOR), IndexQuery("iy", VECTOR)])
        assert rows == [[Hit("a", 0.0, {"n": 1}), Hit("b", 0.5, {})], []]
        assert await batch.search_many("ix", [VECTOR, VECTOR]) == rows

    @pytest.mark.parametrize(
        "answer", [{}, {"results": None}, {"results": [{"id": "a"}]}, {"results": [3]}, []]
    )
    async def test_a_malformed_answer_is_an_upstream_error(self, answer: Any) -> None:
        with pytest.raises(UpstreamError, match="vectord"):
            await VectorClient(Canned(answer)).search("ix", VECTOR)

    @pytest.mark.parametrize("answer", [{"results": [[{"distance": 1.0}]]}, {"results": [7]}])
    async def test_a_malformed_batch_is_an_upstream_error(self, answer: Any) -> None:
        with pytest.raises(UpstreamError, match="vectord"):
            await VectorClient(Canned(answer)).search_indexes([IndexQuery("ix", VECTOR)])
