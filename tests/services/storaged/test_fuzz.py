"""No input makes storaged answer 500: random keys, buckets, headers and bodies over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def storaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    live = LiveStack.create(tmp_path_factory.mktemp("storaged-fuzz"))
    live.start("storaged")
    try:
        with live.client("storaged") as client:
            yield client
    finally:
        live.stop()


segment = st.text(min_size=0, max_size=12)
keys = st.lists(segment, min_size=1, max_size=4).map("/".join)
buckets = st.one_of(st.just("lakehouse"), st.text(min_size=0, max_size=70))


@pytest.mark.fuzz
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["PUT", "GET", "HEAD", "DELETE"]),
    bucket=buckets,
    key=keys,
    body=st.binary(max_size=64),
    create_only=st.sampled_from([None, "*", "x", ""]),
)
def test_no_request_answers_500(
    storaged: httpx.Client,
    method: str,
    bucket: str,
    key: str,
    body: bytes,
    create_only: str | None,
) -> None:
    path = f"/v1/storage/objects/{quote(bucket, safe='')}/{quote(key, safe='/')}"
    headers = {"If-None-Match": create_only} if create_only is not None else {}
    resp = storaged.request(
        method, path, content=body if method == "PUT" else None, headers=headers
    )
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400 and method != "HEAD":
        assert resp.json()["error"]["code"]
