"""The OpenAI wire format of chatd (SPEC §6): request conversion and server-sent events.

`POST /v1/chat/completions` takes an OpenAI request, turns it into a `ChatRequest` (so both
endpoints share one dispatcher) and answers a `chat.completion` object, or with `stream: true`
the `chat.completion.chunk` events the official clients read: a role chunk, one chunk per text
piece, a chunk with `finish_reason`, a usage chunk when `stream_options.include_usage`, then
`data: [DONE]`. A failure after the stream started is sent as a `data: {"error": ...}` event
(the official Python client raises it as an `APIError`), since the status line is gone.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from lakehouse_common.contracts.chat import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Completion,
    CompletionChoice,
    CompletionChoiceMessage,
    CompletionRequest,
    Role,
)
from lakehouse_common.errors import LakehouseError, UnprocessableEntity
from lakehouse_common.tracing import current_trace_id, mint_trace_id
from services.chatd.service import OpenedStream

# OpenAI's `developer` role is its newer name for `system`.
_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


def _text(content: str | list[dict[str, Any]] | None, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise UnprocessableEntity(
                f"messages.{index}.content: only text parts are supported, "
                f"got {str(part.get('type'))[:40]!r}",
                details={"loc": ["body", "messages", index, "content"]},
            )
        parts.append(part["text"])
    return "".join(parts)


def to_chat_request(body: CompletionRequest) -> ChatRequest:
    """The `ChatRequest` an OpenAI request means; 422 for what chatd cannot do (tool messages,
    images, `n > 1` is refused by the model itself)."""
    messages = []
    for index, message in enumerate(body.messages):
        role = _ROLES.get(message.role)
        if role is None:
            raise UnprocessableEntity(
                f"messages.{index}.role: {message.role[:40]!r} is not supported "
                "(system, developer, user, assistant)",
                details={"loc": ["body", "messages", index, "role"]},
            )
        messages.append(ChatMessage(role=role, content=_text(message.content, index)))
    response_format = (body.response_format or {}).get("type")
    return ChatRequest(
        model=body.model or None,
        messages=messages,
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        json=response_format in ("json_object", "json_schema"),
    )


def completion_id() -> str:
    return f"chatcmpl-{current_trace_id.get() or mint_trace_id()}"


def to_completion(answer: ChatResponse) -> Completion:
    return Completion(
        id=completion_id(),
        created=int(time.time()),
        model=f"{answer.provider}/{answer.model}",
        choices=[CompletionChoice(message=CompletionChoiceMessage(content=answer.content))],
        usage=answer.usage,
    )


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def sse_events(opened: OpenedStream, include_usage: bool) -> AsyncIterator[bytes]:
    """The OpenAI chunk stream of an opened answer."""
    ident = completion_id()
    created = int(time.time())
    model = opened.target.label

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        return _event(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    yield chunk({"role": "assistant", "content": ""}, None)
    try:
        async for piece in opened.pieces():
            yield chunk({"content": piece}, None)
    except LakehouseError as exc:
        yield _event(
            {
                "error": {
                    "message": exc.message,
                    "type": exc.code,
                    "code": exc.code,
                    "details": exc.details,
                },
                "trace_id": current_trace_id.get(),
            }
        )
        return
    yield chunk({}, "stop")
    if include_usage:
        yield _event(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": opened.usage.model_dump(),
            }
        )
    yield b"data: [DONE]\n\n"
