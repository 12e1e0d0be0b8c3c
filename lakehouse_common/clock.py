"""Timestamps as every persisted record writes them: RFC 3339 UTC with nine nanosecond digits.

Audit rows (SPEC §8), session records (§6) and `_kb` envelopes (§5) share this format; a stored
timestamp is a string that is never re-formatted (verification reads the raw line, and
``…03.461439210Z`` must keep its trailing zero).
"""

from __future__ import annotations

import time

__all__ = ["format_rfc3339_nanos", "now_rfc3339_nanos"]


def format_rfc3339_nanos(unix_ns: int) -> str:
    """RFC 3339 UTC with all nine nanosecond digits, e.g. ``2026-05-02T09:14:03.461439210Z``."""
    secs, nanos = divmod(unix_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def now_rfc3339_nanos() -> str:
    """The current time as :func:`format_rfc3339_nanos` writes it."""
    return format_rfc3339_nanos(time.time_ns())
