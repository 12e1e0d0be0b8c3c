"""observerd's domain: the `_kb` streams, one group-committed `AppendLog` each (SPEC §5).

Every event becomes one line of `<data_dir>/_kb/{stream}.jsonl`::

    {"schema":"observation.v1","recorded_at":"2026-05-02T09:14:03.461439210Z",
     "trace_id":"...","daemon":"...","event":{...}}

`recorded_at` comes from one clock per process that never goes backwards and never repeats,
and lines are stamped and queued with no await in between, so within a stream the file order
is the `recorded_at` order. Streams in `observe.streams` are writable; any other `*.jsonl` file
already under `_kb/` (a stream since removed from the config) stays readable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from lakehouse_common.appendlog import AppendLog
from lakehouse_common.clock import format_rfc3339_nanos
from lakehouse_common.config import STREAM_NAME, ObserveSettings
from lakehouse_common.contracts.observe import (
    KB_DIR,
    SCHEMA,
    EventIn,
    StreamInfo,
    UnknownStream,
    validate_stream_name,
)
from lakehouse_common.errors import InvalidInput, NotFound, PayloadTooLarge, UnprocessableEntity
from lakehouse_common.logging import get_logger

log = get_logger("lakehouse.observerd")

_SCHEMA_PREFIX = b'{"schema":' + orjson.dumps(SCHEMA) + b',"recorded_at":"'


class ObserveMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "lakehouse_observe_events", "Events appended", ["stream"], registry=registry
        )
        self.appends = Counter(
            "lakehouse_observe_appends",
            "Acknowledged POST /v1/observe requests",
            ["stream"],
            registry=registry,
        )
        self.commits = Counter(
            "lakehouse_observe_commits",
            "Group commits (one write + one fsync each)",
            ["stream"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "lakehouse_observe_commit_duration_seconds",
            "Time of one group commit's write + fsync",
            ["stream"],
            registry=registry,
        )


class _Clock:
    """Nanosecond timestamps that strictly increase within the process."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        now = time.time_ns()
        self.last = now if now > self.last else self.last + 1
        return self.last


@dataclass(frozen=True)
class Appended:
    stream: str
    accepted: int
    first_line: int
    total: int


