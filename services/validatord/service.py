"""validatord's domain logic (SPEC §6): validate a payload of a kind, report the outcome.

`PayloadValidator` dispatches to the email and SMS rules (`rules.py`) and the fill validator
(`fill.py`, with roster facts from queryd through `roster.py`), counts results in Prometheus and
reports each one to observerd's `validation_results` stream (fire and forget). No FastAPI here.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError as ModelError

from lakehouse_common.config import ValidatorSettings
from lakehouse_common.contracts.validate import FillContext, ValidateResponse
from lakehouse_common.errors import UnprocessableEntity
from lakehouse_common.observer import Observer
from lakehouse_common.validation_error import ValidationError
from services.validatord.fill import check_fill, parse_fill
from services.validatord.roster import Roster
from services.validatord.rules import validate_email, validate_sms

VALIDATION_STREAM = "validation_results"
SESSION_STREAM = "iterate_sessions"


class ValidatorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.validations = Counter(
            "lakehouse_validations",
            "Payloads validated, by kind and outcome",
            ["kind", "valid"],
            registry=registry,
        )
        self.sessions = Counter(
            "lakehouse_iterate_sessions",
            "Iterate sessions, by kind and final status",
            ["kind", "status"],
            registry=registry,
        )


def parse_context(kind: str, context: dict[str, Any] | None) -> FillContext | None:
    """A fill's `context` as a `FillContext`; 422 (the request is malformed) when it is not one.
    Email and SMS take no context: whatever is given is ignored."""
    if kind != "fill" or context is None:
        return None
    try:
        return FillContext.model_validate(context)
    except ModelError as exc:
        details = [
            {"loc": ["body", "context", *err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        first = details[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UnprocessableEntity(f"{where}: {first['msg']}", details=details) from None


class PayloadValidator:
    """Validates fill, email and SMS payloads; every result is counted and reported."""

    def __init__(
        self,
        settings: ValidatorSettings,
        roster: Roster,
        observer: Observer | None = None,
        metrics: ValidatorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.roster = roster
        self.observer = observer
        self.metrics = metrics

    async def errors_of(
        self, kind: str, payload: Any, context: FillContext | None
    ) -> list[ValidationError]:
        """What is wrong with `payload` (empty: valid). A fill may raise `RosterUnavailable`."""
        if kind == "email":
            return validate_email(
                payload,
                subject_max_chars=self.settings.email_subject_max_chars,
                body_max_chars=self.settings.email_body_max_chars,
            )
        if kind == "sms":
            return validate_sms(payload)
        if kind == "fill":
            proposal, errors = parse_fill(
                payload, context, max_workers=self.settings.max_fill_workers
            )
            if proposal is None:
                return errors
            facts = await self.roster.facts(proposal.ids)
            return check_fill(proposal, facts)
        raise UnprocessableEntity(f"unknown kind {kind!r}; expected fill, email or sms")

    async def validate(
        self,
        kind: str,
        payload: Any,
        context: FillContext | None,
        *,
        report: dict[str, Any] | None = None,
    ) -> ValidateResponse:
        """Validate, count and report; `report` adds keys to the observer event."""
        errors = await self.errors_of(kind, payload, context)
        result = ValidateResponse(valid=not errors, errors=errors)
        if self.metrics is not None:
            self.metrics.validations.labels(kind, str(result.valid).lower()).inc()
        if self.observer is not None:
            self.observer.report(
                VALIDATION_STREAM,
                {
                    "kind": kind,
                    "valid": result.valid,
                    "error_count": len(errors),
                    "errors": [e.to_wire() for e in errors],
                    **(report or {"source": "validate"}),
                },
            )
        return result
