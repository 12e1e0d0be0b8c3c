"""The multi-scenario load harness behind `lakehouse multitier` (SPEC §9 "Load tools", issue 9).

Runs the weighted mix of SPEC §9 through the gateway of a live stack whose `workers` index and
dataset hold the demo roster (`lakehouse demo load --workers N`), with C closed-loop workers
until a duration (or a scenario count) is reached:

=========================  ======  =============================================================
scenario                   weight  what one run does (every answer is checked, not just its status)
=========================  ======  =============================================================
``cold_search_email``      35 %    search without playbooks → an outreach email to the top
                                   worker from a template → ``/v1/validate`` kind ``email``
``surge_fill_validate``    15 %    search with ``filters`` {role, state}, k 10 → a fill proposal of
                                   every hit for that demand → ``/v1/validate`` kind ``fill``
                                   (validatord checks each worker against the roster in queryd)
``profile_swap``           15 %    search → the same search with ``exclude_ids`` = its answer;
                                   no overlap, not empty
``repeat_cache``           15 %    the same query × 5; the same answer each time
``sms_validate``           10 %    an SMS from a template (≤ 160 chars, a phone number in the text
                                   for the SSN guard) → ``/v1/validate`` kind ``sms``
``playbook_record_replay`` 10 %    search (``use_playbook``) → record its top answer (score 1) →
                                   the same search again: that answer comes back ``boosted``
=========================  ======  =============================================================

The mix is exact, not sampled: scenarios are dealt from a 20-slot smooth weighted round robin
over one shared counter, so even a short run exercises all six. Queries come from a seeded pool
(`queries`, default 200 distinct texts, like the original harness's body variety) drawn from
the roster's real (role, city, state) groups — read once from queryd at the start — so a fill
demand always has workers to match; after a text's first use its embedding is an embedd cache
hit, and a larger pool measures more model inference.

A scenario fails on a transport error, an error answer, an answer that breaks its contract
(pydantic models of `lakehouse_common.contracts`), or a check above; failures are counted per
reason. The report has, per scenario, count, failures, failure rate, p50/p99 of the whole
scenario and its HTTP requests, and the validator pass counts per kind.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import pydantic

from lakehouse_common.config import ClientSettings
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.contracts.matrix import SearchResponse
from lakehouse_common.errors import LakehouseError, UpstreamTimeout, UpstreamUnavailable
from lakehouse_common.http import HttpClient, ServiceClient, bearer
from lakehouse_common.ops.loadgen import percentile, require_loopback
from lakehouse_common.ops.roster import CITIES

Answer = TypeVar("Answer")


@dataclass(frozen=True)
class Scenario:
    name: str
    weight: int  # percent of the mix (SPEC §9)
    summary: str


SCENARIOS: Final[tuple[Scenario, ...]] = (
    Scenario("cold_search_email", 35, "search + email to the top worker + validate"),
    Scenario("surge_fill_validate", 15, "search {role, state} + fill proposal + validate"),
    Scenario("profile_swap", 15, "search + the same search with exclude_ids, no overlap"),
    Scenario("repeat_cache", 15, "the same query x5, the same answer"),
    Scenario("sms_validate", 10, "SMS draft + validate"),
    Scenario("playbook_record_replay", 10, "search + record top answer + boosted replay"),
)
SCENARIO_NAMES: Final = tuple(s.name for s in SCENARIOS)
VALIDATOR_KINDS: Final = ("email", "fill", "sms")

SEARCH_K: Final = 5
SURGE_K: Final = 10
REPEATS: Final = 5
# Failure messages kept per (scenario, reason): enough to debug, bounded under load.
_EXAMPLES_PER_REASON: Final = 3


def dealing_order(scenarios: Sequence[Scenario] = SCENARIOS) -> list[str]:
    """One cycle of the smooth weighted round robin (nginx's): each scenario appears in
    proportion to its weight, spread out rather than in runs. 35/15/15/15/10/10 → 20 slots."""
    gcd = 0
    for s in scenarios:
        gcd = _gcd(gcd, s.weight)
    weights = {s.name: s.weight // gcd for s in scenarios}
    total = sum(weights.values())
    current = dict.fromkeys(weights, 0)
    order = []
    for _ in range(total):
        for name, weight in weights.items():
            current[name] += weight
        best = max(current, key=lambda n: current[n])
        current[best] -= total
        order.append(best)
    return order


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


# -- the query pool ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterGroup:
    role: str
    city: str
    state: str
    workers: int


@dataclass(frozen=True)
class Query:
    text: str
    role: str
    city: str
    state: str


def _plural(role: str) -> str:
    return role if role.endswith("s") else role + "s"


def query_pool(groups: Sequence[RosterGroup], size: int, seed: int) -> list[Query]:
    """Up to `size` distinct demand texts ("Need 3 Forklift Operators in Aurora IL") for
    (role, city, state) groups drawn in proportion to their worker counts."""
    if not groups:
        raise ValueError("the roster is empty")
    rng = random.Random(seed)
    weights = [g.workers for g in groups]
    pool: dict[str, Query] = {}
    attempts = 0
    while len(pool) < size and attempts < size * 20:
        attempts += 1
        group = rng.choices(groups, weights)[0]
        count = rng.randint(1, 5)
        noun = group.role if count == 1 else _plural(group.role)
        text = f"Need {count} {noun} in {group.city} {group.state}"
        pool.setdefault(text, Query(text, group.role, group.city, group.state))
    return list(pool.values())


_AREA_CODES: Final = {(c.name, c.state): c.area_codes for c in CITIES}


def sms_draft(query: Query, rng: random.Random) -> dict[str, str]:
    area = rng.choice(_AREA_CODES.get((query.city, query.state), ("312",)))
    line = f"555-01{rng.randrange(100):02d}"
    body = (
        f"{query.role} shift in {query.city} {query.state}, Mon 7am. "
        f"Reply YES to confirm or call {area}-{line}."
    )
    return {"to": f"({area}) {line}", "body": body[:160]}


def email_draft(query: Query, worker_id: str, meta: Mapping[str, Any]) -> dict[str, str]:
    city = meta.get("city") or query.city
    state = meta.get("state") or query.state
    return {
        "to": f"{worker_id}@example.com",
        "subject": f"{query.role} shift near {query.city}, {query.state}",
        "body": (
            f"Hello,\n\nWe have an opening for a {query.role} near {query.city}, "
            f"{query.state}, starting Monday. Your profile ({worker_id}, {city} {state}) is "
            "a strong match. Reply to this email or call 312-555-0142 to confirm.\n\n"
            "The staffing team"
        ),
    }


# -- the run ----------------------------------------------------------------------------------


class ScenarioFailed(Exception):
    """A check of a scenario failed; `reason` is its stable key in the report."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class HarnessError(Exception):
    """The harness cannot start (unreachable gateway, no roster, a roster of another size)."""


@dataclass(frozen=True)
class MixConfig:
    gateway: str
    concurrency: int = 10
    duration_s: float = 30.0
    max_scenarios: int | None = None
    workers: int | None = None  # expected roster size; None: whatever the index holds
    index: str = "workers"
    dataset: str = "workers"
    queries: int = 200
    seed: int = 9
    token: str | None = None
    timeout_s: float = 30.0


@dataclass
class ScenarioStats:
    count: int = 0
    failures: int = 0
    requests: int = 0
    latencies_s: list[float] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        return {
            "count": self.count,
            "failures": self.failures,
            "failure_rate": self.failures / self.count if self.count else 0.0,
            "requests": self.requests,
            "p50_ms": round(percentile(ordered, 50) * 1000, 3),
            "p99_ms": round(percentile(ordered, 99) * 1000, 3),
            "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 3),
            "failure_reasons": dict(self.reasons.most_common()),
            "failure_examples": self.examples,
        }


@dataclass
class MixReport:
    gateway: str
    index: str
    workers: int
    concurrency: int
    duration_s: float
    max_scenarios: int | None
    queries: int
    elapsed_s: float = 0.0
    scenarios: dict[str, ScenarioStats] = field(
        default_factory=lambda: {name: ScenarioStats() for name in SCENARIO_NAMES}
    )
    validator: dict[str, Counter[str]] = field(
        default_factory=lambda: {kind: Counter() for kind in VALIDATOR_KINDS}
    )

    @property
    def total(self) -> int:
        return sum(s.count for s in self.scenarios.values())

    @property
    def failures(self) -> int:
        return sum(s.failures for s in self.scenarios.values())

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.scenarios.values())

    def per_second(self, n: int) -> float:
        return n / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (`lakehouse multitier` prints it on stderr)."""
        return {
            "gateway": self.gateway,
            "index": self.index,
            "workers": self.workers,
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "max_scenarios": self.max_scenarios,
            "queries": self.queries,
            "elapsed_s": round(self.elapsed_s, 3),
            "scenarios": self.total,
            "failures": self.failures,
            "requests": self.requests,
            "scenarios_per_s": round(self.per_second(self.total), 1),
            "requests_per_s": round(self.per_second(self.requests), 1),
            "per_scenario": {name: s.to_dict() for name, s in self.scenarios.items()},
            "validator": {
                kind: {"passed": c["passed"], "failed": c["failed"]}
                for kind, c in self.validator.items()
            },
        }

    def table(self) -> str:
        """The human report (`lakehouse multitier` prints it on stdout)."""
        lines = [
            f"multitier via {self.gateway}: {self.workers:,} workers in index {self.index!r}, "
            f"concurrency {self.concurrency}, {self.elapsed_s:.1f} s, {self.queries} query texts",
            "",
            f"  {'scenario':<24} {'weight':>6} {'count':>9} {'failed':>7} {'fail %':>7} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'requests':>9}",
        ]
        for scenario in SCENARIOS:
            s = self.scenarios[scenario.name].to_dict()
            lines.append(
                f"  {scenario.name:<24} {scenario.weight:>5}% {s['count']:>9,} "
                f"{s['failures']:>7,} {100 * s['failure_rate']:>6.2f}% {s['p50_ms']:>8.2f} "
                f"{s['p99_ms']:>8.2f} {s['requests']:>9,}"
            )
        lines += [
            f"  {'total':<24} {'':>6} {self.total:>9,} {self.failures:>7,} "
            f"{100 * self.failures / max(1, self.total):>6.2f}% {'':>8} {'':>8} "
            f"{self.requests:>9,}",
            "",
            f"  {self.per_second(self.total):,.1f} scenarios/s, "
            f"{self.per_second(self.requests):,.1f} HTTP requests/s",
            "  validator passes: "
            + ", ".join(
                f"{kind} {c['passed']:,} passed / {c['failed']:,} failed"
                for kind, c in self.validator.items()
            ),
        ]
        for name, stats in self.scenarios.items():
            for reason, n in stats.reasons.most_common():
                example = (stats.examples.get(reason) or [""])[0]
                lines.append(f"  ! {name}: {reason} x{n}  {example[:160]}")
        return "\n".join(lines)


class _Gateway(ServiceClient):
    """The gateway for one scenario run: counts its HTTP requests, remembers the last answer's
    status, and turns a transport failure into the scenario's failure."""

    def __init__(self, http: HttpClient, gateway_url: str) -> None:
        super().__init__(http, "gateway", gateway_url)
        self.requests = 0
        self.last = ""
        self.status = 0

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        self.requests += 1
        self.last = f"{method} {path}"
        try:
            answer = await super().request(
                method,
                path,
                json=json,
                data=data,
                params=params,
                headers=headers,
                timeout_s=timeout_s,
            )
        except (UpstreamUnavailable, UpstreamTimeout) as exc:
            kind = "timeout" if isinstance(exc, UpstreamTimeout) else "unreachable"
            raise ScenarioFailed(f"transport {kind}", f"{self.last}: {exc}") from exc
        self.status = answer[0]
        return answer


