"""Gateway domain logic: which daemon owns a path, hop-by-hop header rules, aggregate health.

Imports nothing from FastAPI; the routes module wires it to HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.errors import NotFound
from lakehouse_common.topology import installed_daemons
from lakehouse_common.tracing import TRACE_HEADER_LOWER

# RFC 9110 §7.6.1 connection-specific headers, plus those the proxy sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Not forwarded upstream: the gateway's own credential and the host it was reached on.
DROP_UPSTREAM = HOP_BY_HOP | {"host", "authorization", TRACE_HEADER_LOWER}
DROP_DOWNSTREAM = HOP_BY_HOP | {TRACE_HEADER_LOWER, "server", "date"}


@dataclass(frozen=True)
class Target:
    daemon: str
    base_url: str


class RoutingTable:
    """`/v1/<area>/...` → the daemon that owns `<area>` (config `gateway.routes`)."""

    def __init__(self, settings: LakehouseSettings) -> None:
        self._targets = {
            area: Target(daemon, settings.url_of(daemon))
            for area, daemon in settings.gateway.routes.items()
        }

    def resolve(self, path: str) -> Target:
        parts = path.split("/", 3)  # ["", "v1", area, rest]
        area = parts[2] if len(parts) > 2 and parts[1] == "v1" else ""
        target = self._targets.get(area)
        if target is None:
            raise NotFound(
                f"no daemon owns {path}",
                details={"area": area, "known_areas": sorted(self._targets)},
            )
        return target


def forward_headers(
    headers: Iterable[tuple[bytes, bytes]], drop: frozenset[str]
) -> list[tuple[str, str]]:
    return [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in headers
        if k.decode("latin-1").lower() not in drop
    ]


async def probe_health(
    session: aiohttp.ClientSession, name: str, url: str, timeout_s: float
) -> dict[str, Any]:
    started = time.perf_counter()
    entry: dict[str, Any] = {"url": url}
    try:
        async with session.get(
            f"{url}/health", timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as resp:
            body = await resp.read()
            ok = resp.status == 200 and b'"ok"' in body
            entry["status"] = "ok" if ok else "unhealthy"
            if not ok:
                entry["error"] = f"HTTP {resp.status}"
            elif b'"degraded":true' in body:
                # Live, but a check failed (catalogd: the audit witness is not reachable).
                entry["status"] = "degraded"
                try:
                    entry["checks"] = orjson.loads(body).get("checks")
                except orjson.JSONDecodeError:
                    pass
    except (aiohttp.ClientError, TimeoutError) as exc:
        entry["status"] = "down"
        entry["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    entry["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return entry


async def aggregate_health(
    session: aiohttp.ClientSession, settings: LakehouseSettings
) -> dict[str, Any]:
    """Every installed daemon's `/health`, probed concurrently with a short timeout."""
    daemons: Mapping[str, str] = {
        d.name: settings.url_of(d.name) for d in installed_daemons() if d.name != "gateway"
    }
    results = await asyncio.gather(
        *(
            probe_health(session, name, url, settings.gateway.health_timeout_s)
            for name, url in daemons.items()
        )
    )
    by_name = dict(zip(daemons, results, strict=True))
    healthy = all(r["status"] == "ok" for r in results)
    return {
        "status": "ok" if healthy else "degraded",
        "service": "gateway",
        "daemons": by_name,
    }
