"""chatd's wire format and typed client (SPEC §6): one chat call through one of five providers.

Endpoints (chatd, :3220):
- `POST /v1/chat` body `ChatRequest {model?, messages, temperature?, max_tokens?, json?}` →
  `ChatResponse {content, model, provider, usage, latency_ms}`;
- `POST /v1/chat/completions` and `GET /v1/models`: the OpenAI API (`stream: true` answers
  server-sent events), so stock OpenAI clients work against chatd and through the gateway;
- `GET /v1/chat/providers` → `ProvidersResponse`: each provider configured / key present /
  reachable / last error (never a key).

A model name is `provider/model` (`ollama/qwen2.5`, `openrouter/meta-llama/llama-3-8b`); a plain
name (`qwen2.5`) goes to the provider of `chat.default_model`; no model at all means
`chat.default_model`. Providers: `ollama`, `openai`, `anthropic`, `openrouter`,
`openai_compatible`.

Errors (the envelope of SPEC §3): a malformed request → 422 `invalid_request`; no provider of
the model (or its fallbacks) configured or reachable → 503 `no_provider`, naming the config keys
and environment variables to set; the provider still answering 429 after the retries → 503
`provider_rate_limited` with `Retry-After`; a provider that answered an error or a malformed
body → 502 `upstream_error`; one that dropped the connection → 502 `upstream_unavailable`; one
that did not answer in its timeout → 504 `upstream_timeout`. The message names the provider;
`details.attempts` lists every provider call tried (with a fallback chain, several).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from lakehouse_common.errors import (
    ERROR_CODES,
    ServiceUnavailable,
    UpstreamError,
)
from lakehouse_common.http import ServiceClient

AREA: Final = "chat"
CHAT: Final = "/v1/chat"
COMPLETIONS: Final = "/v1/chat/completions"
PROVIDERS: Final = "/v1/chat/providers"
MODELS: Final = "/v1/models"

OLLAMA: Final = "ollama"
OPENAI: Final = "openai"
ANTHROPIC: Final = "anthropic"
OPENROUTER: Final = "openrouter"
OPENAI_COMPATIBLE: Final = "openai_compatible"
PROVIDER_KINDS: Final = (OLLAMA, OPENAI, ANTHROPIC, OPENROUTER, OPENAI_COMPATIBLE)

Role = Literal["system", "user", "assistant"]


class NoProvider(ServiceUnavailable):
    """No provider of the requested model (or its fallbacks) is configured or reachable; the
    message says which config keys / environment variables to set."""

    code = "no_provider"


class ProviderRateLimited(ServiceUnavailable):
    """The provider still answered 429 after the retries (and no fallback succeeded).

    503 rather than 429: the caller did nothing wrong and is not the one being limited; the
    answer carries `Retry-After` when the provider sent one.
    """

    code = "provider_rate_limited"


# Clients rebuild them from an envelope like the core's own classes.
ERROR_CODES.setdefault(NoProvider.code, NoProvider)
ERROR_CODES.setdefault(ProviderRateLimited.code, ProviderRateLimited)


def split_model(name: str, providers: Collection[str], default_provider: str) -> tuple[str, str]:
    """`provider/model` → (provider, model) when the prefix is a provider name or kind;
    any other name is a model of `default_provider` (`qwen2.5:7b`, `hf.co/org/model`)."""
    prefix, sep, rest = name.partition("/")
    if sep and rest and (prefix in providers or prefix in PROVIDER_KINDS):
        return prefix, rest
    return default_provider, name


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str


class ChatRequest(BaseModel):
    """`POST /v1/chat`. `json` (Python attribute `json_mode`: `json` would shadow
    `BaseModel.json`) asks the provider for a JSON answer where its API can (OpenAI
    `response_format`, Ollama `format`); the content is still plain text to parse."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # `chat.default_model` when omitted.
    model: str | None = Field(default=None, min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    json_mode: bool = Field(default=False, alias="json")

    def wire(self) -> dict[str, Any]:
        """The JSON body, with `json` under its wire name and unset options left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


class ChatUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatResponse(BaseModel):
    """`model` is the model as the provider names it (no `provider/` prefix), `provider` the one
    that answered (with a fallback chain, possibly not the first one tried)."""

    content: str
    model: str
    provider: str
    usage: ChatUsage
    latency_ms: float


class ProviderStatus(BaseModel):
    """One provider as `GET /v1/chat/providers` reports it; never the key, only its variable."""

    name: str
    kind: str
    configured: bool
    base_url: str
    api_key_env: str
    key_present: bool
    # None when not configured (not probed); else whether it answered the probe just now.
    reachable: bool | None = None
    # The latest failure: of the probe just now, else of the last call (RFC 3339 time).
    last_error: str | None = None
    last_error_at: str | None = None
    last_ok_at: str | None = None
    # What the provider listed when probed (Ollama's pulled models, OpenAI's `/models`).
    models: list[str] = Field(default_factory=list)


class ProvidersResponse(BaseModel):
    default_model: str
    fallback: list[str]
    providers: list[ProviderStatus]


# -- the OpenAI wire format (`POST /v1/chat/completions`, `GET /v1/models`) -------------------


class CompletionMessage(BaseModel):
    """An OpenAI chat message. `content` may be a string or a list of content parts; only text
    parts are accepted (chatd has no vision or tool support)."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class CompletionRequest(BaseModel):
    """`POST /v1/chat/completions`: the OpenAI request. Options chatd does not forward (`top_p`,
    `stop`, `seed`, tools…) are accepted and ignored, so stock clients work unchanged."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, max_length=200)
    messages: list[CompletionMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # `{"type": "json_object"}` or `{"type": "json_schema", ...}` → `json: true`.
    response_format: dict[str, Any] | None = None
    n: int | None = Field(default=None, ge=1, le=1)


class CompletionChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class CompletionChoice(BaseModel):
    index: int = 0
    message: CompletionChoiceMessage
    finish_reason: str = "stop"


class Completion(BaseModel):
    """The OpenAI `chat.completion` object; `model` is `provider/model`."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: ChatUsage


class ModelEntry(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelEntry]


class ChatClient:
    """chatd over HTTP (validatord, the CLI): pooled aiohttp through a `ServiceClient`.

    A chat may take long (a cold model loading, retries, a fallback chain), so the read timeout
    is the caller's choice; `None` keeps the `ServiceClient` default (`client.timeout_s`).
    """

    def __init__(self, client: ServiceClient, *, timeout_s: float | None = None) -> None:
        self.client = client
        self.timeout_s = timeout_s

    async def chat(self, request: ChatRequest, *, timeout_s: float | None = None) -> ChatResponse:
        """One chat; errors come back as the typed `LakehouseError` chatd raised."""
        data = await self.client.call_json(
            "POST", CHAT, json=request.wire(), timeout_s=timeout_s or self.timeout_s
        )
        if not isinstance(data, dict):
            raise UpstreamError(f"{self.client.daemon} answered a non-object to POST {CHAT}")
        return ChatResponse.model_validate(data)

    async def providers(self) -> ProvidersResponse:
        return ProvidersResponse.model_validate(await self.client.call_json("GET", PROVIDERS))
