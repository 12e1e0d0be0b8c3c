"""replay: re-run recorded iterate tasks through the live stack (SPEC §7).

`lakehouse distill replay --limit N` takes the last N distinct tasks (kind + prompt) recorded
in `_kb/iterate_sessions.jsonl` (read directly, read-only) and, for each, through the gateway:

1. retrieve — `POST /v1/matrix/retrieve {query_text: prompt, k: distill.replay_k,
   index: distill.replay_index}`: the evidence bundle;
2. bundle → chat — `POST /v1/chat {json: true}` with the session's own opening
   (:mod:`lakehouse_common.draft_prompts`) plus the bundle's rows as JSON;
3. validate — the first JSON object of the reply (`extract_json`) through
   `POST /v1/validate {kind, payload, context}` (no JSON: rejected, `Schema{field: "$"}`);
4. log — one `replay_run.v1` event (:class:`~lakehouse_common.distill.events.ReplayRun`:
   original vs replay verdict, latency, model, retrieved ids, tokens) appended through
   `POST /v1/observe/replay_runs`: observerd is the only writer of `_kb/`.

A daemon failing mid-replay (an error answer or no answer) makes that replay `infra_error`,
naming the daemon, and the next task is tried. Every call carries one minted trace id per
replay, so the replay's own search, chat and validation events join it in `_kb`. A CLI is a cold
path: plain httpx (SPEC §3).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from lakehouse_common.config import DistillSettings
from lakehouse_common.contracts.chat import CHAT
from lakehouse_common.contracts.matrix import RETRIEVE
from lakehouse_common.contracts.observe import stream_path
from lakehouse_common.contracts.validate import VALIDATE
from lakehouse_common.distill.events import (
    DAEMON,
    REPLAY_STREAM,
    ReplayOriginal,
    ReplayOutcome,
    ReplayRun,
    ReplayStatus,
)
from lakehouse_common.distill.jsonl import read_lines
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.transforms import iterate_task
from lakehouse_common.draft_prompts import opening_prompt, system_prompt
from lakehouse_common.extract_json import extract_json
from lakehouse_common.tracing import TRACE_HEADER, mint_trace_id

__all__ = ["RecordedTask", "ReplayFailed", "recorded_tasks", "replay_task", "replay_tasks"]

SESSIONS_STREAM: Final = "iterate_sessions"
NO_JSON: Final = "no JSON object found in the reply"
_KINDS: Final = ("fill", "email", "sms")


class ReplayFailed(Exception):
    """observerd did not take a replay row: nothing more can be logged."""


@dataclass(frozen=True)
class RecordedTask:
    kind: str
    prompt: str
    context: dict[str, Any] | None
    original: ReplayOriginal


def recorded_tasks(layout: DistillLayout, limit: int) -> list[RecordedTask]:
    """The last `limit` distinct tasks of the recorded iterate sessions, oldest first (memory:
    `limit` tasks, whatever the size of the stream)."""
    path = layout.kb / f"{SESSIONS_STREAM}.jsonl"
    tasks: OrderedDict[str, RecordedTask] = OrderedDict()
    if limit <= 0 or not path.is_file():
        return []
    source = layout.relative(path)
    for number, _, raw, complete in read_lines(path):
        if not complete:
            continue
        try:
            obs = orjson.loads(raw)
            event = obs["event"]
            kind, prompt = event["kind"], event.get("prompt")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        if kind not in _KINDS or not isinstance(prompt, str) or not prompt.strip():
            continue
        context = event.get("context")
        original = ReplayOriginal(
            session_id=str(event.get("session_id", "")),
            trace_id=str(obs.get("trace_id", "")),
            status=str(event.get("status", "")),
            model=str(event.get("model", "")),
            source=source,
            line_offset=number,
        )
        key = iterate_task(kind, prompt)
        tasks.pop(key, None)
        tasks[key] = RecordedTask(
            kind, prompt, context if isinstance(context, dict) else None, original
        )
        if len(tasks) > limit:
            tasks.popitem(last=False)
    return list(tasks.values())


class _Infra(Exception):
    def __init__(self, daemon: str, status: int | None, code: str, message: str) -> None:
        super().__init__(message)
        self.detail = {"daemon": daemon, "status": status, "code": code, "message": message}


def _call(
    client: httpx.Client, daemon: str, path: str, body: dict[str, Any], trace: str, timeout_s: float
) -> dict[str, Any]:
    try:
        resp = client.post(path, json=body, headers={TRACE_HEADER: trace}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise _Infra(daemon, None, "upstream_unavailable", f"{daemon} via {path}: {exc}") from None
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status_code != 200 or not isinstance(data, dict):
        error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
        raise _Infra(
            daemon,
            resp.status_code,
            str(error.get("code", "upstream_error")),
            str(error.get("message", resp.text[:300])),
        )
    return data


def _bundle_prompt(task: RecordedTask, bundle: dict[str, Any]) -> str:
    rows = [{"id": e.get("id"), "row": e.get("row")} for e in bundle.get("results", [])]
    return (
        f"{opening_prompt(task.prompt, task.context)}\n\n"
        f"Evidence (JSON):\n{orjson.dumps(rows).decode()}"
    )


def replay_task(
    client: httpx.Client, task: RecordedTask, settings: DistillSettings, model: str | None = None
) -> tuple[str, ReplayRun]:
    """Replay one task; answers its trace id and the `replay_run.v1` row (not yet logged)."""
    trace = mint_trace_id()
    started = time.perf_counter()
    retrieved: list[str] = []
    final: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = []
    valid: bool | None = None
    answered_by = model or ""
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    infra: dict[str, Any] | None = None
    timeout = settings.replay_timeout_s
    try:
        bundle = _call(
            client,
            "matrixd",
            RETRIEVE,
            {"query_text": task.prompt, "k": settings.replay_k, "index": settings.replay_index},
            trace,
            timeout,
        )
        retrieved = [str(e.get("id")) for e in bundle.get("results", [])]
        chat_body: dict[str, Any] = {
            "messages": [
                {"role": "system", "content": system_prompt(task.kind)},
                {"role": "user", "content": _bundle_prompt(task, bundle)},
            ],
            "json": True,
        }
        if model:
            chat_body["model"] = model
        reply = _call(client, "chatd", CHAT, chat_body, trace, timeout)
        answered_by = f"{reply.get('provider', '')}/{reply.get('model', '')}"
        got = reply.get("usage") or {}
        usage = {
            "prompt_tokens": int(got.get("prompt_tokens", 0)),
            "completion_tokens": int(got.get("completion_tokens", 0)),
        }
        matched, value = extract_json(str(reply.get("content", "")))
        if not matched or not isinstance(value, dict):
            valid, errors = False, [{"Schema": {"field": "$", "reason": NO_JSON}}]
        else:
            final = value
            body: dict[str, Any] = {"kind": task.kind, "payload": value}
            if task.context is not None:
                body["context"] = task.context
            verdict = _call(client, "validatord", VALIDATE, body, trace, timeout)
            valid = bool(verdict.get("valid"))
            errors = list(verdict.get("errors", []))
    except _Infra as exc:
        infra = exc.detail
    status: ReplayStatus = (
        "infra_error" if infra is not None else ("accepted" if valid else "rejected")
    )
    original_ok = task.original.status == "accepted"
    changed = (
        status != "infra_error"
        and task.original.status != "infra_error"
        and original_ok != (status == "accepted")
    )
    run = ReplayRun(
        kind=task.kind,
        prompt=task.prompt,
        context=task.context,
        original=task.original,
        replay=ReplayOutcome(
            status=status,
            valid=valid,
            errors=errors,
            final=final,
            model=answered_by,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            retrieved=retrieved,
            usage=usage,
            infra_error=infra,
        ),
        verdict_changed=changed,
    )
    return trace, run


def log_replay(client: httpx.Client, trace: str, run: ReplayRun) -> int:
    """Append the row through observerd; answers its line in `replay_runs`."""
    body = {"event": run.event(), "daemon": DAEMON, "trace_id": trace}
    try:
        resp = client.post(stream_path(REPLAY_STREAM), json=body, headers={TRACE_HEADER: trace})
    except httpx.HTTPError as exc:
        raise ReplayFailed(f"observerd is not reachable: {exc}") from None
    if resp.status_code != 200:
        raise ReplayFailed(
            f"observerd refused the replay row: HTTP {resp.status_code}: {resp.text[:300]}"
        )
    return int(resp.json()["first_line"])


def replay_tasks(
    client: httpx.Client,
    tasks: list[RecordedTask],
    settings: DistillSettings,
    *,
    model: str | None = None,
    on_done: Callable[[RecordedTask, ReplayRun], None] | None = None,
) -> list[ReplayRun]:
    runs = []
    for task in tasks:
        trace, run = replay_task(client, task, settings, model)
        log_replay(client, trace, run)
        runs.append(run)
        if on_done is not None:
            on_done(task, run)
    return runs
