"""The fill-proposal validator (SPEC §6): schema, count, roster existence, role, state,
duplicates, exclusions.

Two steps, so the roster is only read for a proposal whose shape is right:

1. `parse_fill` checks the payload's shape field by field (`Schema` errors with paths such as
   `workers[2].id`) and settles the demand (the context's wins; the payload's must agree with
   it) and the excluded ids (payload's ∪ context's). Any schema error ends validation there.
2. `check_fill` compares the proposal with the demand and with the roster facts of its ids:
   - too few workers → `Completeness`; too many → `Consistency`;
   - an id proposed twice → `Consistency`; an excluded id → `Policy`;
   - an id not in the roster, a worker of another role (compared case- and
     space-insensitively) or living outside the demand's state, a role/city/state the payload
     states that the roster contradicts → `Consistency`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from lakehouse_common.contracts.validate import FillContext, FillDemand
from lakehouse_common.text import normalise
from lakehouse_common.validation_error import ValidationError, json_type
from services.validatord.roster import WorkerFacts
from services.validatord.rules import not_an_object

_CLAIMS = ("role", "city", "state")


@dataclass(frozen=True)
class ProposedWorker:
    id: str
    # What the payload says about the worker (only the keys it gave, as strings).
    claims: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FillProposal:
    demand: FillDemand
    workers: list[ProposedWorker]
    exclude_ids: frozenset[str]

    @property
    def ids(self) -> list[str]:
        return [w.id for w in self.workers]


def parse_fill(
    payload: object, context: FillContext | None, *, max_workers: int
) -> tuple[FillProposal | None, list[ValidationError]]:
    """The proposal, or None with the schema errors that make it unusable."""
    if not isinstance(payload, dict):
        return None, [not_an_object(payload)]
    errors: list[ValidationError] = []
    demand = _demand(payload, context, errors)
    workers = _workers(payload, max_workers, errors)
    excluded = _exclude_ids(payload, errors)
    if context is not None:
        excluded |= set(context.exclude_ids)
    if errors or demand is None or workers is None:
        return None, errors
    return FillProposal(demand, workers, frozenset(excluded)), []


def _demand(
    payload: dict[str, Any], context: FillContext | None, errors: list[ValidationError]
) -> FillDemand | None:
    given = context.demand if context is not None else None
    if "demand" not in payload:
        if given is None:
            errors.append(ValidationError.schema("demand", "required (or give it in context)"))
        return given
    raw = payload["demand"]
    if not isinstance(raw, dict):
        errors.append(ValidationError.schema("demand", f"expected an object, got {json_type(raw)}"))
        return given
    before = len(errors)
    role = raw.get("role")
    if not isinstance(role, str) or not role.strip():
        errors.append(ValidationError.schema("demand.role", _want("a non-empty string", role)))
    city = raw.get("city")
    if city is not None and not isinstance(city, str):
        errors.append(ValidationError.schema("demand.city", _want("a string", city)))
    state = raw.get("state")
    if not (isinstance(state, str) and len(state.strip()) == 2 and state.strip().isalpha()):
        errors.append(
            ValidationError.schema("demand.state", _want("a two-letter state code", state))
        )
    count = raw.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        errors.append(ValidationError.schema("demand.count", _want("an integer ≥ 1", count)))
    if len(errors) > before:
        return given
    stated = FillDemand(role=str(role), city=city, state=str(state).strip(), count=cast(int, count))
    if given is not None:
        mismatch = _demand_mismatch(stated, given)
        if mismatch:
            errors.append(
                ValidationError.consistency(
                    f"the payload's demand differs from the demand in context ({mismatch})"
                )
            )
        return given
    return stated


def _demand_mismatch(stated: FillDemand, given: FillDemand) -> str:
    diffs = []
    if normalise(stated.role) != normalise(given.role):
        diffs.append(f"role {stated.role!r} ≠ {given.role!r}")
    if stated.state.upper() != given.state.upper():
        diffs.append(f"state {stated.state!r} ≠ {given.state!r}")
    if stated.count != given.count:
        diffs.append(f"count {stated.count} ≠ {given.count}")
    if stated.city and given.city and normalise(stated.city) != normalise(given.city):
        diffs.append(f"city {stated.city!r} ≠ {given.city!r}")
    return "; ".join(diffs)


def _workers(
    payload: dict[str, Any], max_workers: int, errors: list[ValidationError]
) -> list[ProposedWorker] | None:
    if "workers" not in payload:
        errors.append(ValidationError.schema("workers", "required"))
        return None
    raw = payload["workers"]
    if not isinstance(raw, list):
        errors.append(ValidationError.schema("workers", f"expected an array, got {json_type(raw)}"))
        return None
    if len(raw) > max_workers:
        errors.append(
            ValidationError.schema(
                "workers", f"{len(raw)} workers; a proposal holds at most {max_workers}"
            )
        )
        return None
    workers: list[ProposedWorker] = []
    before = len(errors)
    for i, item in enumerate(raw):
        if isinstance(item, str):
            if item.strip():
                workers.append(ProposedWorker(item.strip()))
            else:
                errors.append(ValidationError.schema(f"workers[{i}]", "empty worker id"))
            continue
        if not isinstance(item, dict):
            errors.append(
                ValidationError.schema(
                    f"workers[{i}]", f"expected an id or an object, got {json_type(item)}"
                )
            )
            continue
        worker_id = item.get("id")
        if not isinstance(worker_id, str) or not worker_id.strip():
            errors.append(
                ValidationError.schema(f"workers[{i}].id", _want("a non-empty string", worker_id))
            )
            continue
        claims: dict[str, str] = {}
        for key in _CLAIMS:
            value = item.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                errors.append(
                    ValidationError.schema(f"workers[{i}].{key}", _want("a string", value))
                )
            elif value.strip():
                claims[key] = value
        workers.append(ProposedWorker(worker_id.strip(), claims))
    return workers if len(errors) == before else None


def _exclude_ids(payload: dict[str, Any], errors: list[ValidationError]) -> set[str]:
    raw = payload.get("exclude_ids")
    if raw is None:
        return set()
    if not isinstance(raw, list):
        errors.append(
            ValidationError.schema("exclude_ids", f"expected an array, got {json_type(raw)}")
        )
        return set()
    out: set[str] = set()
    for i, value in enumerate(raw):
        if isinstance(value, str):
            out.add(value.strip())
        else:
            errors.append(ValidationError.schema(f"exclude_ids[{i}]", _want("a string", value)))
    return out


def _want(what: str, value: object) -> str:
    if value is None:
        return f"required: {what}"
    return f"expected {what}, got {json_type(value)}"


def check_fill(proposal: FillProposal, roster: dict[str, WorkerFacts]) -> list[ValidationError]:
    """Everything a well-shaped proposal can still get wrong, in proposal order."""
    errors: list[ValidationError] = []
    demand = proposal.demand
    proposed = len(proposal.workers)
    if proposed < demand.count:
        errors.append(
            ValidationError.completeness(
                f"{proposed} worker{'s' if proposed != 1 else ''} proposed; "
                f"the demand asks for {demand.count}"
            )
        )
    elif proposed > demand.count:
        errors.append(
            ValidationError.consistency(
                f"{proposed} workers proposed; the demand asks for {demand.count}"
            )
        )
    role = normalise(demand.role)
    state = demand.state.strip().upper()
    counts = Counter(proposal.ids)
    seen: set[str] = set()
    for worker in proposal.workers:
        wid = worker.id
        if wid in seen:
            continue
        seen.add(wid)
        if counts[wid] > 1:
            errors.append(
                ValidationError.consistency(f"worker {wid} is proposed {counts[wid]} times")
            )
        if wid in proposal.exclude_ids:
            errors.append(ValidationError.policy(f"worker {wid} is excluded from this demand"))
        facts = roster.get(wid)
        if facts is None:
            errors.append(ValidationError.consistency(f"worker {wid} is not in the roster"))
            continue
        if normalise(facts.role) != role:
            errors.append(
                ValidationError.consistency(
                    f"worker {wid} is a {facts.role}, not a {demand.role.strip()}"
                )
            )
        if facts.state.strip().upper() != state:
            errors.append(
                ValidationError.consistency(
                    f"worker {wid} is in {facts.city}, {facts.state}, outside {state}"
                )
            )
        for key, claim in worker.claims.items():
            actual = getattr(facts, key)
            if normalise(claim) != normalise(actual):
                errors.append(
                    ValidationError.consistency(
                        f"worker {wid}: the payload says {key} {claim!r}, the roster says "
                        f"{actual!r}"
                    )
                )
    return errors


__all__ = ["FillProposal", "ProposedWorker", "check_fill", "parse_fill"]
