"""Subject manifests, audit logs and audited queries against real daemons (SPEC §8, issue 7).

One stack per module: catalogd, ingestd, queryd and the gateway. A 300-worker roster is ingested
through the gateway and `lakehouse subjects sync` turns it into manifests (`w-<n>` ↔
`WORKER-<n>`); the tests then drive catalogd's subject endpoints directly and queries through
the gateway, and check the audit logs on disk and through `.../audit/verify`.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from lakehouse_common.audit import GENESIS, verify_log
from lakehouse_common.audit.keys import load_keyring
from lakehouse_common.cli import app
from lakehouse_common.cli.subjects import subject_id_for
from lakehouse_common.config import audit_key_path
from lakehouse_common.ops.roster import write_roster
from lakehouse_common.tracing import TRACE_HEADER, mint_trace_id
from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack

ROSTER_ROWS = 300
MAX_ACCESS_KEYS = 400
PII = ["email", "first_name", "last_name", "phone"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    extra: dict[str, dict[str, Any]] = {
        "audit": {"max_access_keys": MAX_ACCESS_KEYS, "policy_refresh_s": 0.1},
        "query": {"catalog_refresh_s": 0.1},
    }
    live = LiveStack.create(tmp_path_factory.mktemp("subjects"), extra)
    with live.running("catalogd", "ingestd", "queryd", "gateway"):
        yield live


@pytest.fixture(scope="module")
def roster(stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("roster") / "workers.parquet"
    write_roster(path, ROSTER_ROWS)
    with stack.client("gateway") as gw:
        resp = gw.post(
            "/v1/ingest/workers",
            content=path.read_bytes(),
            headers={"content-type": "application/vnd.apache.parquet"},
        )
        assert resp.status_code in (200, 201), resp.text


def sync(stack: LiveStack) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["subjects", "sync", "--dataset", "workers", "--gateway", stack.url("gateway")]
    )
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture(scope="module")
def first_sync(stack: LiveStack, roster: None) -> str:
    code, out = sync(stack)
    assert code == 0, out
    # queryd trusts its copy of the governance policy for audit.policy_refresh_s (0.1 s): let
    # that copy expire so every test sees the synced manifests.
    time.sleep(0.3)
    return out


@pytest.fixture
def cd(stack: LiveStack, first_sync: str) -> Iterator[httpx.Client]:
    with stack.client("catalogd") as client:
        yield client


@pytest.fixture
def gw(stack: LiveStack, first_sync: str) -> Iterator[httpx.Client]:
    with stack.client("gateway") as client:
        yield client


def manifest(row_key: str, **over: Any) -> dict[str, Any]:
    return {"dataset": "workers", "row_key": row_key, "pii_fields": ["phone"], **over}


def new_subject(cd: httpx.Client, **over: Any) -> str:
    subject_id = f"T-{secrets.token_hex(4)}"
    resp = cd.put(f"/v1/catalog/subjects/{subject_id}", json=manifest(f"x-{subject_id}", **over))
    assert resp.status_code == 201, resp.text
    return subject_id


def append(cd: httpx.Client, subject_id: str, **over: Any) -> httpx.Response:
    body = {"accessor": {"daemon": "tests", "purpose": "check"}, "fields": ["phone"], **over}
    return cd.post(f"/v1/catalog/subjects/{subject_id}/audit", json=body)


def rows_of(cd: httpx.Client, subject_id: str) -> list[dict[str, Any]]:
    resp = cd.get(f"/v1/catalog/subjects/{subject_id}/audit", params={"limit": 10_000})
    assert resp.status_code == 200, resp.text
    out: list[dict[str, Any]] = resp.json()["rows"]
    return out


def verify(cd: httpx.Client, subject_id: str) -> dict[str, Any]:
    resp = cd.get(f"/v1/catalog/subjects/{subject_id}/audit/verify")
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def log_path(stack: LiveStack, subject_id: str) -> Path:
    return stack.settings.data_dir / "subjects" / "audit" / f"{subject_id}.jsonl"


class TestSync:
    def test_sync_creates_one_manifest_per_row(self, first_sync: str) -> None:
        assert f"{ROSTER_ROWS} rows -> {ROSTER_ROWS} created, 0 updated, 0 unchanged" in first_sync
        assert "pii: email, first_name, last_name, phone" in first_sync

    def test_worker_id_maps_to_row_key(self, cd: httpx.Client) -> None:
        resp = cd.get("/v1/catalog/subjects/WORKER-17")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["dataset"], body["key_column"], body["row_key"]) == ("workers", "id", "w-17")
        assert body["pii_fields"] == PII

    def test_second_sync_changes_nothing(self, stack: LiveStack, first_sync: str) -> None:
        code, out = sync(stack)
        assert code == 0, out
        assert f"0 created, 0 updated, {ROSTER_ROWS} unchanged" in out

    def test_unknown_dataset_exits_1(self, stack: LiveStack, first_sync: str) -> None:
        result = CliRunner().invoke(
            app, ["subjects", "sync", "--dataset", "nope", "--gateway", stack.url("gateway")]
        )
        assert result.exit_code == 1
        assert "404" in result.stderr

    def test_subject_ids_follow_the_row_key_suffix(self) -> None:
        assert subject_id_for("w-17", "WORKER") == "WORKER-17"
        assert subject_id_for("w-a-b", "WORKER") == "WORKER-a-b"
        assert subject_id_for("w17", "WORKER") is None
        assert subject_id_for("w-", "WORKER") is None
        assert subject_id_for("w-x/y", "WORKER") is None


class TestPutSubject:
    def test_create_answers_201_then_replace_200(self, cd: httpx.Client) -> None:
        sid = f"T-{secrets.token_hex(4)}"
        first = cd.put(f"/v1/catalog/subjects/{sid}", json=manifest(f"x-{sid}"))
        assert first.status_code == 201, first.text
        again = cd.put(f"/v1/catalog/subjects/{sid}", json=manifest(f"x-{sid}"))
        assert again.status_code == 200
        assert again.json() == first.json()  # unchanged: not rewritten
        changed = cd.put(
            f"/v1/catalog/subjects/{sid}",
            json=manifest(f"x-{sid}", pii_fields=["phone", "email", "phone"], retention_days=30),
        )
        assert changed.status_code == 200
        body = changed.json()
        assert body["pii_fields"] == ["email", "phone"]
        assert body["retention_days"] == 30
        assert body["created_at"] == first.json()["created_at"]

    def test_unknown_dataset_is_404(self, cd: httpx.Client) -> None:
        resp = cd.put("/v1/catalog/subjects/T-nods", json=manifest("x-1", dataset="nope"))
        assert_envelope(resp, 404, "not_found")

    def test_column_the_dataset_lacks_is_422(self, cd: httpx.Client) -> None:
        resp = cd.put("/v1/catalog/subjects/T-nocol", json=manifest("x-2", pii_fields=["phnoe"]))
        body = assert_envelope(resp, 422, "invalid_request")
        assert body["error"]["details"]["missing_columns"] == ["phnoe"]
        assert cd.get("/v1/catalog/subjects/T-nocol").status_code == 404

    def test_row_of_another_subject_is_409(self, cd: httpx.Client) -> None:
        resp = cd.put("/v1/catalog/subjects/T-thief", json=manifest("w-17"))
        body = assert_envelope(resp, 409, "conflict")
        assert body["error"]["details"]["subject_id"] == "WORKER-17"

    def test_another_key_column_is_409(self, cd: httpx.Client) -> None:
        resp = cd.put("/v1/catalog/subjects/T-key", json=manifest("x-3", key_column="email"))
        assert_envelope(resp, 409, "conflict")

    @pytest.mark.parametrize("subject_id", ["-x", ".hidden", "a b", "a:b", "x" * 129])
    def test_bad_subject_id_is_400(self, cd: httpx.Client, subject_id: str) -> None:
        assert_envelope(
            cd.put(f"/v1/catalog/subjects/{subject_id}", json=manifest("x-4")), 400, "invalid_input"
        )

    @pytest.mark.parametrize(
        "body",
        [
            manifest("x-5", pii_fields=[]),
            manifest("x-5", pii_fields=["no-dash"]),
            manifest("", pii_fields=["phone"]),
            manifest("x\n5"),
            manifest("x-5", retention_days=0),
            manifest("x-5", extra=1),
            {"row_key": "x-5", "pii_fields": ["phone"]},
        ],
    )
    def test_malformed_manifest_is_422(self, cd: httpx.Client, body: dict[str, Any]) -> None:
        assert_envelope(cd.put("/v1/catalog/subjects/T-bad", json=body), 422, "invalid_request")


class TestGetAndList:
    def test_unknown_subject_is_404(self, cd: httpx.Client) -> None:
        assert_envelope(cd.get("/v1/catalog/subjects/WORKER-99999"), 404, "not_found")

    def test_list_pages_in_id_order(self, cd: httpx.Client) -> None:
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"dataset": "workers", "limit": 128}
            if cursor:
                params["cursor"] = cursor
            page = cd.get("/v1/catalog/subjects", params=params).json()
            seen += [s["subject_id"] for s in page["subjects"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(seen)
        assert {f"WORKER-{n}" for n in range(1, ROSTER_ROWS + 1)} <= set(seen)

    def test_governance_names_the_key_column_and_pii(self, cd: httpx.Client) -> None:
        policies = {p["dataset"]: p for p in cd.get("/v1/catalog/governance").json()["datasets"]}
        assert policies["workers"]["key_column"] == "id"
        assert set(PII) <= set(policies["workers"]["pii_fields"])
        assert policies["workers"]["subjects"] >= ROSTER_ROWS


class TestBatch:
    def test_a_refused_manifest_refuses_the_whole_batch(self, cd: httpx.Client) -> None:
        good = {"subject_id": "T-batch-ok", **manifest("x-b1")}
        bad = {"subject_id": "T-batch-bad", **manifest("x-b2", pii_fields=["nope"])}
        assert_envelope(
            cd.post("/v1/catalog/subjects", json={"subjects": [good, bad]}), 422, "invalid_request"
        )
        assert cd.get("/v1/catalog/subjects/T-batch-ok").status_code == 404

    def test_duplicate_subject_in_a_batch_is_400(self, cd: httpx.Client) -> None:
        one = {"subject_id": "T-dup", **manifest("x-d1")}
        two = {"subject_id": "T-dup", **manifest("x-d2")}
        assert_envelope(
            cd.post("/v1/catalog/subjects", json={"subjects": [one, two]}), 400, "invalid_input"
        )

    def test_row_claimed_twice_in_a_batch_is_409(self, cd: httpx.Client) -> None:
        one = {"subject_id": "T-r1", **manifest("x-same")}
        two = {"subject_id": "T-r2", **manifest("x-same")}
        assert_envelope(
            cd.post("/v1/catalog/subjects", json={"subjects": [one, two]}), 409, "conflict"
        )

    def test_empty_batch_is_422(self, cd: httpx.Client) -> None:
        assert_envelope(
            cd.post("/v1/catalog/subjects", json={"subjects": []}), 422, "invalid_request"
        )


class TestAppend:
    def test_append_answers_the_chained_row(self, cd: httpx.Client) -> None:
        sid = new_subject(cd)
        trace = mint_trace_id()
        first = cd.post(
            f"/v1/catalog/subjects/{sid}/audit",
            json={"accessor": {"daemon": "matrixd", "purpose": "matching"}, "fields": ["phone"]},
            headers={TRACE_HEADER: trace},
        )
        assert first.status_code == 201, first.text
        row = first.json()
        assert row["seq"] == 1 and row["prev_hmac"] == GENESIS
        assert row["accessor"] == {"daemon": "matrixd", "purpose": "matching", "trace_id": trace}
        second = append(cd, sid, accessor={"daemon": "d", "purpose": "p", "trace_id": ""})
        assert second.json()["prev_hmac"] == row["hmac"]
        assert second.json()["accessor"]["trace_id"] == ""  # given empty: kept, not omitted
        assert rows_of(cd, sid) == [row, second.json()]

    def test_unknown_subject_is_404_and_writes_nothing(
        self, cd: httpx.Client, stack: LiveStack
    ) -> None:
        assert_envelope(append(cd, "T-never"), 404, "not_found")
        assert not log_path(stack, "T-never").exists()

    @pytest.mark.parametrize(
        "body",
        [
            {"fields": ["phone"]},
            {"accessor": {"daemon": "", "purpose": "p"}},
            {"accessor": {"daemon": "d", "purpose": "p"}, "fields": ["a b"]},
            {"accessor": {"daemon": "d", "purpose": "p"}, "action": "key rotation"},
        ],
    )
    def test_malformed_append_is_422(self, cd: httpx.Client, body: dict[str, Any]) -> None:
        sid = new_subject(cd)
        assert_envelope(
            cd.post(f"/v1/catalog/subjects/{sid}/audit", json=body), 422, "invalid_request"
        )
        assert rows_of(cd, sid) == []

    def test_the_chain_writes_rotation_rows_not_callers(self, cd: httpx.Client) -> None:
        sid = new_subject(cd)
        assert_envelope(append(cd, sid, action="key_rotation"), 400, "invalid_input")

    def test_timestamp_ending_in_zero_nanos_verifies(self, cd: httpx.Client) -> None:
        sid = new_subject(cd)
        for _ in range(300):
            if append(cd, sid).json()["ts"].endswith("0Z"):
                break
        else:
            pytest.fail("no timestamp ended in 0 nanoseconds")
        assert verify(cd, sid)["verified"] is True

    def test_twenty_concurrent_appends_form_one_unbroken_chain(self, stack: LiveStack) -> None:
        with stack.client("catalogd") as cd:
            sid = new_subject(cd)

        def one(i: int) -> int:
            with stack.client("catalogd") as client:
                resp = append(client, sid, fields=[], accessor={"daemon": "t", "purpose": f"p{i}"})
                assert resp.status_code == 201, resp.text
                seq: int = resp.json()["seq"]
                return seq

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            seqs = sorted(pool.map(one, range(20)))
        assert seqs == list(range(1, 21))
        with stack.client("catalogd") as cd:
            result = verify(cd, sid)
            rows = rows_of(cd, sid)
        assert result["verified"] is True and result["count"] == 20
        assert result["tip"] == rows[-1]["hmac"]
        assert sorted(r["accessor"]["purpose"] for r in rows) == sorted(f"p{i}" for i in range(20))
        assert all(b["prev_hmac"] == a["hmac"] for a, b in zip(rows, rows[1:], strict=False))


class TestReadAudit:
    def test_since_seq_pages_through_the_log(self, cd: httpx.Client) -> None:
        sid = new_subject(cd)
        for _ in range(5):
            append(cd, sid)
        page = cd.get(f"/v1/catalog/subjects/{sid}/audit", params={"since_seq": 1, "limit": 2})
        body = page.json()
        assert [r["seq"] for r in body["rows"]] == [2, 3]
        assert body["next_since_seq"] == 3
        rest = cd.get(f"/v1/catalog/subjects/{sid}/audit", params={"since_seq": 3}).json()
        assert [r["seq"] for r in rest["rows"]] == [4, 5] and rest["next_since_seq"] is None

    def test_subject_without_accesses_has_no_rows_and_verifies(self, cd: httpx.Client) -> None:
        sid = new_subject(cd)
        assert rows_of(cd, sid) == []
        assert verify(cd, sid) == {
            "subject_id": sid,
            "count": 0,
            "tip": GENESIS,
            "verified": True,
            "error": None,
            "epochs": 0,
            # Issue 18: nothing to anchor yet, and that is said, not hidden.
            "anchored": False,
            "checkpoint": None,
            "unanchored": 0,
            "repairs": [],
        }

    def test_unknown_subject_is_404(self, cd: httpx.Client) -> None:
        assert_envelope(cd.get("/v1/catalog/subjects/T-none/audit"), 404, "not_found")
        assert_envelope(cd.get("/v1/catalog/subjects/T-none/audit/verify"), 404, "not_found")

    def test_negative_since_seq_is_422(self, cd: httpx.Client) -> None:
        assert_envelope(
            cd.get("/v1/catalog/subjects/WORKER-1/audit", params={"since_seq": -1}),
            422,
            "invalid_request",
        )


class TestTampering:
    """Editing, deleting, reordering or truncating a stored log fails verification at the
    first bad row, named by line and seq."""

    @pytest.fixture
    def tampered(self, cd: httpx.Client, stack: LiveStack) -> tuple[str, Path]:
        sid = new_subject(cd)
        for _ in range(4):
            assert append(cd, sid).status_code == 201
        return sid, log_path(stack, sid)

    def lines(self, path: Path) -> list[bytes]:
        return path.read_bytes().splitlines(keepends=True)

    def check(self, cd: httpx.Client, sid: str, line: int, why: str) -> None:
        result = verify(cd, sid)
        assert result["verified"] is False
        assert result["count"] == line - 1
        assert result["error"].startswith(f"line {line} (seq ")
        assert why in result["error"]

    def test_any_edited_byte(self, cd: httpx.Client, tampered: tuple[str, Path]) -> None:
        sid, path = tampered
        original = path.read_bytes()
        second = self.lines(path)[0]
        # Every byte of the second row's JSON (not its newline): changed, verify must fail there.
        for offset in range(0, len(self.lines(path)[1]) - 1, 7):
            data = bytearray(original)
            position = len(second) + offset
            data[position] = ord("0") if data[position] != ord("0") else ord("1")
            path.write_bytes(bytes(data))
            result = verify(cd, sid)
            assert result["verified"] is False, offset
            assert result["error"].startswith("line 2 "), (offset, result["error"])
        path.write_bytes(original)
        assert verify(cd, sid)["verified"] is True

    def test_a_row_bent_out_of_shape_is_not_served_and_fails_verify(
        self, cd: httpx.Client, tampered: tuple[str, Path]
    ) -> None:
        sid, path = tampered
        raw = self.lines(path)
        raw[1] = (
            raw[1]
            .replace(b'"accessor":{', b'"accessor":[{', 1)
            .replace(b'},"action"', b'}],"action"', 1)
        )
        path.write_bytes(b"".join(raw))
        assert [r["seq"] for r in rows_of(cd, sid)] == [1, 3, 4]
        self.check(cd, sid, 2, "hmac mismatch")

    def test_deleted_row(self, cd: httpx.Client, tampered: tuple[str, Path]) -> None:
        sid, path = tampered
        raw = self.lines(path)
        path.write_bytes(b"".join(raw[:1] + raw[2:]))
        self.check(cd, sid, 2, "does not link")

    def test_reordered_rows(self, cd: httpx.Client, tampered: tuple[str, Path]) -> None:
        sid, path = tampered
        raw = self.lines(path)
        path.write_bytes(b"".join([raw[0], raw[2], raw[1], raw[3]]))
        self.check(cd, sid, 2, "does not link")

    def test_truncated_file(self, cd: httpx.Client, tampered: tuple[str, Path]) -> None:
        sid, path = tampered
        path.write_bytes(path.read_bytes()[:-10])
        self.check(cd, sid, 4, "no trailing newline")
        # A torn tip is never extended: the append is refused and the file left as it is.
        before = path.read_bytes()
        assert_envelope(append(cd, sid), 409, "conflict")
        assert path.read_bytes() == before


class TestAccessRecord:
    def test_row_keys_map_to_subjects_through_manifests(self, cd: httpx.Client) -> None:
        trace = mint_trace_id()
        before = len(rows_of(cd, "WORKER-41"))
        resp = cd.post(
            "/v1/catalog/audit/access",
            json={
                "dataset": "workers",
                "row_keys": ["w-41", "w-42", "w-41", "w-99999", "zz"],
                "accessor": "matrixd",
                "purpose": "matching",
                "fields": ["phone", "role"],
            },
            headers={TRACE_HEADER: trace},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json() == {
            "dataset": "workers",
            "recorded": 2,
            "unmatched": 2,
            "no_pii": 0,
            "trace_id": trace,
        }
        rows = rows_of(cd, "WORKER-41")
        assert len(rows) == before + 1
        assert rows[-1]["accessor"] == {
            "daemon": "matrixd",
            "purpose": "matching",
            "trace_id": trace,
        }
        assert rows[-1]["fields"] == ["phone"]  # role is not PII: only the PII disclosed
        assert verify(cd, "WORKER-42")["verified"] is True

    def test_no_fields_means_every_pii_field(self, cd: httpx.Client) -> None:
        body = {"dataset": "workers", "row_keys": ["w-43"], "accessor": "v", "purpose": "p"}
        assert cd.post("/v1/catalog/audit/access", json=body).json()["recorded"] == 1
        assert rows_of(cd, "WORKER-43")[-1]["fields"] == PII

    def test_fields_none_of_which_are_pii_record_nothing(self, cd: httpx.Client) -> None:
        before = len(rows_of(cd, "WORKER-44"))
        body = {
            "dataset": "workers",
            "row_keys": ["w-44"],
            "accessor": "v",
            "purpose": "p",
            "fields": ["role"],
        }
        answer = cd.post("/v1/catalog/audit/access", json=body).json()
        assert (answer["recorded"], answer["no_pii"]) == (0, 1)
        assert len(rows_of(cd, "WORKER-44")) == before

    def test_too_many_keys_is_422(self, cd: httpx.Client) -> None:
        keys = [f"w-{n}" for n in range(MAX_ACCESS_KEYS + 1)]
        body = {"dataset": "workers", "row_keys": keys, "accessor": "v", "purpose": "p"}
        assert_envelope(cd.post("/v1/catalog/audit/access", json=body), 422, "invalid_request")

    @pytest.mark.parametrize(
        "body",
        [
            {"dataset": "workers", "row_keys": [], "accessor": "v", "purpose": "p"},
            {"dataset": "Workers!", "row_keys": ["w-1"], "accessor": "v", "purpose": "p"},
            {"dataset": "workers", "row_keys": ["w-1"], "purpose": "p"},
            {"dataset": "workers", "row_keys": ["w-1"], "accessor": "v", "purpose": "p q"},
        ],
    )
    def test_malformed_record_is_422(self, cd: httpx.Client, body: dict[str, Any]) -> None:
        assert_envelope(cd.post("/v1/catalog/audit/access", json=body), 422, "invalid_request")


def query(gw: httpx.Client, sql: str, trace: str | None = None, **extra: Any) -> httpx.Response:
    headers = {TRACE_HEADER: trace} if trace else {}
    return gw.post("/v1/query", json={"sql": sql, **extra}, headers=headers)


class TestAuditedQueries:
    """queryd audits every returned row of a governed dataset that carries PII (SPEC §8)."""

    def test_pii_read_through_the_gateway_leaves_a_verified_row_with_its_trace_id(
        self, gw: httpx.Client, cd: httpx.Client
    ) -> None:
        trace = mint_trace_id()
        resp = query(gw, "SELECT id, first_name, phone FROM workers WHERE id = 'w-17'", trace)
        assert resp.status_code == 200, resp.text
        assert resp.json()["rows"][0][0] == "w-17"
        row = rows_of(cd, "WORKER-17")[-1]
        assert row["accessor"] == {"daemon": "queryd", "purpose": "query", "trace_id": trace}
        assert row["fields"] == ["first_name", "phone"]
        assert row["action"] == "read"
        result = verify(cd, "WORKER-17")
        assert result["verified"] is True and result["tip"] == row["hmac"]

    def test_every_returned_subject_is_audited_once(
        self, gw: httpx.Client, cd: httpx.Client
    ) -> None:
        trace = mint_trace_id()
        resp = query(gw, "SELECT * FROM workers ORDER BY id LIMIT 5", trace)
        assert resp.status_code == 200, resp.text
        for key, *_rest in resp.json()["rows"]:
            rows = [
                r for r in rows_of(cd, f"WORKER-{key[2:]}") if r["accessor"]["trace_id"] == trace
            ]
            assert len(rows) == 1 and rows[0]["fields"] == PII

    def test_aliased_pii_is_still_audited(self, gw: httpx.Client, cd: httpx.Client) -> None:
        trace = mint_trace_id()
        sql = "SELECT id, p FROM (SELECT id, upper(email) AS p FROM workers) WHERE id = 'w-21'"
        resp = query(gw, sql, trace)
        assert resp.status_code == 200, resp.text
        assert rows_of(cd, "WORKER-21")[-1]["accessor"]["trace_id"] == trace

    def test_csv_answers_are_audited_too(self, gw: httpx.Client, cd: httpx.Client) -> None:
        trace = mint_trace_id()
        resp = query(gw, "SELECT id, email FROM workers WHERE id = 'w-22'", trace, format="csv")
        assert resp.status_code == 200, resp.text
        assert rows_of(cd, "WORKER-22")[-1]["accessor"]["trace_id"] == trace

    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT id, role, city FROM workers WHERE id = 'w-23'",
            "SELECT id FROM workers WHERE id = 'w-23' AND phone IS NOT NULL",
            "SELECT count(*) AS n, count(phone) AS p FROM workers",
            "SELECT id, * EXCLUDE (first_name, last_name, phone, email) FROM workers "
            "WHERE id = 'w-23'",
            "DESCRIBE workers",
        ],
    )
    def test_answers_without_pii_are_not_audited(
        self, gw: httpx.Client, cd: httpx.Client, sql: str
    ) -> None:
        before = len(rows_of(cd, "WORKER-23"))
        resp = query(gw, sql)
        assert resp.status_code == 200, resp.text
        assert len(rows_of(cd, "WORKER-23")) == before

    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT phone FROM workers WHERE id = 'w-24'",
            "SELECT upper(email) AS e FROM workers__v1 WHERE id = 'w-24'",
            "SUMMARIZE workers",
        ],
    )
    def test_pii_without_the_key_column_is_refused(
        self, gw: httpx.Client, cd: httpx.Client, sql: str
    ) -> None:
        before = len(rows_of(cd, "WORKER-24"))
        body = assert_envelope(query(gw, sql), 400, "invalid_input")
        assert "key column 'id'" in body["error"]["message"]
        assert body["error"]["details"]["dataset"] == "workers"
        assert len(rows_of(cd, "WORKER-24")) == before

    def test_rows_without_a_manifest_are_answered(self, gw: httpx.Client) -> None:
        resp = query(gw, "SELECT 'w-0' AS id, 'x' AS phone")
        assert resp.status_code == 200, resp.text


class TestOfflineVerification:
    def test_verify_all_checks_every_log_catalogd_wrote(
        self, stack: LiveStack, gw: httpx.Client
    ) -> None:
        assert query(gw, "SELECT id, phone FROM workers WHERE id = 'w-30'").status_code == 200
        directory = stack.settings.data_dir / "subjects" / "audit"
        result = CliRunner().invoke(
            app,
            ["audit", "verify-all", str(directory), "--config", str(stack.config_path), "--json"],
        )
        report = json.loads(result.stdout)
        failed = [log for log in report["logs"] if not log["verified"]]
        tampered = {log["subject_id"] for log in failed}
        # Only the logs TestTampering broke on purpose fail.
        assert result.exit_code == (1 if failed else 0)
        assert "WORKER-30" not in tampered
        keyring = load_keyring(audit_key_path(stack.settings))
        assert verify_log(directory / "WORKER-30.jsonl", keyring).verified
