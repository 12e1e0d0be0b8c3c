"""chatd app: the service skeleton around `ChatService` (SPEC §6).

Two aiohttp pools: the core's `HttpClient` for observerd (daemon to daemon), and one session of
chatd's own for the providers (it decompresses what an external API sends and has no default
read timeout: each provider call sets its own). Nothing is called at start: a provider that is
down does not stop chatd, the call that needs it answers 503 saying what to configure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from lakehouse_common.app import JsonResponse, create_service_app
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.chat import ProviderRateLimited
from lakehouse_common.errors import envelope_of
from lakehouse_common.http import HttpClient
from lakehouse_common.logging import get_logger
from lakehouse_common.observer import Observer
from lakehouse_common.tracing import current_trace_id
from services.chatd.routes import router
from services.chatd.service import ChatMetrics, ChatService


async def _rate_limited(request: Request, exc: Exception) -> Response:
    """The envelope, plus the provider's `Retry-After` (rounded up to whole seconds)."""
    assert isinstance(exc, ProviderRateLimited)
    response = JsonResponse(envelope_of(exc, current_trace_id.get()), status_code=exc.status)
    retry_after = exc.details.get("retry_after") if isinstance(exc.details, dict) else None
    if isinstance(retry_after, int | float):
        response.headers["Retry-After"] = str(max(1, int(-(-retry_after // 1))))
    return response


def create_app(settings: LakehouseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = HttpClient(settings.client)
        await http.open()
        observer = Observer(settings, "chatd", http, registry=app.state.metrics.registry)
        await observer.start()
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.client.pool_size),
            timeout=aiohttp.ClientTimeout(total=None, connect=settings.client.connect_timeout_s),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
        )
        service = ChatService(
            settings.chat,
            session,
            observer=observer,
            metrics=ChatMetrics(app.state.metrics.registry),
        )
        get_logger("lakehouse.chatd").info(
            "providers",
            default_model=settings.chat.default_model,
            fallback=settings.chat.fallback,
            providers=service.describe(),
        )
        app.state.chat = service
        try:
            yield
        finally:
            await session.close()
            await observer.close()
            await http.close()

    app = create_service_app(
        "chatd",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="LLM provider dispatcher: ollama, openai, anthropic, openrouter, "
        "openai_compatible; retries, fallback chain, cold-start allowance; OpenAI-compatible "
        "surface (`/v1/chat/completions`, `/v1/models`).",
    )
    app.add_exception_handler(ProviderRateLimited, _rate_limited)
    return app
