"""vectord's wire format and typed client (SPEC §5): named HNSW indexes of string ids.

Endpoints (vectord, :3215), all under `/v1/vectors`:
- `PUT /indexes/{name}` `CreateIndexRequest` → 201 `IndexInfo` (created), 200 (it exists with
  the same parameters), 409 (it exists with different ones);
- `GET /indexes` → `IndexList`; `GET /indexes/{name}` → `IndexInfo`; `DELETE /indexes/{name}`
  → `IndexDeleted`;
- `POST /indexes/{name}/add` `AddRequest` → `AddResponse` (upsert: a known id's vector and
  metadata are replaced);
- `POST /indexes/{name}/delete` `DeleteRequest` → `DeleteResponse` (unknown ids are listed in
  `not_found`, not an error);
- `GET /indexes/{name}/items/{id}` → `ItemRecord` (404 when absent);
- `POST /indexes/{name}/search` `SearchRequest` → `SearchResponse` (`vector`: `results` is one
  list of hits) or `BatchSearchResponse` (`vectors`: `results` is one list per query, in order);
- `POST /search` `MultiSearchRequest` → `BatchSearchResponse`: several single-vector searches,
  each on its own index, in one request (matrixd's organic and playbook searches: one hop
  instead of two). Each search is checked as its per-index form would be; any failure answers
  that error for the whole request, except an absent index of a search with `missing_ok`,
  which answers no hits.

Distances: cosine `1 − cos` (stored vectors are normalised), l2 the *squared* Euclidean
distance, ip `1 − dot` — the values hnswlib reports, for exact and HNSW search alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lakehouse_common.errors import InvalidInput, UpstreamError
from lakehouse_common.http import ServiceClient

AREA = "vectors"
INDEXES = "/v1/vectors/indexes"
SEARCH = "/v1/vectors/search"
MAX_DIM = 4096
MAX_ID_CHARS = 512
MAX_EF = 10_000

Space = Literal["cosine", "l2", "ip"]

# An index name is a directory name under `<data_dir>/vectors/`: lowercase, no dots or slashes.
_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def validate_index_name(name: str) -> str:
    if not _INDEX_NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid index name {name!r}: use 1-63 of [a-z0-9_-], starting with a letter or digit",
            details={"index": name},
        )
    return name


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality as a search `filter` applies it: `true` is not `1`, `1` equals `1.0`,
    containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def metadata_matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    """Whether an item passes a search `filter`: every key present and JSON-equal."""
    if not wanted:
        return True
    return all(key in metadata and json_equal(metadata[key], v) for key, v in wanted.items())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CreateIndexRequest(_Strict):
    """`M` and `ef_construction` default to `vector.default_m` / `default_ef_construction`;
    `space` to `vector.default_space`. When the index exists, an omitted field matches anything
    (so `PUT {dim, space}` is an idempotent "ensure")."""

    dim: int = Field(gt=0, le=MAX_DIM)
    space: Space | None = None
    M: int | None = Field(default=None, ge=2, le=200)
    ef_construction: int | None = Field(default=None, ge=1, le=MAX_EF)


class IndexSummary(BaseModel):
    name: str
    dim: int
    space: Space
    count: int


class IndexList(BaseModel):
    indexes: list[IndexSummary]
    count: int


class IndexInfo(BaseModel):
    """`count` live items; `deleted` hnswlib slots marked deleted and awaiting reuse;
    `capacity` slots allocated; `wal_records` WAL records not yet covered by a snapshot."""

    name: str
    dim: int
    space: Space
    M: int
    ef_construction: int
    count: int
    deleted: int
    capacity: int
    wal_records: int
    last_snapshot: datetime | None
    created_at: datetime


class IndexDeleted(BaseModel):
    name: str
    deleted: bool = True


class Item(_Strict):
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    vector: list[float]
    metadata: dict[str, Any] = Field(default_factory=dict)


class AddRequest(_Strict):
    items: list[Item] = Field(min_length=1)


class AddResponse(BaseModel):
    """`added` ids that were new, `updated` ids whose vector and metadata were replaced."""

    added: int
    updated: int
    count: int


class DeleteRequest(_Strict):
    ids: list[str] = Field(min_length=1)


class DeleteResponse(BaseModel):
    deleted: list[str]
    not_found: list[str]
    count: int


class ItemRecord(BaseModel):
    """For a cosine index `vector` is the stored, unit-length vector."""

    id: str
    vector: list[float]
    metadata: dict[str, Any]


MAX_LIST_LIMIT = 1000


class ListedItem(BaseModel):
    id: str
    metadata: dict[str, Any]


class ItemPage(BaseModel):
    """`next`: pass it as `after` for the following page; null on the last one."""

    items: list[ListedItem]
    next: str | None


class SearchRequest(_Strict):
    """Exactly one of `vector` or `vectors`. `filter` keeps items whose metadata has every key
    with an equal value (JSON equality: `true` ≠ `1`); `exclude_ids` never come back. Both are
    applied inside the search, so `k` hits come back whenever `k` items qualify."""

    vector: list[float] | None = None
    vectors: list[list[float]] | None = Field(default=None, min_length=1)
    k: int = Field(default=10, ge=1)
    ef: int | None = Field(default=None, ge=1, le=MAX_EF)
    filter: dict[str, Any] | None = None
    exclude_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_query_form(self) -> SearchRequest:
        if (self.vector is None) == (self.vectors is None):
            raise ValueError("give exactly one of `vector` or `vectors`")
        return self


MAX_MULTI_SEARCHES = 16


class IndexSearch(_Strict):
    """One search of a `MultiSearchRequest`: `index` and the single-`vector` form."""

    index: str = Field(min_length=1)
    vector: list[float]
    k: int = Field(default=10, ge=1)
    ef: int | None = Field(default=None, ge=1, le=MAX_EF)
    filter: dict[str, Any] | None = None
    exclude_ids: list[str] = Field(default_factory=list)
    missing_ok: bool = Field(
        default=False, description="an absent index answers no hits instead of 404"
    )


class MultiSearchRequest(_Strict):
    searches: list[IndexSearch] = Field(min_length=1, max_length=MAX_MULTI_SEARCHES)


# Documents the answers; the search path reads and writes hits as `Hit` (below), never as this.
class SearchHit(BaseModel):
    id: str
    distance: float
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    results: list[SearchHit]


class BatchSearchResponse(BaseModel):
    results: list[list[SearchHit]]


# The search path's own shapes (issue 15): a hit is one `Hit` from vectord's index to matrixd's
# ranking — vectord's route serialises it as is (orjson writes a dataclass as an object, fields
# in order: exactly `SearchHit`), `VectorClient` decodes an answer into it once. A search is sent
# as an `IndexQuery`, whose vector stays the caller's float32 array: vectord's parse of the
# request is the one place it is validated.


@dataclass(slots=True)
class Hit:
    """One search hit, nearest first in its list; fields and their order are `SearchHit`'s.

    Not frozen: a frozen dataclass costs three times as much to build, and a search builds one
    per hit on both sides of the wire.
    """

    id: str
    distance: float
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """One search of `VectorClient.search_indexes`: the fields of `IndexSearch`, unchecked here
    (vectord checks them where the request enters)."""

    index: str
    vector: npt.NDArray[np.float32] | Sequence[float]
    k: int = 10
    ef: int | None = None
    filter: Mapping[str, Any] | None = None
    exclude_ids: Sequence[str] = ()
    missing_ok: bool = False

    def wire(self) -> dict[str, Any]:
        """As `IndexSearch` with its defaults left out, `vector` last (byte for byte what the
        model's `model_dump(exclude_defaults=True)` wrote before issue 15)."""
        body: dict[str, Any] = {"index": self.index}
        if self.k != 10:
            body["k"] = self.k
        if self.ef is not None:
            body["ef"] = self.ef
        if self.filter is not None:
            body["filter"] = dict(self.filter)
        if self.exclude_ids:
            body["exclude_ids"] = list(self.exclude_ids)
        if self.missing_ok:
            body["missing_ok"] = True
        body["vector"] = wire_vectors(self.vector)
        return body


def _results(data: Any) -> Any:
    """A search answer's `results` (vectord's own answer, checked only as far as it is read:
    anything malformed is vectord's fault, a 502)."""
    try:
        return data["results"]
    except (KeyError, TypeError):
        raise UpstreamError("vectord answered a search without `results`") from None


def _hits(row: Any) -> list[Hit]:
    """One decoded list of hits as `Hit`s: the one conversion (no pydantic pass)."""
    try:
        return [Hit(h["id"], h["distance"], h["metadata"]) for h in row]
    except (KeyError, TypeError):
        raise UpstreamError("vectord answered a malformed list of hits") from None


def wire_vectors(values: Any) -> npt.NDArray[np.float32]:
    """Vectors as the float32 array `ServiceClient` writes in its shortest form: vectord keeps
    float32 anyway, so nothing is lost, and a 384-d vector is ~4.7 KB of JSON instead of ~8 KB
    as Python floats — less to write here and to parse in vectord on every search."""
    return np.ascontiguousarray(values, dtype=np.float32)


def _index_path(name: str) -> str:
    return f"{INDEXES}/{quote(name, safe='')}"


class VectorClient:
    """vectord over HTTP (matrixd, ingestd). Errors come back as the typed `LakehouseError`."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def create_index(
        self,
        name: str,
        dim: int,
        space: Space | None = None,
        *,
        M: int | None = None,  # noqa: N803 - hnswlib's name for it
        ef_construction: int | None = None,
    ) -> IndexInfo:
        """Create `name`, or confirm it exists with these parameters (409 otherwise)."""
        body = CreateIndexRequest(dim=dim, space=space, M=M, ef_construction=ef_construction)
        data = await self.client.call_json(
            "PUT", _index_path(name), json=body.model_dump(exclude_none=True)
        )
        return IndexInfo.model_validate(data)

    async def list_indexes(self) -> IndexList:
        return IndexList.model_validate(await self.client.call_json("GET", INDEXES))

    async def get_index(self, name: str) -> IndexInfo:
        return IndexInfo.model_validate(await self.client.call_json("GET", _index_path(name)))

    async def delete_index(self, name: str) -> IndexDeleted:
        data = await self.client.call_json("DELETE", _index_path(name))
        return IndexDeleted.model_validate(data)

    async def add(
        self,
        name: str,
        items: Sequence[Item | Mapping[str, Any]],
        *,
        timeout_s: float | None = None,
    ) -> AddResponse:
        """Upsert `items` (`Item`s or plain `{id, vector, metadata}` mappings)."""
        payload = [item.model_dump() if isinstance(item, Item) else dict(item) for item in items]
        data = await self.client.call_json(
            "POST", f"{_index_path(name)}/add", json={"items": payload}, timeout_s=timeout_s
        )
        return AddResponse.model_validate(data)

    async def delete(self, name: str, ids: Sequence[str]) -> DeleteResponse:
        data = await self.client.call_json(
            "POST", f"{_index_path(name)}/delete", json={"ids": list(ids)}
        )
        return DeleteResponse.model_validate(data)

    async def get_item(self, name: str, item_id: str) -> ItemRecord:
        data = await self.client.call_json(
            "GET", f"{_index_path(name)}/items/{quote(item_id, safe='')}"
        )
        return ItemRecord.model_validate(data)

    async def list_items(
        self,
        name: str,
        *,
        after: str | None = None,
        limit: int = 100,
        filter: Mapping[str, Any] | None = None,
    ) -> ItemPage:
        """One page of ids and metadata in id order; `filter` as in a search."""
        params: dict[str, str] = {"limit": str(limit)}
        if after is not None:
            params["after"] = after
        if filter:
            params["filter"] = orjson.dumps(filter).decode()
        data = await self.client.call_json("GET", f"{_index_path(name)}/items", params=params)
        return ItemPage.model_validate(data)

    async def search(
        self,
        name: str,
        vector: Sequence[float] | npt.NDArray[np.float32],
        k: int = 10,
        *,
        ef: int | None = None,
        filter: Mapping[str, Any] | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[Hit]:
        """The `k` nearest items to one vector, nearest first."""
        body = _search_body(k, ef, filter, exclude_ids)
        body["vector"] = wire_vectors(vector)
        data = await self.client.call_json("POST", f"{_index_path(name)}/search", json=body)
        return _hits(_results(data))

    async def search_many(
        self,
        name: str,
        vectors: Sequence[Sequence[float]],
        k: int = 10,
        *,
        ef: int | None = None,
        filter: Mapping[str, Any] | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[list[Hit]]:
        """One list of hits per query vector, in order."""
        body = _search_body(k, ef, filter, exclude_ids)
        body["vectors"] = wire_vectors(vectors)
        data = await self.client.call_json("POST", f"{_index_path(name)}/search", json=body)
        return [_hits(row) for row in _results(data)]

    async def search_indexes(self, searches: Sequence[IndexQuery]) -> list[list[Hit]]:
        """Several single-vector searches, each on its own index, in one request: one list of
        hits per search, in order."""
        body = {"searches": [s.wire() for s in searches]}
        data = await self.client.call_json("POST", SEARCH, json=body)
        return [_hits(row) for row in _results(data)]


def _search_body(
    k: int, ef: int | None, filter: Mapping[str, Any] | None, exclude_ids: Sequence[str]
) -> dict[str, Any]:
    body: dict[str, Any] = {"k": k}
    if ef is not None:
        body["ef"] = ef
    if filter:
        body["filter"] = dict(filter)
    if exclude_ids:
        body["exclude_ids"] = list(exclude_ids)
    return body


def index_path(name: str) -> str:
    """The path of index `name` (`PUT` creates, `GET` describes, `DELETE` drops it; `/add`,
    `/search`, `/items/{id}` below it): for tools that check vectord's answers on the wire."""
    return _index_path(name)
