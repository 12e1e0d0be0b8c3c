"""`POST /v1/chat` (SPEC §6) against fake providers: each adapter's wire shape, the options,
malformed requests, provider errors, retries, timeouts, the cold-start allowance, the 503s and
keys that never leak."""

from __future__ import annotations

import httpx
import pytest

from lakehouse_common.contracts.chat import ChatClient, ChatMessage, ChatRequest, NoProvider
from lakehouse_common.http import HttpClient
from tests.support.chat import (
    COLD_START_TIMEOUT_S,
    KEY_OF,
    KEYS,
    PROVIDERS,
    TIMEOUT_S,
    UNSET_KEY_ENV,
    user,
)
from tests.support.envelope import assert_envelope
from tests.support.llm import FakeLLM, Reply
from tests.support.metrics import metric
from tests.support.stack import LiveStack


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    """The `error` object of an enveloped answer."""
    error: dict[str, object] = assert_envelope(response, status, code)["error"]
    return error


class TestProviders:
    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_each_provider_answers_in_the_native_shape(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM], provider: str
    ) -> None:
        fakes[provider].script(Reply.text("the answer", prompt_tokens=7, completion_tokens=2))
        response = chatd.post(
            "/v1/chat", json={"model": f"{provider}/m1", "messages": user("the question")}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["content"] == "the answer"
        assert (body["provider"], body["model"]) == (provider, "m1")
        assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
        assert body["latency_ms"] > 0
        [sent] = fakes[provider].chat_requests()
        assert sent.json["model"] == "m1"
        assert sent.messages == [{"role": "user", "content": "the question"}]

    @pytest.mark.parametrize("provider", sorted(KEY_OF))
    def test_the_key_goes_in_the_providers_header(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM], provider: str
    ) -> None:
        response = chatd.post("/v1/chat", json={"model": f"{provider}/m", "messages": user("x")})
        assert response.status_code == 200, response.text
        [sent] = fakes[provider].chat_requests()
        key = KEYS[KEY_OF[provider]]
        if provider == "anthropic":
            assert sent.headers["x-api-key"] == key
            assert sent.headers["anthropic-version"] == "2023-06-01"
            assert "authorization" not in sent.headers
        else:
            assert sent.headers["authorization"] == f"Bearer {key}"

    def test_ollama_is_asked_for_one_whole_answer(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        chatd.post("/v1/chat", json={"model": "ollama/m", "messages": user("x")})
        [sent] = fakes["ollama"].chat_requests()
        assert sent.path == "/api/chat"
        assert sent.json["stream"] is False
        assert "authorization" not in sent.headers

    def test_anthropic_gets_system_messages_in_its_own_field(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        messages = [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"},
        ]
        response = chatd.post(
            "/v1/chat", json={"model": "anthropic/claude-x", "messages": messages}
        )
        assert response.status_code == 200, response.text
        [sent] = fakes["anthropic"].chat_requests()
        assert sent.path == "/v1/messages"
        assert sent.json["system"] == "be brief"
        assert sent.messages == messages[1:]
        assert sent.json["max_tokens"] == 1024  # chat.default_max_tokens: the API demands one


class TestRouting:
    def test_no_model_uses_the_default_model(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        body = chatd.post("/v1/chat", json={"messages": user("x")}).json()
        assert (body["provider"], body["model"]) == ("ollama", "fake-model")
        assert fakes["ollama"].chat_requests()[0].json["model"] == "fake-model"

    def test_a_plain_name_goes_to_the_default_provider(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        body = chatd.post("/v1/chat", json={"model": "qwen2.5:7b", "messages": user("x")}).json()
        assert (body["provider"], body["model"]) == ("ollama", "qwen2.5:7b")

    def test_a_slash_in_a_model_after_the_provider_is_kept(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        model = "openrouter/meta-llama/llama-3-8b-instruct"
        body = chatd.post("/v1/chat", json={"model": model, "messages": user("x")}).json()
        assert (body["provider"], body["model"]) == ("openrouter", "meta-llama/llama-3-8b-instruct")
        assert fakes["openrouter"].chat_requests()[0].json["model"] == body["model"]


class TestOptions:
    def test_json_asks_openai_for_a_json_object(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        chatd.post("/v1/chat", json={"model": "openai/m", "messages": user("x"), "json": True})
        assert fakes["openai"].chat_requests()[0].json["response_format"] == {"type": "json_object"}

    def test_json_asks_ollama_for_json_format(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        chatd.post("/v1/chat", json={"model": "ollama/m", "messages": user("x"), "json": True})
        assert fakes["ollama"].chat_requests()[0].json["format"] == "json"

    def test_without_json_no_format_is_asked(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        chatd.post("/v1/chat", json={"model": "openai/m", "messages": user("x")})
        chatd.post("/v1/chat", json={"model": "ollama/m", "messages": user("x")})
        assert "response_format" not in fakes["openai"].chat_requests()[0].json
        assert "format" not in fakes["ollama"].chat_requests()[0].json

    def test_temperature_and_max_tokens_reach_each_api(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        options = {"temperature": 0.2, "max_tokens": 64}
        for provider in ("ollama", "openai", "openrouter", "anthropic"):
            response = chatd.post(
                "/v1/chat", json={"model": f"{provider}/m", "messages": user("x"), **options}
            )
            assert response.status_code == 200, response.text
        assert fakes["ollama"].chat_requests()[0].json["options"] == {
            "temperature": 0.2,
            "num_predict": 64,
        }
        openai = fakes["openai"].chat_requests()[0].json
        assert (openai["temperature"], openai["max_completion_tokens"]) == (0.2, 64)
        router = fakes["openrouter"].chat_requests()[0].json
        assert (router["temperature"], router["max_tokens"]) == (0.2, 64)
        claude = fakes["anthropic"].chat_requests()[0].json
        assert (claude["temperature"], claude["max_tokens"]) == (0.2, 64)


class TestMalformedRequests:
    @pytest.mark.parametrize(
        "body",
        [
            {"messages": []},
            {},
            {"messages": [{"role": "tool", "content": "x"}]},
            {"messages": [{"role": "user"}]},
            {"messages": [{"role": "user", "content": 5}]},
            {"messages": user("x"), "temperature": 3},
            {"messages": user("x"), "max_tokens": 0},
            {"messages": user("x"), "model": ""},
            {"messages": user("x"), "stream": True},
            {"messages": "hello"},
        ],
        ids=[
            "empty-messages",
            "no-messages",
            "unknown-role",
            "no-content",
            "content-not-string",
            "temperature-out-of-range",
            "max-tokens-zero",
            "empty-model",
            "unknown-field",
            "messages-not-a-list",
        ],
    )
    def test_is_422_and_never_reaches_a_provider(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM], body: dict[str, object]
    ) -> None:
        _error(chatd.post("/v1/chat", json=body), 422, "invalid_request")
        assert fakes["ollama"].chat_requests() == []

    def test_a_body_that_is_not_json_is_422(self, chatd: httpx.Client) -> None:
        response = chatd.post(
            "/v1/chat", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        _error(response, 422, "invalid_request")


class TestProviderErrors:
    def test_an_error_answer_is_502_naming_the_provider_and_not_retried(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openai"].script(Reply.error(400, "model 'nope' does not exist"))
        response = chatd.post("/v1/chat", json={"model": "openai/nope", "messages": user("x")})
        error = _error(response, 502, "upstream_error")
        assert "provider openai answered HTTP 400" in str(error["message"])
        assert "model 'nope' does not exist" in str(error["message"])
        assert len(fakes["openai"].chat_requests()) == 1

    @pytest.mark.parametrize(
        ("provider", "reply"),
        [
            ("openai", Reply.malformed(b"<html>gateway</html>")),
            ("openai", Reply.malformed(b'{"choices": []}')),
            ("anthropic", Reply.malformed(b'{"content": "not a list"}')),
            ("ollama", Reply.malformed(b'{"message": {}}')),
            ("openrouter", Reply.malformed(b"[1, 2]")),
        ],
        ids=[
            "openai-not-json",
            "openai-no-choices",
            "anthropic-bad-content",
            "ollama-no-content",
            "openrouter-array",
        ],
    )
    def test_a_malformed_body_is_502_and_not_retried(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM], provider: str, reply: Reply
    ) -> None:
        fakes[provider].script(reply)
        response = chatd.post("/v1/chat", json={"model": f"{provider}/m", "messages": user("x")})
        error = _error(response, 502, "upstream_error")
        assert f"provider {provider} answered a malformed body" in str(error["message"])
        assert len(fakes[provider].chat_requests()) == 1

    def test_5xx_is_retried_then_succeeds(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["anthropic"].script(Reply.error(529), Reply.error(500), Reply.text("third time"))
        response = chatd.post("/v1/chat", json={"model": "anthropic/m", "messages": user("x")})
        assert response.status_code == 200, response.text
        assert response.json()["content"] == "third time"
        assert len(fakes["anthropic"].chat_requests()) == 3

    def test_429_is_retried_after_its_retry_after(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openai"].script(Reply.error(429, retry_after=0.05), Reply.text("ok now"))
        response = chatd.post("/v1/chat", json={"model": "openai/m", "messages": user("x")})
        assert response.status_code == 200, response.text
        assert len(fakes["openai"].chat_requests()) == 2

    def test_a_dropped_connection_is_retried(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openai_compatible"].script(Reply.disconnect(), Reply.text("reconnected"))
        response = chatd.post(
            "/v1/chat", json={"model": "openai_compatible/m", "messages": user("x")}
        )
        assert response.status_code == 200, response.text
        assert response.json()["content"] == "reconnected"

    def test_5xx_after_every_retry_is_502(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["ollama"].script(*[Reply.error(500, "boom")] * 3)
        response = chatd.post("/v1/chat", json={"model": "ollama/m", "messages": user("x")})
        error = _error(response, 502, "upstream_error")
        assert "provider ollama answered HTTP 500: boom" in str(error["message"])
        assert isinstance(error["details"], dict)
        assert len(error["details"]["attempts"]) == 3
        assert len(fakes["ollama"].chat_requests()) == 3

    def test_429_after_every_retry_is_503_with_retry_after(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openrouter"].script(*[Reply.error(429, retry_after=0.05)] * 3)
        response = chatd.post("/v1/chat", json={"model": "openrouter/m", "messages": user("x")})
        error = _error(response, 503, "provider_rate_limited")
        assert "provider openrouter answered HTTP 429" in str(error["message"])
        assert response.headers["retry-after"] == "1"
        assert len(fakes["openrouter"].chat_requests()) == 3

    def test_a_retry_after_beyond_the_cap_is_not_waited_for(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openai"].script(Reply.error(429, retry_after=60))
        response = chatd.post("/v1/chat", json={"model": "openai/m", "messages": user("x")})
        _error(response, 503, "provider_rate_limited")
        assert response.headers["retry-after"] == "60"
        assert len(fakes["openai"].chat_requests()) == 1


class TestTimeouts:
    def test_a_slow_provider_is_504_once_the_model_is_warm(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        model = {"model": "openai_compatible/warm-model", "messages": user("x")}
        assert chatd.post("/v1/chat", json=model).status_code == 200  # the cold call
        fakes["openai_compatible"].script(Reply.slow(TIMEOUT_S * 3))
        error = _error(chatd.post("/v1/chat", json=model), 504, "upstream_timeout")
        assert f"provider openai_compatible did not answer within {TIMEOUT_S:g}s" in str(
            error["message"]
        )
        # A timeout is not retried: the same wait would come again.
        assert len(fakes["openai_compatible"].chat_requests()) == 2

    def test_the_first_call_of_a_model_gets_the_cold_start_timeout(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        # Longer than timeout_s, well within cold_start_timeout_s.
        delay = TIMEOUT_S * 2.5
        assert delay < COLD_START_TIMEOUT_S / 2
        fakes["ollama"].script(Reply.slow(delay, "loaded"), Reply.slow(delay, "too slow now"))
        model = {"model": "ollama/cold-model", "messages": user("x")}
        response = chatd.post("/v1/chat", json=model)
        assert response.status_code == 200, response.text
        assert response.json()["content"] == "loaded"
        _error(chatd.post("/v1/chat", json=model), 504, "upstream_timeout")


class TestNoProvider:
    def test_an_unreachable_provider_is_503_saying_what_to_set(self, chatd: httpx.Client) -> None:
        response = chatd.post("/v1/chat", json={"model": "vllm/m", "messages": user("x")})
        error = _error(response, 503, "no_provider")
        message = str(error["message"])
        assert "provider vllm is unreachable" in message
        assert "chat.providers.vllm.base_url" in message
        assert "LAKEHOUSE_CHAT__PROVIDERS__VLLM__BASE_URL" in message
        assert "chat.default_model" in message

    def test_a_provider_without_its_key_is_503_naming_the_variable(
        self, chatd: httpx.Client
    ) -> None:
        response = chatd.post("/v1/chat", json={"model": "groq/llama3", "messages": user("x")})
        error = _error(response, 503, "no_provider")
        assert f"export {UNSET_KEY_ENV}" in str(error["message"])


class TestKeysNeverLeak:
    def test_a_key_echoed_by_the_provider_is_redacted_everywhere(
        self, stack: LiveStack, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        key = KEYS[KEY_OF["openai"]]
        fakes["openai"].script(Reply.error(401, f"Incorrect API key provided: {key}"))
        response = chatd.post("/v1/chat", json={"model": "openai/m", "messages": user("x")})
        error = _error(response, 502, "upstream_error")
        assert "Incorrect API key provided: ***" in str(error["message"])
        providers = chatd.get("/v1/chat/providers")
        texts = [response.text, providers.text, chatd.get("/metrics").text, stack.log("chatd")]
        for name in KEYS:
            for text in texts:
                assert KEYS[name] not in text
        assert "Incorrect API key provided: ***" in providers.text  # the last error, redacted


class TestMetrics:
    def test_calls_and_tokens_are_counted_by_provider(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        before = metric(chatd, "lakehouse_chat_calls_total", provider="anthropic", status="ok")
        tokens = metric(chatd, "lakehouse_chat_tokens_total", provider="anthropic", kind="prompt")
        fakes["anthropic"].script(Reply.text("x", prompt_tokens=11))
        chatd.post("/v1/chat", json={"model": "anthropic/m", "messages": user("x")})
        after = metric(chatd, "lakehouse_chat_calls_total", provider="anthropic", status="ok")
        assert after == before + 1
        assert (
            metric(chatd, "lakehouse_chat_tokens_total", provider="anthropic", kind="prompt")
            == tokens + 11
        )


class TestChatClient:
    async def test_the_typed_client_chats_and_rebuilds_typed_errors(
        self, stack: LiveStack, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["ollama"].script(Reply.text('{"ok": true}'))
        async with HttpClient(stack.settings.client) as http:
            client = ChatClient(http.client_for("chatd", stack.url("chatd")), timeout_s=30)
            answer = await client.chat(
                ChatRequest(
                    model="ollama/m", messages=[ChatMessage(role="user", content="x")], json=True
                )
            )
            assert (answer.content, answer.provider, answer.model) == (
                '{"ok": true}',
                "ollama",
                "m",
            )
            assert fakes["ollama"].chat_requests()[0].json["format"] == "json"
            with pytest.raises(NoProvider) as caught:
                await client.chat(
                    ChatRequest(model="groq/m", messages=[ChatMessage(role="user", content="x")])
                )
            assert caught.value.trace_id
            providers = await client.providers()
            assert {p.name for p in providers.providers} >= set(PROVIDERS)
