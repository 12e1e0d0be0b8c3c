"""The OpenAI surface of chatd (SPEC §6): `POST /v1/chat/completions` (whole and streamed),
`GET /v1/models`, and the official `openai` Python client against chatd and the gateway."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.support.chat import user
from tests.support.envelope import assert_envelope
from tests.support.llm import FakeLLM, Reply
from tests.support.stack import LiveStack

COMPLETIONS = "/v1/chat/completions"


def sse(response: httpx.Response) -> list[Any]:
    """The `data:` payloads of an SSE answer: JSON objects, and the final `"[DONE]"`."""
    assert response.headers["content-type"].startswith("text/event-stream")
    out: list[Any] = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            out.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return out


def streamed_text(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content", "")
        for e in events
        if isinstance(e, dict) and e.get("choices")
    )


@pytest.fixture(scope="module", params=["chatd", "gateway"])
def client(request: pytest.FixtureRequest, stack: LiveStack) -> openai.OpenAI:
    """The official client, unchanged but for its base URL: chatd itself, then the gateway."""
    return openai.OpenAI(
        base_url=f"{stack.url(request.param)}/v1", api_key="not-needed", max_retries=0
    )


class TestOfficialClient:
    def test_completes_a_chat(self, client: openai.OpenAI, fakes: dict[str, FakeLLM]) -> None:
        fakes["openai_compatible"].script(Reply.text("Hello from the fake", prompt_tokens=4))
        completion = client.chat.completions.create(
            model="openai_compatible/fake-model",
            messages=[
                {"role": "system", "content": "be kind"},
                {"role": "user", "content": "hello"},
            ],
            temperature=0.1,
        )
        assert completion.choices[0].message.content == "Hello from the fake"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.model == "openai_compatible/fake-model"
        assert completion.usage is not None and completion.usage.prompt_tokens == 4
        [sent] = fakes["openai_compatible"].chat_requests()
        assert sent.messages == [
            {"role": "system", "content": "be kind"},
            {"role": "user", "content": "hello"},
        ]

    def test_streams_a_chat(self, client: openai.OpenAI, fakes: dict[str, FakeLLM]) -> None:
        fakes["openai_compatible"].script(Reply.text("one two three four", completion_tokens=4))
        stream = client.chat.completions.create(
            model="openai_compatible/fake-model",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "one two three four"
        assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
        assert fakes["openai_compatible"].chat_requests()[0].json["stream"] is True

    def test_lists_models(self, client: openai.OpenAI) -> None:
        ids = [m.id for m in client.models.list()]
        assert ids[0] == "ollama/fake-model"  # the default model first
        assert "anthropic/fake-json" in ids

    def test_an_upstream_failure_is_an_api_error(
        self, client: openai.OpenAI, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openai"].script(Reply.error(400, "bad request upstream"))
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="openai/m", messages=[{"role": "user", "content": "x"}]
            )
        assert caught.value.status_code == 502
        assert "provider openai answered HTTP 400" in caught.value.message


class TestCompletions:
    def test_answers_a_chat_completion_object(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["anthropic"].script(Reply.text("bonjour", prompt_tokens=3, completion_tokens=1))
        response = chatd.post(COMPLETIONS, json={"model": "anthropic/c", "messages": user("hi")})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "chat.completion"
        assert body["id"].startswith("chatcmpl-")
        assert body["model"] == "anthropic/c"
        assert body["choices"] == [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "bonjour"},
                "finish_reason": "stop",
            }
        ]
        assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}

    def test_without_a_model_the_default_model_answers(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        response = chatd.post(COMPLETIONS, json={"messages": user("hi")})
        assert response.json()["model"] == "ollama/fake-model"

    def test_json_response_format_asks_the_provider_for_json(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        body = {"messages": user("x"), "response_format": {"type": "json_object"}}
        chatd.post(COMPLETIONS, json={**body, "model": "ollama/m"})
        chatd.post(COMPLETIONS, json={**body, "model": "openai/m"})
        assert fakes["ollama"].chat_requests()[0].json["format"] == "json"
        assert fakes["openai"].chat_requests()[0].json["response_format"] == {"type": "json_object"}

    def test_text_parts_and_the_developer_role_are_understood(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        messages = [
            {"role": "developer", "content": "rules"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a "}, {"type": "text", "text": "b"}],
            },
        ]
        response = chatd.post(COMPLETIONS, json={"model": "ollama/m", "messages": messages})
        assert response.status_code == 200, response.text
        assert fakes["ollama"].chat_requests()[0].messages == [
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "a b"},
        ]

    def test_options_chatd_does_not_forward_are_accepted(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        body = {"model": "ollama/m", "messages": user("x"), "top_p": 0.9, "user": "u1", "seed": 3}
        assert chatd.post(COMPLETIONS, json=body).status_code == 200

    @pytest.mark.parametrize(
        "body",
        [
            {"messages": []},
            {"model": "m"},
            {"messages": [{"role": "tool", "content": "x", "tool_call_id": "t"}]},
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            {"messages": user("x"), "n": 2},
            {"messages": user("x"), "temperature": -1},
        ],
        ids=["empty-messages", "no-messages", "tool-role", "image-part", "n-2", "bad-temperature"],
    )
    def test_what_chatd_cannot_do_is_422(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM], body: dict[str, Any]
    ) -> None:
        response = chatd.post(COMPLETIONS, json=body)
        assert_envelope(response, 422, "invalid_request")
        assert fakes["ollama"].chat_requests() == []


class TestStreaming:
    @pytest.mark.parametrize("provider", ["ollama", "anthropic", "openrouter"])
    def test_each_wire_shape_streams_as_openai_chunks(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM], provider: str
    ) -> None:
        fakes[provider].script(Reply.text("alpha beta gamma", prompt_tokens=5, completion_tokens=3))
        body = {
            "model": f"{provider}/m",
            "messages": user("x"),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        events = sse(chatd.post(COMPLETIONS, json=body))
        assert events[0]["choices"][0]["delta"]["role"] == "assistant"
        assert streamed_text(events) == "alpha beta gamma"
        assert [e["choices"][0]["finish_reason"] for e in events[-3:-2]] == ["stop"]
        assert events[-2]["usage"] == {
            "prompt_tokens": 5,
            "completion_tokens": 3,
            "total_tokens": 8,
        }
        assert events[-1] == "[DONE]"
        assert {e["model"] for e in events[:-1]} == {f"{provider}/m"}
        assert fakes[provider].chat_requests()[0].json["stream"] is True

    def test_without_include_usage_there_is_no_usage_chunk(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        body = {"model": "ollama/m", "messages": user("x"), "stream": True}
        events = sse(chatd.post(COMPLETIONS, json=body))
        assert events[-1] == "[DONE]"
        assert all("usage" not in e for e in events[:-1])

    def test_a_failure_before_the_first_token_keeps_its_status(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openai"].script(Reply.error(404, "no such model"))
        body = {"model": "openai/m", "messages": user("x"), "stream": True}
        response = chatd.post(COMPLETIONS, json=body)
        assert_envelope(response, 502, "upstream_error")

    def test_a_stream_failing_before_its_first_token_is_retried(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        fakes["openai"].script(Reply.error(503), Reply.text("second try"))
        body = {"model": "openai/m", "messages": user("x"), "stream": True}
        assert streamed_text(sse(chatd.post(COMPLETIONS, json=body))) == "second try"

    def test_a_failure_mid_stream_is_a_final_error_event(
        self, chatd: httpx.Client, fakes: dict[str, FakeLLM]
    ) -> None:
        chunk = {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
        raw = b"data: " + orjson.dumps(chunk) + b"\n\ndata: {broken\n\n"
        fakes["openai"].script(Reply.malformed(raw, content_type="text/event-stream"))
        body = {"model": "openai/m", "messages": user("x"), "stream": True}
        response = chatd.post(COMPLETIONS, json=body)
        assert response.status_code == 200
        events = sse(response)
        assert streamed_text(events) == "Hel"
        assert events[-1]["error"]["code"] == "upstream_error"
        assert "malformed" in events[-1]["error"]["message"]
        assert "[DONE]" not in events

    def test_the_official_client_raises_a_mid_stream_failure(
        self, stack: LiveStack, fakes: dict[str, FakeLLM]
    ) -> None:
        chunk = {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
        raw = b"data: " + orjson.dumps(chunk) + b"\n\ndata: {broken\n\n"
        fakes["openai"].script(Reply.malformed(raw, content_type="text/event-stream"))
        client = openai.OpenAI(base_url=f"{stack.url('gateway')}/v1", api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model="openai/m", messages=[{"role": "user", "content": "x"}], stream=True
        )
        with pytest.raises(openai.APIError):
            list(stream)


class TestModels:
    def test_lists_configured_models_then_provider_models(self, chatd: httpx.Client) -> None:
        body = chatd.get("/v1/models").json()
        assert body["object"] == "list"
        ids = [m["id"] for m in body["data"]]
        assert ids[0] == "ollama/fake-model"
        for provider in ("ollama", "openai", "anthropic", "openrouter", "openai_compatible"):
            assert f"{provider}/fake-json" in ids
        assert not [i for i in ids if i.startswith(("vllm/", "groq/"))]
        assert {m["object"] for m in body["data"]} == {"model"}

    def test_a_listed_model_can_be_fetched(self, chatd: httpx.Client) -> None:
        response = chatd.get("/v1/models/openai/fake-json")
        assert response.status_code == 200
        assert response.json()["id"] == "openai/fake-json"
        assert response.json()["owned_by"] == "openai"

    def test_an_unknown_model_is_404(self, chatd: httpx.Client) -> None:
        response = chatd.get("/v1/models/openai/nope")
        assert_envelope(response, 404, "not_found")
