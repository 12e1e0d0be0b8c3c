"""Stage 3, export: scored evidence → training and retrieval rows, through the firewall (SPEC §7).

Reads each evidence file with its scores file in lockstep (same rows, same order) and writes
`exports/`:

- `sft.jsonl` — accepted iterate sessions and replays that have a prompt and a payload: the
  conversation the model saw first (system + user, :mod:`lakehouse_common.draft_prompts`) and
  the accepted payload as the assistant turn;
- `rag.jsonl` — accepted and partial records that pair a text with an answer: iterate sessions
  and replays (prompt → payload), playbook recordings (query → approved worker), searches
  (query → result ids), pathways (demand → steps and outcome);
- `preference_pairs.jsonl` — within one task (same kind and normalised prompt), an accepted
  payload (`chosen`) against a rejected one (`rejected`): accepted × rejected in recording
  order, at most `distill.max_pairs_per_task` per task;
- `quarantine.jsonl` — every row the firewall (:mod:`.firewall`) stopped, with its export and all
  its reasons. It holds what was kept out (PII included): review it, never publish it.

Pairs are grouped in a temporary SQLite file, so memory stays bounded however many tasks there
are. Rows are written in evidence order (pairs by task id), so the files are a pure function of
the evidence, the scores, the held-out set and the roster.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import orjson

from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.firewall import Firewall, HeldoutSet, RosterContacts
from lakehouse_common.distill.jsonl import OutputTree, ProgressHook, read_lines
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.records import canonical
from lakehouse_common.distill.score import evidence_digest
from lakehouse_common.distill.stage import (
    RECEIPT_SCHEMA_VERSION,
    DistillError,
    StageResult,
    save_receipt,
)
from lakehouse_common.draft_prompts import opening_prompt, system_prompt

__all__ = [
    "EXPORTS",
    "PAIR_KINDS",
    "RAG_KINDS",
    "export",
    "load_firewall",
    "rag_row",
    "sft_row",
]

SFT, RAG, PAIRS, QUARANTINE = (
    "sft.jsonl",
    "rag.jsonl",
    "preference_pairs.jsonl",
    "quarantine.jsonl",
)
EXPORTS: Final = {"sft": SFT, "rag": RAG, "preference": PAIRS}
# Records that hold a drafting task (a prompt) and its payload.
PAIR_KINDS: Final = ("iterate_session", "replay_run")
RAG_KINDS: Final = ("iterate_session", "replay_run", "playbook_record", "search_run", "pathway")
_DRAFT_KINDS: Final = ("fill", "email", "sms")


def _provenance(record: Mapping[str, Any]) -> dict[str, Any]:
    p = record["provenance"]
    return {"source": p["source"], "line_offset": p["line_offset"], "sig_hash": p["sig_hash"]}


def _draft(record: Mapping[str, Any]) -> tuple[str, str, dict[str, Any] | None, Any] | None:
    """(payload kind, prompt, context, payload) of a drafting record with all of them."""
    if record.get("kind") not in PAIR_KINDS:
        return None
    data = record.get("input") or {}
    kind, prompt, payload = data.get("kind"), data.get("prompt"), record.get("output")
    if kind not in _DRAFT_KINDS or not isinstance(prompt, str) or not prompt.strip():
        return None
    if not isinstance(payload, dict):
        return None
    context = data.get("context")
    return kind, prompt, context if isinstance(context, dict) else None, payload


def _messages(kind: str, prompt: str, context: dict[str, Any] | None) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt(kind)},
        {"role": "user", "content": opening_prompt(prompt, context)},
    ]


def _payload_text(payload: Any) -> str:
    return canonical(payload).decode()


def sft_row(record: Mapping[str, Any]) -> dict[str, Any] | None:
    draft = _draft(record)
    if draft is None:
        return None
    kind, prompt, context, payload = draft
    messages = _messages(kind, prompt, context)
    messages.append({"role": "assistant", "content": _payload_text(payload)})
    meta = record.get("metadata") or {}
    return {
        "schema": "sft.v1",
        "id": record["provenance"]["sig_hash"][:16],
        "task_id": record["task"]["id"],
        "kind": record["kind"],
        "payload_kind": kind,
        "messages": messages,
        "model": meta.get("model"),
        "provenance": _provenance(record),
    }


def rag_row(record: Mapping[str, Any], tier: str) -> dict[str, Any] | None:
    kind = record.get("kind")
    data = record.get("input") or {}
    output = record.get("output") or {}
    text: Any
    answer: Any
    if kind in PAIR_KINDS:
        draft = _draft(record)
        if draft is None:
            return None
        text, answer = draft[1], draft[3]
    elif kind == "playbook_record":
        text = data.get("query_text")
        answer = {
            "answer_id": output.get("answer_id"),
            "role": data.get("role"),
            "score": (record.get("outcome") or {}).get("score"),
        }
    elif kind == "search_run":
        text = data.get("query_text")
        answer = {
            "ids": [hit.get("id") for hit in output.get("results", [])],
            "role": data.get("query_role"),
        }
    elif kind == "pathway":
        text = data.get("demand_text")
        answer = {"steps": output.get("steps"), "outcome": record.get("outcome")}
    else:
        return None
    if not isinstance(text, str) or not text.strip():
        return None
    return {
        "schema": "rag.v1",
        "id": record["provenance"]["sig_hash"][:16],
        "task_id": record["task"]["id"],
        "kind": kind,
        "tier": tier,
        "text": text,
        "answer": answer,
        "provenance": _provenance(record),
    }


def load_firewall(
    layout: DistillLayout,
    settings: DistillSettings,
    heldout: Path | None = None,
    roster: Path | None = None,
) -> Firewall:
    """The firewall from `--heldout`/`--roster`, else `distill.heldout_file`/`roster_file`
    (relative paths below the data dir). A configured held-out file that does not exist means
    no held-out check (the receipt shows 0 prompts); a roster named but missing is an error."""

    def resolve(value: str) -> Path | None:
        if not value:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else layout.data_dir / path

    held_path = heldout if heldout is not None else resolve(settings.heldout_file)
    if held_path is not None and (heldout is not None or held_path.exists()):
        if not held_path.is_file():
            raise DistillError(f"held-out file {held_path} does not exist")
        held = HeldoutSet.load(held_path, settings.ngram_n, settings.ngram_overlap)
    else:
        held = HeldoutSet.empty(settings.ngram_n, settings.ngram_overlap)
    roster_path = roster if roster is not None else resolve(settings.roster_file)
    contacts = RosterContacts.load(roster_path) if roster_path is not None else None
    return Firewall(held, contacts)


def _scored(layout: DistillLayout, path: Path) -> Iterator[tuple[int, dict[str, Any], str]]:
    """(bytes, record, tier) for each evidence line, checked against its score line."""
    relative = path.relative_to(layout.evidence)
    scores_path = layout.scores / relative
    if not scores_path.is_file():
        raise DistillError(f"no scores for {relative}: run `lakehouse distill score` first")
    scores = read_lines(scores_path)
    for _, _, raw, _ in read_lines(path):
        record = orjson.loads(raw)
        line = next(scores, None)
        row = orjson.loads(line[2]) if line is not None else None
        if row is None or row.get("sig_hash") != record["provenance"]["sig_hash"]:
            raise DistillError(
                f"the scores of {relative} do not match its evidence: run `lakehouse distill "
                "score` again"
            )
        yield len(raw) + 1, record, row["tier"]
    if next(scores, None) is not None:
        raise DistillError(f"the scores of {relative} have more rows than its evidence")


_PAIRS_SCHEMA: Final = """
CREATE TABLE drafts (
    seq INTEGER PRIMARY KEY, task_id TEXT NOT NULL, tier TEXT NOT NULL, sig_hash TEXT NOT NULL,
    payload_kind TEXT NOT NULL, prompt TEXT NOT NULL, context TEXT, payload TEXT NOT NULL,
    provenance TEXT NOT NULL
);
"""
# Per task, the first `max` accepted and the first `max` rejected drafts, in recording order,
# only for tasks that have both.
_PAIRS_QUERY: Final = """
WITH ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY task_id, tier ORDER BY seq) AS n FROM drafts
), both_tiers AS (
    SELECT task_id FROM drafts GROUP BY task_id
    HAVING SUM(tier = 'accepted') > 0 AND SUM(tier = 'rejected') > 0
)
SELECT task_id, tier, sig_hash, payload_kind, prompt, context, payload, provenance
FROM ranked WHERE n <= ? AND task_id IN (SELECT task_id FROM both_tiers)
ORDER BY task_id, tier, seq
"""


def _pairs(db: sqlite3.Connection, limit: int) -> Iterator[dict[str, Any]]:
    """Candidate pairs, task by task (`chosen`/`rejected` carry their provenance)."""
    rows = db.execute(_PAIRS_QUERY, (limit,))
    current: str | None = None
    accepted: list[tuple[Any, ...]] = []
    rejected: list[tuple[Any, ...]] = []

    def flush() -> Iterator[dict[str, Any]]:
        made = 0
        for good in accepted:
            for bad in rejected:
                if made == limit:
                    return
                made += 1
                yield {
                    "task_id": good[0],
                    "payload_kind": good[3],
                    "prompt": good[4],
                    "context": orjson.loads(good[5]) if good[5] else None,
                    "chosen": good[6],
                    "rejected": bad[6],
                    "chosen_provenance": orjson.loads(good[7]),
                    "rejected_provenance": orjson.loads(bad[7]),
                }

    for row in rows:
        if row[0] != current:
            yield from flush()
            current, accepted, rejected = row[0], [], []
        (accepted if row[1] == "accepted" else rejected).append(row)
    yield from flush()


def _pair_row(pair: Mapping[str, Any]) -> dict[str, Any]:
    chosen_sig = pair["chosen_provenance"]["sig_hash"]
    rejected_sig = pair["rejected_provenance"]["sig_hash"]
    ident = hashlib.sha256(f"{chosen_sig}:{rejected_sig}".encode()).hexdigest()[:16]
    return {
        "schema": "preference.v1",
        "id": ident,
        "task_id": pair["task_id"],
        "payload_kind": pair["payload_kind"],
        "messages": _messages(pair["payload_kind"], pair["prompt"], pair["context"]),
        "chosen": pair["chosen"],
        "rejected": pair["rejected"],
        "chosen_provenance": pair["chosen_provenance"],
        "rejected_provenance": pair["rejected_provenance"],
    }


def export(
    layout: DistillLayout,
    settings: DistillSettings,
    *,
    heldout: Path | None = None,
    roster: Path | None = None,
    progress: ProgressHook | None = None,
) -> StageResult:
    inputs = evidence_digest(layout)
    firewall = load_firewall(layout, settings, heldout, roster)
    tree = OutputTree(layout.exports, layout.data_dir)
    for name in (SFT, RAG, PAIRS, QUARANTINE):
        tree.touch(name)
    rows: Counter[str] = Counter()
    candidates: Counter[str] = Counter()
    quarantined_rows: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {name: Counter() for name in EXPORTS}

    def emit(export_name: str, row: dict[str, Any], why: list[str]) -> None:
        candidates[export_name] += 1
        if why:
            quarantined_rows[export_name] += 1
            reasons[export_name].update(why)
            entry = {"export": export_name, "reasons": why, "row": row}
            tree.write(QUARANTINE, orjson.dumps(entry))
        else:
            rows[export_name] += 1
            tree.write(EXPORTS[export_name], orjson.dumps(row))

    try:
        with tempfile.TemporaryDirectory(dir=layout.root, prefix=".pairs-") as tmp:
            db = sqlite3.connect(Path(tmp) / "pairs.sqlite")
            try:
                db.executescript(_PAIRS_SCHEMA)
                for path in layout.partitions(layout.evidence):
                    for size, record, tier in _scored(layout, path):
                        draft = _draft(record)
                        if tier == "accepted":
                            row = sft_row(record)
                            if row is not None and draft is not None:
                                # Everything the row holds: the context is in its user turn.
                                why = firewall.reasons(draft[1], [draft[2], draft[3]])
                                emit("sft", row, why)
                        if tier in ("accepted", "partial") and record.get("kind") in RAG_KINDS:
                            row = rag_row(record, tier)
                            if row is not None:
                                emit("rag", row, firewall.reasons(row["text"], row["answer"]))
                        if draft is not None and tier in ("accepted", "rejected"):
                            db.execute(
                                "INSERT INTO drafts (task_id, tier, sig_hash, payload_kind, "
                                "prompt, context, payload, provenance) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (
                                    record["task"]["id"],
                                    tier,
                                    record["provenance"]["sig_hash"],
                                    draft[0],
                                    draft[1],
                                    canonical(draft[2]).decode() if draft[2] else None,
                                    _payload_text(draft[3]),
                                    orjson.dumps(_provenance(record)).decode(),
                                ),
                            )
                        if progress is not None:
                            progress(size)
                db.commit()
                for pair in _pairs(db, settings.max_pairs_per_task):
                    row = _pair_row(pair)
                    why = firewall.reasons(
                        pair["prompt"],
                        [
                            pair["context"],
                            orjson.loads(pair["chosen"]),
                            orjson.loads(pair["rejected"]),
                        ],
                    )
                    same_record = (
                        pair["chosen_provenance"]["sig_hash"]
                        == pair["rejected_provenance"]["sig_hash"]
                    )
                    if same_record or pair["chosen"] == pair["rejected"]:
                        why.append("self_pair")
                    emit("preference", row, why)
            finally:
                db.close()
        committed = tree.commit()
    except BaseException:
        tree.discard()
        raise
    receipt = {
        "stage": "export",
        "schema_version": RECEIPT_SCHEMA_VERSION,
        "inputs": inputs,
        "firewall": firewall.describe(),
        "settings": {"max_pairs_per_task": settings.max_pairs_per_task},
        "candidates": {name: candidates[name] for name in EXPORTS},
        "rows": {name: rows[name] for name in EXPORTS},
        "quarantined": {name: quarantined_rows[name] for name in EXPORTS},
        "quarantine_reasons": {name: dict(sorted(c.items())) for name, c in reasons.items()},
        "total_quarantined": sum(quarantined_rows.values()),
        "outputs": [f.as_dict() for f in committed.files],
    }
    return save_receipt(
        layout, StageResult("export", receipt, committed.written, committed.removed)
    )
