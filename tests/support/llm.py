"""A scriptable fake LLM provider: a real HTTP server on loopback (issue 6).

It speaks the three wire shapes chatd's providers use, on one port:

- OpenAI (`openai`, `openrouter`, `openai_compatible`): `POST /v1/chat/completions` (with
  `stream: true` as server-sent events, `stream_options.include_usage` honoured) and
  `GET /v1/models`;
- Ollama: `POST /api/chat` (NDJSON stream unless `"stream": false`, as Ollama does) and
  `GET /api/tags`;
- Anthropic: `POST /v1/messages` (with `stream: true` as its typed SSE events).

Each chat request pops the next scripted `Reply` (else `default`) and renders it in the shape of
the endpoint it came in on: content, an HTTP error in that API's error shape, a delay before the
answer, a raw (malformed) body, or a dropped connection. Every request is recorded
(`requests`: method, path, headers, JSON body) so tests can check the key that was sent and the
messages. aiohttp runs on its own event loop in a daemon thread, so sync pytest fixtures and
async tests alike can use it, and daemons in other processes reach it over TCP::

    with FakeLLM() as llm:                       # or llm = FakeLLM(); llm.start(); llm.stop()
        llm.script(Reply.error(503), Reply.text('{"ok": true}'))
        ...  # point a provider's base_url at llm.url
        assert llm.requests[-1].headers["authorization"] == "Bearer sk-test"
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict


@dataclass
class Reply:
    """One scripted answer. Build with the class methods; fields combine (a slow error...)."""

    content: str = "ok"
    status: int = 200
    # Seconds to wait before the first byte (a slow provider, a cold start).
    delay_s: float = 0.0
    # Seconds between stream chunks.
    chunk_delay_s: float = 0.0
    # Sent as is instead of a well-formed answer (for streams too): a malformed provider.
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Error message in the API's error shape (when status >= 400 and no `body`).
    message: str | None = None
    # Close the connection without answering.
    drop: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None

    @classmethod
    def text(cls, content: str, **kw: Any) -> Reply:
        return cls(content=content, **kw)

    @classmethod
    def error(
        cls, status: int, message: str | None = None, *, retry_after: float | None = None
    ) -> Reply:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return cls(status=status, message=message, headers=headers)

    @classmethod
    def slow(cls, delay_s: float, content: str = "slow ok") -> Reply:
        return cls(content=content, delay_s=delay_s)

    @classmethod
    def malformed(cls, body: bytes = b"<html>not json", content_type: str | None = None) -> Reply:
        return cls(body=body, content_type=content_type or "application/json")

    @classmethod
    def disconnect(cls) -> Reply:
        return cls(drop=True)


@dataclass
class RecordedRequest:
    method: str
    path: str
    # Case-insensitive: `headers["authorization"]` and `headers["Authorization"]` both work.
    headers: CIMultiDict[str]
    json: Any
    raw: bytes
    at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        body = self.json if isinstance(self.json, dict) else {}
        messages = body.get("messages")
        return messages if isinstance(messages, list) else []


def _words(text: str) -> int:
    return max(1, len(text.split()))


def _prompt_tokens(body: Any) -> int:
    if not isinstance(body, dict):
        return 1
    total = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += _words(content)
        elif isinstance(content, list):  # Anthropic content blocks
            total += sum(
                _words(block.get("text", "")) for block in content if isinstance(block, dict)
            )
    system = body.get("system")
    if isinstance(system, str):
        total += _words(system)
    return max(total, 1)


def _chunks(content: str) -> list[str]:
    """Split on spaces, keeping them, so the concatenated chunks equal the content."""
    if not content:
        return [""]
    parts: list[str] = []
    current = ""
    for char in content:
        current += char
        if char == " ":
            parts.append(current)
            current = ""
    if current:
        parts.append(current)
    return parts


class FakeLLM:
    """The server. `url` is its base URL once started; `stop()` frees the port."""

    def __init__(
        self,
        *,
        port: int = 0,
        default: Reply | None = None,
        models: tuple[str, ...] = ("fake-model", "fake-json"),
        require_key: str | None = None,
    ) -> None:
        self.port = port
        self.default = default or Reply.text("fake reply")
        self.models = list(models)
        # When set, chat and model calls without this key (Bearer or `x-api-key`) answer 401.
        self.require_key = require_key
        # Status of `GET /v1/models` and `GET /api/tags` (reachability probes); 200 lists models.
        self.models_status = 200
        self.requests: list[RecordedRequest] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- scripting -------------------------------------------------------------------------

    def script(self, *replies: Reply | str) -> None:
        """Queue replies (a plain string is `Reply.text`); chat requests consume them in order."""
        with self._lock:
            for reply in replies:
                self._replies.append(Reply.text(reply) if isinstance(reply, str) else reply)

    def reset(self) -> None:
        """Forget queued replies and recorded requests; restore the default behaviour."""
        with self._lock:
            self._replies.clear()
            self.requests.clear()
        self.models_status = 200

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    def chat_requests(self) -> list[RecordedRequest]:
        """Recorded requests to a chat endpoint (not the model-list probes)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    def _next(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else self.default

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeLLM:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/api/chat", self._ollama_chat)
        app.router.add_get("/api/tags", self._ollama_tags)
        app.router.add_post("/v1/messages", self._anthropic_messages)
        # Cleanup must not wait for scripted delays still sleeping in handlers.
        self._runner = web.AppRunner(
            app, shutdown_timeout=0.5, handle_signals=False, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    # -- shared ----------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        record = RecordedRequest(
            request.method, request.path, CIMultiDict(request.headers), body, raw, time.time()
        )
        with self._lock:
            self.requests.append(record)
        return record

    def _key_ok(self, request: web.Request) -> bool:
        if self.require_key is None:
            return True
        bearer = request.headers.get("Authorization", "")
        return bearer == f"Bearer {self.require_key}" or (
            request.headers.get("x-api-key") == self.require_key
        )

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    async def _prelude(
        self, request: web.Request, reply: Reply, error_body: Mapping[str, Any]
    ) -> web.StreamResponse | None:
        """Delay, drop, raw body, or error: the answer when it is not a normal one."""
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.drop:
            return self._drop(request)
        if reply.body is not None:
            return web.Response(
                status=reply.status,
                body=reply.body,
                content_type=None,
                headers={"Content-Type": reply.content_type or "application/json", **reply.headers},
            )
        if reply.status >= 400:
            return web.Response(
                status=reply.status,
                body=orjson.dumps(error_body),
                content_type="application/json",
                headers=reply.headers,
            )
        return None

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
        await response.prepare(request)
        return response

    # -- OpenAI ----------------------------------------------------------------------------

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self._key_ok(request):
            return None
        return web.json_response(
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
            status=401,
        )

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        if self.models_status != 200:
            return web.json_response(
                {"error": {"message": "unavailable", "type": "server_error"}},
                status=self.models_status,
            )
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"}
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        reply = self._next()
        message = reply.message or f"fake error {reply.status}"
        kind = "rate_limit_error" if reply.status == 429 else "server_error"
        early = await self._prelude(
            request,
            reply,
            {"error": {"message": message, "type": kind, "param": None, "code": None}},
        )
        if early is not None:
            return early
        body = record.json if isinstance(record.json, dict) else {}
        model = reply.model or str(body.get("model", "fake-model"))
        prompt = reply.prompt_tokens or _prompt_tokens(body)
        completion = reply.completion_tokens or _words(reply.content)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        created = int(time.time())
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
                headers=reply.headers,
            )
        response = await self._sse(request)

        async def send(chunk: dict[str, Any]) -> None:
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        await send(chunk({"role": "assistant", "content": ""}, None))
        for piece in _chunks(reply.content):
            if reply.chunk_delay_s:
                await asyncio.sleep(reply.chunk_delay_s)
            await send(chunk({"content": piece}, None))
        await send(chunk({}, "stop"))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            await send(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # -- Ollama ----------------------------------------------------------------------------

    async def _ollama_tags(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if self.models_status != 200:
            return web.json_response({"error": "unavailable"}, status=self.models_status)
        return web.json_response(
            {"models": [{"name": m, "model": m, "size": 1} for m in self.models]}
        )

    async def _ollama_chat(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        if not self._key_ok(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        reply = self._next()
        early = await self._prelude(
            request, reply, {"error": reply.message or f"fake error {reply.status}"}
        )
        if early is not None:
            return early
        body = record.json if isinstance(record.json, dict) else {}
        model = reply.model or str(body.get("model", "fake-model"))
        prompt = reply.prompt_tokens or _prompt_tokens(body)
        completion = reply.completion_tokens or _words(reply.content)
        created_at = "2026-01-01T00:00:00.000000Z"
        final = {
            "model": model,
            "created_at": created_at,
            "done": True,
            "done_reason": "stop",
            "total_duration": 1000,
            "prompt_eval_count": prompt,
            "eval_count": completion,
        }
        if body.get("stream") is False:
            return web.json_response(
                {**final, "message": {"role": "assistant", "content": reply.content}},
                headers=reply.headers,
            )
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for piece in _chunks(reply.content):
            if reply.chunk_delay_s:
                await asyncio.sleep(reply.chunk_delay_s)
            line = {
                "model": model,
                "created_at": created_at,
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
            await response.write(orjson.dumps(line) + b"\n")
        await response.write(
            orjson.dumps({**final, "message": {"role": "assistant", "content": ""}}) + b"\n"
        )
        await response.write_eof()
        return response

    # -- Anthropic -------------------------------------------------------------------------

    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        if not self._key_ok(request):
            return web.json_response(
                {
                    "type": "error",
                    "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                },
                status=401,
            )
        reply = self._next()
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(reply.status, "api_error")
        early = await self._prelude(
            request,
            reply,
            {
                "type": "error",
                "error": {"type": kind, "message": reply.message or f"fake error {reply.status}"},
            },
        )
        if early is not None:
            return early
        body = record.json if isinstance(record.json, dict) else {}
        model = reply.model or str(body.get("model", "fake-model"))
        prompt = reply.prompt_tokens or _prompt_tokens(body)
        completion = reply.completion_tokens or _words(reply.content)
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply.content}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }
        if not body.get("stream"):
            return web.json_response(message, headers=reply.headers)
        response = await self._sse(request)

        async def event(name: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {name}\n".encode() + b"data: " + orjson.dumps(data))
            await response.write(b"\n\n")

        start = {**message, "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": prompt, "output_tokens": 1}
        await event("message_start", {"type": "message_start", "message": start})
        await event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        await event("ping", {"type": "ping"})
        for piece in _chunks(reply.content):
            if reply.chunk_delay_s:
                await asyncio.sleep(reply.chunk_delay_s)
            await event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
        await event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": completion},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response
