"""validatord's wire format and typed client (SPEC §6 validatord, §3 ValidationError).

Endpoints (validatord, :3221):
- `POST /v1/validate` `ValidateRequest {kind: fill|email|sms, payload, context?}` → 200
  `ValidateResponse {valid, errors: [ValidationError]}`. An invalid *payload* is a normal 200
  answer with `valid: false`; only a malformed *request* is refused.
- `POST /v1/iterate` `IterateRequest {kind, prompt, context?, model?, max_iter=3,
  temperature?}` → 200 `IterateResponse {status, iterations, final, errors, session_id,
  trace_id, model, infra_error}`: chat (through chatd) → extract_json → validate → feed the
  errors back, at most `max_iter` times. `status` is `accepted`, `max_iter_exhausted` or
  `infra_error` (chatd, or queryd for a fill, failed mid-session: `infra_error` says which and
  why). Every session appends one record to the session log (`lakehouse_common.session_log`).
- `GET /v1/sessions?limit=` → `SessionList`: the most recent session-log records, newest first.

Payload shapes (the `FillPayload`, `EmailPayload`, `SmsPayload` models document them; the
validators check them field by field so each problem becomes one `ValidationError`):
- fill: `{demand: {role, city?, state, count}, workers: ["w-1", … | {id, role?, city?, state?,
  …}], exclude_ids?: [...]}`; `context` may carry the authoritative `demand` and more
  `exclude_ids` (`FillContext`);
- email: `{to, subject, body}`; sms: `{to, body}`.

Errors (the envelope of SPEC §3): a malformed request (unknown `kind`, missing `payload` or
`prompt`, `max_iter` outside 1..10, a fill `context` that is not a `FillContext`, `limit`
outside 1..`validator.sessions_max_limit`) → 422 `invalid_request`; a fill proposal that cannot
be checked because queryd or the roster view is unavailable → 503 `roster_unavailable` (details
name queryd and the view). On `/v1/iterate` a failing chatd (or queryd) is not an error
answer: the session ends with `status: infra_error` and `infra_error` says what failed.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from lakehouse_common.errors import ERROR_CODES, ServiceUnavailable, UpstreamError
from lakehouse_common.http import ServiceClient
from lakehouse_common.session_log import InfraError, SessionRecord, SessionStatus
from lakehouse_common.validation_error import ValidationError

AREAS: Final = ("validate", "iterate", "sessions")
VALIDATE: Final = "/v1/validate"
ITERATE: Final = "/v1/iterate"
SESSIONS: Final = "/v1/sessions"

PayloadKind = Literal["fill", "email", "sms"]
KINDS: Final[tuple[str, ...]] = ("fill", "email", "sms")

MAX_ITER: Final = 10
DEFAULT_MAX_ITER: Final = 3
# Bounds a prompt (the model's context window is the real limit; this keeps bodies sane).
MAX_PROMPT_CHARS: Final = 100_000

__all__ = [
    "AREAS",
    "DEFAULT_MAX_ITER",
    "EmailPayload",
    "FillContext",
    "FillDemand",
    "FillPayload",
    "FillWorker",
    "InfraError",
    "IterateRequest",
    "IterateResponse",
    "KINDS",
    "MAX_ITER",
    "PayloadKind",
    "RosterUnavailable",
    "SessionList",
    "SmsPayload",
    "ValidateClient",
    "ValidateRequest",
    "ValidateResponse",
]


class RosterUnavailable(ServiceUnavailable):
    """A fill proposal could not be checked: queryd or the roster view cannot answer."""

    code = "roster_unavailable"


ERROR_CODES.setdefault(RosterUnavailable.code, RosterUnavailable)


# -- payload shapes (documentation and the fill context) -------------------------------------


class FillDemand(BaseModel):
    """What the customer asked for. `role` is compared case- and space-insensitively with the
    roster; `state` is a two-letter code every proposed worker must live in; `city` is
    informative (workers commute), not enforced."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1, pattern=r"\S")
    city: str | None = None
    state: str = Field(pattern=r"^[A-Za-z]{2}$")
    count: StrictInt = Field(ge=1)


