"""chatd's provider adapters (SPEC §6): three wire shapes behind one interface.

- `OllamaProvider`: `POST {base}/api/chat {model, messages, stream, options, format?}` →
  `{message: {content}, prompt_eval_count, eval_count}`; a stream is NDJSON lines. Probe:
  `GET {base}/api/tags`.
- `OpenAIProvider` (`openai`, `openrouter`, `openai_compatible`): `POST {base}/chat/completions`
  (`{base}/v1/chat/completions` when the base URL does not end in `/v1`) →
  `{choices: [{message: {content}}], usage}`; a stream is SSE `data:` chunks ending in
  `[DONE]`. `json` → `response_format: {"type": "json_object"}`. Probe: `GET .../models`.
- `AnthropicProvider`: `POST {base}/v1/messages` with `x-api-key` and `anthropic-version`;
  system messages go to the top-level `system` field, `max_tokens` is mandatory
  (`chat.default_max_tokens` when the request has none); usage is `input_tokens` /
  `output_tokens`; a stream is typed SSE events. The API has no JSON mode: `json` is ignored.

Every failure is a `ProviderFailure` saying why (unreachable, dropped connection, timeout, HTTP
error, 429, malformed body), whether a retry may help and what `Retry-After` said; the
dispatcher (`service.py`) retries, falls back and turns the last failure into the typed error
the caller sees. The key is read from the environment at call time and never logged: any
upstream text quoted in a failure has it replaced by `***`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from lakehouse_common.config import ChatProviderSettings
from lakehouse_common.contracts.chat import (
    ANTHROPIC,
    OLLAMA,
    OPENAI,
    OPENAI_COMPATIBLE,
    OPENROUTER,
    ChatMessage,
    ChatUsage,
)

ANTHROPIC_VERSION: Final = "2023-06-01"
# Kinds that cannot work without a key: they count as configured only when it is set.
KEY_REQUIRED: Final = frozenset({OPENAI, ANTHROPIC, OPENROUTER})
# Statuses worth a retry besides 5xx (408: the provider's own request timeout).
_RETRY_STATUSES: Final = frozenset({408, 429})
_SNIPPET: Final = 300

Reason = Literal["not_configured", "unreachable", "disconnected", "timeout", "http", "malformed"]


class ProviderFailure(Exception):
    """One provider call that did not give an answer, and why (never carries a key)."""

    def __init__(
        self,
        provider: str,
        reason: Reason,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.reason = reason
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

    @property
    def retryable(self) -> bool:
        """429, 5xx and connection failures; a timeout or a malformed body would recur."""
        if self.reason in ("unreachable", "disconnected"):
            return True
        return (
            self.reason == "http"
            and self.status is not None
            and (self.status >= 500 or self.status in _RETRY_STATUSES)
        )


@dataclass(frozen=True)
class ProviderCall:
    """What one provider is asked: the model as the provider names it, and the options."""

    model: str
    messages: list[ChatMessage]
    temperature: float | None = None
    max_tokens: int | None = None
    json_mode: bool = False


@dataclass(frozen=True)
class Completion:
    content: str
    model: str
    usage: ChatUsage


@dataclass(frozen=True)
class ProbeResult:
    reachable: bool
    error: str | None = None
    models: tuple[str, ...] = ()


def safe_url(url: str) -> str:
    """The URL without user info (a base URL may carry credentials)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None  # an HTTP date: rare from LLM APIs; fall back to our own backoff
    return value if value >= 0 else None


def _usage(prompt: Any, completion: Any) -> ChatUsage:
    p = prompt if isinstance(prompt, int) and prompt >= 0 else 0
    c = completion if isinstance(completion, int) and completion >= 0 else 0
    return ChatUsage(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)


class ChatStream:
    """An open streamed answer: iterate for text pieces; `usage` is known at the end.

    The HTTP response stays open until the iteration ends or `aclose()` is called.
    """

    def __init__(
        self,
        provider: Provider,
        model: str,
        response: aiohttp.ClientResponse,
        pieces: AsyncIterator[str | ChatUsage],
    ) -> None:
        self.provider = provider
        self.model = model
        self.usage = ChatUsage()
        self._response = response
        self._pieces = pieces
        self._done = False

    async def __aiter__(self) -> AsyncIterator[str]:
        completed = False
        try:
            async for item in self._pieces:
                if isinstance(item, ChatUsage):
                    self.usage = item
                elif item:
                    yield item
            completed = True
        except ProviderFailure:
            raise
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise self.provider.failure("timeout", "stopped sending mid-stream") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise self.provider.failure(
                "disconnected", f"stream broke off ({type(exc).__name__})"
            ) from None
        finally:
            self._done = True
            if completed:
                self._response.release()  # the connection goes back to the pool
            else:
                self._response.close()  # unread data left: the connection cannot be reused

    async def aclose(self) -> None:
        """Stop early (the client went away): drop the connection rather than read the rest."""
        if not self._done:
            self._done = True
            self._response.close()


