"""matrixd's wire format and typed client (SPEC §5 matrixd; docs/matrix.md).

Endpoints (matrixd, :3218), all under `/v1/matrix`:

- `POST /search` `SearchRequest` → `SearchResponse`: embed the query, k-NN in vectord (with
  `exclude_ids` and the metadata-equality `filters` applied inside vectord), then — when
  `use_playbook` is set and `query_role` is given — apply the playbooks recorded for that role
  on close queries: the answer's distance × `1 − 0.5·score`, an approved answer missing from
  the organic results injected with its true distance and boosted, re-ranked, cut to `k`
  (an injected answer is never cut: it displaces the worst organic result).
- `POST /playbooks/record` `RecordPlaybookRequest` → `PlaybookRecorded`; `GET /playbooks`
  (`?role=&index=&limit=`) → `PlaybookList`; `GET /playbooks/{id}` → `Playbook`;
  `DELETE /playbooks/{id}` → `PlaybookDeleted`.
- `POST /retrieve` `RetrieveRequest` → `EvidenceBundle`: semantic candidates narrowed by a SQL
  condition answered by queryd, with each worker's full row (the evidence chat prompts use).

Ranks are 0-based (rank 0 is the best answer), as in the original system's matrixd.

Errors (the envelope of SPEC §3): an empty `query_text`, `k` outside 1..`matrix.max_k`, a
`score` outside [0, 1] → 422; a bad `sql_filter` → 400; an unknown index, answer or playbook
→ 404; embedd, vectord or queryd unreachable → 502 naming the daemon.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from lakehouse_common.http import ServiceClient
from lakehouse_common.text import normalise

AREA: Final = "matrix"
SEARCH: Final = "/v1/matrix/search"
RETRIEVE: Final = "/v1/matrix/retrieve"
PLAYBOOKS: Final = "/v1/matrix/playbooks"
RECORD: Final = "/v1/matrix/playbooks/record"

DEFAULT_INDEX: Final = "workers"
PLAYBOOK_ID: Final = re.compile(r"pb-[0-9a-f]{16}")
MAX_QUERY_CHARS: Final = 8_000


def playbook_id(query_text: str, role: str, answer_id: str, index: str = DEFAULT_INDEX) -> str:
    """`pb-` + the first 16 hex digits of sha256 over (normalised query, normalised role,
    answer id, index): recording the same approval again names (and updates) the same
    playbook. The index is part of the key because an answer id names an item *of an index*:
    `w-1` of `workers` and `w-1` of another index are different answers."""
    key = "\x1f".join((normalise(query_text), normalise(role), answer_id, index))
    return "pb-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchRequest(_Strict):
    """`k` at most `matrix.max_k`. `query_role` gates the playbooks (compared normalised); a
    blank one counts as none. `filters` keeps items whose metadata has every key with an equal
    value (JSON equality, as vectord's `filter`); `exclude_ids` never come back — organic or
    injected."""

    query_text: StrictStr = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    query_role: StrictStr | None = Field(default=None, max_length=200)
    k: int = Field(default=5, ge=1)
    index: StrictStr = Field(default=DEFAULT_INDEX, min_length=1, max_length=63)
    use_playbook: bool = False
    exclude_ids: list[StrictStr] = Field(default_factory=list)
    filters: dict[str, Any] | None = None

    _query = field_validator("query_text")(_not_blank)


class SearchResult(BaseModel):
    """`distance` is the adjusted one (boosted answers: organic × `1 − 0.5·score`);
    `injected` answers were not among the organic results and are also `boosted`."""

    rank: int
    id: str
    distance: float
    boosted: bool
    injected: bool
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    """`boosted` counts the results a playbook adjusted (injected ones included), `injected`
    the results that came from playbooks alone."""

    results: list[SearchResult]
    boosted: int
    injected: int


class RecordPlaybookRequest(_Strict):
    """An approved answer for a query and role. `answer_id` must be an item of `index`."""

    query_text: StrictStr = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    role: StrictStr = Field(min_length=1, max_length=200)
    answer_id: StrictStr = Field(min_length=1, max_length=512)
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    index: StrictStr = Field(default=DEFAULT_INDEX, min_length=1, max_length=63)

    _texts = field_validator("query_text", "role", "answer_id")(_not_blank)


class PlaybookRecorded(BaseModel):
    """`updated`: a recording with this id existed and was replaced (new score and time)."""

    playbook_id: str
    updated: bool


class Playbook(BaseModel):
    """One recording, as stored in the playbook index's metadata."""

    playbook_id: str
    query_text: str
    role: str
    role_norm: str
    answer_id: str
    index: str
    score: float
    recorded_at: str
    trace_id: str = ""


class PlaybookList(BaseModel):
    """Newest first. `truncated`: more recordings matched than were answered."""

    playbooks: list[Playbook]
    count: int
    truncated: bool


class PlaybookDeleted(BaseModel):
    playbook_id: str
    deleted: bool = True


class RetrieveRequest(_Strict):
    """`sql_filter` is one SQL boolean expression over the dataset's columns (DuckDB dialect,
    e.g. `available AND list_contains(certifications, 'OSHA-10')`); no `;`, no comments, no
    unbalanced parentheses. `dataset` is the queryd view holding the rows (default: the index
    name); its `id` column joins the index's item ids."""

    query_text: StrictStr = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    query_role: StrictStr | None = Field(default=None, max_length=200)
    k: int = Field(default=5, ge=1)
    sql_filter: StrictStr | None = None
    index: StrictStr = Field(default=DEFAULT_INDEX, min_length=1, max_length=63)
    dataset: StrictStr | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,79}$")

    _query = field_validator("query_text")(_not_blank)


