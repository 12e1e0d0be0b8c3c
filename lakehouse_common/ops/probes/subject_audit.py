"""The subject-audit parity probe (SPEC §8, §9; issue 7). Two phases, every check an assertion:

1. known answers: each fixture in ``tests/fixtures/audit_known_answer/`` (a fixed row and key →
   fixed canonical bytes and HMAC; a whole log spanning a key rotation → a fixed verify answer)
   is recomputed by this checkout's library, and the chain is verified by the
   ``lakehouse audit verify`` command too;
2. live logs: every subject log under the stack's ``<data_dir>/subjects/audit`` is verified by
   catalogd (``GET /v1/catalog/subjects/{id}/audit/verify`` through the gateway) and offline with
   the configured key ring; the two ``{count, tip, verified, error}`` must be identical and
   verified. With ``other`` (a second runtime's gateway), its answer must be identical too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

import httpx

from lakehouse_common.audit import (
    Keyring,
    canonical_bytes,
    canonical_bytes_from_raw,
    load_keyring,
    row_hmac,
    verify_log,
)
from lakehouse_common.config import REPO_ROOT, LakehouseSettings, audit_key_path
from lakehouse_common.contracts.subjects import verify_path
from lakehouse_common.http import bearer
from lakehouse_common.ops.probes.tally import Tally

__all__ = ["KNOWN_ANSWERS", "known_answers", "live_logs"]

KNOWN_ANSWERS: Final = REPO_ROOT / "tests" / "fixtures" / "audit_known_answer"
_VERIFY_FIELDS: Final = ("count", "tip", "verified", "error")


def known_answers(tally: Tally, fixtures: Path = KNOWN_ANSWERS) -> None:
    """Phase 1: every known answer recomputed by the library (and the chain by the CLI)."""
    with tally.section("phase 1: known answers"):
        for path in sorted(fixtures.glob("*.json")):
            case = json.loads(path.read_text(encoding="utf-8"))
            if "row" in case:
                _row_case(tally, path.stem, case)
            else:
                _chain_case(tally, path.stem, case)


def _row_case(tally: Tally, name: str, case: dict[str, Any]) -> None:
    key = bytes.fromhex(case["key_hex"])
    canonical = canonical_bytes(case["row"])
    expected = case["canonical"].encode("utf-8")
    tally.check(
        canonical == expected and len(canonical) == case["canonical_len"],
        f"{name}: canonical bytes ({case['canonical_len']})",
    )
    tally.check(row_hmac(key, canonical) == case["hmac"], f"{name}: HMAC-SHA256")
    stored = case["stored_line"].encode("utf-8")
    tally.check(canonical_bytes_from_raw(stored) == expected, f"{name}: canonical from stored line")


def _chain_case(tally: Tally, name: str, case: dict[str, Any]) -> None:
    keys = [bytes.fromhex(k) for k in case["keys_hex"]]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        log.write_bytes("".join(line + "\n" for line in case["lines"]).encode("utf-8"))
        answer = verify_log(log, Keyring.of(*keys)).as_dict()
        tally.check(answer == case["verify"], f"{name}: verify with every epoch's key")
        first_only = verify_log(log, keys[-1]).as_dict()
        tally.check(
            first_only == case["verify_epoch_1_key_only"], f"{name}: verify, epoch-1 key only"
        )
        key_files: list[str] = []
        for i, key in enumerate(keys):
            key_file = Path(tmp) / f"k{i}"
            key_file.write_bytes(key)
            key_files += ["--key-file", str(key_file)]
        # The command itself, as an operator runs it (from this checkout).
        cli = subprocess.run(
            [sys.executable, "-m", "lakehouse_common.cli", "audit", "verify", str(log), *key_files],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO_ROOT,
        )
        cli_answer = json.loads(cli.stdout or "null")
        tally.check(
            cli.returncode == 0 and cli_answer == case["verify"],
            f"{name}: `lakehouse audit verify`",
        )


def live_logs(
    tally: Tally,
    settings: LakehouseSettings,
    *,
    gateway: str | None = None,
    other: str | None = None,
    limit: int = 0,
    token: str | None = None,
) -> None:
    """Phase 2: every live subject log (at most `limit`, 0 for all) verified by catalogd through
    the gateway and offline alike (and by `other`, a second runtime's gateway)."""
    with tally.section("phase 2: every live subject log"):
        _live_logs(tally, settings, gateway=gateway, other=other, limit=limit, token=token)


def _live_logs(
    tally: Tally,
    settings: LakehouseSettings,
    *,
    gateway: str | None,
    other: str | None,
    limit: int,
    token: str | None,
) -> None:
    base = (gateway or settings.url_of("gateway")).rstrip("/")
    directory = settings.data_dir / "subjects" / "audit"
    logs = sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
    if limit:
        logs = logs[:limit]
    keyring = load_keyring(audit_key_path(settings), private=False)
    tally.echo(f"  {len(logs)} logs in {directory}; catalogd via {base}")
    # The token is for our gateway only, never sent to the other runtime.
    headers = bearer(token)
    with httpx.Client(timeout=30.0) as client:
        for log in logs:
            subject = log.stem
            offline = verify_log(log, keyring).as_dict()
            path = verify_path(subject)
            try:
                live = _verify_answer(client.get(base + path, headers=headers))
            except (httpx.HTTPError, ValueError) as exc:
                tally.check(False, f"{subject}: catalogd answers verify ({exc})")
                continue
            tally.check(
                live == offline and offline["verified"] is True,
                f"{subject}: catalogd and offline agree, verified ({offline['count']} rows)",
            )
            if other:
                try:
                    theirs = _verify_answer(client.get(other.rstrip("/") + path))
                except (httpx.HTTPError, ValueError) as exc:
                    tally.check(False, f"{subject}: other runtime answers verify ({exc})")
                    continue
                tally.check(theirs == live, f"{subject}: other runtime answers the same")


def _verify_answer(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    if not isinstance(body, dict):
        raise ValueError(f"not a JSON object: {resp.text[:200]}")
    return {k: body.get(k) for k in _VERIFY_FIELDS}
