"""One transform per observer stream: an observation's event → the parts of an evidence record.

=====================  ===================  ========================================
stream                 evidence kind        task (what groups records)
=====================  ===================  ========================================
`search_runs`          `search_run`         `search`: (query, role)
`playbook_records`     `playbook_record`    `search`: (query, role)
`chat_runs`            `chat_run`           `chat`: the prompt's sha256
`validation_results`   `validation_result`  `validate.<kind>`: the session or trace
`iterate_sessions`     `iterate_session`    `iterate.<kind>`: (kind, prompt)
`replay_runs`          `replay_run`         `iterate.<kind>`: (kind, prompt)
`human_feedback`       `human_feedback`     `feedback`: its target
`pathways`             `pathway`            `pathway`: (demand, role)
any other stream       `observation`        `observation`: (stream, trace); the event
                                            is kept whole in `metadata`
=====================  ===================  ========================================

What goes where (input → output, outcome) is in docs/distill.md.

Each transform reads the fields its producer writes (grep the daemons for `observer.report(`)
and raises :class:`BadEvent` naming the field when a required one is missing or of the wrong
type; the materializer then skips the line (reason `bad_event`) and lists it in its receipt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from lakehouse_common.distill.events import HumanFeedback, ReplayRun
from lakehouse_common.distill.records import normalise_text, task_id

__all__ = ["TRANSFORMS", "BadEvent", "Parts", "kind_of_stream", "transform"]


class BadEvent(Exception):
    """The event lacks a field its stream's transform needs."""


@dataclass(frozen=True)
class Parts:
    kind: str
    task_type: str
    task: str
    input: Any
    output: Any
    outcome: dict[str, Any]
    tokens: tuple[int, int]
    metadata: dict[str, Any]


Event = Mapping[str, Any]


def _text(ev: Event, key: str) -> str:
    value = ev.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadEvent(f"{key}: expected a non-empty string")
    return value


def _opt_text(ev: Event, key: str) -> str | None:
    value = ev.get(key)
    if value is not None and not isinstance(value, str):
        raise BadEvent(f"{key}: expected a string or null")
    return value


def _int(ev: Event, key: str, default: int = 0) -> int:
    value = ev.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadEvent(f"{key}: expected an integer")
    return value


def _number(ev: Event, key: str) -> float | int:
    value = ev.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadEvent(f"{key}: expected a number")
    return value


def _bool(ev: Event, key: str) -> bool:
    value = ev.get(key)
    if not isinstance(value, bool):
        raise BadEvent(f"{key}: expected a boolean")
    return value


def _list(ev: Event, key: str) -> list[Any]:
    value = ev.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadEvent(f"{key}: expected an array")
    return value


def _object(ev: Event, key: str) -> dict[str, Any] | None:
    value = ev.get(key)
    if value is not None and not isinstance(value, dict):
        raise BadEvent(f"{key}: expected an object or null")
    return value


def _tokens(usage: Any, prompt_key: str, completion_key: str) -> tuple[int, int]:
    if not isinstance(usage, Mapping):
        return (0, 0)
    return (_int(usage, prompt_key), _int(usage, completion_key))


def search_task(query_text: str, role: str | None) -> str:
    return task_id("search", normalise_text(query_text), normalise_text(role or ""))


def iterate_task(kind: str, prompt: str) -> str:
    return task_id("iterate", kind, normalise_text(prompt))


# -- the transforms -------------------------------------------------------------------------------


def search_run(ev: Event, trace_id: str, stream: str) -> Parts:
    query = _text(ev, "query_text")
    role = _opt_text(ev, "query_role")
    results = _list(ev, "results")
    for n, hit in enumerate(results):
        if not isinstance(hit, dict) or not isinstance(hit.get("id"), str):
            raise BadEvent(f"results[{n}]: expected an object with a string id")
    return Parts(
        kind="search_run",
        task_type="search",
        task=search_task(query, role),
        input={
            "endpoint": ev.get("endpoint", "search"),
            "query_text": query,
            "query_role": role,
            "index": ev.get("index"),
            "k": ev.get("k"),
            "use_playbook": ev.get("use_playbook", False),
            "filters": ev.get("filters"),
            "sql_filter": ev.get("sql_filter"),
            "exclude_ids": _list(ev, "exclude_ids"),
        },
        output={"results": results},
        outcome={
            "result_count": len(results),
            "boosted": _int(ev, "boosted"),
            "injected": _int(ev, "injected"),
            "playbooks_applied": _list(ev, "playbooks_applied"),
        },
        tokens=(0, 0),
        metadata={
            "elapsed_ms": ev.get("elapsed_ms"),
            "candidates": ev.get("candidates"),
            "dataset": ev.get("dataset"),
        },
    )


