"""The big load run of issue 9 → reports/load_big.md (SPEC §9 "Load tools").

One command: `.venv/bin/python scripts/bench/load_big.py` (also part of `make bench`). It

1. starts every daemon on free ports with a throwaway data dir (the stack code `make run` uses);
2. loads the demo roster with `lakehouse demo load --workers N` (generate → ingest → index with
   the local model: 65 rows/s on this 2-core machine, so 100k workers take ~26 min);
3. drives `POST /v1/matrix/search` through the gateway for DURATION at concurrency C with
   `lakehouse loadgen`'s generator, rotating over a pool of query texts drawn from the roster
   (each text's embedding is warmed once first, so the run measures the serving path, not
   model inference), then a bare FastAPI endpoint answering a body of the same size
   (scripts/bench/bare_server.py) with the same generator, for comparison on the same machine;
4. runs the multitier mix (`lakehouse multitier`) for DURATION at concurrency C;
5. samples the VmRSS of every daemon (the pids in the stack's pid files, plus any children)
   once a second throughout, and writes totals, errors (goal: 0), RPS, latencies and memory.

Sizes and durations come from the environment, for a quick check of the script:

    LOAD_BIG_WORKERS=2000 LOAD_BIG_DURATION_S=20 .venv/bin/python scripts/bench/load_big.py

LOAD_BIG_WORKERS (100000), LOAD_BIG_DURATION_S (300), LOAD_BIG_BARE_DURATION_S (min(60,
DURATION)), LOAD_BIG_CONCURRENCY (50), LOAD_BIG_QUERIES (200), LOAD_BIG_REPORT
(reports/load_big.md). Exits 1 when any request or scenario failed (the report is written
anyway).
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from bare_server import start as start_bare

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.matrix import SEARCH
from lakehouse_common.contracts.query import QUERY
from lakehouse_common.ops.loadgen import LoadSummary, generate_load
from lakehouse_common.ops.scenario_mix import (
    SCENARIOS,
    MixConfig,
    MixReport,
    RosterGroup,
    query_pool,
    run_mix,
)
from lakehouse_common.ops.stack import (
    ephemeral_config,
    pid_file,
    read_pid,
    start_stack,
    stop_stack,
)
from lakehouse_common.topology import DAEMON_NAMES

ROOT = Path(__file__).resolve().parents[2]
FULL_WORKERS = 100_000
FULL_DURATION_S = 300.0
WORKERS = int(os.environ.get("LOAD_BIG_WORKERS", FULL_WORKERS))
DURATION_S = float(os.environ.get("LOAD_BIG_DURATION_S", FULL_DURATION_S))
BARE_DURATION_S = float(os.environ.get("LOAD_BIG_BARE_DURATION_S", min(60.0, DURATION_S)))
CONCURRENCY = int(os.environ.get("LOAD_BIG_CONCURRENCY", "50"))
QUERIES = int(os.environ.get("LOAD_BIG_QUERIES", "200"))
REPORT = Path(os.environ.get("LOAD_BIG_REPORT", ROOT / "reports" / "load_big.md"))
SEED = 9
MIB = 1024 * 1024


def _say(text: str) -> None:
    sys.stdout.write(f"[load_big {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stdout.flush()


# -- memory -----------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """VmRSS of one process (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pids: set[int]) -> set[int]:
    """Every descendant of `pids` (a daemon that forks workers counts them too)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            parents[int(stat.parent.name)] = int(raw[raw.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def daemon_pids(settings: LakehouseSettings) -> dict[str, int]:
    pids = {}
    for name in DAEMON_NAMES:
        record = read_pid(pid_file(settings, name))
        if record is not None:
            pids[name] = record.pid
    return pids


def daemon_rss(pids: dict[str, int]) -> dict[str, int]:
    return {
        name: rss_bytes(pid) + sum(rss_bytes(child) for child in _children({pid}))
        for name, pid in pids.items()
    }


@dataclass
class RssSampler:
    """Samples every daemon's RSS once a second in a thread; keeps per-daemon and total peaks."""

    pids: dict[str, int]
    peak: dict[str, int] = field(default_factory=dict)
    peak_total: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            now = daemon_rss(self.pids)
            for name, value in now.items():
                self.peak[name] = max(self.peak.get(name, 0), value)
            self.peak_total = max(self.peak_total, sum(now.values()))
            self.samples += 1
            self._stop.wait(1.0)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# -- the run ----------------------------------------------------------------------------------


def _search_bodies(gateway: str) -> list[bytes]:
    sql = (
        "SELECT role, city, state, count(*) AS n FROM workers "
        "GROUP BY role, city, state ORDER BY n DESC, role, city, state"
    )
    resp = httpx.post(gateway + QUERY, json={"sql": sql, "limit": 100_000}, timeout=120)
    resp.raise_for_status()
    groups = [RosterGroup(r, c, s, int(n)) for r, c, s, n in resp.json()["rows"]]
    return [
        orjson.dumps({"query_text": q.text, "query_role": q.role, "k": 5, "use_playbook": True})
        for q in query_pool(groups, QUERIES, SEED)
    ]


