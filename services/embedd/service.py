"""embedd's domain logic (SPEC §5): model routing, limits, the cache, batching, normalisation.

`Embedder.embed(texts, model)`:
1. checks the limits (`embed.max_texts`, `embed.max_text_chars`) → 422 `invalid_request`;
2. resolves the model name to a provider (`split_model`) → 422 `unknown_model` when neither a
   packaged local model nor a configured remote provider answers to it;
3. looks every text up in the LRU cache keyed by (model, text), counting hits and misses;
4. sends the distinct missing texts through the model's `MicroBatcher`, so concurrent requests
   share model calls;
5. L2-normalises the new rows, caches them, and answers one unit vector per text in order.

No FastAPI here: the routes parse and answer, this module works on plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lakehouse_common.config import EmbedSettings
from lakehouse_common.contracts.embed import (
    LOCAL,
    LocalModelInfo,
    ModelsResponse,
    ProviderInfo,
    UnknownModel,
    split_model,
)
from lakehouse_common.embed_cache import EmbeddingCache
from lakehouse_common.errors import UnprocessableEntity, UpstreamError
from services.embedd.batching import MicroBatcher
from services.embedd.providers import REMOTE_KINDS, LocalModel, RemoteProvider

Matrix = npt.NDArray[np.float32]

# Concurrent model calls per remote model: their latency is network-bound, not our CPU.
REMOTE_IN_FLIGHT = 4
# Remote model names are free text: idle batchers beyond this many are dropped.
MAX_IDLE_BATCHERS = 32


class EmbedMetrics:
    """embedd's counters, on the app's own Prometheus registry (never a key or a text)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.cache_hits = Counter(
            "lakehouse_embed_cache_hits",
            "Texts answered from the cache",
            ["model"],
            registry=registry,
        )
        self.cache_misses = Counter(
            "lakehouse_embed_cache_misses", "Texts not in the cache", ["model"], registry=registry
        )
        self.model_calls = Counter(
            "lakehouse_embed_model_calls",
            "Calls of a model (one per micro-batch)",
            ["model", "provider"],
            registry=registry,
        )
        self.batch_texts = Histogram(
            "lakehouse_embed_batch_texts",
            "Distinct texts per model call",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=registry,
        )
        self.provider_errors = Counter(
            "lakehouse_embed_provider_errors",
            "Failed model calls by error code",
            ["model", "provider", "code"],
            registry=registry,
        )
        self.load_seconds = Gauge(
            "lakehouse_embed_model_load_seconds",
            "Seconds the local model took to load at start",
            ["model"],
            registry=registry,
        )


