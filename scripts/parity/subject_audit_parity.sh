#!/usr/bin/env bash
# Subject-audit parity probe (SPEC §8, §9; issue 7). Two phases, every check an assertion:
#
#   1. known answers: each fixture in tests/fixtures/audit_known_answer/ (a fixed row and key →
#      fixed canonical bytes and HMAC; a whole log spanning a key rotation → a fixed verify
#      answer) is recomputed by this checkout's library, and the chain is verified by the
#      `lakehouse audit verify` command too.
#   2. live logs: every subject log under the stack's <data_dir>/subjects/audit is verified by
#      catalogd (GET /v1/catalog/subjects/{id}/audit/verify through the gateway) and offline
#      with the configured key ring; the two {count, tip, verified, error} must be identical and
#      verified. With --other URL (a second runtime's gateway), its answer must be identical too.
#
# Usage: scripts/parity/subject_audit_parity.sh [--config FILE] [--gateway URL] [--other URL]
#                                               [--limit N] [--skip-live]
# Ends with `subject_audit_parity: N/N assertions passed`; exit 0 when all pass, else 1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="$ROOT/.venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "no $PY: run 'make install' first" >&2
  exit 2
fi
cd "$ROOT"
exec "$PY" - "$@" <<'PYTHON'
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from lakehouse_common.audit import (
    Keyring,
    canonical_bytes,
    canonical_bytes_from_raw,
    load_keyring,
    row_hmac,
    verify_log,
)
from lakehouse_common.config import ConfigError, audit_key_path, load_settings

FIXTURES = Path("tests/fixtures/audit_known_answer")
parser = argparse.ArgumentParser(prog="subject_audit_parity.sh")
parser.add_argument("--config", default=None)
parser.add_argument("--gateway", default=None)
parser.add_argument("--other", default=None, help="a second runtime's gateway URL")
parser.add_argument("--limit", type=int, default=0, help="verify at most N live logs (0: all)")
parser.add_argument("--skip-live", action="store_true")
args = parser.parse_args()

results: list[tuple[bool, str]] = []


def check(ok: bool, what: str) -> None:
    results.append((ok, what))
    print(f"  {'PASS' if ok else 'FAIL'}  {what}")


print("phase 1: known answers")
for path in sorted(FIXTURES.glob("*.json")):
    case = json.loads(path.read_text(encoding="utf-8"))
    name = path.stem
    if "row" in case:
        key = bytes.fromhex(case["key_hex"])
        canonical = canonical_bytes(case["row"])
        expected = case["canonical"].encode("utf-8")
        check(
            canonical == expected and len(canonical) == case["canonical_len"],
            f"{name}: canonical bytes ({case['canonical_len']})",
        )
        check(row_hmac(key, canonical) == case["hmac"], f"{name}: HMAC-SHA256")
        stored = case["stored_line"].encode("utf-8")
        check(canonical_bytes_from_raw(stored) == expected, f"{name}: canonical from stored line")
    else:
        keys = [bytes.fromhex(k) for k in case["keys_hex"]]
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "log.jsonl"
            log.write_bytes("".join(line + "\n" for line in case["lines"]).encode("utf-8"))
            answer = verify_log(log, Keyring.of(*keys)).as_dict()
            check(answer == case["verify"], f"{name}: verify with every epoch's key")
            first_only = verify_log(log, keys[-1]).as_dict()
            check(first_only == case["verify_epoch_1_key_only"], f"{name}: verify, epoch-1 key only")
            key_files = []
            for i, key in enumerate(keys):
                key_file = Path(tmp) / f"k{i}"
                key_file.write_bytes(key)
                key_files += ["--key-file", str(key_file)]
            cli = subprocess.run(
                [sys.executable, "-m", "lakehouse_common.cli", "audit", "verify", str(log), *key_files],
                capture_output=True,
                text=True,
                check=False,
            )
            cli_answer = json.loads(cli.stdout or "null")
            check(cli.returncode == 0 and cli_answer == case["verify"], f"{name}: `lakehouse audit verify`")

if args.skip_live:
    print("phase 2: skipped (--skip-live)")
else:
    print("phase 2: every live subject log")
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        sys.exit(f"subject_audit_parity: {exc}")
    gateway = (args.gateway or settings.url_of("gateway")).rstrip("/")
    directory = settings.data_dir / "subjects" / "audit"
    logs = sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
    if args.limit:
        logs = logs[: args.limit]
    keyring = load_keyring(audit_key_path(settings), private=False)
    print(f"  {len(logs)} logs in {directory}; catalogd via {gateway}")
    with httpx.Client(timeout=30.0) as client:
        for log in logs:
            subject = log.stem
            offline = verify_log(log, keyring).as_dict()
            path = f"/v1/catalog/subjects/{subject}/audit/verify"
            try:
                live = client.get(gateway + path).json()
            except (httpx.HTTPError, ValueError) as exc:
                check(False, f"{subject}: catalogd answers verify ({exc})")
                continue
            live = {k: live.get(k) for k in ("count", "tip", "verified", "error")}
            check(
                live == offline and offline["verified"] is True,
                f"{subject}: catalogd and offline agree, verified ({offline['count']} rows)",
            )
            if args.other:
                try:
                    other = client.get(args.other.rstrip("/") + path).json()
                except (httpx.HTTPError, ValueError) as exc:
                    check(False, f"{subject}: other runtime answers verify ({exc})")
                    continue
                other = {k: other.get(k) for k in ("count", "tip", "verified", "error")}
                check(other == live, f"{subject}: other runtime answers the same")

passed = sum(ok for ok, _ in results)
print(f"subject_audit_parity: {passed}/{len(results)} assertions passed")
sys.exit(0 if passed == len(results) else 1)
PYTHON
