"""The contamination firewall of the export stage (SPEC §7; docs/distill.md).

A row leaves the pipeline only when none of these holds; otherwise it is quarantined with every
reason that holds:

- `heldout_exact`: its prompt equals a held-out evaluation prompt after
  :func:`~lakehouse_common.distill.records.normalise_text`;
- `heldout_ngram`: at least `distill.ngram_overlap` of a held-out prompt's word n-grams
  (n = `distill.ngram_n`) appear in its prompt — a paraphrase or the prompt wrapped in more
  text (prompts shorter than n words are only compared exactly);
- `pii_ssn`: an SSN-like number anywhere in its texts (the validators' own guard,
  :func:`lakehouse_common.pii.find_ssn_like`);
- `pii_roster_phone` / `pii_roster_email`: a phone number or email address of a roster worker
  anywhere in its texts (the roster file given by `--roster` or `distill.roster_file`);
- `self_pair` (preference pairs only): the chosen and the rejected answer are the same record or
  the same payload.

Memory: the held-out set is held (an index of its n-grams); the roster's contacts are held as
sorted arrays of 64-bit hashes (8 bytes per phone or email: 500 000 workers ≈ 8 MB).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from lakehouse_common.distill.jsonl import read_lines, sha256_file
from lakehouse_common.distill.records import normalise_text
from lakehouse_common.distill.stage import DistillError
from lakehouse_common.pii import (
    find_email_addresses,
    find_phone_numbers,
    find_ssn_like,
    phone_digits,
)

__all__ = [
    "REASONS",
    "Firewall",
    "HeldoutSet",
    "RosterContacts",
    "texts_of",
]

REASONS: Final = (
    "heldout_exact",
    "heldout_ngram",
    "pii_ssn",
    "pii_roster_phone",
    "pii_roster_email",
    "self_pair",
)
_PROMPT_KEYS: Final = ("prompt", "text", "query", "query_text")


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass
class HeldoutSet:
    """The held-out evaluation prompts, ready for exact and n-gram lookups."""

    n: int
    overlap: float
    name: str = ""
    sha256: str = ""
    exact: set[str] = field(default_factory=set)
    gram_counts: list[int] = field(default_factory=list)
    index: dict[tuple[str, ...], list[int]] = field(default_factory=lambda: defaultdict(list))

    @property
    def size(self) -> int:
        return len(self.exact)

    @classmethod
    def empty(cls, n: int, overlap: float) -> HeldoutSet:
        return cls(n, overlap)

    @classmethod
    def load(cls, path: Path, n: int, overlap: float) -> HeldoutSet:
        """JSONL, one `{"prompt": "…"}` (or `text`/`query`) per line; blank lines are ignored,
        anything else is an error naming the line."""
        held = cls(n, overlap, path.name, sha256_file(path))
        for number, _, raw, _complete in read_lines(path):
            if not raw.strip():
                continue
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise DistillError(f"{path}: line {number + 1}: not JSON: {exc}") from None
            prompt = next(
                (row[k] for k in _PROMPT_KEYS if isinstance(row, dict) and k in row), None
            )
            if not isinstance(prompt, str) or not prompt.strip():
                raise DistillError(f'{path}: line {number + 1}: expected {{"prompt": "…"}}')
            held.add(prompt)
        return held

    def add(self, prompt: str) -> None:
        normal = normalise_text(prompt)
        if not normal or normal in self.exact:
            return
        self.exact.add(normal)
        grams = _ngrams(normal.split(), self.n)
        if grams:
            ident = len(self.gram_counts)
            self.gram_counts.append(len(grams))
            for gram in grams:
                self.index[gram].append(ident)

    def match(self, prompt: str) -> str | None:
        """`heldout_exact`, `heldout_ngram` or None."""
        normal = normalise_text(prompt)
        if normal in self.exact:
            return "heldout_exact"
        hits: dict[int, int] = defaultdict(int)
        for gram in _ngrams(normal.split(), self.n):
            for ident in self.index.get(gram, ()):
                hits[ident] += 1
        for ident, count in hits.items():
            if count >= self.overlap * self.gram_counts[ident]:
                return "heldout_ngram"
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "sha256": self.sha256,
            "prompts": self.size,
            "ngram_n": self.n,
            "ngram_overlap": self.overlap,
        }


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _sorted_hashes(values: Iterable[int]) -> npt.NDArray[np.uint64]:
    return np.unique(np.fromiter(values, dtype=np.uint64))


def _contains(table: npt.NDArray[np.uint64], value: int) -> bool:
    if not len(table):
        return False
    i = int(np.searchsorted(table, np.uint64(value)))
    return i < len(table) and int(table[i]) == value


@dataclass
class RosterContacts:
    """The phone numbers (ten NANP digits) and email addresses (case-folded) of a roster."""

    name: str = ""
    sha256: str = ""
    workers: int = 0
    phones: npt.NDArray[np.uint64] = field(default_factory=lambda: np.empty(0, np.uint64))
    emails: npt.NDArray[np.uint64] = field(default_factory=lambda: np.empty(0, np.uint64))

    @classmethod
    def load(cls, path: Path) -> RosterContacts:
        """A Parquet or CSV file with `phone` and `email` columns, read in batches."""
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if not path.is_file():
            raise DistillError(f"roster file {path} does not exist")
        batches: Iterator[Any]
        try:
            if path.suffix.lower() in (".parquet", ".pq"):
                parquet = pq.ParquetFile(path)
                batches = parquet.iter_batches(batch_size=65536, columns=["phone", "email"])
            elif path.suffix.lower() == ".csv":
                reader = pacsv.open_csv(
                    path,
                    convert_options=pacsv.ConvertOptions(
                        include_columns=["phone", "email"],
                        column_types={"phone": pa.string(), "email": pa.string()},
                    ),
                )
                batches = iter(reader)
            else:
                raise DistillError(f"roster file {path}: expected .parquet or .csv")
            phones: list[npt.NDArray[np.uint64]] = []
            emails: list[npt.NDArray[np.uint64]] = []
            workers = 0
            for batch in batches:
                workers += batch.num_rows
                phone_col = [v for v in batch.column(0).to_pylist() if v]
                email_col = [v for v in batch.column(1).to_pylist() if v]
                phones.append(_sorted_hashes(_hash64(d) for d in map(phone_digits, phone_col) if d))
                emails.append(_sorted_hashes(_hash64(e.strip().casefold()) for e in email_col))
        except (OSError, pa.ArrowException, KeyError) as exc:
            raise DistillError(f"roster file {path}: {exc}") from None
        return cls(
            name=path.name,
            sha256=sha256_file(path),
            workers=workers,
            phones=np.unique(np.concatenate(phones)) if phones else np.empty(0, np.uint64),
            emails=np.unique(np.concatenate(emails)) if emails else np.empty(0, np.uint64),
        )

    def has_phone(self, digits: str) -> bool:
        return _contains(self.phones, _hash64(digits))

    def has_email(self, address: str) -> bool:
        return _contains(self.emails, _hash64(address))

    def describe(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "sha256": self.sha256,
            "workers": self.workers,
            "phones": len(self.phones),
            "emails": len(self.emails),
        }


def texts_of(value: Any) -> Iterator[str]:
    """Every string in a JSON value (keys included), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from texts_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts_of(item)


@dataclass
class Firewall:
    heldout: HeldoutSet
    roster: RosterContacts | None = None

    def reasons(self, prompt: str | None, payload: Any) -> list[str]:
        """Why a row with this prompt and these texts (any JSON) must not be exported."""
        found: list[str] = []
        if prompt:
            held = self.heldout.match(prompt)
            if held is not None:
                found.append(held)
        ssn = phone = email = False
        for text in texts_of([prompt or "", payload]):
            ssn = ssn or bool(find_ssn_like(text))
            if self.roster is not None:
                phone = phone or any(map(self.roster.has_phone, find_phone_numbers(text)))
                email = email or any(map(self.roster.has_email, find_email_addresses(text)))
        if ssn:
            found.append("pii_ssn")
        if phone:
            found.append("pii_roster_phone")
        if email:
            found.append("pii_roster_email")
        return found

    def describe(self) -> dict[str, Any]:
        return {
            "heldout": self.heldout.describe(),
            "roster": self.roster.describe() if self.roster is not None else None,
        }
