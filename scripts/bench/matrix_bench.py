"""`/v1/matrix/search` through the gateway on the demo roster → reports/matrix_bench.md (issue 5).

Starts the whole stack on free ports with a throwaway data dir, loads the demo roster with
`lakehouse demo load` (the same code `make run` uses; default 20 000 workers, `MATRIX_BENCH_WORKERS`
to change), records one playbook so the boosted path runs, then drives the search at concurrency
1, 10 and 50 — each run interleaved with a bare FastAPI endpoint answering a fixed body of the
same size, so the ratio is measured under the same machine load. The query text is fixed, so its
embedding comes from embedd's cache after the first call: the figure is matrixd's own path
(embed lookup → vectord search → playbook lookup → re-rank → observerd report) plus the gateway
hop, not the model's inference (see reports/retrieval_bench.md for that).
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

from lakehouse_common.loadgen import LoadResult, drive
from lakehouse_common.stack import ephemeral_config, free_port, start_stack, stop_stack

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


def _bare(size: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bare_server.py")), str(port), str(size)]
    )
    url = f"http://127.0.0.1:{port}/fixed"
    for _ in range(200):
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("bare server did not start")


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
            url = gateway + "/v1/matrix/search"
            with httpx.Client(timeout=60) as client:
                first = client.post(url, json=QUERY)
                first.raise_for_status()
                client.post(
                    gateway + "/v1/matrix/playbooks/record",
                    json={
                        "query_text": QUERY["query_text"],
                        "role": QUERY["query_role"],
                        "answer_id": first.json()["results"][0]["id"],
                        "score": 1.0,
                    },
                ).raise_for_status()
                size = len(client.post(url, json=QUERY).content)
            bare_proc, bare = _bare(size)
            drive(url, requests=200, concurrency=10, method="POST", json=QUERY)
            drive(bare, requests=200, concurrency=10, method="POST", json=QUERY)
            ours: dict[int, list[LoadResult]] = {c: [] for c in CONCURRENCY}
            base: dict[int, list[LoadResult]] = {c: [] for c in CONCURRENCY}
            for _ in range(RUNS):
                for c in CONCURRENCY:
                    n = REQUESTS[c]
                    ours[c].append(drive(url, requests=n, concurrency=c, method="POST", json=QUERY))
                    base[c].append(
                        drive(bare, requests=n, concurrency=c, method="POST", json=QUERY)
                    )
        finally:
            if bare_proc is not None:
                bare_proc.terminate()
                bare_proc.wait()
            stop_stack(settings, grace_s=5, echo=lambda _: None)

    lines = []
    for c in CONCURRENCY:
        ours_line, ours_rps = _row(f"matrix search, c={c}", ours[c])
        base_line, base_rps = _row(f"bare endpoint, c={c}", base[c])
        ratio = f"| **ratio c={c}** | **{ours_rps / base_rps:.2f}** |||||\n"
        lines += [ours_line, base_line, ratio]
    report = ROOT / "reports" / "matrix_bench.md"
    report.write_text(
        "# Matrix search benchmark\n\n"
        "Generated by `make bench` (scripts/bench/matrix_bench.py) on "
        f"{time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. `POST /v1/matrix/search` through the gateway on a "
        f"{WORKERS:,}-worker demo roster (k=5, `use_playbook` with one recording for the role, "
        "so the playbook lookup and boost run), one uvicorn worker per daemon, closed-loop "
        f"client on the same machine; {RUNS} runs per row, each interleaved with the bare "
        f"endpoint (a FastAPI route answering a fixed {size}-byte JSON body). Medians of the "
        "runs; a run aborts on any non-2xx answer, so every listed run had zero errors. The "
        "query text is fixed: its embedding is an embedd cache hit.\n\n"
        "Goals (issue 5): zero errors, p99 ≤ 50 ms at concurrency 10, ratio ≥ 0.2.\n\n"
        "| path | req/s | p50 ms | p99 ms | errors | runs (req/s) |\n|---|---|---|---|---|---|\n"
        + "".join(lines)
    )
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
