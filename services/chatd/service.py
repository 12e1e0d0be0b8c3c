"""chatd's dispatcher (SPEC §6): model routing, retries, the fallback chain, cold starts, health.

`ChatService.chat(request)`:
1. resolves the chain: the requested model (`chat.default_model` when none; a plain name goes
   to the default model's provider), then each `chat.fallback` model, duplicates dropped;
2. calls each in turn until one answers; one call is retried on 429, 5xx and connection errors
   (`chat.max_retries`, full-jitter exponential backoff from `chat.retry_backoff_s`, or the
   provider's `Retry-After` when it is at most `chat.retry_max_backoff_s`);
3. a model's calls get `cold_start_timeout_s` until one succeeds, then `timeout_s` (the
   original system's 5 s cold-start probe reported `infra_error` on a model still loading);
4. when every model failed, answers the typed error of the last one that was actually tried:
   503 `no_provider` (naming the keys / variables to set) when none was configured or
   reachable, else 503 `provider_rate_limited` (with `Retry-After`), 504 `upstream_timeout`,
   502 `upstream_unavailable` (dropped connection) or 502 `upstream_error` (HTTP error,
   malformed body), naming the provider and listing every attempt in `details.attempts`;
5. reports the call to observerd's `chat_runs` (provider, model, prompt sha256, tokens,
   latency, status) without waiting, and counts it in `/metrics` (never a key or a prompt).

`open_stream` does the same for a streamed answer, up to its first piece of text: a provider
that fails before saying anything is retried and fallen back like a whole call, so the client
gets a proper error status instead of a broken stream.

No FastAPI here: the routes parse and answer, this module works on plain values.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from lakehouse_common.config import ChatSettings
from lakehouse_common.contracts.chat import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ChatUsage,
    ModelEntry,
    NoProvider,
    ProviderRateLimited,
    ProvidersResponse,
    ProviderStatus,
    split_model,
)
from lakehouse_common.errors import (
    LakehouseError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from lakehouse_common.logging import get_logger
from lakehouse_common.observer import Observer
from services.chatd.providers import (
    ChatStream,
    Completion,
    ProbeResult,
    Provider,
    ProviderCall,
    ProviderFailure,
    build_provider,
    safe_url,
)

STREAM: str = "chat_runs"
T = TypeVar("T")
log = get_logger("lakehouse.chatd")


def prompt_sha256(messages: list[ChatMessage]) -> str:
    """Hash of the exact messages sent (role and content, in order): joins runs on a prompt
    without storing it."""
    canonical = orjson.dumps([{"role": m.role, "content": m.content} for m in messages])
    return hashlib.sha256(canonical).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ChatMetrics:
    """chatd's counters, on the app's own Prometheus registry (no keys, prompts or models:
    model names are free text and would explode the label set)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "lakehouse_chat_calls",
            "Chat calls answered, by the provider that answered (or was tried last) and status",
            ["provider", "status"],
            registry=registry,
        )
        self.tokens = Counter(
            "lakehouse_chat_tokens",
            "Tokens reported by providers",
            ["provider", "kind"],
            registry=registry,
        )
        self.latency = Histogram(
            "lakehouse_chat_latency_seconds",
            "Latency of answered chat calls, retries and fallbacks included",
            ["provider"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=registry,
        )
        self.provider_failures = Counter(
            "lakehouse_chat_provider_failures",
            "Failed provider calls (each retry counts), by reason",
            ["provider", "reason"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "lakehouse_chat_fallbacks",
            "Chat calls answered by a fallback model",
            ["provider"],
            registry=registry,
        )


@dataclass(frozen=True)
class Target:
    """One model of the chain: the provider (a configured name or a bare kind) and its model."""

    provider: str
    model: str

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass
class ProviderHealth:
    last_error: str | None = None
    last_error_at: str | None = None
    last_ok_at: str | None = None


@dataclass
class CallLog:
    """What one chat call went through, for the error details, the report and the metrics."""

    chain: list[Target]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


@dataclass
class OpenedStream:
    """A streamed answer whose first piece already arrived; iterate `pieces()` for the text."""

    target: Target
    stream: ChatStream
    first: str | None
    rest: AsyncIterator[str]
    request: ChatRequest
    call_log: CallLog
    endpoint: str
    service: ChatService
    content_chars: int = 0
    finished: bool = False

    @property
    def usage(self) -> ChatUsage:
        return self.stream.usage

    async def pieces(self) -> AsyncIterator[str]:
        """The text pieces; a failure mid-stream raises the typed `LakehouseError`."""
        status = "client_closed"
        try:
            if self.first is not None:
                yield self.first
            try:
                async for piece in self.rest:
                    yield piece
            except ProviderFailure as failure:
                self.service.note_failure(failure, self.target, self.call_log)
                error = self.service.final_error([failure], self.call_log)
                status = error.code
                raise error from None
            status = "ok"
        finally:
            self.finished = True
            await self.stream.aclose()
            self.service.finish(
                self.request,
                self.call_log,
                self.endpoint,
                stream=True,
                target=self.target,
                usage=self.stream.usage,
                status=status,
            )


class ChatService:
    def __init__(
        self,
        settings: ChatSettings,
        session: aiohttp.ClientSession,
        *,
        observer: Observer | None = None,
        metrics: ChatMetrics | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.observer = observer
        self.metrics = metrics
        self.providers: dict[str, Provider] = {
            name: build_provider(
                name,
                provider,
                session,
                default_max_tokens=settings.default_max_tokens,
                environ=environ,
            )
            for name, provider in settings.providers.items()
        }
        prefix, sep, _ = settings.default_model.partition("/")
        # `default_model` without a provider prefix: its provider is the first configured one.
        self.default_provider = prefix if sep else next(iter(self.providers), "ollama")
        self.warm: set[tuple[str, str]] = set()
        self.health: dict[str, ProviderHealth] = {name: ProviderHealth() for name in self.providers}

    # -- routing ---------------------------------------------------------------------------

    def target(self, name: str) -> Target:
        provider, model = split_model(name, self.providers, self.default_provider)
        return Target(provider, model)

    def chain(self, model: str | None) -> list[Target]:
        out: list[Target] = []
        for name in [model or self.settings.default_model, *self.settings.fallback]:
            target = self.target(name)
            if target not in out:
                out.append(target)
        return out

    def describe(self) -> list[str]:
        """One line per provider for the start-up log (names of key variables, never keys)."""
        return [
            f"{name} ({p.kind}) {'configured' if p.configured else 'not configured'}"
            for name, p in self.providers.items()
        ]

    # -- calling ---------------------------------------------------------------------------

    def _provider(self, target: Target) -> Provider:
        provider = self.providers.get(target.provider)
        if provider is None:
            env = target.provider.upper()
            raise ProviderFailure(
                target.provider,
                "not_configured",
                f"provider {target.provider} is not configured: add a [chat.providers."
                f"{target.provider}] table with base_url and api_key_env "
                f"(LAKEHOUSE_CHAT__PROVIDERS__{env}__BASE_URL, ..._API_KEY_ENV)",
            )
        return provider

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry `attempt + 1`, or None when the provider asks for
        longer than `chat.retry_max_backoff_s` (no use waiting: fail over instead)."""
        cap = self.settings.retry_max_backoff_s
        if retry_after is not None:
            return retry_after if retry_after <= cap else None
        return min(cap, random.uniform(0, self.settings.retry_backoff_s * 2**attempt))

    def note_failure(self, failure: ProviderFailure, target: Target, call_log: CallLog) -> None:
        call_log.attempts.append(
            {
                "provider": target.provider,
                "model": target.model,
                "reason": failure.reason,
                "status": failure.status,
                "message": failure.message,
            }
        )
        log.warning(
            "provider call failed",
            provider=target.provider,
            model=target.model,
            reason=failure.reason,
            status=failure.status,
            error=failure.message,  # redacted: never the key
        )
        health = self.health.get(target.provider)
        if health is not None and failure.reason != "not_configured":
            health.last_error = failure.message
            health.last_error_at = _now()
        if self.metrics is not None:
            self.metrics.provider_failures.labels(target.provider, failure.reason).inc()

    async def _with_retries(
        self,
        target: Target,
        call_log: CallLog,
        op: Callable[[Provider, float], Awaitable[T]],
    ) -> T:
        attempts = 1 + self.settings.max_retries
        for attempt in range(attempts):
            try:
                provider = self._provider(target)
                warm = (target.provider, target.model) in self.warm
                timeout_s = (
                    provider.settings.timeout_s if warm else provider.settings.cold_start_timeout_s
                )
                result = await op(provider, timeout_s)
            except ProviderFailure as failure:
                self.note_failure(failure, target, call_log)
                if not failure.retryable or attempt + 1 == attempts:
                    raise
                wait = self._backoff(attempt, failure.retry_after)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
            else:
                self.warm.add((target.provider, target.model))
                self.health[target.provider].last_ok_at = _now()
                return result
        raise AssertionError("unreachable")

    async def _dispatch(
        self,
        request: ChatRequest,
        call_log: CallLog,
        op: Callable[[Provider, ProviderCall, float], Awaitable[T]],
    ) -> tuple[Target, T]:
        failures: list[ProviderFailure] = []
        for target in call_log.chain:
            call = ProviderCall(
                model=target.model,
                messages=request.messages,
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                json_mode=request.json_mode,
            )

            async def attempt(provider: Provider, timeout_s: float, call: ProviderCall = call) -> T:
                return await op(provider, call, timeout_s)

            try:
                result = await self._with_retries(target, call_log, attempt)
            except ProviderFailure as failure:
                failures.append(failure)
                continue
            return target, result
        raise self.final_error(failures, call_log)

    def final_error(self, failures: list[ProviderFailure], call_log: CallLog) -> LakehouseError:
        """The typed error of a call whose every model failed (see the module docstring)."""
        details: dict[str, Any] = {
            "models": [t.label for t in call_log.chain],
            "attempts": call_log.attempts,
        }
        decisive = [f for f in failures if f.reason not in ("not_configured", "unreachable")]
        if not decisive:
            reasons = []
            for failure in failures:
                text = failure.message
                if failure.reason == "unreachable":
                    env = failure.provider.upper()
                    text += (
                        f": start it, or point chat.providers.{failure.provider}.base_url "
                        f"(LAKEHOUSE_CHAT__PROVIDERS__{env}__BASE_URL) at a running server"
                    )
                reasons.append(text)
            return NoProvider(
                "no chat provider is configured and reachable for "
                f"{', '.join(t.label for t in call_log.chain)}: {'; '.join(reasons)}. "
                "Or pick another provider with chat.default_model (LAKEHOUSE_CHAT__DEFAULT_MODEL) "
                "and chat.fallback (LAKEHOUSE_CHAT__FALLBACK)",
                details=details,
            )
        failure = decisive[-1]
        message = failure.message
        if len(call_log.chain) > 1:
            message += f" (tried {', '.join(t.label for t in call_log.chain)})"
        if failure.rate_limited:
            details["retry_after"] = failure.retry_after
            return ProviderRateLimited(
                f"{message}; still rate-limited after retries", details=details
            )
        if failure.reason == "timeout":
            return UpstreamTimeout(message, details=details)
        if failure.reason == "disconnected":
            return UpstreamUnavailable(message, details=details)
        return UpstreamError(message, details=details)

    async def chat(self, request: ChatRequest, *, endpoint: str = "chat") -> ChatResponse:
        call_log = CallLog(self.chain(request.model))

        async def complete(provider: Provider, call: ProviderCall, timeout_s: float) -> Completion:
            return await provider.complete(call, timeout_s=timeout_s)

        try:
            target, completion = await self._dispatch(request, call_log, complete)
        except LakehouseError as exc:
            self.finish(request, call_log, endpoint, stream=False, status=exc.code)
            raise
        latency_ms = self.finish(
            request,
            call_log,
            endpoint,
            stream=False,
            target=target,
            usage=completion.usage,
            status="ok",
        )
        return ChatResponse(
            content=completion.content,
            model=target.model,
            provider=target.provider,
            usage=completion.usage,
            latency_ms=latency_ms,
        )

    async def open_stream(self, request: ChatRequest, *, endpoint: str) -> OpenedStream:
        call_log = CallLog(self.chain(request.model))

        async def primed(
            provider: Provider, call: ProviderCall, timeout_s: float
        ) -> tuple[ChatStream, str | None, AsyncIterator[str]]:
            stream = await provider.stream(call, timeout_s=timeout_s)
            pieces = aiter(stream)
            try:
                first: str | None = await anext(pieces)
            except StopAsyncIteration:
                first = None
            except BaseException:
                await stream.aclose()
                raise
            return stream, first, pieces

        try:
            target, (stream, first, rest) = await self._dispatch(request, call_log, primed)
        except LakehouseError as exc:
            self.finish(request, call_log, endpoint, stream=True, status=exc.code)
            raise
        return OpenedStream(target, stream, first, rest, request, call_log, endpoint, self)

    def finish(
        self,
        request: ChatRequest,
        call_log: CallLog,
        endpoint: str,
        *,
        stream: bool,
        status: str,
        target: Target | None = None,
        usage: ChatUsage | None = None,
    ) -> float:
        """Count and report one finished call; answer its latency in ms."""
        latency_ms = call_log.elapsed_ms()
        answered = target or (
            Target(call_log.attempts[-1]["provider"], call_log.attempts[-1]["model"])
            if call_log.attempts
            else call_log.chain[0]
        )
        usage = usage or ChatUsage()
        fallback = target is not None and target != call_log.chain[0]
        if self.metrics is not None:
            self.metrics.calls.labels(answered.provider, status).inc()
            if status == "ok":
                self.metrics.latency.labels(answered.provider).observe(latency_ms / 1000)
                self.metrics.tokens.labels(answered.provider, "prompt").inc(usage.prompt_tokens)
                self.metrics.tokens.labels(answered.provider, "completion").inc(
                    usage.completion_tokens
                )
                if fallback:
                    self.metrics.fallbacks.labels(answered.provider).inc()
        if self.observer is not None:
            event: dict[str, Any] = {
                "endpoint": endpoint,
                "provider": answered.provider,
                "model": answered.model,
                "requested_model": call_log.chain[0].label,
                "prompt_sha256": prompt_sha256(request.messages),
                "messages": len(request.messages),
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
                "latency_ms": latency_ms,
                "status": status,
                "attempts": len(call_log.attempts) + (1 if status == "ok" else 0),
                "fallback": fallback,
                "stream": stream,
                "json": request.json_mode,
            }
            if status != "ok" and call_log.attempts:
                event["error"] = call_log.attempts[-1]["message"]
            self.observer.report(STREAM, event)
        return latency_ms

    # -- the providers' view ---------------------------------------------------------------

    async def _probe(self, provider: Provider) -> ProbeResult | None:
        if not provider.configured:
            return None
        return await provider.probe(self.settings.probe_timeout_s)

    async def _probe_all(self) -> dict[str, ProbeResult | None]:
        names = list(self.providers)
        results = await asyncio.gather(*(self._probe(self.providers[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def providers_status(self) -> ProvidersResponse:
        probes = await self._probe_all()
        out = []
        for name, provider in self.providers.items():
            probe = probes[name]
            health = self.health[name]
            last_error = health.last_error
            last_error_at = health.last_error_at
            if probe is not None and probe.error is not None:
                last_error, last_error_at = provider.redact(f"probe: {probe.error}"), _now()
            elif not provider.configured:
                last_error = f"not configured: {provider.how_to_configure()}"
            out.append(
                ProviderStatus(
                    name=name,
                    kind=provider.kind,
                    configured=provider.configured,
                    base_url=safe_url(provider.base_url),
                    api_key_env=provider.settings.api_key_env,
                    key_present=provider.key_present,
                    reachable=None if probe is None else probe.reachable,
                    last_error=last_error,
                    last_error_at=last_error_at,
                    last_ok_at=health.last_ok_at,
                    models=list(probe.models) if probe is not None else [],
                )
            )
        return ProvidersResponse(
            default_model=self.settings.default_model,
            fallback=list(self.settings.fallback),
            providers=out,
        )

    async def models(self) -> list[ModelEntry]:
        """The configured models first, then what each reachable provider lists."""
        probes = await self._probe_all()
        seen: dict[str, ModelEntry] = {}
        for target in self.chain(None):
            seen.setdefault(target.label, ModelEntry(id=target.label, owned_by=target.provider))
        for name, probe in probes.items():
            for model in probe.models if probe is not None else ():
                label = f"{name}/{model}"
                seen.setdefault(label, ModelEntry(id=label, owned_by=name))
        return list(seen.values())
