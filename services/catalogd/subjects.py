"""The subject registry: every subject manifest, in one SQLite database (SPEC §8, issue 7).

Manifests live in ``<data_dir>/subjects/subjects.db`` on local disk, beside the audit logs they
govern (an audit log is appended and fsynced in place, which an object store cannot do). SQLite
because a roster has hundreds of thousands of subjects: an indexed lookup from ``(dataset,
row_key)`` to the subject is what every audited read needs, and ``lakehouse subjects sync``
upserts 10,000 manifests per transaction. WAL journal with ``synchronous=FULL``: a write that
was answered survives a crash.

Rules, each enforced here:

- the dataset must exist in the catalog, and its key column and every PII field must be columns
  of its latest version (a misspelt PII field would silently switch auditing off);
- one subject per ``(dataset, row_key)``; a dataset has one key column;
- the ``datasets`` table keeps, per governed dataset, the key column, the union of its subjects'
  PII fields and the subject count, so the governance policy daemons poll costs one small read.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from lakehouse_common.contracts.subjects import (
    DatasetPolicy,
    GovernancePolicies,
    SubjectBatchResult,
    SubjectEntry,
    SubjectList,
    SubjectManifest,
    SubjectPut,
)
from lakehouse_common.errors import Conflict, InvalidInput, NotFound, UnprocessableEntity
from services.catalogd.service import DatasetCatalog

# SQLite's limit on bound parameters is 32766 in current builds; stay well below.
_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subjects (
    subject_id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    key_column TEXT NOT NULL,
    row_key TEXT NOT NULL,
    pii_fields TEXT NOT NULL,
    retention_days INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS subjects_by_row ON subjects (dataset, row_key);
CREATE INDEX IF NOT EXISTS subjects_by_dataset ON subjects (dataset, subject_id);
CREATE TABLE IF NOT EXISTS governed_datasets (
    dataset TEXT PRIMARY KEY,
    key_column TEXT NOT NULL,
    pii_fields TEXT NOT NULL,
    subjects INTEGER NOT NULL
) WITHOUT ROWID;
"""