class _Trip(Clients):
    """One scenario run: every area's typed client, all through one counting gateway client."""

    def __init__(self, http: HttpClient, gateway_url: str) -> None:
        super().__init__(http, lambda _daemon: gateway_url)
        self.gateway = _Gateway(http, gateway_url)

    @property
    def requests(self) -> int:
        return self.gateway.requests

    def service(self, daemon: str) -> ServiceClient:
        return self.gateway


class Harness:
    """The mix against one gateway over one pooled aiohttp client, through the typed clients of
    `lakehouse_common.contracts` (the gateway forwards their paths unchanged)."""

    def __init__(self, config: MixConfig, http: HttpClient) -> None:
        self.config = config
        self.http = http
        self.pool: list[Query] = []
        self.workers = 0

    def trip(self) -> _Trip:
        return _Trip(self.http, self.config.gateway)

    @staticmethod
    async def call(trip: _Trip, answer: Awaitable[Answer]) -> Answer:
        """A typed client's call: an error answer or one that breaks its contract fails the
        scenario, named by the status and code (or ``contract``)."""
        try:
            return await answer
        except LakehouseError as exc:
            raise ScenarioFailed(
                f"HTTP {trip.gateway.status} {exc.code}", f"{trip.gateway.last}: {exc.message}"
            ) from exc
        except pydantic.ValidationError as exc:
            raise ScenarioFailed(
                "contract", f"{trip.gateway.last}: {exc.errors()[0]['msg']}"
            ) from exc

    # -- set-up ---------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Check the roster, read its (role, city, state) groups, build the query pool."""
        setup = self.trip()
        try:
            info = await self.call(setup, setup.vectors().get_index(self.config.index))
        except ScenarioFailed as exc:
            raise HarnessError(
                f"cannot read index {self.config.index!r} through {self.config.gateway} "
                f"({exc}); load the roster first: lakehouse demo load --workers N"
            ) from None
        if self.config.workers is not None and info.count != self.config.workers:
            raise HarnessError(
                f"index {self.config.index!r} holds {info.count:,} workers, not "
                f"{self.config.workers:,}: run lakehouse demo load --workers "
                f"{self.config.workers}"
            )
        self.workers = info.count
        sql = (
            f'SELECT role, city, state, count(*) AS n FROM "{self.config.dataset}" '
            "GROUP BY role, city, state ORDER BY n DESC, role, city, state"
        )
        try:
            answer = await self.call(setup, setup.query().query(sql, limit=100_000))
        except ScenarioFailed as exc:
            raise HarnessError(
                f"cannot read the roster dataset {self.config.dataset!r} through queryd ({exc})"
            ) from None
        groups = [RosterGroup(str(r), str(c), str(s), int(n)) for r, c, s, n in answer.rows]
        if not groups:
            raise HarnessError(f"the dataset {self.config.dataset!r} is empty")
        self.pool = query_pool(groups, self.config.queries, self.config.seed)

    # -- scenarios ------------------------------------------------------------------------

    async def search(self, trip: _Trip, query: Query, **fields: Any) -> SearchResponse:
        return await self.call(
            trip,
            trip.matrix().search(
                query.text, query_role=query.role, index=self.config.index, **fields
            ),
        )

    async def validate(
        self, trip: _Trip, report: MixReport, kind: str, payload: dict[str, Any]
    ) -> None:
        answer = await self.call(trip, trip.validate().validate(kind, payload))
        report.validator[kind]["passed" if answer.valid else "failed"] += 1
        if not answer.valid:
            first = answer.errors[0].to_wire() if answer.errors else {}
            raise ScenarioFailed(f"{kind} rejected by the validator", str(first))

    async def cold_search_email(self, trip: _Trip, rng: random.Random, r: MixReport) -> None:
        query = rng.choice(self.pool)
        found = await self.search(trip, query, k=SEARCH_K)
        if not found.results:
            raise ScenarioFailed("empty search answer", query.text)
        top = found.results[0]
        await self.validate(trip, r, "email", email_draft(query, top.id, top.metadata))

    async def surge_fill_validate(self, trip: _Trip, rng: random.Random, r: MixReport) -> None:
        query = rng.choice(self.pool)
        found = await self.search(
            trip, query, k=SURGE_K, filters={"role": query.role, "state": query.state}
        )
        if not found.results:
            raise ScenarioFailed("no workers for the fill", query.text)
        workers = [
            {"id": hit.id, "role": hit.metadata.get("role"), "state": hit.metadata.get("state")}
            for hit in found.results
        ]
        demand = {
            "role": query.role,
            "city": query.city,
            "state": query.state,
            "count": len(workers),
        }
        await self.validate(trip, r, "fill", {"demand": demand, "workers": workers})

    async def profile_swap(self, trip: _Trip, rng: random.Random, r: MixReport) -> None:
        query = rng.choice(self.pool)
        first = await self.search(trip, query, k=SEARCH_K)
        seen = [hit.id for hit in first.results]
        swapped = await self.search(trip, query, k=SEARCH_K, exclude_ids=seen)
        overlap = set(seen) & {hit.id for hit in swapped.results}
        if overlap:
            raise ScenarioFailed("excluded ids came back", ", ".join(sorted(overlap)))
        if not swapped.results:
            raise ScenarioFailed("empty swap answer", query.text)

    async def repeat_cache(self, trip: _Trip, rng: random.Random, r: MixReport) -> None:
        query = rng.choice(self.pool)
        answers = [
            [hit.id for hit in (await self.search(trip, query, k=SEARCH_K)).results]
            for _ in range(REPEATS)
        ]
        if any(a != answers[0] for a in answers[1:]):
            raise ScenarioFailed("repeated query answered differently", query.text)

    async def sms_validate(self, trip: _Trip, rng: random.Random, r: MixReport) -> None:
        await self.validate(trip, r, "sms", sms_draft(rng.choice(self.pool), rng))

    async def playbook_record_replay(self, trip: _Trip, rng: random.Random, r: MixReport) -> None:
        query = rng.choice(self.pool)
        cold = await self.search(trip, query, k=SEARCH_K, use_playbook=True)
        if not cold.results:
            raise ScenarioFailed("empty search answer", query.text)
        answer_id = cold.results[0].id
        await self.call(
            trip,
            trip.matrix().record_playbook(
                query.text, query.role, answer_id, 1.0, index=self.config.index
            ),
        )
        warm = await self.search(trip, query, k=SEARCH_K, use_playbook=True)
        hit = next((h for h in warm.results if h.id == answer_id), None)
        if hit is None or not hit.boosted:
            raise ScenarioFailed("recorded answer not boosted on replay", answer_id)

    # -- driving ----------------------------------------------------------------------------

    async def run(self, report: MixReport) -> None:
        handlers: dict[str, Callable[[_Trip, random.Random, MixReport], Awaitable[None]]] = {
            name: getattr(self, name) for name in SCENARIO_NAMES
        }
        order = dealing_order()
        dealt = 0
        max_scenarios = self.config.max_scenarios
        began = time.perf_counter()
        deadline = began + self.config.duration_s

        async def worker(number: int) -> None:
            nonlocal dealt
            rng = random.Random(self.config.seed * 1_000_003 + number)
            while time.perf_counter() < deadline:
                if max_scenarios is not None and dealt >= max_scenarios:
                    return
                name = order[dealt % len(order)]
                dealt += 1
                stats = report.scenarios[name]
                trip = self.trip()
                started = time.perf_counter()
                try:
                    await handlers[name](trip, rng, report)
                except ScenarioFailed as exc:
                    stats.failures += 1
                    stats.reasons[exc.reason] += 1
                    kept = stats.examples.setdefault(exc.reason, [])
                    if len(kept) < _EXAMPLES_PER_REASON:
                        kept.append(exc.detail[:300])
                stats.latencies_s.append(time.perf_counter() - started)
                stats.count += 1
                stats.requests += trip.requests

        await asyncio.gather(*(worker(n) for n in range(self.config.concurrency)))
        report.elapsed_s = time.perf_counter() - began


async def run_mix(config: MixConfig) -> MixReport:
    """Prepare and run the mix; raises ValueError (bad config) or HarnessError (bad stack)."""
    require_loopback(config.gateway)
    if config.concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if config.duration_s <= 0:
        raise ValueError("duration must be > 0 seconds")
    if config.max_scenarios is not None and config.max_scenarios < 1:
        raise ValueError("the scenario bound must be >= 1")
    if config.queries < 1:
        raise ValueError("the query pool needs at least 1 text")
    settings = ClientSettings(
        pool_size=config.concurrency, timeout_s=config.timeout_s, connect_retries=0
    )
    async with HttpClient(settings, headers=bearer(config.token)) as http:
        harness = Harness(config, http)
        await harness.prepare()
        report = MixReport(
            gateway=config.gateway,
            index=config.index,
            workers=harness.workers,
            concurrency=config.concurrency,
            duration_s=config.duration_s,
            max_scenarios=config.max_scenarios,
            queries=len(harness.pool),
        )
        await harness.run(report)
    return report
