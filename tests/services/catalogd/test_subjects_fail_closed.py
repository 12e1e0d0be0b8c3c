"""Audit before disclosure (SPEC §8, issue 7): when catalogd cannot record an access, queryd
answers 503 naming catalogd instead of the PII (`audit.fail_closed`); and the pieces that decide
what to audit — the `AccessAuditor` against an unreachable catalogd, and queryd's reading of a
statement's syntax tree — in process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from lakehouse_common.audit.access import AccessAuditor
from lakehouse_common.config import load_settings
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.contracts.subjects import DatasetPolicy
from lakehouse_common.errors import InvalidInput, ServiceUnavailable
from lakehouse_common.http import HttpClient
from lakehouse_common.ops.stack import free_port
from lakehouse_common.store.settings import store_from_settings
from lakehouse_common.tracing import TRACE_HEADER, mint_trace_id
from services.queryd.governance import GovernanceSnapshot
from tests.support.envelope import assert_envelope
from tests.support.query import commit_table
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    extra: dict[str, dict[str, Any]] = {
        "audit": {"policy_refresh_s": 0.05},
        "query": {"catalog_refresh_s": 0.05},
    }
    live = LiveStack.create(tmp_path_factory.mktemp("fail-closed"), extra)
    with live.running("catalogd", "queryd"):
        with store_from_settings(live.settings) as store, live.client("catalogd") as cd:
            table = pa.table({"id": ["p-1", "p-2"], "phone": ["555-0101", "555-0102"]})
            commit_table(cd, store, "people", 1, table)
            for n in (1, 2):
                body = {"dataset": "people", "row_key": f"p-{n}", "pii_fields": ["phone"]}
                assert cd.put(f"/v1/catalog/subjects/P-{n}", json=body).status_code == 201
        yield live


@pytest.mark.fault
def test_pii_is_withheld_when_catalogd_cannot_record_the_access(stack: LiveStack) -> None:
    sql = {"sql": "SELECT id, phone FROM people ORDER BY id"}
    with stack.client("queryd") as qd:
        for _ in range(100):  # until queryd's copy of the policy has the manifests (≤ 0.05 s)
            trace = mint_trace_id()
            assert qd.post("/v1/query", json=sql, headers={TRACE_HEADER: trace}).status_code == 200
            with stack.client("catalogd") as cd:
                rows = cd.get("/v1/catalog/subjects/P-1/audit").json()["rows"]
            if rows and rows[-1]["accessor"]["trace_id"] == trace:
                break
        else:
            pytest.fail("queryd never audited the read")
        stack.kill_9("catalogd")  # the catalogd this module started
        resp = qd.post("/v1/query", json=sql)
        body = assert_envelope(resp, 503, "service_unavailable")
        assert "catalogd" in body["error"]["message"]
        assert body["error"]["details"]["daemon"] == "catalogd"
        assert "555-0101" not in resp.text
        # Reads that disclose no PII go on without catalogd.
        assert qd.post("/v1/query", json={"sql": "SELECT count(*) FROM people"}).status_code == 200


# -- the AccessAuditor against a catalogd that is not there ------------------------------------


def auditor_settings(tmp_path: Path, fail_closed: bool) -> Any:
    return load_settings(
        environ={},
        overrides={
            "server.data_dir": str(tmp_path),
            "ports.catalogd": free_port(),
            "audit.fail_closed": fail_closed,
            "client.connect_retries": 0,
        },
    )


async def test_fail_closed_auditor_raises_503_naming_catalogd(tmp_path: Path) -> None:
    settings = auditor_settings(tmp_path, fail_closed=True)
    async with HttpClient(settings.client) as http:
        auditor = AccessAuditor(settings, "matrixd", Clients.direct(http, settings).subjects())
        with pytest.raises(ServiceUnavailable) as caught:
            await auditor.record(dataset="workers", row_keys=["w-1"], purpose="matching")
        assert "catalogd" in caught.value.message
        with pytest.raises(ServiceUnavailable):
            await auditor.policies()
        # Nothing to record is nothing to fail.
        await auditor.record(dataset="workers", row_keys=[], purpose="matching")


async def test_fail_open_auditor_answers_and_audits_nothing(tmp_path: Path) -> None:
    settings = auditor_settings(tmp_path, fail_closed=False)
    async with HttpClient(settings.client) as http:
        auditor = AccessAuditor(settings, "matrixd", Clients.direct(http, settings).subjects())
        await auditor.record(dataset="workers", row_keys=["w-1"], purpose="matching")
        assert await auditor.policies() == {}
        await auditor.record_disclosure(
            dataset="workers", row_keys=["w-1"], columns=["phone"], purpose="matching"
        )


# -- what a statement discloses (queryd's reading of the syntax tree) --------------------------


@dataclass(frozen=True)
class FakeView:
    dataset: str | None


POLICY = DatasetPolicy(
    dataset="workers", key_column="id", pii_fields=["email", "phone"], subjects=2
)
VIEWS = {
    "workers": FakeView("workers"),
    "workers__v1": FakeView("workers"),
    "jobs": FakeView("jobs"),
    "kb_events": FakeView(None),
}
TABLE = pa.table({"id": ["w-1", "w-2", None], "phone": ["1", "2", "3"]})
COLUMNS = [("id", "VARCHAR"), ("phone", "VARCHAR")]


def tree(sql: str) -> dict[str, Any]:
    con = duckdb.connect()
    try:
        out: dict[str, Any] = json.loads(
            con.execute("SELECT json_serialize_sql($1)", [sql]).fetchone()[0]  # type: ignore[index]
        )
        return out
    finally:
        con.close()


def disclosed(
    sql: str, columns: list[tuple[str, str]] = COLUMNS
) -> dict[str, tuple[tuple[str, ...], list[str]]]:
    snapshot = GovernanceSnapshot.build(VIEWS, {"workers": POLICY})
    return {
        d.dataset: (d.fields, d.row_keys) for d in snapshot.disclosures(tree(sql), columns, TABLE)
    }


class TestDisclosures:
    @pytest.mark.parametrize(
        ("sql", "fields"),
        [
            ("SELECT id, phone FROM workers", ("phone",)),
            ("SELECT * FROM workers", ("email", "phone")),
            ("SELECT * EXCLUDE (email) FROM workers__v1", ("phone",)),
            ("SELECT id, upper(email) AS x FROM WORKERS", ("email",)),
            ("SELECT id, x FROM (SELECT id, email AS x FROM workers)", ("email",)),
            ("WITH w AS (SELECT * FROM workers) SELECT id, phone FROM w", ("email", "phone")),
            ("SELECT id, COLUMNS('ph.*') FROM workers", ("email", "phone")),
        ],
    )
    def test_fields_disclosed(self, sql: str, fields: tuple[str, ...]) -> None:
        # Outputs named after no PII field: what is found comes from the tree.
        found = disclosed(sql, [("id", "VARCHAR"), ("x", "VARCHAR")])
        assert found == {"workers": (fields, ["w-1", "w-2"])}

    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT id FROM workers WHERE phone LIKE '5%'",
            "SELECT count(*), count(DISTINCT phone) FROM workers",
            "DESCRIBE workers",
            "SELECT * FROM kb_events",
            "SELECT id, phone FROM jobs",
            "SELECT w.id, j.title FROM workers w JOIN jobs j ON j.w = w.id",
        ],
    )
    def test_nothing_disclosed(self, sql: str) -> None:
        assert disclosed(sql, [("id", "VARCHAR")]) == {}

    def test_pii_without_the_key_column_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match="key column 'id'"):
            disclosed("SELECT phone FROM workers", [("phone", "VARCHAR")])
        with pytest.raises(InvalidInput):
            disclosed("SUMMARIZE workers", [("column_name", "VARCHAR")])

    def test_unknown_policy_refuses_dataset_reads_only(self) -> None:
        unknown = ServiceUnavailable("catalogd is down")
        snapshot = GovernanceSnapshot.build(VIEWS, {}, unknown)
        with pytest.raises(ServiceUnavailable):
            snapshot.disclosures(tree("SELECT id FROM jobs"), COLUMNS, TABLE)
        assert snapshot.disclosures(tree("SELECT * FROM kb_events"), COLUMNS, TABLE) == ()