class FillWorker(BaseModel):
    """One proposed worker; `role`/`city`/`state`, when the payload states them, must agree
    with the roster. A bare id string is accepted in place of the object."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    role: str | None = None
    city: str | None = None
    state: str | None = None


class FillPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    demand: FillDemand | None = None
    workers: list[FillWorker | str]
    exclude_ids: list[str] = Field(default_factory=list)


class FillContext(BaseModel):
    """`context` of a fill: what the caller knows to be true. Its `demand` wins over the
    payload's (which must then agree with it); its `exclude_ids` add to the payload's."""

    model_config = ConfigDict(extra="allow")

    demand: FillDemand | None = None
    exclude_ids: list[str] = Field(default_factory=list)


class EmailPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    to: str
    subject: str
    body: str


class SmsPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    to: str
    body: str = Field(max_length=160)


# -- /v1/validate -----------------------------------------------------------------------------


class ValidateRequest(BaseModel):
    """`payload` is any JSON value (one that is not an object is an invalid payload, not a
    malformed request)."""

    model_config = ConfigDict(extra="forbid")

    kind: PayloadKind
    payload: Any = Field(description="the draft to validate (fill proposal, email, SMS)")
    context: dict[str, Any] | None = None


class ValidateResponse(BaseModel):
    valid: bool
    errors: list[ValidationError]


# -- /v1/iterate ------------------------------------------------------------------------------


class IterateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: PayloadKind
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=r"\S")
    context: dict[str, Any] | None = None
    # `provider/model`; chatd's `chat.default_model` when omitted.
    model: str | None = Field(default=None, min_length=1, max_length=200)
    max_iter: StrictInt = Field(default=DEFAULT_MAX_ITER, ge=1, le=MAX_ITER)
    temperature: float | None = Field(default=None, ge=0, le=2)


class IterateResponse(BaseModel):
    """`iterations` counts the model replies received. `final` is the last JSON object the model
    produced (the accepted payload when `status` is `accepted`; null when no reply held JSON);
    `errors` are the validation errors of the last rejected attempt (empty when accepted).
    `model` is `provider/model` as chatd reports it (the requested model, or "" for chatd's
    default, when no reply came)."""

    status: SessionStatus
    iterations: int
    final: dict[str, Any] | None
    errors: list[ValidationError]
    session_id: str
    trace_id: str
    model: str
    infra_error: InfraError | None = None


# -- /v1/sessions -----------------------------------------------------------------------------


class SessionList(BaseModel):
    """Newest first. `skipped` counts lines of the scanned tail that were not session records."""

    data: list[SessionRecord]
    count: int
    skipped: int


# -- client -----------------------------------------------------------------------------------


class ValidateClient:
    """validatord over HTTP (replay, the load harness, the CLI)."""

    def __init__(self, client: ServiceClient, *, timeout_s: float | None = None) -> None:
        self.client = client
        # An iterate session runs several chats: give it a read timeout of its own.
        self.timeout_s = timeout_s

    async def _post(self, path: str, body: dict[str, Any], timeout_s: float | None) -> Any:
        data = await self.client.call_json("POST", path, json=body, timeout_s=timeout_s)
        if not isinstance(data, dict):
            raise UpstreamError(f"{self.client.daemon} answered a non-object to POST {path}")
        return data

    async def validate(
        self, kind: str, payload: Any, context: dict[str, Any] | None = None
    ) -> ValidateResponse:
        body: dict[str, Any] = {"kind": kind, "payload": payload}
        if context is not None:
            body["context"] = context
        return ValidateResponse.model_validate(await self._post(VALIDATE, body, None))

    async def iterate(self, request: IterateRequest) -> IterateResponse:
        body = request.model_dump(mode="json", exclude_none=True)
        return IterateResponse.model_validate(await self._post(ITERATE, body, self.timeout_s))

    async def sessions(self, limit: int | None = None) -> SessionList:
        params = {"limit": limit} if limit is not None else None
        return SessionList.model_validate(
            await self.client.call_json("GET", SESSIONS, params=params)
        )