_COLUMNS = (
    "subject_id, dataset, key_column, row_key, pii_fields, retention_days, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """What an audited read needs of a subject: its id, key column and PII fields."""

    subject_id: str
    pii_fields: tuple[str, ...]
    key_column: str


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _manifest(row: sqlite3.Row | tuple[object, ...]) -> SubjectManifest:
    (subject_id, dataset, key_column, row_key, pii, retention, created, updated) = tuple(row)
    return SubjectManifest(
        subject_id=str(subject_id),
        dataset=str(dataset),
        key_column=str(key_column),
        row_key=str(row_key),
        pii_fields=orjson.loads(str(pii)),
        retention_days=int(str(retention)),
        created_at=datetime.fromisoformat(str(created)),
        updated_at=datetime.fromisoformat(str(updated)),
    )


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class SubjectRegistry:
    """Subject manifests and the governed-dataset summary; thread-safe (one lock, short
    transactions)."""

    def __init__(self, path: Path, catalog: DatasetCatalog) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.catalog = catalog
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._pii_cache: dict[str, tuple[str, ...]] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- reading --------------------------------------------------------------------------

    def get(self, subject_id: str) -> SubjectManifest:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM subjects WHERE subject_id = ?", (subject_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no subject {subject_id!r}", details={"subject_id": subject_id})
        return _manifest(row)

    def exists(self, subject_id: str) -> bool:
        with self._lock:
            found = self._db.execute(
                "SELECT 1 FROM subjects WHERE subject_id = ?", (subject_id,)
            ).fetchone()
        return found is not None

    def list(self, *, dataset: str | None, limit: int, cursor: str | None) -> SubjectList:
        where, params = ["subject_id > ?"], [cursor or ""]
        if dataset is not None:
            where.append("dataset = ?")
            params.append(dataset)
        sql = (
            f"SELECT {_COLUMNS} FROM subjects WHERE {' AND '.join(where)} "
            "ORDER BY subject_id LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (*params, limit + 1)).fetchall()
        manifests = [_manifest(r) for r in rows[:limit]]
        more = len(rows) > limit
        return SubjectList(
            subjects=manifests,
            count=len(manifests),
            next_cursor=manifests[-1].subject_id if more and manifests else None,
        )

    def lookup(self, dataset: str, row_keys: Sequence[str]) -> dict[str, SubjectRef]:
        """``row_key → subject`` for the keys of ``dataset`` that have a manifest."""
        found: dict[str, SubjectRef] = {}
        with self._lock:
            for chunk in _chunks(row_keys):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT row_key, subject_id, pii_fields, key_column FROM subjects "
                    f"WHERE dataset = ? AND row_key IN ({marks})",
                    (dataset, *chunk),
                ).fetchall()
                for row_key, subject_id, pii, key_column in rows:
                    fields = self._pii_cache.get(pii)
                    if fields is None:
                        fields = self._pii_cache.setdefault(pii, tuple(orjson.loads(pii)))
                    found[row_key] = SubjectRef(subject_id, fields, key_column)
        return found

    def policies(self) -> GovernancePolicies:
        with self._lock:
            rows = self._db.execute(
                "SELECT dataset, key_column, pii_fields, subjects FROM governed_datasets "
                "WHERE subjects > 0 ORDER BY dataset"
            ).fetchall()
        datasets = [
            DatasetPolicy(
                dataset=name, key_column=key, pii_fields=orjson.loads(pii), subjects=subjects
            )
            for name, key, pii, subjects in rows
        ]
        return GovernancePolicies(datasets=datasets, count=len(datasets))

    # -- writing --------------------------------------------------------------------------

    def _check_columns(self, dataset: str, columns: Iterable[str]) -> None:
        """The dataset exists and has every column named (its latest version's schema)."""
        try:
            detail = self.catalog.get_dataset(dataset)
        except NotFound:
            raise NotFound(
                f"no dataset named {dataset!r}: ingest it before describing its subjects",
                details={"dataset": dataset},
            ) from None
        have = {f.name for f in detail.latest.schema_}
        missing = sorted(set(columns) - have)
        if missing:
            raise UnprocessableEntity(
                f"dataset {dataset!r} has no column {', '.join(map(repr, missing))} "
                f"(columns: {', '.join(sorted(have))})",
                details={"dataset": dataset, "missing_columns": missing},
            )

    def put(self, subject_id: str, manifest: SubjectPut) -> tuple[SubjectManifest, bool]:
        """Create or replace one manifest; answers it and whether it was created."""
        entry = SubjectEntry(subject_id=subject_id, **manifest.model_dump())
        result = self.put_batch([entry])
        return self.get(subject_id), result.created == 1

    def put_batch(self, entries: Sequence[SubjectEntry]) -> SubjectBatchResult:
        """Upsert manifests in one transaction: all of them or none."""
        seen_ids: set[str] = set()
        seen_rows: dict[tuple[str, str], str] = {}
        columns: dict[str, set[str]] = {}
        for entry in entries:
            if entry.subject_id in seen_ids:
                raise InvalidInput(
                    f"subject {entry.subject_id!r} appears twice in the batch",
                    details={"subject_id": entry.subject_id},
                )
            seen_ids.add(entry.subject_id)
            row = (entry.dataset, entry.row_key)
            if row in seen_rows:
                raise Conflict(
                    f"row {entry.row_key!r} of {entry.dataset!r} is claimed by both "
                    f"{seen_rows[row]!r} and {entry.subject_id!r}",
                    details={"dataset": entry.dataset, "row_key": entry.row_key},
                )
            seen_rows[row] = entry.subject_id
            columns.setdefault(entry.dataset, set()).update([entry.key_column, *entry.pii_fields])
        for dataset, names in columns.items():
            self._check_columns(dataset, names)
        now = _now()
        try:
            return self._upsert(entries, now)
        except sqlite3.IntegrityError as exc:
            # Rows swapped between subjects within one batch: the unique index says no.
            raise Conflict(
                f"the batch conflicts with itself or with stored subjects: {exc}"
            ) from None

    def _upsert(self, entries: Sequence[SubjectEntry], now: str) -> SubjectBatchResult:
        created = updated = unchanged = 0
        with self._write() as db:
            existing = self._existing(db, [e.subject_id for e in entries])
            owners = self._row_owners(db, entries)
            policy = self._policies_of(
                db, {e.dataset for e in entries} | {old[0] for old in existing.values()}
            )
            for entry in entries:
                owner = owners.get((entry.dataset, entry.row_key))
                if owner is not None and owner != entry.subject_id:
                    raise Conflict(
                        f"row {entry.row_key!r} of dataset {entry.dataset!r} already belongs to "
                        f"subject {owner!r}",
                        details={
                            "dataset": entry.dataset,
                            "row_key": entry.row_key,
                            "subject_id": owner,
                        },
                    )
                known = policy.get(entry.dataset)
                if known is None or known[2] <= 0:
                    # A dataset with no subjects (left) takes the key column it is given.
                    policy[entry.dataset] = (entry.key_column, set(), 0)
                elif known[0] != entry.key_column:
                    raise Conflict(
                        f"dataset {entry.dataset!r} is keyed by column {known[0]!r}; a "
                        f"manifest cannot name {entry.key_column!r}",
                        details={"dataset": entry.dataset, "key_column": known[0]},
                    )
                pii = orjson.dumps(entry.pii_fields).decode()
                values = (entry.dataset, entry.key_column, entry.row_key, pii, entry.retention_days)
                old = existing.get(entry.subject_id)
                if old is None:
                    db.execute(
                        f"INSERT INTO subjects ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (entry.subject_id, *values, now, now),
                    )
                    created += 1
                    self._count(policy, entry.dataset, entry.key_column, +1)
                elif old != values:
                    db.execute(
                        "UPDATE subjects SET dataset = ?, key_column = ?, row_key = ?, "
                        "pii_fields = ?, retention_days = ?, updated_at = ? WHERE subject_id = ?",
                        (*values, now, entry.subject_id),
                    )
                    updated += 1
                    if old[0] != entry.dataset:
                        self._count(policy, old[0], old[1], -1)
                        self._count(policy, entry.dataset, entry.key_column, +1)
                else:
                    unchanged += 1
                policy[entry.dataset][1].update(entry.pii_fields)
            db.executemany(
                "INSERT INTO governed_datasets (dataset, key_column, pii_fields, subjects) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (dataset) DO UPDATE SET "
                "key_column = excluded.key_column, pii_fields = excluded.pii_fields, "
                "subjects = excluded.subjects",
                [
                    (name, key, orjson.dumps(sorted(fields)).decode(), count)
                    for name, (key, fields, count) in policy.items()
                ],
            )
        return SubjectBatchResult(
            created=created, updated=updated, unchanged=unchanged, count=len(entries)
        )

    @staticmethod
    def _count(
        policy: dict[str, tuple[str, set[str], int]], dataset: str, key_column: str, delta: int
    ) -> None:
        key, fields, count = policy.get(dataset, (key_column, set(), 0))
        policy[dataset] = (key, fields, count + delta)

    @staticmethod
    def _existing(
        db: sqlite3.Connection, subject_ids: Sequence[str]
    ) -> dict[str, tuple[str, str, str, str, int]]:
        out: dict[str, tuple[str, str, str, str, int]] = {}
        for chunk in _chunks(subject_ids):
            marks = ",".join("?" * len(chunk))
            for sid, *values in db.execute(
                "SELECT subject_id, dataset, key_column, row_key, pii_fields, retention_days "
                f"FROM subjects WHERE subject_id IN ({marks})",
                tuple(chunk),
            ):
                out[sid] = (values[0], values[1], values[2], values[3], int(values[4]))
        return out

    @staticmethod
    def _row_owners(
        db: sqlite3.Connection, entries: Sequence[SubjectEntry]
    ) -> dict[tuple[str, str], str]:
        by_dataset: dict[str, list[str]] = {}
        for entry in entries:
            by_dataset.setdefault(entry.dataset, []).append(entry.row_key)
        out: dict[tuple[str, str], str] = {}
        for dataset, keys in by_dataset.items():
            for chunk in _chunks(keys):
                marks = ",".join("?" * len(chunk))
                for row_key, sid in db.execute(
                    "SELECT row_key, subject_id FROM subjects "
                    f"WHERE dataset = ? AND row_key IN ({marks})",
                    (dataset, *chunk),
                ):
                    out[(dataset, row_key)] = sid
        return out

    @staticmethod
    def _policies_of(
        db: sqlite3.Connection, datasets: Iterable[str]
    ) -> dict[str, tuple[str, set[str], int]]:
        out: dict[str, tuple[str, set[str], int]] = {}
        for dataset in datasets:
            row = db.execute(
                "SELECT key_column, pii_fields, subjects FROM governed_datasets WHERE dataset = ?",
                (dataset,),
            ).fetchone()
            if row is not None:
                out[dataset] = (row[0], set(orjson.loads(row[1])), int(row[2]))
        return out
