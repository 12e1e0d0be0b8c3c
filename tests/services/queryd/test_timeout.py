"""queryd's time limit, in process (tests/support/inprocess.py), with a 1-second `query.timeout_s`.

catalogd is deliberately not started: queryd keeps answering SQL that needs no dataset.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.queryd.app import create_app
from tests.support.envelope import assert_envelope
from tests.support.inprocess import daemon_settings, in_process
from tests.support.query import rows, run

TIMEOUT_S = 1.0
# 10^18 rows to count: far beyond any time limit.
SLOW = "SELECT count(*) FROM range(1000000000) a, range(1000000000) b WHERE a.range <> b.range"


@pytest.fixture(scope="module")
def qd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = daemon_settings(
        tmp_path_factory.mktemp("queryd-timeout"),
        {"query": {"timeout_s": TIMEOUT_S, "catalog_refresh_s": 0.5}},
    )
    with in_process(create_app, settings) as client:
        yield client


class TestTimeLimit:
    def test_a_slow_query_is_stopped_with_408(self, qd: httpx.Client) -> None:
        body = assert_envelope(run(qd, SLOW), 408, "query_timeout")
        assert body["error"]["details"] == {"timeout_s": TIMEOUT_S}

    def test_a_request_can_lower_the_limit(self, qd: httpx.Client) -> None:
        body = assert_envelope(run(qd, SLOW, timeout_s=0.2), 408, "query_timeout")
        assert body["error"]["details"] == {"timeout_s": 0.2}

    def test_a_request_cannot_raise_the_limit(self, qd: httpx.Client) -> None:
        body = assert_envelope(run(qd, SLOW, timeout_s=600), 408, "query_timeout")
        assert body["error"]["details"] == {"timeout_s": TIMEOUT_S}

    def test_a_slow_csv_query_is_stopped_too(self, qd: httpx.Client) -> None:
        assert_envelope(run(qd, SLOW, format="csv", timeout_s=0.2), 408, "query_timeout")

    def test_the_daemon_answers_after_timeouts(self, qd: httpx.Client) -> None:
        for _ in range(3):
            assert run(qd, SLOW, timeout_s=0.1).status_code == 408
        assert rows(qd, "SELECT 42 AS answer") == [[42]]

    def test_non_positive_timeout_is_422(self, qd: httpx.Client) -> None:
        assert_envelope(run(qd, "SELECT 1", timeout_s=0), 422, "invalid_request")


class TestWithoutCatalog:
    def test_sql_without_datasets_runs_while_catalogd_is_down(self, qd: httpx.Client) -> None:
        assert rows(qd, "SELECT sum(range) FROM range(10)") == [[45]]

    def test_an_unknown_view_is_400_not_500(self, qd: httpx.Client) -> None:
        body = assert_envelope(run(qd, "SELECT * FROM workers"), 400, "invalid_input")
        assert "workers" in body["error"]["message"]

    def test_views_lists_nothing_yet(self, qd: httpx.Client) -> None:
        body = qd.get("/v1/query/views").json()
        assert body["catalog_refreshed_at"] is None
        assert [v for v in body["views"] if v["source"] == "dataset"] == []
