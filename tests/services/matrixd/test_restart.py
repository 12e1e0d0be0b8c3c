"""Playbooks survive a stack restart (vectord killed with SIGKILL right after the recording was
acknowledged), and while matrixd's dependencies come back one by one each missing daemon is
named in a 502 — and observerd being down never fails a request (SPEC §5 matrixd, issue 5)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.envelope import assert_envelope
from tests.support.matrix import (
    CORE,
    FORKLIFT,
    FORKLIFT_QUERY,
    Roster,
    by_id,
    make_index,
    record,
    search,
)
from tests.support.stack import LiveStack

WARM = {"query_role": FORKLIFT, "use_playbook": True}


def assert_names(resp: httpx.Response, daemon: str) -> None:
    body = assert_envelope(resp, 502, "upstream_unavailable")
    assert daemon in body["error"]["message"], body


@pytest.fixture
def restarted(stack: LiveStack) -> Iterator[LiveStack]:
    """Whatever the test leaves down, the package's stack is whole again afterwards."""
    try:
        yield stack
    finally:
        stack.start(*CORE, timeout_s=120)


@pytest.mark.slow
@pytest.mark.fault
def test_playbooks_survive_a_restart_and_missing_daemons_answer_502(
    restarted: LiveStack, gw: httpx.Client, roster: Roster
) -> None:
    stack = restarted
    index = make_index(gw, roster)
    top = search(gw, index, FORKLIFT_QUERY)["results"][0]
    pid = record(gw, index, FORKLIFT_QUERY, FORKLIFT, top["id"], 1.0)["playbook_id"]
    before = search(gw, index, FORKLIFT_QUERY, **WARM)

    stack.kill_9("vectord")
    stack.stop()
    stack.start("matrixd", "gateway")
    with httpx.Client(base_url=stack.url("gateway"), timeout=60) as client:
        query: dict[str, Any] = {"query_text": FORKLIFT_QUERY, "index": index, **WARM}
        assert_names(client.post("/v1/matrix/search", json=query), "embedd")
        stack.start("embedd", timeout_s=120)
        assert_names(client.post("/v1/matrix/search", json=query), "vectord")
        body = {"query_text": FORKLIFT_QUERY, "role": FORKLIFT, "answer_id": "w-1", "score": 1}
        assert_names(client.post("/v1/matrix/playbooks/record", json=body), "vectord")
        assert_names(client.get(f"/v1/matrix/playbooks/{pid}"), "vectord")
        # catalogd answers which datasets are governed (audit before disclosure, fail closed).
        stack.start("vectord", "catalogd")

        # observerd is still down: searches and records answer all the same.
        resp = client.post("/v1/matrix/search", json=query)
        assert resp.status_code == 200, resp.text
        after = resp.json()
        assert after == before
        boosted = by_id(after["results"])[top["id"]]
        assert abs(boosted["distance"] - top["distance"] * 0.5) < 1e-6
        assert client.get(f"/v1/matrix/playbooks/{pid}").json()["answer_id"] == top["id"]
        again = client.post(
            "/v1/matrix/playbooks/record",
            json={**body, "answer_id": top["id"], "score": 0.4, "index": index},
        )
        assert again.status_code == 200, again.text
        assert again.json() == {"playbook_id": pid, "updated": True}

        # queryd is not part of this stack: retrieve names it.
        resp = client.post(
            "/v1/matrix/retrieve",
            json={"query_text": FORKLIFT_QUERY, "index": index, "dataset": "workers"},
        )
        assert_names(resp, "queryd")
