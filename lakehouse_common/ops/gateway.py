"""The tooling's typed clients through the gateway (issue 15: one path per wire format).

A command opens :func:`gateway_clients` (one aiohttp pool, the bearer token on every call) and
calls the daemons through `lakehouse_common.contracts`; :func:`unreachable` tells a gateway that
could not be reached (a transport failure) from an error answer, which :func:`refusal` words.
The CLI and the probes report failures with these two.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lakehouse_common.config import ClientSettings
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.errors import LakehouseError, UpstreamTimeout, UpstreamUnavailable
from lakehouse_common.http import HttpClient, bearer

__all__ = ["gateway_clients", "refusal", "unreachable"]


@asynccontextmanager
async def gateway_clients(
    url: str, token: str | None, *, timeout_s: float | None = None
) -> AsyncIterator[Clients]:
    """Every area's typed client through the gateway at `url`, sending `token` when given."""
    settings = ClientSettings(timeout_s=timeout_s) if timeout_s else ClientSettings()
    async with HttpClient(settings, headers=bearer(token)) as http:
        yield Clients.via_gateway(http, url.rstrip("/"))


def unreachable(exc: LakehouseError) -> bool:
    """A transport failure (no answer came back), not an error answer: every answer of the
    gateway or a daemon carries its trace id, a failed connection has none."""
    return isinstance(exc, UpstreamUnavailable | UpstreamTimeout) and exc.trace_id is None


def refusal(exc: LakehouseError) -> str:
    """An error answer as the CLI prints it: ``HTTP 404 not_found: <message>``."""
    return f"HTTP {exc.status} {exc.code}: {exc.message}"
