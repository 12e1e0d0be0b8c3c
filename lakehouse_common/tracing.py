"""Trace ids (SPEC §3): taken from `X-Lakehouse-Trace-Id` or minted, time-ordered.

A minted id is 16 lowercase hex digits of the nanosecond Unix time, `-`, 8 random lowercase hex
(`18abbabdc2306a83-c2306aa9`), so ids sort by time. The current request's id lives in a context
variable: the logger writes it on every line and the HTTP client forwards it on every call.
"""

from __future__ import annotations

import re
import secrets
import time
from contextvars import ContextVar

TRACE_HEADER = "X-Lakehouse-Trace-Id"
TRACE_HEADER_LOWER = TRACE_HEADER.lower()

# Accept any printable id a caller sends (other runtimes mint other shapes), within bounds, so a
# header can't smuggle control characters into logs and persisted records.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

current_trace_id: ContextVar[str] = ContextVar("lakehouse_trace_id", default="")


def mint_trace_id() -> str:
    return f"{time.time_ns():016x}-{secrets.token_hex(4)}"


def accept_trace_id(value: str | None) -> str:
    """The caller's id when it is acceptable, else a freshly minted one."""
    if value and _ACCEPTABLE.fullmatch(value):
        return value
    return mint_trace_id()
