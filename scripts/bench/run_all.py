"""`make bench`: run every benchmark in scripts/bench/; each writes its reports/*.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = [
    "gateway_overhead.py",
    "lake_bench.py",
    "audit_overhead.py",
    "retrieval_bench.py",
    "matrix_bench.py",
    # Distillation at 100k and 1M events: events/s and peak RSS, reports/distill_bench.md.
    "distill_bench.py",
    # Last and longest (~25 min at 100k workers): the issue-9 load run, reports/load_big.md.
    "load_big.py",
]


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = 0
    for bench in BENCHES:
        sys.stdout.write(f"== {bench}\n")
        sys.stdout.flush()
        failed += subprocess.run([sys.executable, str(here / bench)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
