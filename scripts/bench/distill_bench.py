"""Distillation throughput and memory (issue 8): events/s and peak RSS of each stage, written to
reports/distill_bench.md.

Generates a synthetic knowledge base in a throwaway data dir — the eight observer streams in
realistic proportions and shapes (searches and chat runs dominate, as in production) — at
100 000 and 1 000 000 events, and runs each stage in a fresh child process so its peak
resident set size (`ru_maxrss`) is its own. The claim checked is *bounded memory*: the peak RSS
at 1 000 000 events stays close to the one at 100 000 (the stages stream; nothing is held per
event). Figures from one run on a shared 2-core machine; ratios within the run are what to read.

    python scripts/bench/distill_bench.py [--events 1000000] [--small 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# Share of each stream in the generated _kb (sums to 1).
MIX = {
    "search_runs": 0.30,
    "chat_runs": 0.25,
    "validation_results": 0.20,
    "iterate_sessions": 0.10,
    "playbook_records": 0.06,
    "pathways": 0.05,
    "replay_runs": 0.02,
    "human_feedback": 0.02,
}
ROLES = ("Forklift Operator", "CNC Operator", "Welder", "Registered Nurse", "Picker", "Loader")
CITIES = ("Aurora IL", "Joliet IL", "Detroit MI", "Houston TX", "Phoenix AZ", "Elgin IL")


def _event(stream: str, n: int) -> dict[str, object]:
    role, city = ROLES[n % len(ROLES)], CITIES[(n // 7) % len(CITIES)]
    query = f"Need {1 + n % 5} {role}s in {city}"
    prompt = f"Confirm shift {n % 997} for a {role} in {city}"
    sms = {"to": "555-123-4567", "body": f"Your {role} shift #{n % 997} in {city} is confirmed."}
    if stream == "search_runs":
        return {
            "endpoint": "search",
            "query_text": query,
            "query_role": role,
            "index": "workers",
            "k": 5,
            "use_playbook": True,
            "filters": None,
            "exclude_ids": [],
            "results": [
                {
                    "id": f"w-{(n * 31 + i) % 500_000}",
                    "distance": 0.2 + i / 100,
                    "boosted": False,
                    "injected": False,
                }
                for i in range(5)
            ],
            "boosted": 0,
            "injected": 0,
            "playbooks_applied": [] if n % 4 else ["pb-0123456789abcdef"],
            "elapsed_ms": 11.5,
        }
    if stream == "chat_runs":
        return {
            "endpoint": "chat",
            "provider": "ollama",
            "model": "qwen2.5",
            "requested_model": "ollama/qwen2.5",
            "prompt_sha256": f"{n % 4096:064x}",
            "messages": 2,
            "prompt_tokens": 150,
            "completion_tokens": 40,
            "total_tokens": 190,
            "latency_ms": 800.0,
            "status": "ok" if n % 20 else "upstream_error",
            "attempts": 1,
            "fallback": False,
            "stream": False,
            "json": True,
        }
    if stream == "validation_results":
        return {
            "kind": "sms",
            "valid": bool(n % 3),
            "error_count": 0,
            "errors": [],
            "source": "iterate",
            "session_id": f"s-{n // 3}",
            "iteration": 1 + n % 3,
        }
    if stream == "iterate_sessions":
        return {
            "schema": "validator_session.v1",
            "session_id": f"s-{n}",
            "trace_id": f"s-{n}",
            "daemon": "validatord",
            "timestamp": "2026-05-01T10:00:00.000000000Z",
            "kind": "sms",
            "model": "ollama/qwen2.5",
            "status": "accepted" if n % 4 else "max_iter_exhausted",
            "iterations": 1 + n % 3,
            "errors": [],
            "infra_error": None,
            "prompt": prompt,
            "context": None,
            "max_iter": 3,
            "final": sms,
            "usage": {"prompt_tokens": 300, "completion_tokens": 80},
        }
    if stream == "playbook_records":
        return {
            "playbook_id": f"pb-{n:016x}",
            "query_text": query,
            "role": role,
            "role_norm": role.casefold(),
            "answer_id": f"w-{n % 500_000}",
            "index": "workers",
            "score": (n % 10) / 9,
            "recorded_at": "2026-05-01T10:00:00.000000000Z",
            "updated": False,
        }
    if stream == "pathways":
        return {
            "pathway_id": f"pw-{n:016x}",
            "demand_text": query,
            "role": role,
            "steps": [
                {"name": s, "at": None, "detail": None}
                for s in ("search", "shortlist", "outreach", "fill")
            ],
            "outcome": {"filled": bool(n % 2)},
            "recorded_at": "2026-05-01T10:00:00Z",
            "trace_id": "t",
        }
    if stream == "replay_runs":
        return {
            "schema": "replay_run.v1",
            "kind": "sms",
            "prompt": prompt,
            "context": None,
            "original": {
                "session_id": f"s-{n}",
                "trace_id": f"s-{n}",
                "status": "accepted",
                "model": "ollama/qwen2.5",
                "source": "_kb/iterate_sessions.jsonl",
                "line_offset": n,
            },
            "replay": {
                "status": "accepted",
                "valid": True,
                "errors": [],
                "final": sms,
                "model": "ollama/qwen2.5",
                "latency_ms": 900.0,
                "retrieved": ["w-1"],
                "usage": {"prompt_tokens": 400, "completion_tokens": 40},
                "infra_error": None,
            },
            "verdict_changed": False,
        }
    return {
        "schema": "human_feedback.v1",
        "label": ("accepted", "rejected")[n % 2],
        "target_sig_hash": None,
        "target_trace_id": f"t-{n * 7}",
        "target_kind": None,
        "note": "",
        "coordinator": "jo",
    }


def generate(kb: Path, events: int) -> int:
    """Write `events` observations over 30 days; answers the bytes written."""
    kb.mkdir(parents=True, exist_ok=True)
    total = 0
    for stream, share in MIX.items():
        count = round(events * share)
        per_day = max(1, count // 30)
        with (kb / f"{stream}.jsonl").open("wb") as fh:
            lines = []
            for n in range(count):
                day, second = 1 + min(n // per_day, 29), n % 86_400
                stamp = (
                    f"2026-04-{day:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:"
                    f"{second % 60:02d}.{n % 1_000_000_000:09d}Z"
                )
                lines.append(
                    orjson.dumps(
                        {
                            "schema": "observation.v1",
                            "recorded_at": stamp,
                            "trace_id": f"t-{n}",
                            "daemon": "bench",
                            "event": _event(stream, n),
                        }
                    )
                    + b"\n"
                )
                if len(lines) == 10_000:
                    data = b"".join(lines)
                    fh.write(data)
                    total += len(data)
                    lines = []
            data = b"".join(lines)
            fh.write(data)
            total += len(data)
    return total


STAGE = """
import resource, sys, time
from pathlib import Path
from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill import materialize, score, export
layout, stage = DistillLayout(Path(sys.argv[1])), sys.argv[2]
fn = {"materialize": materialize.materialize, "score": score.score,
      "export": export.export}[stage]