def _load(url: str, bodies: list[bytes], duration_s: float) -> LoadSummary:
    return asyncio.run(
        generate_load(
            url,
            concurrency=CONCURRENCY,
            duration_s=duration_s,
            method="POST",
            bodies=bodies,
            headers={"Content-Type": "application/json"},
        )
    )


@dataclass
class Figures:
    workers: int = 0
    index_s: float = 0.0
    body_size: int = 0
    search: LoadSummary | None = None
    bare: LoadSummary | None = None
    mix: MixReport | None = None
    rss_idle: dict[str, int] = field(default_factory=dict)
    rss_search: RssSampler | None = None
    rss_mix: RssSampler | None = None
    rss_bare: int = 0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)


def run() -> Figures:
    figures = Figures(workers=WORKERS)
    with tempfile.TemporaryDirectory(prefix="lh-load-big-") as tmp:
        cfg, settings = ephemeral_config(Path(tmp), {"server": {"log_level": "warning"}})
        bare_proc: subprocess.Popen[bytes] | None = None
        try:
            _say(f"starting the stack (data: {settings.data_dir})")
            start_stack(settings, config_path=cfg, timeout_s=300, echo=lambda _: None)
            _say(f"loading the demo roster: {WORKERS:,} workers (generate, ingest, index)")
            began = time.perf_counter()
            subprocess.run(
                [str(Path(sys.executable).with_name("lakehouse")), "demo", "load"]
                + ["--workers", str(WORKERS), "--config", str(cfg)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            figures.index_s = time.perf_counter() - began
            gateway = settings.url_of("gateway")
            search_url = gateway + SEARCH
            bodies = _search_bodies(gateway)
            _say(f"warming {len(bodies)} query embeddings")
            warm = asyncio.run(
                generate_load(
                    search_url,
                    concurrency=4,
                    duration_s=600,
                    max_requests=len(bodies),
                    method="POST",
                    bodies=bodies,
                    headers={"Content-Type": "application/json"},
                )
            )
            if warm.errors:
                raise RuntimeError(f"warm-up failed: {warm.to_dict()}")
            figures.body_size = len(httpx.post(search_url, content=bodies[0], timeout=60).content)
            pids = daemon_pids(settings)
            figures.rss_idle = daemon_rss(pids)
            figures.load_average = os.getloadavg()

            _say(f"search: {DURATION_S:g} s at concurrency {CONCURRENCY}")
            with RssSampler(pids) as sampler:
                figures.search = _load(search_url, bodies, DURATION_S)
            figures.rss_search = sampler

            bare_proc, bare_url = start_bare(figures.body_size)
            _say(f"bare endpoint: {BARE_DURATION_S:g} s at concurrency {CONCURRENCY}")
            figures.bare = _load(bare_url, bodies, BARE_DURATION_S)
            figures.rss_bare = rss_bytes(bare_proc.pid)

            _say(f"multitier mix: {DURATION_S:g} s at concurrency {CONCURRENCY}")
            mix = MixConfig(
                gateway=gateway,
                concurrency=CONCURRENCY,
                duration_s=DURATION_S,
                workers=WORKERS,
                queries=QUERIES,
                seed=SEED,
            )
            with RssSampler(pids) as sampler:
                figures.mix = asyncio.run(run_mix(mix))
            figures.rss_mix = sampler
        finally:
            if bare_proc is not None:
                bare_proc.terminate()
                bare_proc.wait()
            stop_stack(settings, grace_s=10, echo=lambda _: None)
    return figures


# -- the report -------------------------------------------------------------------------------


def _mib(value: int) -> str:
    return f"{value / MIB:,.0f}"


def _load_row(label: str, run: LoadSummary) -> str:
    lat = run.latency_ms()
    return (
        f"| {label} | {run.elapsed_s:.0f} s | {run.requests:,} | {run.errors:,} | {run.rps:,.0f} "
        f"| {lat['p50']:.1f} | {lat['p95']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} |\n"
    )


def report(f: Figures) -> str:
    assert f.search and f.bare and f.mix and f.rss_search and f.rss_mix
    full = WORKERS == FULL_WORKERS and DURATION_S == FULL_DURATION_S
    errors = f.search.errors + f.mix.failures
    out = [
        "# Big load run (issue 9)\n\n",
        f"Generated by `scripts/bench/load_big.py` on {time.strftime('%Y-%m-%d')}: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        "Every daemon of the stack as one uvicorn process on loopback (fs storage backend, "
        "local embedding model), the load client in one more process on the same cores. "
        "Load average (1/5/15 min) before the search run: "
        + "/".join(f"{x:.1f}" for x in f.load_average)
        + " (other work on the machine shows here).\n\n",
        "Reproduce: `.venv/bin/python scripts/bench/load_big.py` (the full run: 100,000 workers, "
        "300 s per phase, concurrency 50; indexing the roster alone took ~26 min (65 rows/s) on "
        "this idle 2-core machine; the whole run ~38 min). A quick check of the script: "
        "`LOAD_BIG_WORKERS=2000 "
        "LOAD_BIG_DURATION_S=20 .venv/bin/python scripts/bench/load_big.py`.\n\n",
    ]
    if not full:
        out.append(
            f"> **Reduced run** ({WORKERS:,} workers, {DURATION_S:g} s per phase): a check of "
            "the script, not the issue-9 figure. Run the command above without variables for "
            "that.\n\n"
        )
    out += [
        f"**Errors: {errors:,}** (goal 0) — {f.search.errors:,} in the search run, "
        f"{f.mix.failures:,} failed scenarios in the mix.\n\n",
        f"Roster: {f.workers:,} demo workers, generated, ingested and indexed by "
        f"`lakehouse demo load` in {f.index_s:,.0f} s ({f.workers / f.index_s:,.0f} rows/s).\n\n",
        f"## `POST {SEARCH}`, concurrency {CONCURRENCY}\n\n",
        f"Through the gateway, `k` 5, `use_playbook`, rotating over {QUERIES} query texts drawn "
        "from the roster's (role, city, state) groups (each embedding warmed once before the "
        "run, so this is the serving path: matrixd's query-embedding cache → one vectord request "
        f"with the HNSW and playbook searches → re-rank → batched observerd report). The "
        f"bare endpoint answers a fixed {f.body_size:,}-byte "
        "JSON body from one FastAPI route, driven by the same generator right after.\n\n",
        "| path | time | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |\n",
        "|---|---|---|---|---|---|---|---|---|\n",
        _load_row("matrix search via gateway", f.search),
        _load_row("bare FastAPI endpoint", f.bare),
        f"\nThroughput ratio search / bare: **{f.search.rps / max(f.bare.rps, 1e-9):.2f}**. "
        f"Statuses: {f.search.to_dict()['statuses']}; transport errors: "
        f"{f.search.to_dict()['transport_errors'] or 'none'}.\n\n",
        f"## Multitier mix, concurrency {CONCURRENCY}\n\n",
        f"`lakehouse multitier` for {f.mix.elapsed_s:.0f} s: **{f.mix.total:,} scenarios** "
        f"({f.mix.per_second(f.mix.total):,.0f}/s) making {f.mix.requests:,} HTTP requests "
        f"({f.mix.per_second(f.mix.requests):,.0f}/s), **{f.mix.failures:,} failed**. "
        "Latencies are of the whole scenario (all its requests).\n\n",
        "| scenario | weight | count | failed | fail % | p50 ms | p99 ms | requests |\n",
        "|---|---|---|---|---|---|---|---|\n",
    ]
    for scenario in SCENARIOS:
        s = f.mix.scenarios[scenario.name].to_dict()
        out.append(
            f"| {scenario.name} | {scenario.weight} % | {s['count']:,} | {s['failures']:,} | "
            f"{100 * s['failure_rate']:.2f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
            f"{s['requests']:,} |\n"
        )
    out.append(
        "\nValidator passes: "
        + ", ".join(
            f"{kind} {c['passed']:,} passed / {c['failed']:,} failed"
            for kind, c in f.mix.validator.items()
        )
        + ".\n"
    )
    reasons = [
        f"- {name}: {reason} × {n} (e.g. `{(stats.examples.get(reason) or [''])[0][:200]}`)\n"
        for name, stats in f.mix.scenarios.items()
        for reason, n in stats.reasons.most_common()
    ]
    if reasons:
        out += ["\nFailure reasons:\n\n", *reasons]
    out += [
        "\n## Memory (VmRSS, MiB)\n\n",
        "Per daemon: after the roster was loaded and warmed, and the peak of the once-a-second "
        "samples during each run; the total row is the largest sum of one sample (the "
        "daemons' peaks need not coincide).\n\n",
        "| daemon | idle | peak during search | peak during mix |\n|---|---|---|---|\n",
    ]
    for name in f.rss_idle:
        out.append(
            f"| {name} | {_mib(f.rss_idle[name])} | {_mib(f.rss_search.peak.get(name, 0))} | "
            f"{_mib(f.rss_mix.peak.get(name, 0))} |\n"
        )
    out += [
        f"| **total ({len(f.rss_idle)} daemons)** | **{_mib(sum(f.rss_idle.values()))}** | "
        f"**{_mib(f.rss_search.peak_total)}** | **{_mib(f.rss_mix.peak_total)}** |\n",
        f"\nThe bare endpoint process: {_mib(f.rss_bare)} MiB.\n",
    ]
    return "".join(out)


def main() -> int:
    figures = run()
    text = report(figures)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    sys.stdout.write(text)
    assert figures.search is not None and figures.mix is not None
    return 1 if figures.search.errors or figures.mix.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