def playbook_record(ev: Event, trace_id: str, stream: str) -> Parts:
    query = _text(ev, "query_text")
    role = _text(ev, "role")
    answer = _text(ev, "answer_id")
    score = _number(ev, "score")
    if not 0 <= score <= 1:
        raise BadEvent("score: expected a number in [0, 1]")
    return Parts(
        kind="playbook_record",
        task_type="search",
        task=search_task(query, role),
        input={"query_text": query, "role": role, "index": ev.get("index")},
        output={"answer_id": answer},
        outcome={"score": score, "updated": bool(ev.get("updated", False))},
        tokens=(0, 0),
        metadata={"playbook_id": ev.get("playbook_id"), "recorded_at": ev.get("recorded_at")},
    )


def chat_run(ev: Event, trace_id: str, stream: str) -> Parts:
    status = _text(ev, "status")
    prompt_sha = _opt_text(ev, "prompt_sha256") or ""
    return Parts(
        kind="chat_run",
        task_type="chat",
        task=task_id("chat", prompt_sha or trace_id),
        input={
            "prompt_sha256": prompt_sha,
            "messages": ev.get("messages"),
            "requested_model": ev.get("requested_model"),
            "json": ev.get("json", False),
        },
        output=None,
        outcome={
            "status": status,
            "attempts": ev.get("attempts"),
            "fallback": ev.get("fallback", False),
            "error": ev.get("error"),
        },
        tokens=_tokens(ev, "prompt_tokens", "completion_tokens"),
        metadata={
            "endpoint": ev.get("endpoint"),
            "provider": ev.get("provider"),
            "model": ev.get("model"),
            "latency_ms": ev.get("latency_ms"),
            "stream": ev.get("stream", False),
        },
    )


def validation_result(ev: Event, trace_id: str, stream: str) -> Parts:
    kind = _text(ev, "kind")
    valid = _bool(ev, "valid")
    session = _opt_text(ev, "session_id")
    return Parts(
        kind="validation_result",
        task_type=f"validate.{kind}",
        task=task_id("session", session) if session else task_id("validate", trace_id),
        input={
            "kind": kind,
            "source": ev.get("source", "validate"),
            "session_id": session,
            "iteration": ev.get("iteration"),
        },
        output=None,
        outcome={
            "valid": valid,
            "error_count": _int(ev, "error_count"),
            "errors": _list(ev, "errors"),
        },
        tokens=(0, 0),
        metadata={},
    )


def iterate_session(ev: Event, trace_id: str, stream: str) -> Parts:
    kind = _text(ev, "kind")
    status = _text(ev, "status")
    session = _text(ev, "session_id")
    # Records from before issue 8 carry no prompt: they group by session and export nothing.
    prompt = _opt_text(ev, "prompt")
    return Parts(
        kind="iterate_session",
        task_type=f"iterate.{kind}",
        task=iterate_task(kind, prompt) if prompt else task_id("session", session),
        input={
            "kind": kind,
            "prompt": prompt,
            "context": _object(ev, "context"),
            "max_iter": ev.get("max_iter"),
        },
        output=_object(ev, "final"),
        outcome={
            "status": status,
            "iterations": _int(ev, "iterations"),
            "errors": _list(ev, "errors"),
            "infra_error": _object(ev, "infra_error"),
        },
        tokens=_tokens(ev.get("usage"), "prompt_tokens", "completion_tokens"),
        metadata={
            "session_id": session,
            "model": ev.get("model"),
            "timestamp": ev.get("timestamp"),
        },
    )