def normalise(rows: Matrix, what: str) -> Matrix:
    """Rows scaled to unit L2 norm (float32); a zero row cannot be, so it is a provider error."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if (norms == 0).any() or not np.isfinite(norms).all():
        raise UpstreamError(f"{what} answered a zero or non-finite vector")
    out: Matrix = (rows / norms).astype(np.float32, copy=False)
    return out


@dataclass(frozen=True)
class Route:
    """Where a model name leads: provider kind, the provider's model name, the canonical name
    (the cache key and the `model` of the answer)."""

    provider: str
    model: str
    canonical: str


class Embedder:
    """Routes, limits, caches and batches embedding requests."""

    def __init__(
        self,
        settings: EmbedSettings,
        *,
        local: Mapping[str, LocalModel],
        session: aiohttp.ClientSession | None,
        metrics: EmbedMetrics,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.cache = EmbeddingCache(settings.cache_size)
        self.local = dict(local)
        self._aliases = {
            alias: model.name for model in local.values() for alias in model.spec.aliases
        }
        self.remotes: dict[str, RemoteProvider] = {}
        # `[embed.providers.<name>]` tables whose name is no provider kind: reported at start.
        self.ignored_providers = sorted(set(settings.providers) - set(REMOTE_KINDS))
        if session is not None:
            for name, provider in settings.providers.items():
                kind = REMOTE_KINDS.get(name)
                if kind is not None and provider.base_url:
                    self.remotes[name] = kind(provider, session)
        self._batchers: dict[str, MicroBatcher] = {}
        for model in self.local.values():
            metrics.load_seconds.labels(model.name).set(model.load_seconds)

    # -- routing and limits ---------------------------------------------------------------

    def known_models(self) -> dict[str, list[str]]:
        return {
            "local": sorted(self.local),
            "providers": sorted(self.remotes),
        }

    def resolve(self, name: str | None) -> Route:
        """The route of `name` (the default model when None); 422 `unknown_model` otherwise."""
        requested = name or self.settings.default_model
        provider, model = split_model(requested)
        if provider == LOCAL:
            canonical = self._aliases.get(model, model)
            if canonical in self.local:
                return Route(LOCAL, canonical, canonical)
            raise UnknownModel(
                f"unknown model {requested!r}: local models are {sorted(self.local)}; "
                f"remote ones are named '<provider>/<model>' with a provider among "
                f"{sorted(self.remotes)}",
                details={"model": requested, **self.known_models()},
            )
        if provider in self.remotes:
            return Route(provider, model, f"{provider}/{model}")
        raise UnknownModel(
            f"unknown model {requested!r}: provider {provider!r} is not configured "
            f"(set [embed.providers.{provider}] base_url); configured: {sorted(self.remotes)}",
            details={"model": requested, **self.known_models()},
        )

    def check_limits(self, texts: list[str]) -> None:
        limit = self.settings.max_texts
        if len(texts) > limit:
            raise UnprocessableEntity(
                f"texts: {len(texts)} texts exceed the limit of {limit} per request",
                details={"field": "texts", "count": len(texts), "limit": limit},
            )
        max_chars = self.settings.max_text_chars
        for index, text in enumerate(texts):
            if len(text) > max_chars:
                raise UnprocessableEntity(
                    f"texts[{index}]: {len(text)} characters exceed the limit of {max_chars}",
                    details={
                        "field": "texts",
                        "index": index,
                        "chars": len(text),
                        "limit": max_chars,
                    },
                )

    # -- embedding ------------------------------------------------------------------------

    async def embed(self, texts: list[str], model: str | None = None) -> tuple[Matrix, str]:
        """Unit vectors for `texts` (one row each, in order) and the canonical model name."""
        self.check_limits(texts)
        route = self.resolve(model)
        name = route.canonical
        found: dict[str, Matrix] = {}
        missing: dict[str, None] = {}  # ordered set: each distinct missing text once
        hits = 0
        for text in texts:
            if text in found:
                hits += 1
                continue
            vector = self.cache.get(name, text)
            if vector is not None:
                found[text] = vector
                hits += 1
            else:
                missing[text] = None
        misses = len(texts) - hits
        if hits:
            self.metrics.cache_hits.labels(name).inc(hits)
        if misses:
            self.metrics.cache_misses.labels(name).inc(misses)
        if missing:
            rows = await self._batcher(route).embed(list(missing))
            for text, row in zip(missing, rows, strict=True):
                vector = row.copy()  # not a view: a cached row must not pin its whole batch
                vector.flags.writeable = False
                self.cache.put(name, text, vector)
                found[text] = vector
        dimensions = {vector.shape[0] for vector in found.values()}
        if len(dimensions) != 1:
            raise UpstreamError(
                f"model {name} answered vectors of different dimensions {sorted(dimensions)}",
                details={"model": name},
            )
        return np.stack([found[text] for text in texts]), name

    def _batcher(self, route: Route) -> MicroBatcher:
        batcher = self._batchers.get(route.canonical)
        if batcher is None:
            if len(self._batchers) >= MAX_IDLE_BATCHERS:
                for name in [n for n, b in self._batchers.items() if b.idle]:
                    del self._batchers[name]

            async def run(texts: list[str]) -> Matrix:
                return await self._call_model(route, texts)

            batcher = MicroBatcher(
                run,
                wait_s=self.settings.batch_wait_ms / 1000,
                max_texts=self.settings.batch_max_texts,
                max_in_flight=1 if route.provider == LOCAL else REMOTE_IN_FLIGHT,
            )
            self._batchers[route.canonical] = batcher
        return batcher

    async def _call_model(self, route: Route, texts: list[str]) -> Matrix:
        name = route.canonical
        self.metrics.model_calls.labels(name, route.provider).inc()
        self.metrics.batch_texts.labels(name).observe(len(texts))
        try:
            if route.provider == LOCAL:
                rows = await self.local[route.model].embed(texts)
            else:
                rows = await self.remotes[route.provider].embed(route.model, texts)
            return normalise(rows, f"model {name}")
        except Exception as exc:
            code = getattr(exc, "code", "internal")
            self.metrics.provider_errors.labels(name, route.provider, code).inc()
            raise

    # -- introspection and shutdown -------------------------------------------------------

    def models(self) -> ModelsResponse:
        return ModelsResponse(
            default_model=self.settings.default_model,
            local=[
                LocalModelInfo(
                    name=model.name,
                    dimension=model.dimension,
                    load_seconds=round(model.load_seconds, 3),
                )
                for model in self.local.values()
            ],
            providers=[
                ProviderInfo(
                    name=name,
                    base_url=provider.base_url,
                    timeout_s=provider.settings.timeout_s,
                    api_key_env=provider.settings.api_key_env,
                )
                for name, provider in sorted(self.remotes.items())
            ],
        )

    async def close(self) -> None:
        for batcher in self._batchers.values():
            await batcher.close()
        self._batchers.clear()
