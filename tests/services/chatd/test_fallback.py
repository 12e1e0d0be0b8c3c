"""The fallback chain (`chat.fallback`, SPEC §6): a chatd of its own whose default model is
`ollama/primary` with fallbacks `openai_compatible/backup` then `vllm/last` (nobody listens),
and a `dead` provider that cannot be reached. No anthropic table at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lakehouse_common.ops.stack import free_port
from tests.support.chat import RETRY, chat_stack, user
from tests.support.llm import FakeLLM, Reply
from tests.support.metrics import metric
from tests.support.stack import LiveStack

CHAIN = ["ollama/primary", "openai_compatible/backup", "vllm/last"]


@pytest.fixture(scope="module")
def primary() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def backup() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(primary: FakeLLM, backup: FakeLLM) -> None:
    primary.reset()
    backup.reset()


@pytest.fixture(scope="module")
def chatd(
    primary: FakeLLM, backup: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    nowhere = f"http://127.0.0.1:{free_port()}"
    providers: dict[str, dict[str, Any]] = {
        "ollama": {"base_url": primary.url, "timeout_s": 5.0},
        "openai_compatible": {"base_url": backup.url, "timeout_s": 5.0},
        "vllm": {"kind": "openai_compatible", "base_url": nowhere},
        "dead": {"kind": "ollama", "base_url": nowhere},
    }
    live: LiveStack = chat_stack(
        tmp_path_factory.mktemp("chatd-fallback"),
        {"default_model": CHAIN[0], "fallback": CHAIN[1:], **RETRY},
        providers,
    )
    with live.running("chatd"), live.client("chatd") as client:
        yield client


def _chat(chatd: httpx.Client, model: str | None = None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"messages": user("x"), **extra}
    if model is not None:
        body["model"] = model
    return chatd.post("/v1/chat", json=body)


class TestFallbackChain:
    def test_the_first_model_answers_when_it_can(
        self, chatd: httpx.Client, primary: FakeLLM, backup: FakeLLM
    ) -> None:
        body = _chat(chatd).json()
        assert (body["provider"], body["model"]) == ("ollama", "primary")
        assert backup.chat_requests() == []

    def test_a_failing_model_falls_back_after_its_retries(
        self, chatd: httpx.Client, primary: FakeLLM, backup: FakeLLM
    ) -> None:
        before = metric(chatd, "lakehouse_chat_fallbacks_total", provider="openai_compatible")
        primary.script(*[Reply.error(500)] * 3)
        backup.script("from the backup")
        response = _chat(chatd)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["provider"], body["model"], body["content"]) == (
            "openai_compatible",
            "backup",
            "from the backup",
        )
        assert len(primary.chat_requests()) == 3
        after = metric(chatd, "lakehouse_chat_fallbacks_total", provider="openai_compatible")
        assert after == before + 1

    def test_an_unreachable_model_falls_back(self, chatd: httpx.Client, backup: FakeLLM) -> None:
        response = _chat(chatd, "dead/model")
        assert response.status_code == 200, response.text
        assert response.json()["provider"] == "openai_compatible"

    def test_a_provider_without_a_table_falls_back(
        self, chatd: httpx.Client, backup: FakeLLM
    ) -> None:
        response = _chat(chatd, "anthropic/claude")
        assert response.status_code == 200, response.text
        assert response.json()["provider"] == "openai_compatible"

    def test_a_streamed_answer_falls_back_too(
        self, chatd: httpx.Client, primary: FakeLLM, backup: FakeLLM
    ) -> None:
        primary.script(Reply.malformed())
        backup.script("streamed backup")
        response = chatd.post("/v1/chat/completions", json={"messages": user("x"), "stream": True})
        assert response.status_code == 200
        assert '"model":"openai_compatible/backup"' in response.text
        assert "streamed" in response.text and response.text.endswith("data: [DONE]\n\n")

    def test_when_every_model_fails_the_last_real_failure_answers(
        self, chatd: httpx.Client, primary: FakeLLM, backup: FakeLLM
    ) -> None:
        primary.script(*[Reply.error(503)] * 3)
        backup.script(Reply.error(400, "backup refuses"))
        response = _chat(chatd)
        assert response.status_code == 502, response.text
        error = response.json()["error"]
        assert error["code"] == "upstream_error"
        assert "backup refuses" in error["message"]
        assert "tried ollama/primary, openai_compatible/backup, vllm/last" in error["message"]
        assert error["details"]["models"] == CHAIN
        providers = [a["provider"] for a in error["details"]["attempts"]]
        assert providers == ["ollama"] * 3 + ["openai_compatible"] + ["vllm"] * 3

    def test_when_nothing_is_configured_or_reachable_it_is_503_saying_what_to_set(
        self, chatd: httpx.Client, backup: FakeLLM
    ) -> None:
        port = backup.port
        backup.stop()
        try:
            response = _chat(chatd, "anthropic/claude")
        finally:
            backup.port = port
            backup.start()
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "no_provider"
        message = error["message"]
        assert "add a [chat.providers.anthropic] table" in message
        assert "LAKEHOUSE_CHAT__PROVIDERS__ANTHROPIC__BASE_URL" in message
        assert "LAKEHOUSE_CHAT__PROVIDERS__OPENAI_COMPATIBLE__BASE_URL" in message
        assert "LAKEHOUSE_CHAT__PROVIDERS__VLLM__BASE_URL" in message
