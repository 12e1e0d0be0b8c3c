"""Distillation test helpers: a `_kb` of its own written line by line, observations and
sessions in observerd's and validatord's shapes, and readers for the outputs."""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

import orjson

from tests.support.paths import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "distill"
HELDOUT = FIXTURES / "heldout_eval.jsonl"

_clock = count(1)


def stamp(day: str = "2026-05-01") -> str:
    """A fresh, increasing observerd-style timestamp on `day`."""
    n = next(_clock)
    return f"{day}T10:{(n // 60) % 60:02d}:{n % 60:02d}.{n:09d}Z"


def observation(
    event: dict[str, Any],
    *,
    trace_id: str = "trace-1",
    daemon: str = "test",
    recorded_at: str | None = None,
) -> bytes:
    return orjson.dumps(
        {
            "schema": "observation.v1",
            "recorded_at": recorded_at or stamp(),
            "trace_id": trace_id,
            "daemon": daemon,
            "event": event,
        }
    )


class Kb:
    """Writes `_kb/<stream>.jsonl` below a data dir (as observerd would)."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "_kb"
        self.dir.mkdir(parents=True, exist_ok=True)

    def append(self, stream: str, *lines: bytes) -> Path:
        path = self.dir / f"{stream}.jsonl"
        with path.open("ab") as fh:
            for line in lines:
                fh.write(line + b"\n")
        return path

    def event(self, stream: str, event: dict[str, Any], **kw: Any) -> Path:
        return self.append(stream, observation(event, **kw))


def session(
    prompt: str | None,
    final: dict[str, Any] | None,
    *,
    kind: str = "sms",
    status: str = "accepted",
    trace: str = "s-1",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An `iterate_sessions` event as validatord reports it (issue 8 shape)."""
    return {
        "schema": "validator_session.v1",
        "session_id": trace,
        "trace_id": trace,
        "daemon": "validatord",
        "timestamp": "2026-05-01T10:00:00.000000000Z",
        "kind": kind,
        "model": "ollama/fake-model",
        "status": status,
        "iterations": 1,
        "errors": [],
        "infra_error": None,
        "prompt": prompt,
        "context": context,
        "max_iter": 3,
        "final": final,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def digests(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file below `directory`: its bytes, inode and mtime (nanoseconds)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            st = path.stat()
            out[path.relative_to(directory).as_posix()] = (
                path.read_bytes(),
                st.st_ino,
                st.st_mtime_ns,
            )
    return out