class Provider:
    """One configured provider: build the request, parse the answer, probe reachability."""

    kind = ""

    def __init__(
        self,
        name: str,
        settings: ChatProviderSettings,
        session: aiohttp.ClientSession,
        *,
        default_max_tokens: int = 1024,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.session = session
        self.base_url = settings.base_url.rstrip("/")
        self.default_max_tokens = default_max_tokens
        self._environ = os.environ if environ is None else environ

    # -- configuration ---------------------------------------------------------------------

    def api_key(self) -> str:
        name = self.settings.api_key_env
        return self._environ.get(name, "") if name else ""

    @property
    def key_present(self) -> bool:
        return bool(self.api_key())

    @property
    def configured(self) -> bool:
        return bool(self.base_url) and (self.kind not in KEY_REQUIRED or self.key_present)

    def how_to_configure(self) -> str:
        """What an operator sets to make this provider usable (names, never values)."""
        env_name = self.name.upper()
        steps = []
        if not self.base_url:
            steps.append(
                f"set chat.providers.{self.name}.base_url "
                f"(LAKEHOUSE_CHAT__PROVIDERS__{env_name}__BASE_URL)"
            )
        if self.kind in KEY_REQUIRED and not self.key_present:
            if self.settings.api_key_env:
                steps.append(f"export {self.settings.api_key_env} with the API key")
            else:
                steps.append(
                    f"set chat.providers.{self.name}.api_key_env to the name of the variable "
                    f"holding the key (LAKEHOUSE_CHAT__PROVIDERS__{env_name}__API_KEY_ENV)"
                )
        return " and ".join(steps)

    # -- failures --------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        key = self.api_key()
        return text.replace(key, "***") if key else text

    def failure(
        self,
        reason: Reason,
        what: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> ProviderFailure:
        return ProviderFailure(
            self.name,
            reason,
            self.redact(f"provider {self.name} {what}"),
            status=status,
            retry_after=retry_after,
        )

    def _error_text(self, payload: bytes) -> str:
        """The provider's own error message, short, from whichever error shape it used."""
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            body = None
        message: Any = None
        if isinstance(body, dict):
            err = body.get("error")
            if isinstance(err, dict):
                message = err.get("message")
            elif isinstance(err, str):
                message = err
        if not isinstance(message, str):
            message = payload[:_SNIPPET].decode("utf-8", "replace")
        return self.redact(" ".join(message.split())[:_SNIPPET])

    # -- the wire --------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = self.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def chat_url(self) -> str:
        raise NotImplementedError

    def body(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, data: Any, call: ProviderCall) -> Completion:
        raise NotImplementedError

    def pieces(self, response: aiohttp.ClientResponse) -> AsyncIterator[str | ChatUsage]:
        raise NotImplementedError

    async def _open(
        self, call: ProviderCall, *, stream: bool, timeout_s: float
    ) -> aiohttp.ClientResponse:
        """Send the request; answer the open response of a 2xx, else raise the failure."""
        if not self.configured:
            raise self.failure("not_configured", f"is not configured: {self.how_to_configure()}")
        # A whole answer must come within the timeout; a stream may go on as long as it keeps
        # sending (the timeout bounds the silence between chunks).
        timeout = (
            aiohttp.ClientTimeout(total=None, sock_read=timeout_s)
            if stream
            else aiohttp.ClientTimeout(total=timeout_s)
        )
        try:
            response = await self.session.post(
                self.chat_url(),
                data=orjson.dumps(self.body(call, stream)),
                headers=self.headers(),
                timeout=timeout,
            )
        except aiohttp.ClientConnectorError as exc:
            raise self.failure(
                "unreachable",
                f"is unreachable at {safe_url(self.base_url)} ({exc.os_error or 'connect failed'})",
            ) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise self.failure("timeout", f"did not answer within {timeout_s:g}s") from None
        except aiohttp.ClientError as exc:
            raise self.failure(
                "disconnected", f"dropped the connection ({type(exc).__name__})"
            ) from None
        if response.status >= 400:
            try:
                payload = await response.read()
            except (TimeoutError, aiohttp.ClientError):
                payload = b""
            finally:
                response.release()
            raise self.failure(
                "http",
                f"answered HTTP {response.status}: {self._error_text(payload)}",
                status=response.status,
                retry_after=_retry_after(response.headers),
            )
        return response

    async def complete(self, call: ProviderCall, *, timeout_s: float) -> Completion:
        response = await self._open(call, stream=False, timeout_s=timeout_s)
        try:
            payload = await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise self.failure("timeout", f"did not answer within {timeout_s:g}s") from None
        except aiohttp.ClientError as exc:
            raise self.failure(
                "disconnected", f"broke off its answer ({type(exc).__name__})"
            ) from None
        finally:
            response.release()
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise self.malformed("the body is not JSON") from None
        return self.parse(data, call)

    async def stream(self, call: ProviderCall, *, timeout_s: float) -> ChatStream:
        response = await self._open(call, stream=True, timeout_s=timeout_s)
        return ChatStream(self, call.model, response, self.pieces(response))

    def malformed(self, why: str) -> ProviderFailure:
        return self.failure("malformed", f"answered a malformed body: {why}")

    # -- probing ---------------------------------------------------------------------------

    def probe_url(self) -> str:
        raise NotImplementedError

    def probe_models(self, data: Any) -> tuple[str, ...]:
        return ()

    async def probe(self, timeout_s: float) -> ProbeResult:
        """Whether the provider answers at all, and the models it lists when it does."""
        headers = {k: v for k, v in self.headers().items() if k != "Content-Type"}
        try:
            async with self.session.get(
                self.probe_url(), headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                payload = await response.read()
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            return ProbeResult(False, f"unreachable ({exc.os_error or 'connect failed'})")
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return ProbeResult(False, f"no answer within {timeout_s:g}s")
        except aiohttp.ClientError as exc:
            return ProbeResult(False, f"connection failed ({type(exc).__name__})")
        if status >= 400:
            return ProbeResult(status < 500, f"HTTP {status}: {self._error_text(payload)}")
        try:
            models = self.probe_models(orjson.loads(payload))
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
            models = ()
        return ProbeResult(True, None, models)


class OllamaProvider(Provider):
    kind = OLLAMA

    def chat_url(self) -> str:
        return f"{self.base_url}/api/chat"

    def probe_url(self) -> str:
        return f"{self.base_url}/api/tags"

    def body(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if call.temperature is not None:
            options["temperature"] = call.temperature
        if call.max_tokens is not None:
            options["num_predict"] = call.max_tokens
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [m.model_dump() for m in call.messages],
            "stream": stream,
        }
        if options:
            body["options"] = options
        if call.json_mode:
            body["format"] = "json"
        return body

    def parse(self, data: Any, call: ProviderCall) -> Completion:
        if not isinstance(data, dict):
            raise self.malformed("not a JSON object")
        message = data.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise self.malformed("no message.content string")
        model = data.get("model")
        return Completion(
            content,
            model if isinstance(model, str) and model else call.model,
            _usage(data.get("prompt_eval_count"), data.get("eval_count")),
        )

    async def pieces(self, response: aiohttp.ClientResponse) -> AsyncIterator[str | ChatUsage]:
        async for raw in response.content:
            line = raw.strip()
            if not line:
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise self.malformed("a stream line is not JSON") from None
            if not isinstance(data, dict):
                raise self.malformed("a stream line is not a JSON object")
            if "error" in data:
                raise self.failure(
                    "http", f"failed mid-stream: {self.redact(str(data['error'])[:_SNIPPET])}"
                )
            message = data.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                yield message["content"]
            if data.get("done"):
                yield _usage(data.get("prompt_eval_count"), data.get("eval_count"))
                return
        raise self.malformed("the stream ended without done")

    def probe_models(self, data: Any) -> tuple[str, ...]:
        return tuple(
            str(m["name"]) for m in data.get("models", []) if isinstance(m, dict) and "name" in m
        )


def _openai_path(base_url: str, suffix: str) -> str:
    # `https://api.openai.com/v1`, `https://openrouter.ai/api/v1` and `http://host:8000` are
    # all common base URLs.
    return f"{base_url}{suffix}" if base_url.endswith("/v1") else f"{base_url}/v1{suffix}"


async def _sse_data(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The `data:` payloads of a server-sent event stream, one per data line."""
    async for raw in response.content:
        line = raw.rstrip(b"\r\n")
        if line.startswith(b"data:"):
            yield line[5:].strip()


class OpenAIProvider(Provider):
    """The OpenAI wire shape: `openai` itself, `openrouter` and any `openai_compatible`."""

    kind = OPENAI

    def __init__(self, name: str, settings: ChatProviderSettings, *args: Any, **kw: Any) -> None:
        super().__init__(name, settings, *args, **kw)
        self.kind = settings.kind or name

    def chat_url(self) -> str:
        return _openai_path(self.base_url, "/chat/completions")

    def probe_url(self) -> str:
        return _openai_path(self.base_url, "/models")

    def body(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [m.model_dump() for m in call.messages],
        }
        if call.temperature is not None:
            body["temperature"] = call.temperature
        if call.max_tokens is not None:
            # OpenAI's reasoning models refuse `max_tokens`; other servers only know it.
            key = "max_completion_tokens" if self.kind == OPENAI else "max_tokens"
            body[key] = call.max_tokens
        if call.json_mode:
            body["response_format"] = {"type": "json_object"}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def parse(self, data: Any, call: ProviderCall) -> Completion:
        if not isinstance(data, dict):
            raise self.malformed("not a JSON object")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self.malformed("no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise self.malformed("choices[0] has no message")
        content = message.get("content")
        if content is None:
            content = ""  # a refusal or a tool call: no text
        if not isinstance(content, str):
            raise self.malformed("choices[0].message.content is not a string")
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        model = data.get("model")
        return Completion(
            content,
            model if isinstance(model, str) and model else call.model,
            _usage(usage.get("prompt_tokens"), usage.get("completion_tokens")),
        )

    async def pieces(self, response: aiohttp.ClientResponse) -> AsyncIterator[str | ChatUsage]:
        async for payload in _sse_data(response):
            if payload == b"[DONE]":
                return
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise self.malformed("a stream event is not JSON") from None
            if not isinstance(data, dict):
                raise self.malformed("a stream event is not a JSON object")
            if "error" in data:
                raise self.failure("http", f"failed mid-stream: {self._error_text(payload)}")
            usage = data.get("usage")
            if isinstance(usage, dict):
                yield _usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
            choices = data.get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                delta = choices[0].get("delta")
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    yield delta["content"]
        raise self.malformed("the stream ended without [DONE]")

    def probe_models(self, data: Any) -> tuple[str, ...]:
        return tuple(
            str(m["id"]) for m in data.get("data", []) if isinstance(m, dict) and "id" in m
        )


class AnthropicProvider(Provider):
    kind = ANTHROPIC

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        key = self.api_key()
        if key:
            headers["x-api-key"] = key
        return headers

    def chat_url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def probe_url(self) -> str:
        return f"{self.base_url}/v1/models"

    def body(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in call.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": call.model,
            "max_tokens": call.max_tokens or self.default_max_tokens,
            "messages": [
                {"role": m.role, "content": m.content} for m in call.messages if m.role != "system"
            ],
        }
        if system:
            body["system"] = system
        if call.temperature is not None:
            body["temperature"] = call.temperature
        if stream:
            body["stream"] = True
        return body

    def parse(self, data: Any, call: ProviderCall) -> Completion:
        if not isinstance(data, dict):
            raise self.malformed("not a JSON object")
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise self.malformed("no content list")
        texts = [
            b["text"]
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        model = data.get("model")
        return Completion(
            "".join(texts),
            model if isinstance(model, str) and model else call.model,
            _usage(usage.get("input_tokens"), usage.get("output_tokens")),
        )

    async def pieces(self, response: aiohttp.ClientResponse) -> AsyncIterator[str | ChatUsage]:
        prompt_tokens: Any = 0
        async for payload in _sse_data(response):
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise self.malformed("a stream event is not JSON") from None
            if not isinstance(data, dict):
                raise self.malformed("a stream event is not a JSON object")
            kind = data.get("type")
            if kind == "error":
                raise self.failure("http", f"failed mid-stream: {self._error_text(payload)}")
            if kind == "message_start":
                message = data.get("message")
                usage = message.get("usage") if isinstance(message, dict) else None
                if isinstance(usage, dict):
                    prompt_tokens = usage.get("input_tokens", 0)
            elif kind == "content_block_delta":
                delta = data.get("delta")
                if isinstance(delta, dict) and isinstance(delta.get("text"), str):
                    yield delta["text"]
            elif kind == "message_delta":
                usage = data.get("usage")
                if isinstance(usage, dict):
                    yield _usage(prompt_tokens, usage.get("output_tokens"))
            elif kind == "message_stop":
                return
        raise self.malformed("the stream ended without message_stop")

    def probe_models(self, data: Any) -> tuple[str, ...]:
        return tuple(
            str(m["id"]) for m in data.get("data", []) if isinstance(m, dict) and "id" in m
        )


KINDS: Final[dict[str, type[Provider]]] = {
    OLLAMA: OllamaProvider,
    OPENAI: OpenAIProvider,
    OPENROUTER: OpenAIProvider,
    OPENAI_COMPATIBLE: OpenAIProvider,
    ANTHROPIC: AnthropicProvider,
}


def build_provider(
    name: str,
    settings: ChatProviderSettings,
    session: aiohttp.ClientSession,
    *,
    default_max_tokens: int,
    environ: Mapping[str, str] | None = None,
) -> Provider:
    kind = settings.kind or name
    return KINDS[kind](
        name, settings, session, default_max_tokens=default_max_tokens, environ=environ
    )