class ObservationStore:
    def __init__(
        self, directory: Path, settings: ObserveSettings, metrics: ObserveMetrics | None = None
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.metrics = metrics
        self.configured = frozenset(settings.streams)
        self.logs: dict[str, AppendLog] = {}
        self._clock = _Clock()

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Repair and count every stream file (blocking: run it off the loop)."""
        names = set(self.configured)
        if self.directory.is_dir():
            for path in self.directory.glob("*.jsonl"):
                if path.is_file() and STREAM_NAME.fullmatch(path.stem):
                    names.add(path.stem)
        for name in sorted(names):
            stream_log = AppendLog(
                self.directory / f"{name}.jsonl",
                commit_window_s=self.settings.commit_window_ms / 1000,
                on_commit=self._commit_hook(name),
            )
            removed = stream_log.open()
            if removed:
                log.warning("stream tail repaired", stream=name, bytes_removed=removed)
            self.logs[name] = stream_log

    async def start(self) -> None:
        for stream_log in self.logs.values():
            await stream_log.start()

    async def close(self) -> None:
        for stream_log in self.logs.values():
            await stream_log.close()

    def _commit_hook(self, stream: str) -> Any:
        metrics = self.metrics

        def hook(lines: int, appends: int, seconds: float) -> None:
            if metrics is not None:
                metrics.events.labels(stream).inc(lines)
                metrics.appends.labels(stream).inc(appends)
                metrics.commits.labels(stream).inc()
                metrics.commit_seconds.labels(stream).observe(seconds)

        return hook

    # -- writes ---------------------------------------------------------------------------------

    def writable(self, stream: str) -> AppendLog:
        validate_stream_name(stream)
        if stream not in self.configured:
            raise UnknownStream(
                f"stream {stream!r} is not configured (observe.streams)",
                details={"stream": stream, "known": sorted(self.configured)},
            )
        return self.logs[stream]

    def render(self, items: Sequence[EventIn], default_trace_id: str) -> list[bytes]:
        """The stored lines of `items`; 413/422 for events too big or not serialisable."""
        if len(items) > self.settings.max_batch_events:
            raise PayloadTooLarge(
                f"{len(items)} events in one request; the limit is "
                f"{self.settings.max_batch_events} (observe.max_batch_events)",
                details={"events": len(items), "limit": self.settings.max_batch_events},
            )
        limit = self.settings.max_event_bytes
        bodies: list[tuple[bytes, bytes, bytes]] = []
        for n, item in enumerate(items):
            try:
                event = orjson.dumps(item.event)
            except orjson.JSONEncodeError as exc:
                raise UnprocessableEntity(
                    f"event {n} cannot be stored as JSON: {exc}", details={"index": n}
                ) from None
            if len(event) > limit:
                raise PayloadTooLarge(
                    f"event {n} is {len(event)} bytes; the limit is {limit} "
                    "(observe.max_event_bytes)",
                    details={"index": n, "bytes": len(event), "limit": limit},
                )
            trace_id = item.trace_id if item.trace_id is not None else default_trace_id
            bodies.append((orjson.dumps(trace_id), orjson.dumps(item.daemon or ""), event))
        # Stamped last, with no await before the caller queues them: file order = time order.
        lines = []
        for trace_id_json, daemon_json, event in bodies:
            stamp = format_rfc3339_nanos(self._clock.next()).encode()
            lines.append(
                b"".join(
                    (
                        _SCHEMA_PREFIX,
                        stamp,
                        b'","trace_id":',
                        trace_id_json,
                        b',"daemon":',
                        daemon_json,
                        b',"event":',
                        event,
                        b"}\n",
                    )
                )
            )
        return lines

    async def append(self, stream: str, items: Sequence[EventIn], trace_id: str) -> Appended:
        """Append `items` to `stream`; returns once they are fsync'd."""
        target = self.writable(stream)
        lines = self.render(items, trace_id)
        first_line, total = await target.append(lines)
        return Appended(stream=stream, accepted=len(lines), first_line=first_line, total=total)

    # -- reads ----------------------------------------------------------------------------------

    def readable(self, stream: str) -> AppendLog:
        validate_stream_name(stream)
        found = self.logs.get(stream)
        if found is None:
            raise NotFound(
                f"no stream {stream!r}",
                details={"stream": stream, "known": sorted(self.logs)},
            )
        return found

    def page_bounds(self, stream: str, since: int, limit: int | None) -> tuple[AppendLog, int]:
        """The stream's log and the effective limit; 400 for a `since` past the end."""
        target = self.readable(stream)
        if since > target.lines:
            raise InvalidInput(
                f"since={since} is beyond the end of {stream!r} ({target.lines} lines)",
                details={"since": since, "total": target.lines},
            )
        effective = self.settings.default_limit if limit is None else limit
        if effective > self.settings.max_limit:
            raise InvalidInput(
                f"limit={effective} exceeds observe.max_limit ({self.settings.max_limit})",
                details={"limit": effective, "max": self.settings.max_limit},
            )
        return target, effective

    def streams(self) -> list[StreamInfo]:
        return [
            StreamInfo(
                name=name,
                count=stream_log.lines,
                bytes=stream_log.size,
                configured=name in self.configured,
            )
            for name, stream_log in sorted(self.logs.items())
        ]


def decode_records(lines: list[bytes], since: int) -> list[dict[str, Any]]:
    """Stored lines as records with their line offset; a line that does not parse (written by
    something other than observerd) is shown as such rather than hidden."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(lines, start=since):
        try:
            record = orjson.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except (orjson.JSONDecodeError, ValueError) as exc:
            out.append(
                {
                    "line": n,
                    "schema": "invalid",
                    "recorded_at": "",
                    "trace_id": "",
                    "daemon": "",
                    "event": {"error": str(exc), "raw": line[:1000].decode("utf-8", "replace")},
                }
            )
            continue
        out.append({"line": n, **{k: v for k, v in record.items() if k != "line"}})
    return out


def kb_dir(data_dir: Path) -> Path:
    return data_dir / KB_DIR
