"""HTTP load on loopback: the benchmark driver and the `lakehouse loadgen` generator (SPEC §9).

Two drivers share one pooled keep-alive aiohttp session shape and one refusal: load is only
ever sent to a loopback address (a load tool that can be pointed at someone else's server is a
denial-of-service tool).

- `drive(url, requests=N, concurrency=C, json=body)` — for benches: sends exactly N requests from
  C workers and answers throughput and per-request latencies. Any non-2xx answer aborts the run:
  a benchmark that silently measures error pages measures nothing.
- `generate_load(url, concurrency=C, duration_s=S, max_requests=M, bodies=[...])` — for
  operators (`lakehouse loadgen`, issue 9): C closed-loop workers until S seconds have passed or
  M requests were started, whichever comes first, rotating through a body mix. Errors are
  counted, not fatal: per-status counts, transport errors by kind (connect, disconnected,
  timeout, …), RPS, p50/p95/p99/max. After the deadline no request is started; the ones in
  flight end within their own timeout, so a run lasts at most `duration_s + timeout_s`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import orjson

from lakehouse_common.config import is_loopback_host


def require_loopback(url: str) -> None:
    """Raise ValueError unless `url` is http(s) to a loopback host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"load is only ever sent over http(s) to loopback, not {url!r}")
    if not is_loopback_host(host):
        raise ValueError(f"load is only ever sent to loopback, not {host!r}")


def percentile(values_sorted: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when it is empty)."""
    if not values_sorted:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(values_sorted)))
    return values_sorted[min(len(values_sorted), rank) - 1]


# -- the benchmark driver --------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies_s: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, p: float) -> float:
        return percentile(sorted(self.latencies_s), p) * 1000


async def drive_async(
    url: str,
    *,
    requests: int,
    concurrency: int = 10,
    method: str = "GET",
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    require_loopback(url)
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


# -- the operator's load generator ------------------------------------------------------------

StopReason = Literal["duration", "requests"]


def transport_error_kind(exc: BaseException) -> str:
    """A short, stable name for a failure that produced no HTTP answer."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "payload"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "protocol"
    return type(exc).__name__


@dataclass
class LoadSummary:
    """What a `generate_load` run saw. Latencies are those of answered requests (any status)."""

    url: str
    method: str
    concurrency: int
    duration_s: float
    max_requests: int | None
    elapsed_s: float = 0.0
    stopped_by: StopReason = "duration"
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """Requests that ended: answered (any status) or failed in transport."""
        return sum(self.statuses.values()) + sum(self.transport_errors.values())

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.transport_errors.values())

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_ms(self) -> dict[str, float]:
        ordered = sorted(self.latencies_s)
        mean = sum(ordered) / len(ordered) if ordered else 0.0
        return {
            "p50": percentile(ordered, 50) * 1000,
            "p95": percentile(ordered, 95) * 1000,
            "p99": percentile(ordered, 99) * 1000,
            "max": (ordered[-1] if ordered else 0.0) * 1000,
            "mean": mean * 1000,
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (`lakehouse loadgen` prints it on stderr)."""
        return {
            "url": self.url,
            "method": self.method,
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "max_requests": self.max_requests,
            "stopped_by": self.stopped_by,
            "elapsed_s": round(self.elapsed_s, 3),
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "non_2xx": self.non_2xx,
            "statuses": {str(s): n for s, n in sorted(self.statuses.items())},
            "transport_errors": dict(sorted(self.transport_errors.items())),
            "rps": round(self.rps, 1),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms().items()},
        }

    def table(self) -> str:
        """The human report (`lakehouse loadgen` prints it on stdout)."""
        lat = self.latency_ms()
        bound = f"{self.duration_s:g} s" + (
            f" or {self.max_requests:,} requests" if self.max_requests is not None else ""
        )
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(self.statuses.items())) or "none"
        transport = (
            ", ".join(f"{k}: {n:,}" for k, n in sorted(self.transport_errors.items())) or "none"
        )
        rows = [
            f"loadgen {self.method} {self.url}",
            f"  concurrency    {self.concurrency} (bound: {bound}; stopped by {self.stopped_by})",
            f"  requests       {self.requests:,} in {self.elapsed_s:.2f} s = {self.rps:,.1f} req/s",
            f"  errors         {self.errors:,} ({self.non_2xx:,} non-2xx, "
            f"{sum(self.transport_errors.values()):,} transport)",
            f"  status         {statuses}",
            f"  transport      {transport}",
            f"  latency ms     p50 {lat['p50']:.2f}  p95 {lat['p95']:.2f}  "
            f"p99 {lat['p99']:.2f}  max {lat['max']:.2f}  mean {lat['mean']:.2f}",
        ]
        return "\n".join(rows)


async def generate_load(
    url: str,
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int | None = None,
    method: str = "GET",
    bodies: Sequence[bytes | None] = (None,),
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> LoadSummary:
    """Closed-loop load until `duration_s` passed or `max_requests` were started.

    Request i sends `bodies[i % len(bodies)]`. Non-2xx answers and transport failures are
    counted and the run goes on. Raises ValueError for a non-loopback URL or bad bounds.
    """
    require_loopback(url)
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if duration_s <= 0:
        raise ValueError("duration must be > 0 seconds")
    if max_requests is not None and max_requests < 1:
        raise ValueError("the request bound must be >= 1")
    if not bodies:
        raise ValueError("the body mix is empty")
    summary = LoadSummary(url, method, concurrency, duration_s, max_requests)
    issued = 0
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter()
        deadline = began + duration_s

        async def worker() -> None:
            nonlocal issued
            while True:
                if max_requests is not None and issued >= max_requests:
                    summary.stopped_by = "requests"
                    return
                if time.perf_counter() >= deadline:
                    return
                body = bodies[issued % len(bodies)]
                issued += 1
                started = time.perf_counter()
                try:
                    async with session.request(
                        method, url, data=body, headers=dict(headers or {})
                    ) as resp:
                        await resp.read()
                        status = resp.status
                except (TimeoutError, aiohttp.ClientError) as exc:
                    summary.transport_errors[transport_error_kind(exc)] += 1
                    continue
                summary.latencies_s.append(time.perf_counter() - started)
                summary.statuses[status] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        summary.elapsed_s = time.perf_counter() - began
    return summary