started = time.perf_counter()
receipt = fn(layout, DistillSettings()).receipt
elapsed = time.perf_counter() - started
print(elapsed,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_stage(data_dir: Path, stage: str) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one stage in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", STAGE, str(data_dir), stage],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    return float(out[0]), int(out[-1])


def baseline_rss() -> int:
    """Peak RSS of an interpreter that only imports the stages (KiB)."""
    code = (
        "import resource; from lakehouse_common.distill import materialize, score, export; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return int(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, default=None, help="keep the data dirs here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="distill-bench-"))
    rows = []
    base = baseline_rss()
    try:
        for events in (args.small, args.events):
            data_dir = work / f"kb-{events}"
            started = time.perf_counter()
            size = generate(data_dir / "_kb", events)
            sys.stdout.write(
                f"generated {events:,} events ({size / 1e6:.0f} MB) in "
                f"{time.perf_counter() - started:.0f} s\n"
            )
            for stage in ("materialize", "score", "export"):
                seconds, rss = run_stage(data_dir, stage)
                rows.append((events, size, stage, seconds, rss))
                sys.stdout.write(
                    f"  {stage:<11} {seconds:7.1f} s  {events / seconds:9,.0f} events/s  "
                    f"peak RSS {rss / 1024:6.0f} MiB\n"
                )
                sys.stdout.flush()
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    peak = {(e, s): r for e, _, s, _, r in rows}
    lines = [
        "# Distillation throughput and memory",
        "",
        f"`scripts/bench/distill_bench.py`, {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
        f"{os.cpu_count()} cores (shared with other work), Python {platform.python_version()}. "
        "A synthetic `_kb` of eight streams (30 % searches, 25 % chat runs, 20 % validations, "
        "10 % iterate sessions, playbooks, pathways, replays, feedback) over 30 days; each stage "
        "in a fresh process, its peak resident set size from `getrusage`. An interpreter that "
        f"only imports the stages peaks at {base / 1024:.0f} MiB.",
        "",
        "| events | `_kb` size | stage | seconds | events/s | peak RSS |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for events, size, stage, seconds, rss in rows:
        lines.append(
            f"| {events:,} | {size / 1e6:,.0f} MB | {stage} | {seconds:,.1f} | "
            f"{events / seconds:,.0f} | {rss / 1024:,.0f} MiB |"
        )
    small, big = args.small, args.events
    growth = {
        s: (peak[(big, s)] - peak[(small, s)]) / 1024 for s in ("materialize", "score", "export")
    }
    lines += [
        "",
        f"**Bounded memory.** From {small:,} to {big:,} events ({big // small}× the input) the "
        f"peak RSS of materialize grows by {growth['materialize']:+.0f} MiB, of score by "
        f"{growth['score']:+.0f} MiB and of export by {growth['export']:+.0f} MiB: the stages "
        "stream line by line (one open output file at a time, receipts of fixed size, "
        "preference pairs grouped in a temporary SQLite file). What is held grows only with "
        "human-scale inputs: the feedback labels (score) and the export's held-out set and "
        "roster contacts (8 bytes per phone or email).",
        "",
        "events/s counts input events for every stage (score and export read the evidence).",
    ]
    report = ROOT / "reports" / "distill_bench.md"
    report.parent.mkdir(exist_ok=True)
    report.write_text("\n".join(lines) + "\n")
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