class Evidence(BaseModel):
    """One worker: the semantic distance to the query and the full dataset row."""

    rank: int
    id: str
    distance: float
    row: dict[str, Any]


class EvidenceBundle(BaseModel):
    """What chat prompts are built from. `candidates`: semantic candidates the SQL condition
    was applied to."""

    query_text: str
    query_role: str | None
    results: list[Evidence]
    sql_filter: str | None
    trace_id: str
    index: str
    dataset: str
    candidates: int


class MatrixClient:
    """matrixd over HTTP (chatd, validatord, the demo). Errors come back as typed errors."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def search(
        self,
        query_text: str,
        *,
        query_role: str | None = None,
        k: int = 5,
        index: str = DEFAULT_INDEX,
        use_playbook: bool = False,
        exclude_ids: Sequence[str] = (),
        filters: Mapping[str, Any] | None = None,
    ) -> SearchResponse:
        body = SearchRequest(
            query_text=query_text,
            query_role=query_role,
            k=k,
            index=index,
            use_playbook=use_playbook,
            exclude_ids=list(exclude_ids),
            filters=dict(filters) if filters is not None else None,
        )
        data = await self.client.call_json(
            "POST", SEARCH, json=body.model_dump(exclude_defaults=True)
        )
        return SearchResponse.model_validate(data)

    async def record_playbook(
        self,
        query_text: str,
        role: str,
        answer_id: str,
        score: float,
        *,
        index: str = DEFAULT_INDEX,
    ) -> PlaybookRecorded:
        body = RecordPlaybookRequest(
            query_text=query_text,
            role=role,
            answer_id=answer_id,
            score=score,
            index=index,
        )
        data = await self.client.call_json("POST", RECORD, json=body.model_dump())
        return PlaybookRecorded.model_validate(data)

    async def list_playbooks(
        self, *, role: str | None = None, index: str | None = None, limit: int | None = None
    ) -> PlaybookList:
        params: dict[str, str | int] = {}
        if role is not None:
            params["role"] = role
        if index is not None:
            params["index"] = index
        if limit is not None:
            params["limit"] = limit
        data = await self.client.call_json("GET", PLAYBOOKS, params=params)
        return PlaybookList.model_validate(data)

    async def get_playbook(self, playbook_id: str) -> Playbook:
        data = await self.client.call_json("GET", f"{PLAYBOOKS}/{quote(playbook_id, safe='')}")
        return Playbook.model_validate(data)

    async def delete_playbook(self, playbook_id: str) -> PlaybookDeleted:
        data = await self.client.call_json("DELETE", f"{PLAYBOOKS}/{quote(playbook_id, safe='')}")
        return PlaybookDeleted.model_validate(data)

    async def retrieve(
        self,
        query_text: str,
        *,
        query_role: str | None = None,
        k: int = 5,
        sql_filter: str | None = None,
        index: str = DEFAULT_INDEX,
        dataset: str | None = None,
    ) -> EvidenceBundle:
        body = RetrieveRequest(
            query_text=query_text,
            query_role=query_role,
            k=k,
            sql_filter=sql_filter,
            index=index,
            dataset=dataset,
        )
        data = await self.client.call_json(
            "POST", RETRIEVE, json=body.model_dump(exclude_none=True)
        )
        return EvidenceBundle.model_validate(data)
