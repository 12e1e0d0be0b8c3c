"""storaged through a real gateway, against both backends (local FS and a real S3 server).

Every test runs twice: `fs` and `s3` (moto's standalone server process on loopback).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakehouse_common.tracing import TRACE_HEADER
from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack, backend_config

MAX_BODY = 8 * 1024 * 1024


@pytest.fixture(scope="module", params=["fs", "s3"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    extra = {"server": {"max_body_bytes": MAX_BODY}, **backend_config(request, request.param)}
    live = LiveStack.create(tmp_path_factory.mktemp(f"storaged-{request.param}"), extra)
    with live.running("storaged", "gateway"):
        yield live


@pytest.fixture
def gw(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("gateway") as client:
        yield client


def unique(prefix: str = "k") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def obj(bucket: str, key: str) -> str:
    return f"/v1/storage/objects/{bucket}/{key}"


class TestPutObject:
    def test_put_answers_metadata_with_sha256_etag(self, gw: httpx.Client) -> None:
        key = f"{unique()}/data.bin"
        data = b"hello lakehouse"
        resp = gw.put(obj("lakehouse", key), content=data, headers={"content-type": "text/plain"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["etag"] == hashlib.sha256(data).hexdigest()
        assert body["size"] == len(data)
        assert (body["bucket"], body["key"], body["content_type"]) == (
            "lakehouse",
            key,
            "text/plain",
        )

    def test_overwrite_replaces_content(self, gw: httpx.Client) -> None:
        key = unique()
        gw.put(obj("lakehouse", key), content=b"one")
        gw.put(obj("lakehouse", key), content=b"two")
        assert gw.get(obj("lakehouse", key)).content == b"two"

    def test_create_only_conflicts_when_key_exists(self, gw: httpx.Client) -> None:
        key = unique()
        first = gw.put(obj("lakehouse", key), content=b"a", headers={"If-None-Match": "*"})
        assert first.status_code == 200
        second = gw.put(obj("lakehouse", key), content=b"b", headers={"If-None-Match": "*"})
        assert_envelope(second, 409, "conflict")
        assert gw.get(obj("lakehouse", key)).content == b"a"

    def test_if_none_match_other_than_star_is_400(self, gw: httpx.Client) -> None:
        resp = gw.put(obj("lakehouse", unique()), content=b"a", headers={"If-None-Match": '"x"'})
        assert_envelope(resp, 400, "invalid_input")

    @pytest.mark.parametrize("bucket", ["AB", "ab", "a_b", "x" * 64, "bad.name"])
    def test_bad_bucket_is_400(self, gw: httpx.Client, bucket: str) -> None:
        assert_envelope(gw.put(obj(bucket, "k"), content=b"a"), 400, "invalid_input")

    @pytest.mark.parametrize(
        "raw_key",
        ["a/%2e%2e/b", "%2e%2e/x", "a//b", "a/", "a%00b", "a%0Ab", "a%5Cb", "a/%2e/b", "x%7F"],
    )
    def test_bad_key_is_400_and_writes_nothing(self, gw: httpx.Client, raw_key: str) -> None:
        bucket = unique("b")
        resp = gw.put(f"/v1/storage/objects/{bucket}/{raw_key}", content=b"a")
        assert_envelope(resp, 400, "invalid_input")
        assert gw.get(f"/v1/storage/objects/{bucket}").json()["count"] == 0

    def test_streamed_multi_megabyte_body_round_trips(self, gw: httpx.Client) -> None:
        data = os.urandom(6 * 1024 * 1024)

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(data), 256 * 1024):
                yield data[i : i + 256 * 1024]

        key = unique("big")
        resp = gw.put(obj("lakehouse", key), content=chunks())
        assert resp.status_code == 200, resp.text
        assert resp.json()["etag"] == hashlib.sha256(data).hexdigest()
        got = gw.get(obj("lakehouse", key))
        assert got.content == data
        assert got.headers["content-length"] == str(len(data))

    def test_body_over_limit_is_413_and_writes_nothing(self, gw: httpx.Client) -> None:
        key = unique("huge")
        resp = gw.put(obj("lakehouse", key), content=b"z" * (MAX_BODY + 1))
        assert_envelope(resp, 413, "payload_too_large")
        assert gw.get(obj("lakehouse", key)).status_code == 404

    @pytest.mark.parametrize("via", ["storaged", "gateway"])
    def test_streamed_body_over_limit_is_413_and_writes_nothing(
        self, stack: LiveStack, via: str
    ) -> None:
        key = unique("huge")

        def chunks() -> Iterator[bytes]:
            for _ in range(MAX_BODY // (1024 * 1024) + 2):
                yield b"z" * (1024 * 1024)

        with stack.client(via) as direct:
            resp = direct.put(obj("lakehouse", key), content=chunks())
            assert_envelope(resp, 413, "payload_too_large")
            assert direct.get(obj("lakehouse", key)).status_code == 404

    def test_interrupted_upload_leaves_nothing(self, stack: LiveStack, gw: httpx.Client) -> None:
        key = unique("cut")
        host, port = stack.url("storaged").removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"PUT {obj('lakehouse', key)} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: 100000\r\n\r\n".encode()
                + b"partial" * 10
            )
            time.sleep(0.2)
        time.sleep(0.3)
        assert gw.get(obj("lakehouse", key)).status_code == 404
        listed = gw.get("/v1/storage/objects/lakehouse", params={"prefix": key}).json()
        assert listed["count"] == 0
        if stack.settings.storage.backend == "fs":
            staging = Path(stack.settings.data_dir, "objects", ".staging")
            assert not list(staging.glob("*")) if staging.exists() else True


class TestGetObject:
    def test_get_sets_etag_length_type(self, gw: httpx.Client) -> None:
        key = unique()
        gw.put(obj("lakehouse", key), content=b"{}", headers={"content-type": "application/json"})
        resp = gw.get(obj("lakehouse", key))
        assert resp.status_code == 200
        assert resp.headers["etag"] == f'"{hashlib.sha256(b"{}").hexdigest()}"'
        assert resp.headers["content-length"] == "2"
        assert resp.headers["content-type"].startswith("application/json")
        assert "last-modified" in resp.headers

    def test_missing_is_404_envelope(self, gw: httpx.Client) -> None:
        body = assert_envelope(gw.get(obj("lakehouse", unique("nope"))), 404, "not_found")
        assert "nope" in body["error"]["message"]

    def test_non_ascii_key_round_trips(self, gw: httpx.Client) -> None:
        key = f"{unique()}/naïve café ü.txt"
        assert gw.put(obj("lakehouse", key), content=b"x").status_code == 200
        assert gw.get(obj("lakehouse", key)).content == b"x"
        listed = gw.get("/v1/storage/objects/lakehouse", params={"prefix": key}).json()
        assert [o["key"] for o in listed["objects"]] == [key]


class TestHeadObject:
    def test_head_has_headers_and_no_body(self, gw: httpx.Client) -> None:
        key = unique()
        gw.put(obj("lakehouse", key), content=b"12345")
        resp = gw.head(obj("lakehouse", key))
        assert resp.status_code == 200
        assert resp.headers["content-length"] == "5"
        assert resp.headers["etag"] == f'"{hashlib.sha256(b"12345").hexdigest()}"'
        assert resp.content == b""

    def test_head_missing_is_404(self, gw: httpx.Client) -> None:
        assert gw.head(obj("lakehouse", unique())).status_code == 404


class TestDeleteObject:
    def test_delete_then_gone(self, gw: httpx.Client) -> None:
        key = unique()
        gw.put(obj("lakehouse", key), content=b"x")
        assert gw.delete(obj("lakehouse", key)).status_code == 204
        assert gw.get(obj("lakehouse", key)).status_code == 404

    def test_delete_missing_is_404_envelope(self, gw: httpx.Client) -> None:
        assert_envelope(gw.delete(obj("lakehouse", unique())), 404, "not_found")


class TestListObjects:
    def test_prefix_and_cursor_pagination_cover_every_key_once(self, gw: httpx.Client) -> None:
        bucket = unique("list")
        keys = sorted(f"p/{i:03d}" for i in range(23)) + ["q/other"]
        for key in keys:
            gw.put(obj(bucket, key), content=key.encode())
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"prefix": "p/", "limit": 5}
            if cursor:
                params["cursor"] = cursor
            page = gw.get(f"/v1/storage/objects/{bucket}", params=params).json()
            assert page["count"] == len(page["objects"]) <= 5
            seen += [o["key"] for o in page["objects"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [k for k in keys if k.startswith("p/")]

    def test_unknown_bucket_lists_empty(self, gw: httpx.Client) -> None:
        page = gw.get(f"/v1/storage/objects/{unique('none')}").json()
        assert page == {"objects": [], "count": 0, "next_cursor": None}

    @pytest.mark.parametrize("limit", ["0", "10001", "lots"])
    def test_bad_limit_is_422(self, gw: httpx.Client, limit: str) -> None:
        resp = gw.get("/v1/storage/objects/lakehouse", params={"limit": limit})
        assert_envelope(resp, 422, "invalid_request")

    def test_buckets_come_into_being_on_first_write(self, gw: httpx.Client) -> None:
        bucket = unique("new")
        assert bucket not in gw.get("/v1/storage/buckets").json()["buckets"]
        gw.put(obj(bucket, "k"), content=b"x")
        assert bucket in gw.get("/v1/storage/buckets").json()["buckets"]


class TestDurability:
    def test_acknowledged_write_survives_kill_9(self, stack: LiveStack, gw: httpx.Client) -> None:
        key = unique("durable")
        data = os.urandom(4096)
        assert gw.put(obj("lakehouse", key), content=data).status_code == 200
        stack.kill_9("storaged")
        stack.start("storaged")
        assert gw.get(obj("lakehouse", key)).content == data

    def test_object_survives_stack_restart(self, stack: LiveStack, gw: httpx.Client) -> None:
        key = unique("restart")
        assert gw.put(obj("lakehouse", key), content=b"kept").status_code == 200
        stack.stop()
        stack.start("storaged", "gateway")
        with stack.client("gateway") as fresh:
            assert fresh.get(obj("lakehouse", key)).content == b"kept"


class TestLogs:
    def test_request_log_line_has_trace_route_status_latency(
        self, stack: LiveStack, gw: httpx.Client
    ) -> None:
        trace = f"test-{secrets.token_hex(6)}"
        gw.get(obj("lakehouse", unique()), headers={TRACE_HEADER: trace})
        time.sleep(0.2)
        import json

        lines = [json.loads(line) for line in stack.log("storaged").splitlines() if trace in line]
        assert lines, "storaged logged nothing with the trace id"
        line = next(ln for ln in lines if ln.get("event") == "request")
        assert line["service"] == "storaged"
        assert line["route"] == "/v1/storage/objects/{bucket}/{key}"
        assert line["status"] == 404
        assert isinstance(line["latency_ms"], float)
        assert line["trace_id"] == trace
