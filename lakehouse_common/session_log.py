"""The session log: one JSON line per generate→validate session (SPEC §3, §6).

Any daemon that runs validator sessions (validatord's `/v1/iterate` today) appends one record per
session to `<data_dir>/sessions/sessions.jsonl`; each line tags the `daemon` that wrote it, so
several daemons (or runtimes) can share one file and one DuckDB query covers them all — queryd
serves `<data_dir>/sessions/*.jsonl` as the view `sessions`. A record::

    {"schema":"validator_session.v1","session_id":"18abbabdc2306a83-c2306aa9",
     "trace_id":"18abbabdc2306a83-c2306aa9","daemon":"validatord",
     "timestamp":"2026-05-02T09:14:03.461439210Z","kind":"fill","model":"ollama/qwen2.5",
     "status":"accepted","iterations":2,"errors":[],"infra_error":null}

`session_id` is never empty (the original system wrote `""` on every row while its tracing was
off, which broke every join): the session's trace id, else a minted time-ordered id.
`timestamp` is RFC 3339 UTC with nanoseconds. `errors` are the `ValidationError`s of the last
failed attempt in their wire shape; `infra_error` (null unless `status` is `infra_error`) names
the daemon that failed and why.

Writes never tear and survive a crash once acknowledged: each append takes an exclusive `flock`
on the file, repairs a missing final newline a crashed writer may have left (so the new record
starts on its own line), writes the whole line with `O_APPEND`, and fsyncs before returning;
creating the file also fsyncs the directory. Both functions block: call them from a worker
thread in async code.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as ModelError

from lakehouse_common.clock import now_rfc3339_nanos
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.durable import fsync_dir, make_dirs_durably, write_all
from lakehouse_common.tracing import mint_trace_id
from lakehouse_common.validation_error import ValidationError

__all__ = [
    "SCHEMA",
    "SESSIONS_DIR",
    "SESSIONS_FILE",
    "STATUSES",
    "InfraError",
    "RecentSessions",
    "SessionRecord",
    "SessionStatus",
    "append_session",
    "new_session_id",
    "read_recent_sessions",
    "session_log_path",
]

SCHEMA: Final = "validator_session.v1"
SESSIONS_DIR: Final = "sessions"
SESSIONS_FILE: Final = "sessions.jsonl"

SessionStatus = Literal["accepted", "max_iter_exhausted", "infra_error"]
STATUSES: Final[tuple[str, ...]] = ("accepted", "max_iter_exhausted", "infra_error")

# Reading the tail: blocks of this size, backwards from the end.
_TAIL_BLOCK: Final = 64 * 1024


def session_log_path(settings: LakehouseSettings) -> Path:
    """`<data_dir>/sessions/sessions.jsonl`."""
    return settings.data_dir / SESSIONS_DIR / SESSIONS_FILE


def new_session_id(trace_id: str | None) -> str:
    """The session's id: its trace id when it has one, else a minted time-ordered id."""
    return trace_id or mint_trace_id()


class InfraError(BaseModel):
    """Why a session ended as `infra_error`: the daemon that failed and its answer."""

    model_config = ConfigDict(extra="forbid")

    daemon: str
    # HTTP status the daemon answered, or null when it could not be reached at all.
    status: int | None = None
    code: str
    message: str


class SessionRecord(BaseModel):
    """One session-log line. Unknown keys are kept (another writer may add some)."""

    model_config = ConfigDict(extra="allow")

    schema_: str = Field(default=SCHEMA, alias="schema")
    session_id: str = Field(min_length=1)
    trace_id: str
    daemon: str
    timestamp: str = Field(default_factory=now_rfc3339_nanos)
    kind: str
    model: str
    status: str
    iterations: int = Field(ge=0)
    errors: list[ValidationError] = Field(default_factory=list)
    infra_error: InfraError | None = None

    def line(self) -> bytes:
        """The record as one JSON line (keys in SPEC order, UTF-8, `\\n`-terminated)."""
        return orjson.dumps(self.model_dump(mode="json", by_alias=True)) + b"\n"


def append_session(path: Path, record: SessionRecord) -> None:
    """Append `record` as one line: locked, never torn, fsync'd before returning."""
    line = record.line()
    created = not path.exists()
    if created:
        make_dirs_durably(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A writer died mid-line: end its fragment so this record stays whole.
                line = b"\n" + line
            write_all(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


@dataclass(frozen=True)
class RecentSessions:
    """The newest records first, and how many lines in the scanned tail did not parse."""

    records: list[SessionRecord]
    skipped: int


def read_recent_sessions(path: Path, limit: int) -> RecentSessions:
    """The last `limit` records of the log, newest first, reading the file backwards from its
    end only as far as needed.

    A line that is not a session record (a fragment a crashed writer left, another schema) is
    skipped and counted, never fatal. A missing file is an empty log.
    """
    if limit <= 0:
        return RecentSessions([], 0)
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return RecentSessions([], 0)
    records: list[SessionRecord] = []
    skipped = 0
    with fh:
        for raw in _lines_backwards(fh):
            record = _parse(raw)
            if record is None:
                skipped += 1
                continue
            records.append(record)
            if len(records) == limit:
                break
    return RecentSessions(records, skipped)


def _lines_backwards(fh: BinaryIO) -> Iterator[bytes]:
    """The file's non-blank lines, last first, read in blocks from the end."""
    pos = fh.seek(0, os.SEEK_END)
    carry = b""  # the start of a line whose beginning lies before `pos`
    while pos > 0:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        fh.seek(pos)
        parts = (fh.read(step) + carry).split(b"\n")
        carry = parts[0]
        for part in reversed(parts[1:]):
            if part.strip():
                yield part
    if carry.strip():
        yield carry


def _parse(raw: bytes) -> SessionRecord | None:
    try:
        return SessionRecord.model_validate_json(raw)
    except ModelError:
        return None
