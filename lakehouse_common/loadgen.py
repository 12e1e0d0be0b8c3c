"""A closed-loop HTTP load driver for benchmarks (SPEC §9: bounded in count, loopback only).

`drive(url, requests=N, concurrency=C, json=body)` sends exactly N requests from C workers over
one pooled aiohttp session and answers throughput and per-request latencies. Any non-2xx answer
aborts the run: a benchmark that silently measures error pages measures nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies_s: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def drive_async(
    url: str,
    *,
    requests: int,
    concurrency: int = 10,
    method: str = "GET",
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        raise ValueError(f"load is only ever sent to loopback, not {host!r}")
    body = orjson.dumps(json) if json is not None else None
    hdrs = {"Content-Type": "application/json", **(headers or {})} if body else headers
    latencies: list[float] = []
    remaining = requests

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with s.request(method, url, data=body, headers=hdrs) as resp:
                    await resp.read()
                    if resp.status >= 300:
                        raise RuntimeError(f"{method} {url}: HTTP {resp.status}")
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return LoadResult(requests, elapsed, latencies)


def drive(url: str, **kwargs: Any) -> LoadResult:
    return asyncio.run(drive_async(url, **kwargs))
