"""`/v1/matrix/search` through the gateway on the demo roster → reports/matrix_bench.md (issue 5).

Starts the whole stack on free ports with a throwaway data dir, loads the demo roster with
`lakehouse demo load` (the same code `make run` uses; default 20 000 workers, `MATRIX_BENCH_WORKERS`
to change), records one playbook so the boosted path runs, then drives the search at concurrency
1, 10 and 50 — each run interleaved with a bare FastAPI endpoint answering a fixed body of the
same size, so the ratio is measured under the same machine load. The query text is fixed, so its
embedding comes from matrixd's query cache after the first call: the figure is matrixd's own path
(cached embedding → one vectord request with the organic and playbook searches → re-rank →
batched observerd report) plus the gateway hop, not the model's inference (see
reports/retrieval_bench.md for that).

Each run is also interleaved with the *null chain* (scripts/bench/null_chain.py): the same
three processes and hops — gateway-shaped proxy → matrixd-shaped handler → vectord-shaped
handler, bodies of the same sizes — doing no work. Its ratio to the bare endpoint is the most
this architecture allows on the machine, whatever the daemons do.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bare_server import start as start_bare
from null_chain import start as start_null_chain

from lakehouse_common.contracts.matrix import RECORD, SEARCH
from lakehouse_common.ops.loadgen import LoadResult, drive
from lakehouse_common.ops.stack import ephemeral_config, start_stack, stop_stack

ROOT = Path(__file__).resolve().parents[2]
WORKERS = int(os.environ.get("MATRIX_BENCH_WORKERS", "20000"))
RUNS = 5
CONCURRENCY = (1, 10, 50)
REQUESTS = {1: 300, 10: 1500, 50: 2500}
QUERY = {
    "query_text": "Need 3 Forklift Operators in Aurora IL",
    "query_role": "Forklift Operator",
    "k": 5,
    "use_playbook": True,
}


def _row(label: str, runs: list[LoadResult]) -> tuple[str, float]:
    rps = statistics.median(r.rps for r in runs)
    p50 = statistics.median(r.percentile_ms(50) for r in runs)
    p99 = statistics.median(r.percentile_ms(99) for r in runs)
    line = (
        f"| {label} | {rps:,.0f} | {p50:.1f} | {p99:.1f} | 0 | "
        f"{', '.join(f'{r.rps:,.0f}' for r in runs)} |\n"
    )
    return line, rps


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="lh-matrix-bench-") as tmp:
        cfg, settings = ephemeral_config(Path(tmp), {"server": {"log_level": "warning"}})
        bare_proc: subprocess.Popen[bytes] | None = None
        chain_procs: list[subprocess.Popen[bytes]] = []
        try:
            start_stack(settings, config_path=cfg, timeout_s=300, echo=lambda _: None)
            subprocess.run(
                [
                    str(Path(sys.executable).with_name("lakehouse")),
                    "demo",
                    "load",
                    "--workers",
                    str(WORKERS),
                    "--config",
                    str(cfg),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            gateway = settings.url_of("gateway")
            url = gateway + SEARCH
            with httpx.Client(timeout=60) as client:
                first = client.post(url, json=QUERY)
                first.raise_for_status()
                client.post(
                    gateway + RECORD,
                    json={
                        "query_text": QUERY["query_text"],
                        "role": QUERY["query_role"],
                        "answer_id": first.json()["results"][0]["id"],
                        "score": 1.0,
                    },
                ).raise_for_status()
                size = len(client.post(url, json=QUERY).content)
            bare_proc, bare = start_bare(size)
            chain_procs, chain = start_null_chain(size)
            targets = {"ours": url, "bare": bare, "chain": chain}
            for target in targets.values():
                drive(target, requests=200, concurrency=10, method="POST", json=QUERY)
            runs: dict[str, dict[int, list[LoadResult]]] = {
                name: {c: [] for c in CONCURRENCY} for name in targets
            }
            for _ in range(RUNS):
                for c in CONCURRENCY:
                    for name, target in targets.items():
                        runs[name][c].append(
                            drive(
                                target,
                                requests=REQUESTS[c],
                                concurrency=c,
                                method="POST",
                                json=QUERY,
                            )
                        )
        finally:
            for proc in [p for p in (bare_proc, *chain_procs) if p is not None]:
                proc.terminate()
                proc.wait()
            stop_stack(settings, grace_s=5, echo=lambda _: None)

    lines = []
    for c in CONCURRENCY:
        ours_line, ours_rps = _row(f"matrix search, c={c}", runs["ours"][c])
        base_line, base_rps = _row(f"bare endpoint, c={c}", runs["bare"][c])
        chain_line, chain_rps = _row(f"null chain, c={c}", runs["chain"][c])
        lines += [
            ours_line,
            base_line,
            f"| **ratio c={c}** (search / bare) | **{ours_rps / base_rps:.2f}** |||||\n",
            chain_line,
            f"| null chain / bare, c={c} (the ceiling) | {chain_rps / base_rps:.2f} |||||\n",
            f"| search / null chain, c={c} | {ours_rps / chain_rps:.2f} |||||\n",
        ]
    report = ROOT / "reports" / "matrix_bench.md"
    report.write_text(
        "# Matrix search benchmark\n\n"
        "Generated by `make bench` (scripts/bench/matrix_bench.py) on "
        f"{time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. `POST {SEARCH}` through the gateway on a "
        f"{WORKERS:,}-worker demo roster (k=5, `use_playbook` with one recording for the role, "
        "so the playbook lookup and boost run), one uvicorn worker per daemon, closed-loop "
        f"client on the same machine; {RUNS} runs per row, each interleaved with the bare "
        f"endpoint (a FastAPI route answering a fixed {size}-byte JSON body). Medians of the "
        "runs; a run aborts on any non-2xx answer, so every listed run had zero errors. The "
        "query text is fixed: its embedding is a hit in matrixd's query cache, so embedd is "
        "not called (a new query adds one embedd call: ~1 ms when embedd has it cached, the "
        "model's inference otherwise). Where the time goes, and what each change bought: "
        "docs/matrix.md, *Hot path*.\n\n"
        "Each run is also interleaved with the *null chain* (scripts/bench/null_chain.py): the "
        "same three processes and hops (gateway-shaped proxy → matrixd-shaped handler → "
        "vectord-shaped handler; FastAPI, uvicorn and aiohttp as the daemons use them; bodies "
        "of the same sizes) doing no work. Its ratio to the bare endpoint is the most this "
        "process layout allows on this machine; *search / null chain* is how much of that the "
        "daemons keep.\n\n"
        "Goals (issue 5): zero errors, p99 ≤ 50 ms at concurrency 10, ratio ≥ 0.2.\n\n"
        "| path | req/s | p50 ms | p99 ms | errors | runs (req/s) |\n|---|---|---|---|---|---|\n"
        + "".join(lines)
    )
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
