"""gateway app: the service skeleton, the pooled upstream client, and optional bearer auth."""

from __future__ import annotations

import hmac
from contextlib import AsyncExitStack

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from lakehouse_common.app import create_service_app, error_response, settings_of, state_lifespan
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.http import HttpClient
from services.gateway.routes import router
from services.gateway.service import RoutingTable
from services.gateway.state import State

OPEN_PATHS = frozenset({"/health"})


class BearerAuth:
    """When `gateway.auth_token` is set, every route but `/health` needs `Bearer <token>`."""

    def __init__(self, app: ASGIApp, *, token: bytes) -> None:
        self.app = app
        self.expected = b"bearer " + token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        supplied = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        # Case-insensitive scheme, constant-time comparison of the whole credential.
        if hmac.compare_digest(supplied[:7].lower() + supplied[7:], self.expected):
            await self.app(scope, receive, send)
            return
        reason = "missing bearer token" if not supplied else "invalid bearer token"
        response = error_response(401, "unauthorized", reason)
        response.headers["WWW-Authenticate"] = 'Bearer realm="lakehouse"'
        await response(scope, receive, send)


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    settings = settings_of(app)
    http = await stack.enter_async_context(HttpClient(settings.client))
    return State(settings=settings, http=http, routing=RoutingTable(settings))


def create_app(settings: LakehouseSettings) -> FastAPI:
    middleware = []
    token = settings.gateway.auth_token
    if token is not None:
        middleware.append((BearerAuth, {"token": token.get_secret_value().encode()}))

    return create_service_app(
        "gateway",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="Single public entry: forwards /v1/<area>/... to the owning daemon.",
        inner_middleware=middleware,
    )
