"""storaged's object API in process (tests/support/inprocess.py), against both backends.

Every test runs twice: `fs` and `s3` (moto's standalone server process on loopback). What needs
storaged as a real process (kill -9, restart, a torn upload, its log, a streamed body on a real
socket) is in test_process.py; the gateway's own body limit is in tests/services/gateway.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lakehouse_common.config import LakehouseSettings
from services.storaged.app import create_app
from tests.support.envelope import assert_envelope
from tests.support.inprocess import daemon_settings, in_process
from tests.support.stack import backend_config

MAX_BODY = 8 * 1024 * 1024


@pytest.fixture(scope="module", params=["fs", "s3"])
def settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> LakehouseSettings:
    extra = {"server": {"max_body_bytes": MAX_BODY}, **backend_config(request, request.param)}
    return daemon_settings(tmp_path_factory.mktemp(f"storaged-{request.param}"), extra)


@pytest.fixture(scope="module")
def sd(settings: LakehouseSettings) -> Iterator[httpx.Client]:
    with in_process(create_app, settings) as client:
        yield client


def unique(prefix: str = "k") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def obj(bucket: str, key: str) -> str:
    return f"/v1/storage/objects/{bucket}/{key}"


class TestPutObject:
    def test_put_answers_metadata_with_sha256_etag(self, sd: httpx.Client) -> None:
        key = f"{unique()}/data.bin"
        data = b"hello lakehouse"
        resp = sd.put(obj("lakehouse", key), content=data, headers={"content-type": "text/plain"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["etag"] == hashlib.sha256(data).hexdigest()
        assert body["size"] == len(data)
        assert (body["bucket"], body["key"], body["content_type"]) == (
            "lakehouse",
            key,
            "text/plain",
        )

    def test_overwrite_replaces_content(self, sd: httpx.Client) -> None:
        key = unique()
        sd.put(obj("lakehouse", key), content=b"one")
        sd.put(obj("lakehouse", key), content=b"two")
        assert sd.get(obj("lakehouse", key)).content == b"two"

    def test_create_only_conflicts_when_key_exists(self, sd: httpx.Client) -> None:
        key = unique()
        first = sd.put(obj("lakehouse", key), content=b"a", headers={"If-None-Match": "*"})
        assert first.status_code == 200
        second = sd.put(obj("lakehouse", key), content=b"b", headers={"If-None-Match": "*"})
        assert_envelope(second, 409, "conflict")
        assert sd.get(obj("lakehouse", key)).content == b"a"

    def test_if_none_match_other_than_star_is_400(self, sd: httpx.Client) -> None:
        resp = sd.put(obj("lakehouse", unique()), content=b"a", headers={"If-None-Match": '"x"'})
        assert_envelope(resp, 400, "invalid_input")

    @pytest.mark.parametrize("bucket", ["AB", "ab", "a_b", "x" * 64, "bad.name"])
    def test_bad_bucket_is_400(self, sd: httpx.Client, bucket: str) -> None:
        assert_envelope(sd.put(obj(bucket, "k"), content=b"a"), 400, "invalid_input")

    @pytest.mark.parametrize(
        "raw_key",
        ["a/%2e%2e/b", "%2e%2e/x", "a//b", "a/", "a%00b", "a%0Ab", "a%5Cb", "a/%2e/b", "x%7F"],
    )
    def test_bad_key_is_400_and_writes_nothing(self, sd: httpx.Client, raw_key: str) -> None:
        bucket = unique("b")
        resp = sd.put(f"/v1/storage/objects/{bucket}/{raw_key}", content=b"a")
        assert_envelope(resp, 400, "invalid_input")
        assert sd.get(f"/v1/storage/objects/{bucket}").json()["count"] == 0

    def test_streamed_multi_megabyte_body_round_trips(self, sd: httpx.Client) -> None:
        data = os.urandom(6 * 1024 * 1024)

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(data), 256 * 1024):
                yield data[i : i + 256 * 1024]

        key = unique("big")
        resp = sd.put(obj("lakehouse", key), content=chunks())
        assert resp.status_code == 200, resp.text
        assert resp.json()["etag"] == hashlib.sha256(data).hexdigest()
        got = sd.get(obj("lakehouse", key))
        assert got.content == data
        assert got.headers["content-length"] == str(len(data))

    def test_body_over_limit_is_413_and_writes_nothing(self, sd: httpx.Client) -> None:
        key = unique("huge")
        resp = sd.put(obj("lakehouse", key), content=b"z" * (MAX_BODY + 1))
        assert_envelope(resp, 413, "payload_too_large")
        assert sd.get(obj("lakehouse", key)).status_code == 404


class TestGetObject:
    def test_get_sets_etag_length_type(self, sd: httpx.Client) -> None:
        key = unique()
        sd.put(obj("lakehouse", key), content=b"{}", headers={"content-type": "application/json"})
        resp = sd.get(obj("lakehouse", key))
        assert resp.status_code == 200
        assert resp.headers["etag"] == f'"{hashlib.sha256(b"{}").hexdigest()}"'
        assert resp.headers["content-length"] == "2"
        assert resp.headers["content-type"].startswith("application/json")
        assert "last-modified" in resp.headers

    def test_missing_is_404_envelope(self, sd: httpx.Client) -> None:
        body = assert_envelope(sd.get(obj("lakehouse", unique("nope"))), 404, "not_found")
        assert "nope" in body["error"]["message"]

    def test_non_ascii_key_round_trips(self, sd: httpx.Client) -> None:
        key = f"{unique()}/naïve café ü.txt"
        assert sd.put(obj("lakehouse", key), content=b"x").status_code == 200
        assert sd.get(obj("lakehouse", key)).content == b"x"
        listed = sd.get("/v1/storage/objects/lakehouse", params={"prefix": key}).json()
        assert [o["key"] for o in listed["objects"]] == [key]


class TestHeadObject:
    def test_head_has_headers_and_no_body(self, sd: httpx.Client) -> None:
        key = unique()
        sd.put(obj("lakehouse", key), content=b"12345")
        resp = sd.head(obj("lakehouse", key))
        assert resp.status_code == 200
        assert resp.headers["content-length"] == "5"
        assert resp.headers["etag"] == f'"{hashlib.sha256(b"12345").hexdigest()}"'
        assert resp.content == b""

    def test_head_missing_is_404(self, sd: httpx.Client) -> None:
        assert sd.head(obj("lakehouse", unique())).status_code == 404


class TestDeleteObject:
    def test_delete_then_gone(self, sd: httpx.Client) -> None:
        key = unique()
        sd.put(obj("lakehouse", key), content=b"x")
        assert sd.delete(obj("lakehouse", key)).status_code == 204
        assert sd.get(obj("lakehouse", key)).status_code == 404

    def test_delete_missing_is_404_envelope(self, sd: httpx.Client) -> None:
        assert_envelope(sd.delete(obj("lakehouse", unique())), 404, "not_found")


class TestListObjects:
    def test_prefix_and_cursor_pagination_cover_every_key_once(self, sd: httpx.Client) -> None:
        bucket = unique("list")
        keys = sorted(f"p/{i:03d}" for i in range(23)) + ["q/other"]
        for key in keys:
            sd.put(obj(bucket, key), content=key.encode())
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"prefix": "p/", "limit": 5}
            if cursor:
                params["cursor"] = cursor
            page = sd.get(f"/v1/storage/objects/{bucket}", params=params).json()
            assert page["count"] == len(page["objects"]) <= 5
            seen += [o["key"] for o in page["objects"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [k for k in keys if k.startswith("p/")]

    def test_unknown_bucket_lists_empty(self, sd: httpx.Client) -> None:
        page = sd.get(f"/v1/storage/objects/{unique('none')}").json()
        assert page == {"objects": [], "count": 0, "next_cursor": None}

    @pytest.mark.parametrize("limit", ["0", "10001", "lots"])
    def test_bad_limit_is_422(self, sd: httpx.Client, limit: str) -> None:
        resp = sd.get("/v1/storage/objects/lakehouse", params={"limit": limit})
        assert_envelope(resp, 422, "invalid_request")

    def test_buckets_come_into_being_on_first_write(self, sd: httpx.Client) -> None:
        bucket = unique("new")
        assert bucket not in sd.get("/v1/storage/buckets").json()["buckets"]
        sd.put(obj(bucket, "k"), content=b"x")
        assert bucket in sd.get("/v1/storage/buckets").json()["buckets"]
