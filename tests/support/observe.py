"""Helpers for observerd's tests: the stream files on disk and paging through the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson

from lakehouse_common.config import LakehouseSettings

RFC3339_NANOS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def stream_file(settings: LakehouseSettings, stream: str) -> Path:
    return settings.data_dir / "_kb" / f"{stream}.jsonl"


def file_records(settings: LakehouseSettings, stream: str) -> list[dict[str, Any]]:
    """Every line of the stream file, each asserted to be one complete JSON object."""
    path = stream_file(settings, stream)
    if not path.exists():
        return []
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "stream file ends in a partial line"
    records = []
    for line in data.splitlines():
        record = orjson.loads(line)
        assert isinstance(record, dict)
        records.append(record)
    return records


def read_all(client: httpx.Client, stream: str, limit: int = 100) -> list[dict[str, Any]]:
    """Page through a stream with `next` until caught up."""
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        resp = client.get(f"/v1/observations/{stream}", params={"since": since, "limit": limit})
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert page["since"] == since
        out.extend(page["records"])
        if page["count"] == 0:
            assert page["next"] == page["total"] == since
            return out
        since = page["next"]
