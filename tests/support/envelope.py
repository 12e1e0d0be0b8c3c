"""The one check of the error envelope every 4xx/5xx answer uses (SPEC §3):
`{"error": {"code", "message", "details"}, "trace_id"}`."""

from __future__ import annotations

from typing import Any

import httpx

from lakehouse_common.tracing import TRACE_HEADER


def assert_envelope(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert `resp` is a `status` answer in the envelope (with `code` when given); its body."""
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert isinstance(body, dict) and set(body) == {"error", "trace_id"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message", "details"}, body
    if code is not None:
        assert error["code"] == code, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(body["trace_id"], str) and body["trace_id"], body
    if TRACE_HEADER in resp.headers:
        assert body["trace_id"] == resp.headers[TRACE_HEADER], body
    return body
