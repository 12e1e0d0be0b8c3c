"""validatord routes (SPEC §6): validate a payload, run an iterate session, list sessions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from lakehouse_common.config import ValidatorSettings
from lakehouse_common.contracts.validate import (
    ITERATE,
    SESSIONS,
    VALIDATE,
    IterateRequest,
    IterateResponse,
    SessionList,
    ValidateRequest,
    ValidateResponse,
)
from lakehouse_common.errors import UnprocessableEntity
from lakehouse_common.session_log import read_recent_sessions
from lakehouse_common.tracing import current_trace_id
from services.validatord.iterate import IterateLoop
from services.validatord.service import PayloadValidator, parse_context
from services.validatord.state import (
    iterate_loop,
    payload_validator,
    session_log,
    validator_settings,
)

router = APIRouter(tags=["validate"])

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "fill only: queryd or the roster view is unavailable"}
}


@router.post(
    VALIDATE,
    response_model=ValidateResponse,
    summary="Validate a fill proposal, email or SMS; an invalid payload is a 200 answer.",
    responses=_UNAVAILABLE,
)
async def validate_payload(
    validator: Annotated[PayloadValidator, Depends(payload_validator)], body: ValidateRequest
) -> ValidateResponse:
    """`errors` are ValidationErrors in their wire shape (`{"Schema":{"field","reason"}}`, …).
    422 for a malformed request (unknown kind, no payload, a fill context that is not
    `{demand?, exclude_ids?}`); 503 `roster_unavailable` when a fill cannot be checked."""
    context = parse_context(body.kind, body.context)
    return await validator.validate(body.kind, body.payload, context)


@router.post(
    ITERATE,
    response_model=IterateResponse,
    summary="Generate with chatd, validate, feed the errors back; at most max_iter rounds.",
    responses={422: {"description": "malformed request (max_iter outside 1..10, no prompt…)"}},
)
async def iterate_session(
    loop: Annotated[IterateLoop, Depends(iterate_loop)], body: IterateRequest
) -> IterateResponse:
    """Answers 200 with `status` accepted, max_iter_exhausted or infra_error (chatd, or
    queryd for a fill, failed: `infra_error` says which and why). Every session is appended
    to the session log before the answer."""
    return await loop.run(body, current_trace_id.get())


@router.get(
    SESSIONS,
    response_model=SessionList,
    summary="The most recent session-log records, newest first.",
)
async def list_sessions(
    settings: Annotated[ValidatorSettings, Depends(validator_settings)],
    path: Annotated[Path, Depends(session_log)],
    limit: int | None = Query(default=None, ge=1, description="records to answer"),
) -> SessionList:
    """`limit` defaults to `validator.sessions_default_limit`; above
    `validator.sessions_max_limit` → 422."""
    if limit is None:
        limit = settings.sessions_default_limit
    elif limit > settings.sessions_max_limit:
        raise UnprocessableEntity(
            f"limit {limit} is above validator.sessions_max_limit ({settings.sessions_max_limit})",
            details={"limit": limit, "max": settings.sessions_max_limit},
        )
    recent = await asyncio.to_thread(read_recent_sessions, path, limit)
    return SessionList(data=recent.records, count=len(recent.records), skipped=recent.skipped)
