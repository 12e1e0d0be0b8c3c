"""Fire-and-forget event reporting to observerd (SPEC §5: "without ever blocking their own
request on it").

A daemon opens one `Observer` in its lifespan and calls `report(stream, event)` from its
handlers. `report` only serialises the event and puts it on a bounded in-memory queue: it never
awaits, never raises, and a full queue drops the event (counted). A background task drains the
queue — after waiting `observe.reporter_linger_s` (50 ms) for more events to gather, so a busy
daemon posts one batch per interval rather than one request per event — groups what it finds
per stream and POSTs each group as one batch to
`POST /v1/observe/{stream}`. When observerd is down or refuses a batch, the batch is retried a
few times (`observe.reporter_retries`, short backoff) and then dropped and counted: reporting
loses events rather than ever slowing the daemon's own requests.

    observer = Observer(settings, "matrixd", http, registry=metrics_of(app).registry)
    await observer.start()
    ...
    observer.report("search_runs", {"query_text": q, "k": k})   # trace id: the current request's
    ...
    await observer.close()   # sends what is queued (bounded: reporter_close_timeout_s)

Counters: `sent`, `dropped` and `dropped_by_reason` attributes always; and, when a Prometheus
registry is given, `lakehouse_observer_events_sent_total{stream}` and
`lakehouse_observer_events_dropped_total{stream,reason}` on it. Drop reasons: `queue_full`,
`unreachable` (observerd down, timed out or answering 5xx after the retries), `rejected`
(observerd answered 4xx: unknown stream, too large…), `closed` (reported after `close()`, or
still queued when its bounded wait ran out), `unserializable` (not a JSON-serialisable
object), `too_large` (over `observe.max_event_bytes`), `bad_stream` (not a valid stream name).
Events are checked when reported, so one bad event never costs a whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any, Final

import orjson
from prometheus_client import CollectorRegistry, Counter

from lakehouse_common.config import STREAM_NAME, LakehouseSettings
from lakehouse_common.contracts.observe import OBSERVE
from lakehouse_common.errors import LakehouseError
from lakehouse_common.http import HttpClient, ServiceClient
from lakehouse_common.logging import get_logger
from lakehouse_common.tracing import current_trace_id

QUEUE_FULL: Final = "queue_full"
UNREACHABLE: Final = "unreachable"
REJECTED: Final = "rejected"
CLOSED: Final = "closed"
UNSERIALIZABLE: Final = "unserializable"
TOO_LARGE: Final = "too_large"
BAD_STREAM: Final = "bad_stream"

_MAX_BACKOFF_S: Final = 5.0
# Trace ids and daemon names observerd stores (contracts.observe's pattern).
_TAG: Final = re.compile(r"[A-Za-z0-9._:\-]{0,128}")
_JSON_HEADERS: Final = {"Content-Type": "application/json"}
# What `{"event": E, "trace_id": T}` adds around E and T once serialised.
_WRAPPER: Final = b'{"event":,"trace_id":}'

log = get_logger("lakehouse.observer")


class _Rejected(Exception):
    """observerd answered 4xx: retrying the same batch cannot help."""


class Observer:
    """One per daemon: a bounded queue of events and the task that ships them to observerd."""

    def __init__(
        self,
        settings: LakehouseSettings,
        daemon: str,
        http: HttpClient,
        *,
        registry: CollectorRegistry | None = None,
        base_url: str | None = None,
    ) -> None:
        if not _TAG.fullmatch(daemon):
            raise ValueError(f"daemon name {daemon!r} does not match {_TAG.pattern}")
        self.settings = settings.observe
        self.daemon = daemon
        self.enabled = self.settings.reporter_enabled
        self.client = ServiceClient(http, "observerd", base_url or settings.url_of("observerd"))
        # Items are (stream, serialised `{"event", "trace_id"}` object).
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(
            maxsize=self.settings.reporter_queue_size
        )
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._closed = False
        self._max_event_bytes = self.settings.max_event_bytes
        self.sent = 0
        self.dropped = 0
        self.dropped_by_reason: Tally[str] = Tally()
        self._sent_metric: Counter | None = None
        self._dropped_metric: Counter | None = None
        if registry is not None:
            self._sent_metric = Counter(
                "lakehouse_observer_events_sent",
                "Events this daemon reported that observerd stored",
                ["stream"],
                registry=registry,
            )
            self._dropped_metric = Counter(
                "lakehouse_observer_events_dropped",
                "Events this daemon reported that were dropped, by reason",
                ["stream", "reason"],
                registry=registry,
            )

    # -- the caller's side: never blocks, never raises ------------------------------------------

    def report(self, stream: str, event: dict[str, Any], trace_id: str | None = None) -> None:
        """Queue `event` for `stream`; the trace id defaults to the current request's.

        Returns at once whatever happens: a problem only ever costs the event (counted).
        """
        try:
            if not self.enabled:
                return
            if not isinstance(stream, str) or not STREAM_NAME.fullmatch(stream):
                self._drop("<invalid>", BAD_STREAM)
                return
            if self._closed:
                self._drop(stream, CLOSED)
                return
            tid = trace_id if trace_id is not None else current_trace_id.get()
            if not isinstance(tid, str) or not _TAG.fullmatch(tid):
                tid = ""  # observerd would refuse the whole batch over it
            if not isinstance(event, dict):
                self._drop(stream, UNSERIALIZABLE)
                return
            try:
                item = orjson.dumps({"event": event, "trace_id": tid})
            except (TypeError, orjson.JSONEncodeError):
                self._drop(stream, UNSERIALIZABLE)
                return
            # The event's own serialised size, as observerd measures it.
            if len(item) - len(_WRAPPER) - len(orjson.dumps(tid)) > self._max_event_bytes:
                self._drop(stream, TOO_LARGE)
                return
            if self._loop is not None and threading.get_ident() != self._loop_thread:
                # Called from a worker thread (run_in_threadpool): asyncio.Queue is not
                # thread-safe, so hand the item to the loop.
                self._loop.call_soon_threadsafe(self._enqueue, stream, item)
            else:
                self._enqueue(stream, item)
        except Exception:  # never let reporting break the caller
            with contextlib.suppress(Exception):
                self._drop(stream if isinstance(stream, str) else "<invalid>", UNSERIALIZABLE)

    def _enqueue(self, stream: str, item: bytes) -> None:
        try:
            self._queue.put_nowait((stream, item))
        except asyncio.QueueFull:
            self._drop(stream, QUEUE_FULL)

    def _drop(self, stream: str, reason: str, n: int = 1) -> None:
        self.dropped += n
        self.dropped_by_reason[reason] += n
        if self._dropped_metric is not None:
            label = stream if STREAM_NAME.fullmatch(stream) else "<invalid>"
            self._dropped_metric.labels(label, reason).inc(n)

    def _count_sent(self, stream: str, n: int) -> None:
        self.sent += n
        if self._sent_metric is not None:
            self._sent_metric.labels(stream).inc(n)

    @property
    def queued(self) -> int:
        """Events waiting to be sent."""
        return self._queue.qsize()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the sender task (call from the daemon's lifespan)."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._closed = False
            self._task = asyncio.create_task(self._run(), name=f"observer-{self.daemon}")

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued event has been sent or dropped; False if the wait ran out."""
        if self._task is None:
            return self._queue.empty()
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop taking events, send what is queued (bounded wait), drop and count the rest."""
        self._closed = True
        if self._task is not None:
            await self.flush(self.settings.reporter_close_timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        left: Tally[str] = Tally()
        while not self._queue.empty():
            stream, _ = self._queue.get_nowait()
            self._queue.task_done()
            left[stream] += 1
        for stream, n in left.items():
            self._drop(stream, CLOSED, n)
        if self.dropped:
            log.info("observer closed", sent=self.sent, dropped=dict(self.dropped_by_reason))

    # -- the sender -----------------------------------------------------------------------------

    async def _run(self) -> None:
        batch_max = self.settings.reporter_batch_max
        linger = self.settings.reporter_linger_s
        while True:
            first = await self._queue.get()
            if linger > 0 and self._queue.qsize() + 1 < batch_max and not self._closed:
                try:
                    await asyncio.sleep(linger)  # let a busy daemon's events gather
                except asyncio.CancelledError:
                    self._queue.task_done()
                    self._drop(first[0], CLOSED)
                    raise
            taken = [first]
            while len(taken) < batch_max * 8:
                try:
                    taken.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            by_stream: dict[str, list[bytes]] = {}
            for stream, item in taken:
                by_stream.setdefault(stream, []).append(item)
            work = [
                (stream, chunk)
                for stream, items in by_stream.items()
                for chunk in self._chunks(items, batch_max)
            ]
            done = 0
            try:
                for stream, chunk in work:
                    await self._send(stream, chunk)
                    done += 1
            except asyncio.CancelledError:
                # close() ran out of time: what was taken but not sent is dropped, and counted.
                for stream, chunk in work[done:]:
                    self._drop(stream, CLOSED, len(chunk))
                raise
            finally:
                for _ in taken:
                    self._queue.task_done()

    def _chunks(self, items: list[bytes], batch_max: int) -> Iterable[list[bytes]]:
        """Batches of at most `batch_max` events and within observerd's body limit."""
        budget = self.settings.max_body_bytes - 1024
        chunk: list[bytes] = []
        size = 0
        for item in items:
            if chunk and (len(chunk) >= batch_max or size + len(item) + 1 > budget):
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += len(item) + 1
        if chunk:
            yield chunk

    async def _send(self, stream: str, items: list[bytes]) -> None:
        body = self._body(items)
        attempts = 1 + self.settings.reporter_retries
        for attempt in range(attempts):
            try:
                await self._post(stream, body)
            except _Rejected as exc:
                self._drop(stream, REJECTED, len(items))
                log.warning("observerd refused a batch", stream=stream, error=str(exc))
                return
            except Exception as exc:
                if attempt + 1 < attempts:
                    delay = self.settings.reporter_retry_backoff_s * 2 ** min(attempt, 10)
                    await asyncio.sleep(min(delay, _MAX_BACKOFF_S))
                    continue
                self._drop(stream, UNREACHABLE, len(items))
                log.warning(
                    "observerd unreachable, batch dropped",
                    stream=stream,
                    events=len(items),
                    error=str(exc),
                )
                return
            else:
                self._count_sent(stream, len(items))
                return

    def _body(self, items: Iterable[bytes]) -> bytes:
        return b"".join(
            (
                b'{"daemon":',
                orjson.dumps(self.daemon),
                b',"events":[',
                b",".join(items),
                b"]}",
            )
        )

    async def _post(self, stream: str, body: bytes) -> None:
        status, _, payload = await self.client.request(
            "POST",
            f"{OBSERVE}/{stream}",
            data=body,
            headers=_JSON_HEADERS,
            timeout_s=self.settings.reporter_timeout_s,
        )
        if 400 <= status < 500:
            raise _Rejected(f"HTTP {status}: {payload[:300].decode('utf-8', 'replace')}")
        if status >= 300:
            raise LakehouseError(f"observerd answered HTTP {status}")


__all__ = [
    "BAD_STREAM",
    "CLOSED",
    "QUEUE_FULL",
    "REJECTED",
    "TOO_LARGE",
    "UNREACHABLE",
    "UNSERIALIZABLE",
    "Observer",
]
