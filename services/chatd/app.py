"""chatd app: the service skeleton around `ChatService` (SPEC §6).

Two aiohttp pools: the core's `HttpClient` for observerd (daemon to daemon), and one session of
chatd's own for the providers (it decompresses what an external API sends and has no default
read timeout: each provider call sets its own). Nothing is called at start: a provider that is
down does not stop chatd, the call that needs it answers 503 saying what to configure.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import aiohttp
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from lakehouse_common.app import (
    JsonResponse,
    create_service_app,
    metrics_of,
    settings_of,
    state_lifespan,
)
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.chat import ProviderRateLimited
from lakehouse_common.errors import envelope_of
from lakehouse_common.http import HttpClient
from lakehouse_common.logging import get_logger
from lakehouse_common.observer import Observer
from lakehouse_common.tracing import current_trace_id
from services.chatd.routes import router
from services.chatd.service import ChatMetrics, ChatService
from services.chatd.state import State


async def _rate_limited(request: Request, exc: Exception) -> Response:
    """The envelope, plus the provider's `Retry-After` (rounded up to whole seconds)."""
    assert isinstance(exc, ProviderRateLimited)
    response = JsonResponse(envelope_of(exc, current_trace_id.get()), status_code=exc.status)
    retry_after = exc.details.get("retry_after") if isinstance(exc.details, dict) else None
    if isinstance(retry_after, int | float):
        response.headers["Retry-After"] = str(max(1, int(-(-retry_after // 1))))
    return response


def provider_session(settings: LakehouseSettings) -> aiohttp.ClientSession:
    """The providers' own pool: decompresses, and no default read timeout (each call sets one)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.client.pool_size),
        timeout=aiohttp.ClientTimeout(total=None, connect=settings.client.connect_timeout_s),
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
    )


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    settings = settings_of(app)
    registry = metrics_of(app).registry
    http = await stack.enter_async_context(HttpClient(settings.client))
    observer = Observer(settings, "chatd", http, registry=registry)
    await observer.start()
    stack.push_async_callback(observer.close)
    session = await stack.enter_async_context(provider_session(settings))
    service = ChatService(settings.chat, session, observer=observer, metrics=ChatMetrics(registry))
    get_logger("lakehouse.chatd").info(
        "providers",
        default_model=settings.chat.default_model,
        fallback=settings.chat.fallback,
        providers=service.describe(),
    )
    return State(chat=service)


def create_app(settings: LakehouseSettings) -> FastAPI:
    app = create_service_app(
        "chatd",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="LLM provider dispatcher: ollama, openai, anthropic, openrouter, "
        "openai_compatible; retries, fallback chain, cold-start allowance; OpenAI-compatible "
        "surface (`/v1/chat/completions`, `/v1/models`).",
    )
    app.add_exception_handler(ProviderRateLimited, _rate_limited)
    return app
