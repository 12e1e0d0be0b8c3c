"""pathwayd's wire format and typed client (SPEC §5): workflow pathways and next-step advice.

A *pathway* is the ordered steps taken for one staffing demand and how it ended::

    {"pathway_id"?: "pw-…", "demand_text": "Need 3 Forklift Operators in Aurora IL",
     "role": "Forklift Operator",
     "steps": [{"name": "search", "at"?: "2026-05-02T09:14:03Z", "detail"?: {...}}, ...],
     "outcome": {"filled": true, "count"?: 3, ...any other keys}}

Endpoints (pathwayd, :3217):
- `POST /v1/pathways` `PathwayIn` → 201 `PathwayRecord` (durable before the answer). An omitted
  `pathway_id` is minted (`pw-` + 16 hex). Posting an id again with the same content answers
  200 with the stored record (idempotent retry); with other content 409 `conflict`.
- `GET /v1/pathways/{id}` → `PathwayRecord` (404 `not_found`).
- `GET /v1/pathways?role=&limit=` → `PathwayList`, newest first; `role` compares
  case- and whitespace-insensitively.
- `POST /v1/pathways/suggest` `SuggestRequest {demand_text, role, k?, steps_taken?}` →
  `SuggestResponse`: the `k` most similar past pathways *of that role* (cosine similarity of the
  demand texts' embeddings, from embedd), and `next_step`: among the `pathway.neighbors` most
  similar same-role pathways whose steps begin with `steps_taken`, the step that came next with
  the best fill rate (`filled / total`; ties go to the larger `total`, then the name), with the
  counts behind it. `next_step` is null when no such pathway exists. All candidates are listed
  in `candidates`.

Step names are lowercased and trimmed, then must match `[a-z][a-z0-9_]{0,63}` (`search`,
`shortlist`, `outreach`, `confirm`, `fill`, …). Malformed bodies → 422 `invalid_request`;
embedd unreachable → 502 `upstream_unavailable`.
"""

from __future__ import annotations

import re
from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator

from lakehouse_common.http import ServiceClient

AREA: Final = "pathways"
PATHWAYS: Final = "/v1/pathways"
SUGGEST: Final = "/v1/pathways/suggest"
SCHEMA: Final = "pathway.v1"

MAX_DEMAND_CHARS: Final = 4000
MAX_ROLE_CHARS: Final = 200
MAX_STEPS: Final = 100

_STEP_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


def pathway_path(pathway_id: str) -> str:
    """`GET` one pathway."""
    return f"{PATHWAYS}/{pathway_id}"


def normalize_step(name: str) -> str:
    """A step name as stored and compared: trimmed, lowercase, `[a-z][a-z0-9_]{0,63}`."""
    cleaned = name.strip().lower()
    if not _STEP_NAME.fullmatch(cleaned):
        raise ValueError(f"step name {name!r} must match [a-z][a-z0-9_]{{0,63}}")
    return cleaned


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(_Strict):
    name: str
    at: AwareDatetime | None = None
    detail: dict[str, Any] | str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalize_step(value)


class Outcome(BaseModel):
    """`filled` is required; `count` and any other keys (e.g. `reason`) are kept as given."""

    model_config = ConfigDict(extra="allow")

    filled: StrictBool
    count: int | None = Field(default=None, ge=0)


class PathwayIn(_Strict):
    pathway_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:\-]{1,128}$")
    demand_text: str = Field(min_length=1, max_length=MAX_DEMAND_CHARS)
    role: str = Field(min_length=1, max_length=MAX_ROLE_CHARS)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    outcome: Outcome

    _demand = field_validator("demand_text", "role")(_non_blank)


class PathwayRecord(BaseModel):
    """A stored pathway: what was posted plus the id, the time it was recorded and the trace id
    of the request that recorded it."""

    pathway_id: str
    demand_text: str
    role: str
    steps: list[Step]
    outcome: Outcome
    recorded_at: str
    trace_id: str


class PathwayList(BaseModel):
    pathways: list[PathwayRecord]
    count: int
    total: int


class SuggestRequest(_Strict):
    demand_text: str = Field(min_length=1, max_length=MAX_DEMAND_CHARS)
    role: str = Field(min_length=1, max_length=MAX_ROLE_CHARS)
    # `pathway.default_k` when omitted; at most `pathway.max_k`.
    k: int | None = Field(default=None, ge=1)
    steps_taken: list[str] = Field(default_factory=list, max_length=MAX_STEPS)

    _texts = field_validator("demand_text", "role")(_non_blank)

    @field_validator("steps_taken")
    @classmethod
    def _steps(cls, value: list[str]) -> list[str]:
        return [normalize_step(name) for name in value]


class SimilarPathway(BaseModel):
    similarity: float
    pathway: PathwayRecord


class StepAdvice(BaseModel):
    """`fill_rate` = `filled / total` over the similar pathways whose next step was `step`."""

    step: str
    fill_rate: float
    filled: int
    total: int


class SuggestResponse(BaseModel):
    """`considered`: same-role pathways the advice was tallied over; `matched`: those whose
    steps begin with `steps_taken` and go on."""

    role: str
    steps_taken: list[str]
    pathways: list[SimilarPathway]
    next_step: StepAdvice | None
    candidates: list[StepAdvice]
    considered: int
    matched: int


class PathwayClient:
    """pathwayd over HTTP. Errors come back as the typed `LakehouseError`."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def record(self, pathway: PathwayIn | dict[str, Any]) -> PathwayRecord:
        body = (
            pathway.model_dump(mode="json", exclude_none=True)
            if isinstance(pathway, PathwayIn)
            else pathway
        )
        return PathwayRecord.model_validate(
            await self.client.call_json("POST", PATHWAYS, json=body)
        )

    async def get(self, pathway_id: str) -> PathwayRecord:
        data = await self.client.call_json("GET", pathway_path(pathway_id))
        return PathwayRecord.model_validate(data)

    async def list_pathways(self, role: str | None = None, limit: int | None = None) -> PathwayList:
        params: dict[str, str | int] = {}
        if role is not None:
            params["role"] = role
        if limit is not None:
            params["limit"] = limit
        return PathwayList.model_validate(
            await self.client.call_json("GET", PATHWAYS, params=params)
        )

    async def suggest(
        self,
        demand_text: str,
        role: str,
        *,
        k: int | None = None,
        steps_taken: list[str] | None = None,
    ) -> SuggestResponse:
        body: dict[str, Any] = {"demand_text": demand_text, "role": role}
        if k is not None:
            body["k"] = k
        if steps_taken:
            body["steps_taken"] = steps_taken
        return SuggestResponse.model_validate(
            await self.client.call_json("POST", SUGGEST, json=body)
        )
