"""POST /v1/iterate against a real chatd whose Ollama provider is the scripted fake LLM server
(`tests/support/llm.py`), plus observerd, and catalogd + queryd with *no* roster dataset: fill
sessions and fill validations show what happens when the roster view cannot be read, and the
session log is read back through queryd's `sessions` view. The last class kills chatd.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from lakehouse_common.session_log import SCHEMA, session_log_path
from lakehouse_common.tracing import TRACE_HEADER
from tests.support.envelope import assert_envelope
from tests.support.llm import FakeLLM, Reply
from tests.support.stack import LiveStack
from tests.support.validate import eventually, observed

GOOD_SMS = {"to": "555-123-4567", "body": "Your shift on Monday at 7am is confirmed."}
BAD_SMS = {"to": "12345", "body": "Your shift on Monday at 7am is confirmed."}
BAD_PHONE = {"Schema": {"field": "to", "reason": "not a valid phone number"}}
NO_JSON = {"Schema": {"field": "$", "reason": "no JSON object found in the reply"}}


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[LiveStack]:
    live = LiveStack.create(
        tmp_path_factory.mktemp("validatord-iterate"),
        {
            "query": {"catalog_refresh_s": 0.2},
            "chat": {"default_model": "ollama/fake-model", "max_retries": 0},
            "chat.providers.ollama": {
                "base_url": llm.url,
                "timeout_s": 10.0,
                "cold_start_timeout_s": 10.0,
            },
        },
    )
    with live.running("catalogd", "queryd", "observerd", "chatd", "validatord"):
        yield live


@pytest.fixture(scope="module")
def vd(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("validatord") as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_llm(llm: FakeLLM) -> None:
    llm.reset()


def iterate(client: httpx.Client, **body: Any) -> tuple[dict[str, Any], httpx.Response]:
    resp = client.post("/v1/iterate", json={"kind": "sms", "prompt": "Confirm the shift", **body})
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    assert answer["trace_id"] == resp.headers[TRACE_HEADER]
    assert answer["session_id"]
    return answer, resp


def log_lines(stack: LiveStack) -> list[dict[str, Any]]:
    path = session_log_path(stack.settings)
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def session_of(stack: LiveStack, session_id: str) -> dict[str, Any]:
    (line,) = [r for r in log_lines(stack) if r["session_id"] == session_id]
    return line


class TestIterate:
    def test_accepted_on_the_second_try_after_a_bad_reply(
        self, stack: LiveStack, vd: httpx.Client, llm: FakeLLM
    ) -> None:
        llm.script(orjson.dumps(BAD_SMS).decode(), orjson.dumps(GOOD_SMS).decode())
        answer, _ = iterate(vd)
        assert answer == {
            "status": "accepted",
            "iterations": 2,
            "final": GOOD_SMS,
            "errors": [],
            "session_id": answer["trace_id"],
            "trace_id": answer["trace_id"],
            "model": "ollama/fake-model",
            "infra_error": None,
        }
        first, second = llm.chat_requests()
        assert [m["role"] for m in first.messages] == ["system", "user"]
        assert first.messages[1]["content"] == "Confirm the shift"
        roles = [m["role"] for m in second.messages]
        assert roles == ["system", "user", "assistant", "user"]
        assert second.messages[2]["content"] == orjson.dumps(BAD_SMS).decode()
        assert orjson.dumps(BAD_PHONE).decode() in second.messages[3]["content"]

    def test_a_reply_without_json_is_a_failed_iteration_fed_back(
        self, vd: httpx.Client, llm: FakeLLM
    ) -> None:
        fenced = "Here it is:\n```json\n" + orjson.dumps(GOOD_SMS).decode() + "\n```"
        llm.script("Sure! I will confirm the shift right away.", fenced)
        answer, _ = iterate(vd)
        assert (answer["status"], answer["iterations"], answer["final"]) == (
            "accepted",
            2,
            GOOD_SMS,
        )
        feedback = llm.chat_requests()[1].messages[-1]["content"]
        assert orjson.dumps(NO_JSON).decode() in feedback

    def test_max_iter_exhausted(self, stack: LiveStack, vd: httpx.Client, llm: FakeLLM) -> None:
        llm.script("no json here", orjson.dumps(BAD_SMS).decode(), "never asked")
        answer, _ = iterate(vd, max_iter=2)
        assert answer["status"] == "max_iter_exhausted"
        assert answer["iterations"] == 2
        assert answer["final"] == BAD_SMS
        assert answer["errors"] == [BAD_PHONE]
        assert answer["infra_error"] is None
        assert len(llm.chat_requests()) == 2 and llm.pending == 1

    def test_context_reaches_the_model(self, vd: httpx.Client, llm: FakeLLM) -> None:
        llm.script(orjson.dumps(GOOD_SMS).decode())
        answer, _ = iterate(vd, context={"worker": "w-12", "shift": "Mon 7am"}, max_iter=1)
        assert answer["status"] == "accepted" and answer["iterations"] == 1
        opening = llm.chat_requests()[0].messages[1]["content"]
        assert '{"worker":"w-12","shift":"Mon 7am"}' in opening

    def test_a_provider_failure_is_an_infra_error(
        self, stack: LiveStack, vd: httpx.Client, llm: FakeLLM
    ) -> None:
        llm.script(orjson.dumps(BAD_SMS).decode(), Reply.error(500, "model crashed"))
        answer, _ = iterate(vd)
        assert answer["status"] == "infra_error"
        assert answer["iterations"] == 1
        assert answer["errors"] == [BAD_PHONE]
        infra = answer["infra_error"]
        assert infra["daemon"] == "chatd" and infra["status"] == 502
        assert infra["code"] == "upstream_error" and infra["message"]
        assert session_of(stack, answer["session_id"])["infra_error"] == infra

    def test_a_callers_trace_id_is_the_session_id(self, vd: httpx.Client, llm: FakeLLM) -> None:
        llm.script(orjson.dumps(GOOD_SMS).decode())
        resp = vd.post(
            "/v1/iterate",
            json={"kind": "sms", "prompt": "Confirm"},
            headers={TRACE_HEADER: "caller-trace-42"},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["session_id"] == resp.json()["trace_id"] == "caller-trace-42"


class TestSessionLog:
    def test_every_session_is_logged_and_reported(
        self, stack: LiveStack, vd: httpx.Client, llm: FakeLLM
    ) -> None:
        llm.script(orjson.dumps(BAD_SMS).decode(), orjson.dumps(GOOD_SMS).decode())
        answer, resp = iterate(vd)
        line = session_of(stack, answer["session_id"])
        assert line["schema"] == SCHEMA and line["daemon"] == "validatord"
        assert (line["kind"], line["status"], line["iterations"]) == ("sms", "accepted", 2)
        assert (line["model"], line["errors"]) == ("ollama/fake-model", [])
        assert line["trace_id"] == answer["trace_id"]

        (session,) = observed(stack, "iterate_sessions", answer["trace_id"])
        assert session["event"]["session_id"] == answer["session_id"]
        assert session["event"]["status"] == "accepted"
        validations = observed(stack, "validation_results", answer["trace_id"], count=2)
        events = sorted((r["event"] for r in validations), key=lambda e: e["iteration"])
        assert [(e["iteration"], e["valid"], e["source"]) for e in events] == [
            (1, False, "iterate"),
            (2, True, "iterate"),
        ]
        assert events[0]["errors"] == [BAD_PHONE]

    def test_lists_recent_sessions_newest_first(self, stack: LiveStack, vd: httpx.Client) -> None:
        resp = vd.get("/v1/sessions", params={"limit": 2})
        assert resp.status_code == 200, resp.text
        listed = resp.json()
        ids = [r["session_id"] for r in log_lines(stack)][::-1][:2]
        assert [r["session_id"] for r in listed["data"]] == ids
        assert listed["count"] == 2 and listed["skipped"] == 0
        assert set(listed["data"][0]) >= {"schema", "timestamp", "kind", "status", "errors"}


class TestMalformedIterate:
    @pytest.mark.parametrize(
        "body",
        [
            {"kind": "sms", "prompt": "x", "max_iter": 0},
            {"kind": "sms", "prompt": "x", "max_iter": 11},
            {"kind": "sms", "prompt": "x", "max_iter": "3"},
            {"kind": "sms"},
            {"kind": "sms", "prompt": "   "},
            {"kind": "memo", "prompt": "x"},
            {"kind": "sms", "prompt": "x", "temperature": 3},
            {"kind": "fill", "prompt": "x", "context": {"demand": {"role": "Welder"}}},
        ],
        ids=[
            "max-iter-0",
            "max-iter-11",
            "max-iter-string",
            "no-prompt",
            "blank-prompt",
            "unknown-kind",
            "temperature",
            "bad-fill-context",
        ],
    )
    def test_answers_422_without_calling_the_model_or_logging(
        self, stack: LiveStack, vd: httpx.Client, llm: FakeLLM, body: dict[str, Any]
    ) -> None:
        before = len(log_lines(stack))
        assert_envelope(vd.post("/v1/iterate", json=body), 422, "invalid_request")
        assert llm.chat_requests() == []
        assert len(log_lines(stack)) == before


class TestRosterMissing:
    """queryd runs, but no `workers` dataset was ever ingested."""

    PROPOSAL = {
        "demand": {"role": "Loader", "state": "CA", "count": 1},
        "workers": [{"id": "w-1"}],
    }

    def test_validate_fill_answers_503_naming_queryd_and_the_view(self, vd: httpx.Client) -> None:
        resp = vd.post("/v1/validate", json={"kind": "fill", "payload": self.PROPOSAL})
        body = assert_envelope(resp, 503, "roster_unavailable")
        assert "queryd" in body["error"]["message"]
        assert "validator.roster_dataset" in body["error"]["message"]
        assert body["error"]["details"] == {"daemon": "queryd", "view": "workers"}

    def test_a_fill_that_cannot_be_shaped_needs_no_roster(self, vd: httpx.Client) -> None:
        resp = vd.post("/v1/validate", json={"kind": "fill", "payload": {"workers": 3}})
        assert resp.status_code == 200 and resp.json()["valid"] is False

    def test_iterate_fill_ends_as_infra_error_naming_queryd(
        self, stack: LiveStack, vd: httpx.Client, llm: FakeLLM
    ) -> None:
        llm.script(orjson.dumps(self.PROPOSAL).decode())
        answer, _ = iterate(vd, kind="fill", prompt="Need 1 Loader in Stockton CA")
        assert (answer["status"], answer["iterations"]) == ("infra_error", 1)
        assert answer["final"] == self.PROPOSAL
        infra = answer["infra_error"]
        assert (infra["daemon"], infra["status"], infra["code"]) == ("queryd", 400, "invalid_input")
        assert session_of(stack, answer["session_id"])["status"] == "infra_error"


class TestSessionsView:
    def test_queryd_reads_the_session_log_as_the_sessions_view(
        self, stack: LiveStack, vd: httpx.Client, llm: FakeLLM
    ) -> None:
        llm.script(orjson.dumps(GOOD_SMS).decode())
        answer, _ = iterate(vd)
        sql = "SELECT session_id, status, iterations FROM sessions WHERE session_id = ?"

        def row() -> list[Any]:
            with stack.client("queryd") as queryd:
                resp = queryd.post("/v1/query", json={"sql": sql, "params": [answer["session_id"]]})
            rows: list[Any] = resp.json().get("rows", []) if resp.status_code == 200 else []
            return rows

        assert eventually(row) == [[answer["session_id"], "accepted", 1]]


class TestChatdDown:
    """Runs last: it kills chatd."""

    def test_chatd_unreachable_is_an_infra_error_and_still_logged(
        self, stack: LiveStack, vd: httpx.Client, llm: FakeLLM
    ) -> None:
        stack.kill_9("chatd")
        answer, _ = iterate(vd)
        assert (answer["status"], answer["iterations"], answer["final"]) == (
            "infra_error",
            0,
            None,
        )
        infra = answer["infra_error"]
        assert infra["daemon"] == "chatd" and infra["status"] is None
        assert infra["code"] == "upstream_unavailable" and "chatd" in infra["message"]
        line = session_of(stack, answer["session_id"])
        assert (line["status"], line["iterations"], line["model"]) == ("infra_error", 0, "")
        assert llm.chat_requests() == []
