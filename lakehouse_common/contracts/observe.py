"""observerd's wire format and typed client (SPEC §5): append-only event streams, the `_kb`.

Endpoints (observerd, :3219):
- `POST /v1/observe/{stream}` — append one event or a batch; answered only once every line is
  fsync'd. The body is exactly one of two shapes::

      {"event": {...}, "trace_id"?: "...", "daemon"?: "..."}
      {"events": [{"event": {...}, "trace_id"?: "...", "daemon"?: "..."}, ...],
       "trace_id"?: "...", "daemon"?: "..."}

  A per-event `trace_id`/`daemon` wins over the top-level one; the top-level `trace_id`
  defaults to the request's `X-Lakehouse-Trace-Id`, `daemon` to `""`. Every `event` must be a
  JSON object. → `ObserveResponse {stream, accepted, first_line, total}`: the appended events
  are lines `first_line .. first_line + accepted - 1` (0-based) of the stream.
- `GET /v1/observations/{stream}?since=&limit=` → `ObservationPage`: the records from line
  `since` (0-based line offset, default 0) on, at most `limit`; `next` is the `since` of the
  following page (equal to `total` once the reader has caught up, so polling with it picks up
  only new lines).
- `GET /v1/observations` → `StreamList`: every configured stream (and any other stream file
  present) with its line count and size.

Each line of `<data_dir>/_kb/{stream}.jsonl` is one `{schema, recorded_at, trace_id, daemon,
event}` object (`schema` = `observation.v1`, `recorded_at` RFC 3339 UTC with nanoseconds).

Errors (the envelope of SPEC §3): a stream name that is not `[a-z][a-z0-9_]{0,63}` → 400
`invalid_input`; a well-formed name not in `observe.streams` → 400 `unknown_stream` (for reads:
404 when no such stream file exists either); a body that is not one of the shapes above or an
event that is not an object → 422 `invalid_request`; more than `observe.max_batch_events`
events, an event over `observe.max_event_bytes` or a body over `observe.max_body_bytes` → 413
`payload_too_large`; `since` beyond the end of the stream → 400 `invalid_input`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lakehouse_common.config import STREAM_NAME
from lakehouse_common.errors import ERROR_CODES, InvalidInput
from lakehouse_common.http import ServiceClient

AREAS: Final = ("observe", "observations")
OBSERVE: Final = "/v1/observe"
OBSERVATIONS: Final = "/v1/observations"
SCHEMA: Final = "observation.v1"
KB_DIR: Final = "_kb"

# What a persisted trace id or daemon name may look like (the trace-id header's own bounds).
_TAG_PATTERN: Final = r"^[A-Za-z0-9._:\-]{0,128}$"


class UnknownStream(InvalidInput):
    """A well-formed stream name that is not in `observe.streams`."""

    code = "unknown_stream"


ERROR_CODES.setdefault(UnknownStream.code, UnknownStream)


def stream_path(stream: str) -> str:
    """`POST` appends to `stream`."""
    return f"{OBSERVE}/{stream}"


def observations_path(stream: str) -> str:
    """`GET` reads a page of `stream` (`?since=&limit=`)."""
    return f"{OBSERVATIONS}/{stream}"


def validate_stream_name(name: str) -> str:
    """`name` when it is a valid stream name, else `InvalidInput` (400)."""
    if not STREAM_NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid stream name {name!r}: use [a-z][a-z0-9_]{{0,63}}",
            details={"stream": name},
        )
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(_Strict):
    """One event of a batch; `trace_id`/`daemon` override the batch's."""

    event: dict[str, Any]
    trace_id: str | None = Field(default=None, pattern=_TAG_PATTERN)
    daemon: str | None = Field(default=None, pattern=_TAG_PATTERN)


class ObserveRequest(_Strict):
    """Exactly one of `event` (one event) or `events` (a batch, at least one)."""

    event: dict[str, Any] | None = None
    events: list[EventIn] | None = Field(default=None, min_length=1)
    trace_id: str | None = Field(default=None, pattern=_TAG_PATTERN)
    daemon: str | None = Field(default=None, pattern=_TAG_PATTERN)

    @model_validator(mode="after")
    def _one_shape(self) -> ObserveRequest:
        if (self.event is None) == (self.events is None):
            raise ValueError("give exactly one of `event` (one object) or `events` (a list)")
        return self

    def items(self) -> list[EventIn]:
        """The events with the top-level `trace_id`/`daemon` filled in where an event has none."""
        if self.event is not None:
            return [EventIn(event=self.event, trace_id=self.trace_id, daemon=self.daemon)]
        assert self.events is not None
        return [
            EventIn(
                event=item.event,
                trace_id=item.trace_id if item.trace_id is not None else self.trace_id,
                daemon=item.daemon if item.daemon is not None else self.daemon,
            )
            for item in self.events
        ]


class ObserveResponse(BaseModel):
    """The appended events are lines `first_line .. first_line + accepted - 1`; `total` lines
    are in the stream after this append."""

    stream: str
    accepted: int
    first_line: int
    total: int


class Observation(BaseModel):
    """One stored line, with its 0-based line offset in the stream."""

    line: int
    schema_: str = Field(alias="schema")
    recorded_at: str
    trace_id: str
    daemon: str
    event: dict[str, Any]

    model_config = ConfigDict(populate_by_name=True)


class ObservationPage(BaseModel):
    """`records` are lines `since .. next - 1`; `total` lines are in the stream now."""

    stream: str
    since: int
    next: int
    total: int
    count: int
    records: list[Observation]


class StreamInfo(BaseModel):
    """`configured`: writable (in `observe.streams`); a stream file present on disk but no
    longer configured can still be read."""

    name: str
    count: int
    bytes: int
    configured: bool


class StreamList(BaseModel):
    streams: list[StreamInfo]
    count: int


class ObserveClient:
    """observerd over HTTP. Errors come back as the typed `LakehouseError`.

    For fire-and-forget reporting from a daemon use `lakehouse_common.observer.Observer`
    instead: it never blocks or fails the caller.
    """

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def append(
        self,
        stream: str,
        events: Sequence[Mapping[str, Any]],
        *,
        trace_id: str | None = None,
        daemon: str | None = None,
    ) -> ObserveResponse:
        """Append `events` (objects) to `stream`; returns once they are durable."""
        body: dict[str, Any] = {"events": [{"event": dict(e)} for e in events]}
        if trace_id is not None:
            body["trace_id"] = trace_id
        if daemon is not None:
            body["daemon"] = daemon
        data = await self.client.call_json("POST", stream_path(stream), json=body)
        return ObserveResponse.model_validate(data)

    async def read(self, stream: str, since: int = 0, limit: int | None = None) -> ObservationPage:
        params: dict[str, str | int] = {"since": since}
        if limit is not None:
            params["limit"] = limit
        data = await self.client.call_json("GET", observations_path(stream), params=params)
        return ObservationPage.model_validate(data)

    async def streams(self) -> StreamList:
        return StreamList.model_validate(await self.client.call_json("GET", OBSERVATIONS))
