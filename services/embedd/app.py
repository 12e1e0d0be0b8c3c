"""embedd app: the service skeleton around the `Embedder` (SPEC §5).

The lifespan loads the local model *before* the daemon serves (measured ~7 s on this 2-core
machine, most of it importing torch and sentence-transformers), so `/health` answering means
every model is ready: callers (ingestd's jobs, matrixd) never see a half-started embedd, and the
stack's start waits for it like for any daemon. A model that cannot load stops the start with
the reason in the log. Remote providers get their own pooled aiohttp session: unlike the
daemon-to-daemon `HttpClient` (which passes bodies through compressed), it decompresses what an
external API sends.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import aiohttp
import orjson
from fastapi import FastAPI

from lakehouse_common.app import create_service_app, metrics_of, settings_of, state_lifespan
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.errors import LakehouseError
from lakehouse_common.logging import get_logger
from services.embedd.providers import PACKAGED_MODELS, REMOTE_KINDS, LocalModel
from services.embedd.routes import router
from services.embedd.service import Embedder, EmbedMetrics
from services.embedd.state import State


def provider_session(settings: LakehouseSettings) -> aiohttp.ClientSession:
    """The remote providers' own pool (it decompresses what an external API sends)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.client.pool_size),
        timeout=aiohttp.ClientTimeout(connect=settings.client.connect_timeout_s),
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
    )


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    settings = settings_of(app)
    metrics = EmbedMetrics(metrics_of(app).registry)
    models = []
    for spec in PACKAGED_MODELS:
        model = LocalModel(spec)
        stack.callback(model.close)  # its encoding thread exists before the weights load
        await asyncio.to_thread(model.load)
        models.append(model)
    session = await stack.enter_async_context(provider_session(settings))
    embedder = Embedder(
        settings.embed,
        local={model.name: model for model in models},
        session=session,
        metrics=metrics,
    )
    stack.push_async_callback(embedder.close)
    try:
        embedder.resolve(None)
    except LakehouseError as exc:
        raise RuntimeError(f"embed.default_model: {exc.message}") from None
    if embedder.ignored_providers:
        get_logger("lakehouse.embedd").warning(
            "unknown embed providers ignored",
            providers=embedder.ignored_providers,
            known=sorted(REMOTE_KINDS),
        )
    return State(embedder=embedder)


def create_app(settings: LakehouseSettings) -> FastAPI:
    return create_service_app(
        "embedd",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="Text → unit vectors: local sentence-transformers model, Ollama, "
        "OpenAI-compatible; LRU cache; micro-batching.",
    )
