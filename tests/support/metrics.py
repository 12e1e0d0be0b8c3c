"""Reading one sample off a daemon's Prometheus text (`GET /metrics`)."""

from __future__ import annotations

import re

import httpx

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """The value of one sample on a daemon's /metrics (0 when it has not been emitted yet)."""
    for line in client.get("/metrics").text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match.group(1) != name:
            continue
        if dict(_LABEL.findall(match.group(2) or "")) == labels:
            return float(match.group(3))
    return 0.0
