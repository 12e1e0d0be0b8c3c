"""Distillation end to end (issue 8): a `_kb` built by driving the real stack, then `lakehouse
distill run` — every stage's counts asserted, a second run a no-op with identical bytes, and
audit-full passing its required checks.

One stack for the module, every daemon but storaged (embedd loads its model once): a 300-worker
roster is ingested and indexed; then two searches around a playbook recording, a retrieve, two
validations, four iterate sessions answered by the scripted fake LLM (`tests/support/llm.py`, as
chatd's Ollama provider), a pathway, a coordinator's feedback (`lakehouse distill feedback`) and
three replays (`lakehouse distill replay`). The roster file is the firewall's
(`distill.roster_file`), the held-out set sits at its configured place.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lakehouse_common.cli import app
from lakehouse_common.cli.ingest import DEFAULT_TEMPLATE
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.ops.roster import write_roster
from lakehouse_common.tracing import TRACE_HEADER
from tests.support.distill import HELDOUT, digests, read_jsonl
from tests.support.llm import FakeLLM
from tests.support.stack import LiveStack

pytestmark = pytest.mark.slow

STACK = (
    "catalogd",
    "ingestd",
    "queryd",
    "embedd",
    "vectord",
    "pathwayd",
    "observerd",
    "matrixd",
    "chatd",
    "validatord",
    "gateway",
)
ROWS = 300
FORKLIFT_QUERY = "Need 3 Forklift Operators in Aurora IL"
SMS_PROMPT = "Confirm Monday's 7am forklift shift in Aurora"
ROSTER_PROMPT = "Email Ana the details of her Monday shift"
HELD_OUT_PROMPT = "Email Dana Kim the onboarding checklist for the Joliet warehouse."
GOOD_SMS = {"to": "555-123-4567", "body": "Your Monday 7am forklift shift in Aurora is confirmed."}
GOOD_SMS_2 = {"to": "555-123-4567", "body": "Confirmed: forklift shift, Monday 7am, Aurora."}
BAD_SMS = {"to": "12345", "body": "Your shift is confirmed."}
BAD_SMS_2 = {"to": "555", "body": "Your shift is confirmed."}
EMAIL = {"to": "dana@example.org", "subject": "Onboarding", "body": "The checklist is attached."}
NO_SUBJECT = {"to": "dana@example.org", "subject": "", "body": "The checklist is attached."}
# Once every event is in: stream → lines.
EXPECTED_STREAMS = {
    "search_runs": 6,  # cold + warm search, a retrieve, three replay retrieves
    "playbook_records": 1,
    "validation_results": 11,  # 2 direct, 6 in iterate sessions, 3 in replays
    "chat_runs": 9,  # 6 in iterate sessions, 3 in replays
    "iterate_sessions": 4,
    "replay_runs": 3,
    "human_feedback": 1,
    "pathways": 1,
}

runner = CliRunner()


def lakehouse(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def eventually(check: Any, *, attempts: int = 400, pause_s: float = 0.05) -> Any:
    for _ in range(attempts):
        value = check()
        if value:
            return value
        time.sleep(pause_s)
    raise AssertionError("condition never held")


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[LiveStack]:
    root = tmp_path_factory.mktemp("distill-e2e")
    live = LiveStack.create(
        root,
        {
            "query": {"catalog_refresh_s": 0.2},
            "chat": {"default_model": "ollama/fake-model", "max_retries": 0},
            "chat.providers.ollama": {
                "base_url": llm.url,
                "timeout_s": 10.0,
                "cold_start_timeout_s": 10.0,
            },
            "distill": {"roster_file": str(root / "workers.parquet")},
        },
    )
    with live.running(*STACK, timeout_s=180):
        yield live


@pytest.fixture(scope="module")
def gw(stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url("gateway"), timeout=120) as client:
        yield client


def post(gw: httpx.Client, path: str, body: dict[str, Any], status: int = 200) -> httpx.Response:
    resp = gw.post(path, json=body)
    assert resp.status_code == status, resp.text
    return resp


@pytest.fixture(scope="module")
def roster(stack: LiveStack, gw: httpx.Client) -> list[dict[str, Any]]:
    """The roster, ingested as `workers` and indexed into `workers`."""
    path = stack.config_path.parent / "workers.parquet"
    write_roster(path, ROWS, seed=11)
    resp = gw.post(
        "/v1/ingest/workers",
        content=path.read_bytes(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert resp.status_code == 201, resp.text
    job = post(
        gw,
        "/v1/ingest/workers/index",
        {
            "index": "workers",
            "text_template": DEFAULT_TEMPLATE,
            "id_column": "id",
            "metadata_columns": ["role", "city", "state", "available"],
        },
        status=202,
    ).json()
    job = eventually(
        lambda: (
            j
            if (j := gw.get(f"/v1/ingest/jobs/{job['id']}").json())["state"] == "succeeded"
            else None
        ),
        attempts=2400,
    )
    rows: list[dict[str, Any]] = pq.read_table(path, columns=["id", "phone", "email"]).to_pylist()
    return rows


@dataclass(frozen=True)
class Story:
    cold_search_trace: str
    roster_email: str
    layout: DistillLayout
    config: Path


def iterate(
    gw: httpx.Client, llm: FakeLLM, kind: str, prompt: str, *replies: Any, **body: Any
) -> dict[str, Any]:
    llm.script(*(orjson.dumps(reply).decode() for reply in replies))
    answer: dict[str, Any] = post(
        gw, "/v1/iterate", {"kind": kind, "prompt": prompt, **body}
    ).json()
    assert llm.pending == 0
    return answer


@pytest.fixture(scope="module")
def story(stack: LiveStack, gw: httpx.Client, llm: FakeLLM, roster: list[dict[str, Any]]) -> Story:
    layout = DistillLayout(stack.settings.data_dir)
    layout.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(HELDOUT, layout.root / "heldout_eval.jsonl")  # distill.heldout_file's default
    config = ["--config", str(stack.config_path)]

    # Searches: cold, a coordinator's approval, warm (the playbook applies); a retrieve.
    search = {"query_text": FORKLIFT_QUERY, "query_role": "Forklift Operator", "k": 5}
    cold = post(gw, "/v1/matrix/search", {**search, "use_playbook": True})
    top = cold.json()["results"][0]["id"]
    post(
        gw,
        "/v1/matrix/playbooks/record",
        {"query_text": FORKLIFT_QUERY, "role": "Forklift Operator", "answer_id": top, "score": 1.0},
    )
    warm = post(gw, "/v1/matrix/search", {**search, "use_playbook": True}).json()
    assert warm["boosted"] >= 1
    post(gw, "/v1/matrix/retrieve", {"query_text": "Welder in Houston", "k": 3})

    # Validations: one valid SMS, one email carrying an SSN.
    assert post(gw, "/v1/validate", {"kind": "sms", "payload": GOOD_SMS}).json()["valid"]
    ssn = {"to": "hr@example.org", "subject": "SSN", "body": "Worker SSN 123-45-6789."}
    assert not post(gw, "/v1/validate", {"kind": "email", "payload": ssn}).json()["valid"]

    # Iterate sessions (the fake LLM answers).
    roster_email = roster[5]["email"]
    to_worker = {"to": roster_email, "subject": "Monday", "body": "Your shift starts at 7am."}
    assert iterate(gw, llm, "sms", SMS_PROMPT, BAD_SMS, GOOD_SMS)["status"] == "accepted"
    answer = iterate(gw, llm, "sms", SMS_PROMPT, BAD_SMS, BAD_SMS_2, max_iter=2)
    assert answer["status"] == "max_iter_exhausted"
    assert iterate(gw, llm, "email", ROSTER_PROMPT, to_worker)["status"] == "accepted"
    assert iterate(gw, llm, "email", HELD_OUT_PROMPT, EMAIL)["status"] == "accepted"

    # A pathway, and the coordinator's label on the cold search.
    post(
        gw,
        "/v1/pathways",
        {
            "demand_text": FORKLIFT_QUERY,
            "role": "Forklift Operator",
            "steps": [{"name": "search"}, {"name": "shortlist"}, {"name": "fill"}],
            "outcome": {"filled": True, "count": 3},
        },
        status=201,
    )
    cold_trace = cold.headers[TRACE_HEADER]
    code, out = lakehouse(
        "distill",
        "feedback",
        "--label",
        "accepted",
        "--trace-id",
        cold_trace,
        "--kind",
        "search_run",
        "--coordinator",
        "jo",
        *config,
    )
    assert code == 0, out

    # Replays of the last three tasks (the SMS task, then the two emails): the model now gets
    # the SMS right, repeats the roster address, and drops the held-out email's subject.
    eventually(lambda: _counts(gw).get("iterate_sessions") == 4)
    llm.script(*(orjson.dumps(r).decode() for r in (GOOD_SMS_2, to_worker, NO_SUBJECT)))
    code, out = lakehouse("distill", "replay", "--limit", "3", *config)
    assert code == 0, out
    assert "replayed 3: 2 accepted, 1 rejected, 0 infra errors; 2 verdicts changed" in out

    eventually(lambda: _counts(gw) == EXPECTED_STREAMS, attempts=600)
    return Story(cold_trace, roster_email, layout, stack.config_path)


def _counts(gw: httpx.Client) -> dict[str, int]:
    streams = gw.get("/v1/observations").json()["streams"]
    return {s["name"]: s["count"] for s in streams if s["count"]}


@pytest.fixture(scope="module")
def first_run(story: Story) -> dict[str, Any]:
    code, out = lakehouse("distill", "run", "--config", str(story.config), "--json")
    assert code == 0, out
    result: dict[str, Any] = orjson.loads(out[out.index("{") :])
    return result


class TestDistillRun:
    def test_materialize_counts(self, first_run: dict[str, Any]) -> None:
        receipt = first_run["summary"]["receipts"]["materialize"]
        assert (receipt["records_in"], receipt["records_out"], receipt["skips"]) == (36, 36, {})
        assert receipt["by_kind"] == {
            "chat_run": 9,
            "human_feedback": 1,
            "iterate_session": 4,
            "pathway": 1,
            "playbook_record": 1,
            "replay_run": 3,
            "search_run": 6,
            "validation_result": 11,
        }

    def test_score_counts(self, first_run: dict[str, Any]) -> None:
        receipt = first_run["summary"]["receipts"]["score"]
        assert receipt["tiers"] == {"accepted": 16, "partial": 13, "rejected": 7}
        assert receipt["by_kind"]["search_run"] == {"accepted": 2, "partial": 4}
        assert receipt["by_kind"]["iterate_session"] == {"accepted": 3, "rejected": 1}
        assert receipt["by_kind"]["replay_run"] == {"accepted": 2, "rejected": 1}
        assert receipt["human"] == {"feedback": 1, "labelled": 1, "changed": 1, "unmatched": 0}

    def test_export_counts_and_firewall(self, first_run: dict[str, Any], story: Story) -> None:
        receipt = first_run["summary"]["receipts"]["export"]
        assert receipt["candidates"] == {"sft": 5, "rag": 13, "preference": 3}
        assert receipt["rows"] == {"sft": 2, "rag": 9, "preference": 2}
        assert receipt["quarantine_reasons"] == {
            "sft": {"heldout_exact": 1, "pii_roster_email": 2},
            "rag": {"heldout_exact": 2, "pii_roster_email": 2},
            "preference": {"heldout_exact": 1},
        }
        assert receipt["total_quarantined"] == 8
        assert receipt["firewall"]["roster"]["workers"] == ROWS
        assert receipt["firewall"]["heldout"]["prompts"] == 3
        exported = b"".join(
            (story.layout.exports / name).read_bytes()
            for name in ("sft.jsonl", "rag.jsonl", "preference_pairs.jsonl")
        )
        assert story.roster_email.encode() not in exported
        assert b"Dana Kim the onboarding" not in exported
        assert (
            story.roster_email.encode() in (story.layout.exports / "quarantine.jsonl").read_bytes()
        )

    def test_exports_hold_the_stories_rows(self, first_run: dict[str, Any], story: Story) -> None:
        sft = read_jsonl(story.layout.exports / "sft.jsonl")
        assert {row["kind"] for row in sft} == {"iterate_session", "replay_run"}
        assert all(row["messages"][1]["content"] == SMS_PROMPT for row in sft)
        pairs = read_jsonl(story.layout.exports / "preference_pairs.jsonl")
        assert {orjson.loads(p["rejected"])["to"] for p in pairs} == {"555"}
        rag = read_jsonl(story.layout.exports / "rag.jsonl")
        cold = [r for r in rag if r["kind"] == "search_run" and r["tier"] == "accepted"]
        assert len(cold) == 2  # the human-approved cold search and the warm one

    def test_audit_full_passes(self, first_run: dict[str, Any]) -> None:
        audit = first_run["audit"]
        assert audit["passed"] is True, [c for c in audit["checks"] if not c["passed"]]
        assert audit["metrics"]["p2_evidence_rows"] == 36
        assert audit["metrics"]["p4_sft_rows"] == 2
        assert audit["metrics"]["p7_replay_rows"] == 3
        assert all(c["passed"] for c in audit["checks"])  # roster and held-out set loaded too

    def test_a_second_run_is_a_no_op_with_identical_bytes(
        self, first_run: dict[str, Any], story: Story
    ) -> None:
        before = digests(story.layout.root)
        code, out = lakehouse("distill", "run", "--config", str(story.config), "--json")
        assert code == 0, out
        again = orjson.loads(out[out.index("{") :])
        assert again["written"] == []
        assert again["summary"] == first_run["summary"]
        assert digests(story.layout.root) == before

    def test_baselines_and_drift(self, first_run: dict[str, Any], story: Story) -> None:
        config = ["--config", str(story.config)]
        for _ in range(2):
            code, out = lakehouse("distill", "audit-full", "--append-baseline", *config)
            assert code == 0, out
        code, out = lakehouse("distill", "drift", *config)
        assert code == 0, out
        assert out.strip().endswith(f"0 of {len(first_run['audit']['metrics'])} metrics warn")
