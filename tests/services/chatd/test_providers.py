"""`GET /v1/chat/providers` and the `chat_runs` reports to observerd (SPEC §6)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import orjson

from tests.support.chat import KEY_OF, KEYS, PROVIDERS, UNSET_KEY_ENV, user
from tests.support.llm import FakeLLM, Reply
from tests.support.stack import LiveStack


def _by_name(chatd: httpx.Client) -> dict[str, dict[str, Any]]:
    response = chatd.get("/v1/chat/providers")
    assert response.status_code == 200, response.text
    return {p["name"]: p for p in response.json()["providers"]}


class TestProvidersView:
    def test_configured_providers_are_probed_and_reachable(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        view = _by_name(chatd)
        for name in PROVIDERS:
            entry = view[name]
            assert entry["configured"] is True
            assert entry["reachable"] is True
            assert entry["base_url"] == fakes[name].url
            assert entry["models"] == ["fake-model", "fake-json"]
        # The probes used each API's own listing, with the key.
        [tags] = [r for r in fakes["ollama"].requests if r.method == "GET"]
        assert tags.path == "/api/tags"
        [listing] = [r for r in fakes["anthropic"].requests if r.method == "GET"]
        assert listing.path == "/v1/models"
        assert listing.headers["x-api-key"] == KEYS[KEY_OF["anthropic"]]

    def test_keys_are_reported_present_by_variable_name_only(self, chatd: httpx.Client) -> None:
        response = chatd.get("/v1/chat/providers")
        view = {p["name"]: p for p in response.json()["providers"]}
        for name, env in KEY_OF.items():
            assert view[name]["api_key_env"] == env
            assert view[name]["key_present"] is True
        assert view["ollama"]["key_present"] is False
        for key in KEYS.values():
            assert key not in response.text

    def test_a_provider_without_its_key_is_not_configured_and_not_probed(
        self, chatd: httpx.Client
    ) -> None:
        groq = _by_name(chatd)["groq"]
        assert (groq["configured"], groq["key_present"], groq["reachable"]) == (False, False, None)
        assert f"export {UNSET_KEY_ENV}" in groq["last_error"]

    def test_an_unreachable_provider_is_reported_with_its_error(self, chatd: httpx.Client) -> None:
        vllm = _by_name(chatd)["vllm"]
        assert (vllm["configured"], vllm["reachable"]) == (True, False)
        assert vllm["kind"] == "openai_compatible"
        assert "unreachable" in vllm["last_error"]

    def test_a_probe_answered_with_an_error_is_reachable_with_the_error(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openrouter"].models_status = 403
        entry = _by_name(chatd)["openrouter"]
        assert entry["reachable"] is True
        assert entry["last_error"].startswith("probe: HTTP 403")

    def test_the_last_call_error_and_success_are_kept(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openai_compatible"].script(Reply.error(400, "context too long"))
        chatd.post("/v1/chat", json={"model": "openai_compatible/m", "messages": user("x")})
        entry = _by_name(chatd)["openai_compatible"]
        assert "context too long" in entry["last_error"]
        assert entry["last_error_at"]
        chatd.post("/v1/chat", json={"model": "openai_compatible/m", "messages": user("x")})
        assert _by_name(chatd)["openai_compatible"]["last_ok_at"]

    def test_the_view_names_the_default_model_and_fallback(self, chatd: httpx.Client) -> None:
        body = chatd.get("/v1/chat/providers").json()
        assert (body["default_model"], body["fallback"]) == ("ollama/fake-model", [])


def _chat_runs(stack: LiveStack, trace_id: str) -> list[dict[str, Any]]:
    """The `chat_runs` records of one trace, waiting for the reporter to deliver them."""
    with stack.client("observerd") as observerd:
        deadline = time.monotonic() + 10
        while True:
            page = observerd.get("/v1/observations/chat_runs", params={"limit": 1000})
            records = page.json().get("records", []) if page.status_code == 200 else []
            found = [r for r in records if r["trace_id"] == trace_id]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


class TestChatRuns:
    def test_every_call_is_reported_with_tokens_latency_and_prompt_hash(
        self, stack: LiveStack, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openai"].script(Reply.text("ok", prompt_tokens=9, completion_tokens=1))
        messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "what?"}]
        response = chatd.post("/v1/chat", json={"model": "openai/gpt-x", "messages": messages})
        trace_id = response.headers["x-lakehouse-trace-id"]
        [record] = _chat_runs(stack, trace_id)
        assert record["daemon"] == "chatd"
        event = record["event"]
        expected_hash = hashlib.sha256(orjson.dumps(messages)).hexdigest()
        assert event["prompt_sha256"] == expected_hash
        assert (event["provider"], event["model"], event["status"]) == ("openai", "gpt-x", "ok")
        assert (event["prompt_tokens"], event["completion_tokens"], event["total_tokens"]) == (
            9,
            1,
            10,
        )
        assert event["latency_ms"] == response.json()["latency_ms"]
        assert (event["endpoint"], event["stream"], event["fallback"]) == ("chat", False, False)
        assert "what?" not in orjson.dumps(record).decode()  # the prompt itself is not stored

    def test_a_failed_call_is_reported_with_its_error_code(
        self, stack: LiveStack, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["ollama"].script(Reply.malformed())
        response = chatd.post("/v1/chat", json={"model": "ollama/m", "messages": user("x")})
        assert response.status_code == 502
        [record] = _chat_runs(stack, response.headers["x-lakehouse-trace-id"])
        assert record["event"]["status"] == "upstream_error"
        assert "malformed" in record["event"]["error"]

    def test_a_streamed_call_is_reported_when_it_ends(
        self, stack: LiveStack, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["anthropic"].script(Reply.text("a b c", completion_tokens=3))
        body = {"model": "anthropic/m", "messages": user("x"), "stream": True}
        response = chatd.post("/v1/chat/completions", json=body)
        assert response.status_code == 200
        [record] = _chat_runs(stack, response.headers["x-lakehouse-trace-id"])
        event = record["event"]
        assert (event["endpoint"], event["stream"], event["status"]) == ("completions", True, "ok")
        assert event["completion_tokens"] == 3