def replay_run(ev: Event, trace_id: str, stream: str) -> Parts:
    try:
        run = ReplayRun.model_validate(ev)
    except ValidationError as exc:
        raise BadEvent(_first_error(exc)) from None
    replay = run.replay
    return Parts(
        kind="replay_run",
        task_type=f"iterate.{run.kind}",
        task=iterate_task(run.kind, run.prompt),
        input={
            "kind": run.kind,
            "prompt": run.prompt,
            "context": run.context,
            "retrieved": replay.retrieved,
        },
        output=replay.final,
        outcome={
            "status": replay.status,
            "valid": replay.valid,
            "errors": replay.errors,
            "infra_error": replay.infra_error,
            "original_status": run.original.status,
            "verdict_changed": run.verdict_changed,
        },
        tokens=_tokens(replay.usage, "prompt_tokens", "completion_tokens"),
        metadata={
            "model": replay.model,
            "latency_ms": replay.latency_ms,
            "original_session_id": run.original.session_id,
            "original_source": run.original.source,
            "original_line_offset": run.original.line_offset,
        },
    )


def human_feedback(ev: Event, trace_id: str, stream: str) -> Parts:
    try:
        feedback = HumanFeedback.model_validate(ev)
    except ValidationError as exc:
        raise BadEvent(_first_error(exc)) from None
    target = (
        feedback.target_sig_hash or "",
        feedback.target_trace_id or "",
        feedback.target_kind or "",
    )
    return Parts(
        kind="human_feedback",
        task_type="feedback",
        task=task_id("feedback", *target),
        input={
            "target_sig_hash": feedback.target_sig_hash,
            "target_trace_id": feedback.target_trace_id,
            "target_kind": feedback.target_kind,
        },
        output=None,
        outcome={"label": feedback.label, "note": feedback.note},
        tokens=(0, 0),
        metadata={"coordinator": feedback.coordinator},
    )


def pathway(ev: Event, trace_id: str, stream: str) -> Parts:
    demand = _text(ev, "demand_text")
    role = _text(ev, "role")
    steps = _list(ev, "steps")
    names = []
    for n, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("name"), str):
            raise BadEvent(f"steps[{n}]: expected an object with a string name")
        names.append(step["name"])
    outcome = _object(ev, "outcome")
    if outcome is None:
        raise BadEvent("outcome: expected an object")
    return Parts(
        kind="pathway",
        task_type="pathway",
        task=task_id("pathway", normalise_text(demand), normalise_text(role)),
        input={"demand_text": demand, "role": role},
        output={"steps": names},
        outcome=outcome,
        tokens=(0, 0),
        metadata={"pathway_id": ev.get("pathway_id"), "step_count": len(names)},
    )


def observation(ev: Event, trace_id: str, stream: str) -> Parts:
    """A stream no transform knows (yet): kept whole, so nothing observed is lost."""
    return Parts(
        kind="observation",
        task_type="observation",
        task=task_id("observation", stream, trace_id),
        input=None,
        output=None,
        outcome={},
        tokens=(0, 0),
        metadata={"stream": stream, "event": dict(ev)},
    )


Transform = Callable[[Event, str, str], Parts]

TRANSFORMS: Final[dict[str, Transform]] = {
    "search_runs": search_run,
    "playbook_records": playbook_record,
    "chat_runs": chat_run,
    "validation_results": validation_result,
    "iterate_sessions": iterate_session,
    "replay_runs": replay_run,
    "human_feedback": human_feedback,
    "pathways": pathway,
}

_KINDS: Final = {
    "search_runs": "search_run",
    "playbook_records": "playbook_record",
    "chat_runs": "chat_run",
    "validation_results": "validation_result",
    "iterate_sessions": "iterate_session",
    "replay_runs": "replay_run",
    "human_feedback": "human_feedback",
    "pathways": "pathway",
}


def kind_of_stream(stream: str) -> str:
    return _KINDS.get(stream, "observation")


def transform(stream: str, event: Event, trace_id: str) -> Parts:
    return TRANSFORMS.get(stream, observation)(event, trace_id, stream)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "event"
    return f"{where}: {err['msg']}"
