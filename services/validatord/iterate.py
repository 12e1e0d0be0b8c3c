"""The generate → validate → retry loop behind `POST /v1/iterate` (SPEC §6).

One session:

1. The conversation opens with a system message describing the JSON the kind needs and a user
   message holding the prompt (and the context, as JSON, when given).
2. Each iteration asks chatd (`POST /v1/chat`, `json: true`) for a reply, pulls the first JSON
   object out of it (`extract_json`) and validates it. A reply without JSON is a failed
   iteration whose error is `Schema{field:"$"}`.
3. Accepted → done. Otherwise the reply and the errors, as a new user turn, join the
   conversation and the next iteration starts, up to `max_iter`; then `max_iter_exhausted`.
4. Any failed chat call (chatd unreachable, timing out, answering an error envelope: no
   provider, provider down, rate-limited) — or, for a fill, queryd unavailable — ends the
   session as `infra_error`, with `infra_error` naming the daemon, the status it answered (null
   when it could not be reached), its error code and message. The session is still recorded.

Every session that ran appends one record to the session log (fsync'd before the answer) and
reports it to observerd's `iterate_sessions`; each validation is reported to
`validation_results` with the session id and iteration number.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

from lakehouse_common.contracts.chat import ChatClient, ChatMessage, ChatRequest
from lakehouse_common.contracts.validate import IterateRequest, IterateResponse
from lakehouse_common.draft_prompts import opening_prompt, system_prompt
from lakehouse_common.errors import LakehouseError
from lakehouse_common.extract_json import extract_json
from lakehouse_common.logging import get_logger
from lakehouse_common.observer import Observer
from lakehouse_common.session_log import (
    InfraError,
    SessionRecord,
    SessionStatus,
    append_session,
    new_session_id,
)
from lakehouse_common.validation_error import ValidationError
from services.validatord.rules import ROOT
from services.validatord.service import (
    SESSION_STREAM,
    VALIDATION_STREAM,
    PayloadValidator,
    ValidatorMetrics,
    parse_context,
)

DAEMON: Final = "validatord"
NO_JSON: Final = "no JSON object found in the reply"

log = get_logger("lakehouse.validatord.iterate")


def feedback_prompt(errors: list[ValidationError]) -> str:
    """The next user turn after a rejected reply: each error on its own line, in its wire
    shape, so the model sees exactly what the validator said."""
    lines = "\n".join(f"- {error.to_json().decode()}" for error in errors)
    return (
        "Your reply was rejected by the validator:\n"
        f"{lines}\n"
        "Fix every error and answer again with only the corrected JSON object."
    )


def _infra(daemon: str, exc: LakehouseError) -> InfraError:
    """`exc` as an `InfraError`. `RosterUnavailable` wraps queryd's own error: report that."""
    origin = exc.__cause__ if isinstance(exc.__cause__, LakehouseError) else exc
    # An error rebuilt from the daemon's envelope carries the status it answered; one raised by
    # our own client (connection refused, timeout) has the network error as its cause.
    reached = origin.__cause__ is None
    return InfraError(
        daemon=daemon,
        status=origin.status if reached else None,
        code=origin.code,
        message=exc.message,
    )


class IterateLoop:
    """Runs sessions; one instance per daemon."""

    def __init__(
        self,
        validator: PayloadValidator,
        chat: ChatClient,
        session_log: Path,
        observer: Observer | None = None,
        metrics: ValidatorMetrics | None = None,
    ) -> None:
        self.validator = validator
        self.chat = chat
        self.session_log = session_log
        self.observer = observer
        self.metrics = metrics

    async def run(self, request: IterateRequest, trace_id: str) -> IterateResponse:
        context = parse_context(request.kind, request.context)  # 422 before any chat
        session_id = new_session_id(trace_id)
        messages = [
            ChatMessage(role="system", content=system_prompt(request.kind)),
            ChatMessage(role="user", content=opening_prompt(request.prompt, request.context)),
        ]
        status: SessionStatus = "max_iter_exhausted"
        final: dict[str, Any] | None = None
        errors: list[ValidationError] = []
        infra: InfraError | None = None
        model = request.model or ""
        iterations = 0
        prompt_tokens = completion_tokens = 0
        for attempt in range(1, request.max_iter + 1):
            try:
                reply = await self.chat.chat(
                    ChatRequest(
                        model=request.model,
                        messages=messages,
                        temperature=request.temperature,
                        json=True,
                    )
                )
            except LakehouseError as exc:
                infra = _infra("chatd", exc)
                status = "infra_error"
                break
            iterations = attempt
            model = f"{reply.provider}/{reply.model}"
            prompt_tokens += reply.usage.prompt_tokens
            completion_tokens += reply.usage.completion_tokens
            matched, value = extract_json(reply.content)
            if not matched or value is None:
                errors = [ValidationError.schema(ROOT, NO_JSON)]
                self._report_no_json(request.kind, session_id, attempt)
            else:
                final = value
                try:
                    result = await self.validator.validate(
                        request.kind,
                        value,
                        context,
                        report={
                            "source": "iterate",
                            "session_id": session_id,
                            "iteration": attempt,
                        },
                    )
                except LakehouseError as exc:  # queryd down, or catalogd (the audit log)
                    details = exc.details if isinstance(exc.details, dict) else {}
                    infra = _infra(str(details.get("daemon", "queryd")), exc)
                    status = "infra_error"
                    break
                errors = list(result.errors)
                if result.valid:
                    status = "accepted"
                    break
            messages.append(ChatMessage(role="assistant", content=reply.content))
            messages.append(ChatMessage(role="user", content=feedback_prompt(errors)))

        record = SessionRecord(
            session_id=session_id,
            trace_id=trace_id,
            daemon=DAEMON,
            kind=request.kind,
            model=model,
            status=status,
            iterations=iterations,
            errors=errors,
            infra_error=infra,
        )
        await asyncio.to_thread(append_session, self.session_log, record)
        if self.metrics is not None:
            self.metrics.sessions.labels(request.kind, status).inc()
        if self.observer is not None:
            # The stream event is the session-log record plus the task and its answer, which
            # distillation turns into training rows and replays (issue 8); the session log
            # itself keeps SPEC §6's fields.
            self.observer.report(
                SESSION_STREAM,
                {
                    **record.model_dump(mode="json", by_alias=True),
                    "prompt": request.prompt,
                    "context": request.context,
                    "max_iter": request.max_iter,
                    "final": final,
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                    },
                },
            )
        if infra is not None:
            log.warning(
                "iterate session ended on an infrastructure error",
                daemon=infra.daemon,
                code=infra.code,
                iterations=iterations,
            )
        return IterateResponse(
            status=status,
            iterations=iterations,
            final=final,
            errors=errors,
            session_id=session_id,
            trace_id=trace_id,
            model=model,
            infra_error=infra,
        )

    def _report_no_json(self, kind: str, session_id: str, attempt: int) -> None:
        """A reply without JSON is a failed validation too: report it like one."""
        if self.metrics is not None:
            self.metrics.validations.labels(kind, "false").inc()
        if self.observer is not None:
            error = ValidationError.schema(ROOT, NO_JSON)
            self.observer.report(
                VALIDATION_STREAM,
                {
                    "kind": kind,
                    "valid": False,
                    "error_count": 1,
                    "errors": [error.to_wire()],
                    "source": "iterate",
                    "session_id": session_id,
                    "iteration": attempt,
                },
            )


__all__ = ["IterateLoop", "feedback_prompt", "opening_prompt", "system_prompt"]
