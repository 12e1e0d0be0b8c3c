"""The evidence record and the hashes that name things (SPEC §7).

An evidence record is one observation turned into a typed row, with its fields always in this
order::

    {"schema": "evidence.v1", "kind": "iterate_session",
     "task": {"type": "iterate.sms", "id": "<16 hex>"},
     "trace_id": "…", "daemon": "validatord",
     "input": {…} | null, "output": {…} | null, "outcome": {…},
     "tokens": {"prompt": 0, "completion": 0}, "metadata": {…},
     "provenance": {"source": "_kb/iterate_sessions.jsonl", "line_offset": 0,
                    "recorded_at": "2026-05-02T09:14:03.461439210Z", "sig_hash": "<64 hex>"}}

- `provenance.line_offset` is the 0-based line number in the source (observerd's `line`,
  queryd's `_line`); always written, 0 included (the original Go port dropped it at 0 with
  `omitempty` and broke parity). `recorded_at` is observerd's stamp of the observation, so the
  record carries no clock of its own and a re-run is byte-identical.
- `sig_hash` = sha256 over the canonical bytes (SPEC §8: keys sorted by code point at every
  depth, no whitespace, raw UTF-8) of the whole stored observation — envelope and event — as
  parsed: two observations are the same evidence exactly when their hashes match.
- `task.id` groups records of the same task: searches and the playbook recordings of the same
  (query, role); iterate sessions and replays of the same (kind, prompt). Preference pairs are
  made within a task. Texts are compared after :func:`normalise_text`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from typing import Any, Final

import orjson

from lakehouse_common.audit import canonical_json

__all__ = [
    "EVIDENCE_SCHEMA",
    "SIG_HASH",
    "TIERS",
    "canonical",
    "evidence_record",
    "normalise_text",
    "sig_hash",
    "task_id",
]

EVIDENCE_SCHEMA: Final = "evidence.v1"
TIERS: Final = ("accepted", "partial", "rejected")
SIG_HASH: Final = re.compile(r"[0-9a-f]{64}")

_NOT_WORD: Final = re.compile(r"[^\w]+")


def canonical(value: Any) -> bytes:
    """SPEC §8's canonical JSON bytes of `value`.

    orjson with sorted keys writes exactly those bytes except for floats with a positive
    exponent (`1e+16` where the canonical form is `1e16`): any output holding `e+` is redone by
    the reference writer (which is ~20× slower, and rarely needed)."""
    out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    if b"e+" in out:
        return canonical_json(value)
    return out


def sig_hash(observation: Any) -> str:
    return hashlib.sha256(canonical(observation)).hexdigest()


@lru_cache(maxsize=4096)
def normalise_text(text: str) -> str:
    """The form prompts are compared in: NFKC, case-folded, every run of characters that are not
    letters or digits one space, trimmed (`"Need 3  Forklift-Operators!"` → `"need 3 forklift
    operators"`)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NOT_WORD.sub(" ", folded.replace("_", " ")).split())


def task_id(*parts: str) -> str:
    """16 hex of sha256 over the parts (unit-separated): a stable name for one task."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def evidence_record(
    *,
    kind: str,
    task_type: str,
    task: str,
    trace_id: str,
    daemon: str,
    input: Any,
    output: Any,
    outcome: dict[str, Any],
    tokens: tuple[int, int],
    metadata: dict[str, Any],
    source: str,
    line_offset: int,
    recorded_at: str,
    sig: str,
) -> dict[str, Any]:
    """The record with its fields in the fixed order of the module docstring."""
    return {
        "schema": EVIDENCE_SCHEMA,
        "kind": kind,
        "task": {"type": task_type, "id": task},
        "trace_id": trace_id,
        "daemon": daemon,
        "input": input,
        "output": output,
        "outcome": outcome,
        "tokens": {"prompt": tokens[0], "completion": tokens[1]},
        "metadata": metadata,
        "provenance": {
            "source": source,
            "line_offset": line_offset,
            "recorded_at": recorded_at,
            "sig_hash": sig,
        },
    }
