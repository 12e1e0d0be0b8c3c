"""The deterministic demo roster: realistic staffing workers as Arrow batches and Parquet (SPEC §4).

SPEC §4 ("Demo data") asks for a generator of realistic workers that writes Parquet and makes
500k rows in under a minute. Everything here is vectorised numpy + Arrow compute over small
embedded tables (roles, cities, names); nothing is downloaded and no data file is read.

Schema (:data:`ROSTER_SCHEMA`; every column is non-null)

==================== ================ =================================================
column               Arrow type       content
==================== ================ =================================================
``id``               ``string``       ``w-<n>``, n = 1..N in row order
``first_name``       ``string``       from ~390 diverse first names
``last_name``        ``string``       from ~400 last names, common ones more often
``role``             ``string``       one of :data:`ROLES` (33), industrial roles weighted up
``city``             ``string``       one of :data:`CITIES` (170+ real US cities, 38 states),
                                      weighted by population ** 0.75
``state``            ``string``       two-letter code of that city's state
``state_name``       ``string``       that state's full name (``Illinois``): embedding models
                                      place a spelled-out state far better than a code
``zip``              ``string``       a real 5-digit ZIP code of that city (one per city)
``phone``            ``string``       ``(AAA) 555-01DD``: a real area code of the city and a
                                      line in 555-0100..555-0199, the NANP range reserved
                                      for fiction — so never a real number, and not unique
``email``            ``string``       ``first.last<n>@example.{com,org,net}`` (reserved
                                      domains); unique because ``n`` is the id's number
``skills``           ``list<string>`` 2–6 distinct skills from the role's pool, core first
``certifications``   ``list<string>`` 0+ from the role's allowed list, in list order
``years_experience`` ``int32``        0..40, role-dependent (gamma-distributed)
``hourly_rate``      ``float64``      USD, rounded to cents: role base × experience ×
                                      state pay level × noise
``available``        ``bool``         true when the worker can start now
``availability``     ``string``       one of :data:`AVAILABILITY` (``immediate``,
                                      ``2 weeks``, ``weekends only``, ``on assignment``…)
==================== ================ =================================================

Determinism. Rows are generated in chunks of ``chunk_rows`` (default :data:`CHUNK_ROWS`), and
each column of each chunk draws from its own generator seeded with
``SeedSequence(seed, spawn_key=(chunk_index, stream_index))``. Every draw is sequential in the
row, so for a given seed and chunk size the first K rows are the same whatever N is (a 1k
roster is the head of the 500k one), and adding a column later (a new stream index) leaves the
others unchanged. :func:`write_roster` fixes every Parquet option that shapes the bytes (zstd
level, row group = one chunk, dictionary columns, format version, no page index/checksums); the
file holds no timestamp, only pyarrow's ``created_by`` string, the Arrow schema and a small
``lakehouse.roster`` metadata entry (seed, rows, chunk size). So the same (rows, seed,
chunk_rows) gives a byte-identical file — with the same numpy and pyarrow versions: numpy does
not promise identical ``Generator`` streams across releases, and ``created_by`` names the
pyarrow version.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakehouse_common.durable import replacing
from lakehouse_common.ops.roster_data import (
    AVAILABILITY,
    CERTIFICATIONS,
    CITIES,
    CITY_WEIGHT_EXPONENT,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    PHONE_EXCHANGE,
    ROLES,
    STATE_NAMES,
    STATE_PAY,
    Availability,
    City,
    Role,
)

__all__ = [
    "AVAILABILITY",
    "CERTIFICATIONS",
    "CHUNK_ROWS",
    "CITIES",
    "DEFAULT_SEED",
    "EMAIL_DOMAINS",
    "FIRST_NAMES",
    "LAST_NAMES",
    "ROLES",
    "ROSTER_METADATA_KEY",
    "ROSTER_SCHEMA",
    "STATE_NAMES",
    "ZSTD_LEVEL",
    "Availability",
    "City",
    "Role",
    "RosterFile",
    "generate_roster",
    "iter_roster_batches",
    "write_roster",
]

DEFAULT_SEED: Final = 42
CHUNK_ROWS: Final = 100_000  # rows per generated batch and per Parquet row group
ZSTD_LEVEL: Final = 3
ROSTER_METADATA_KEY: Final = b"lakehouse.roster"

ROSTER_SCHEMA: Final = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("first_name", pa.string(), nullable=False),
        pa.field("last_name", pa.string(), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        pa.field("city", pa.string(), nullable=False),
        pa.field("state", pa.string(), nullable=False),
        pa.field("state_name", pa.string(), nullable=False),
        pa.field("zip", pa.string(), nullable=False),
        pa.field("phone", pa.string(), nullable=False),
        pa.field("email", pa.string(), nullable=False),
        pa.field("skills", pa.list_(pa.string()), nullable=False),
        pa.field("certifications", pa.list_(pa.string()), nullable=False),
        pa.field("years_experience", pa.int32(), nullable=False),
        pa.field("hourly_rate", pa.float64(), nullable=False),
        pa.field("available", pa.bool_(), nullable=False),
        pa.field("availability", pa.string(), nullable=False),
    ]
)

# Low-cardinality columns get Parquet dictionary encoding; ids, emails and phones are (nearly)
# unique, where a dictionary only costs a fallback.
_DICTIONARY_COLUMNS: Final = [
    "first_name",
    "last_name",
    "role",
    "city",
    "state",
    "state_name",
    "zip",
    "skills",
    "certifications",
    "availability",
]

# One random stream per column; append new names at the end so existing columns keep their values.
_STREAMS: Final = (
    "first_name",
    "last_name",
    "role",
    "city",
    "area_code",
    "phone_line",
    "email_domain",
    "skills_count",
    "skills_pick",
    "certifications",
    "years_experience",
    "hourly_rate",
    "availability",
)
_STREAM: Final = {name: i for i, name in enumerate(_STREAMS)}

MIN_SKILLS: Final = 2
MAX_SKILLS: Final = 6
SKILL_COUNT_WEIGHTS: Final = (0.15, 0.30, 0.28, 0.17, 0.10)  # for 2, 3, 4, 5, 6 skills
MAX_YEARS: Final = 40


def _email_slug(name: str) -> str:
    """ASCII lowercase letters and digits only: "O'Brien" -> "obrien", "Ji-woo" -> "jiwoo"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in ascii_name.lower() if ch.isalnum())


# --- generation ---------------------------------------------------------------------------

_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Tables:
    """The embedded tables as Arrow arrays and numpy lookups, built once per process."""

    first_names: Any  # pa.StringArray
    first_slugs: Any
    first_cdf: _F64
    last_names: Any
    last_slugs: Any
    last_cdf: _F64
    roles: Any
    role_cdf: _F64
    role_base_rate: _F64
    role_years_scale: _F64
    cities: Any
    states: Any
    state_names: Any
    zips: Any
    city_cdf: _F64
    city_pay: _F64
    city_code_start: _I64  # index of the city's first area code in ``area_codes``
    city_code_count: _I64
    area_codes: Any
    phone_lines: Any  # "00".."99"
    domains: Any
    domain_cdf: _F64
    skills: Any  # vocabulary
    skill_pool: _I64  # [role, slot] -> vocabulary index, -1 past the role's pool
    skill_weight: _F64  # [role, slot] -> pick weight, 0 past the role's pool
    skill_count_cdf: _F64
    certs: Any  # vocabulary
    cert_pool: _I64  # [role, slot] -> vocabulary index, -1 past the role's list
    cert_prob: _F64  # [role, slot] -> probability of holding it, 0 past the role's list
    availability: Any
    availability_cdf: _F64
    availability_ok: npt.NDArray[np.bool_]


def _cdf(weights: list[float] | tuple[float, ...] | _F64) -> _F64:
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    out: _F64 = cdf / cdf[-1]
    return out


def _padded(
    rows: list[list[tuple[int, float]]], width: int
) -> tuple[_I64, _F64]:  # (index matrix, value matrix), padded with (-1, 0.0)
    index = np.full((len(rows), width), -1, dtype=np.int64)
    value = np.zeros((len(rows), width), dtype=np.float64)
    for r, row in enumerate(rows):
        for c, (i, v) in enumerate(row):
            index[r, c] = i
            value[r, c] = v
    return index, value


@cache
def _tables() -> _Tables:
    skill_vocab = list(dict.fromkeys(s for role in ROLES for s in role.skills))
    skill_at = {s: i for i, s in enumerate(skill_vocab)}
    # Core skills first: the pick weight decays with the skill's position in the role's list.
    skill_pool, skill_weight = _padded(
        [
            [(skill_at[s], 1.0 / (1.0 + 0.25 * j)) for j, s in enumerate(role.skills)]
            for role in ROLES
        ],
        max(len(role.skills) for role in ROLES),
    )
    cert_at = {c: i for i, c in enumerate(CERTIFICATIONS)}
    cert_pool, cert_prob = _padded(
        [[(cert_at[c], p) for c, p in role.certifications] for role in ROLES],
        max(len(role.certifications) for role in ROLES),
    )
    code_counts = np.array([len(c.area_codes) for c in CITIES], dtype=np.int64)
    code_start = np.concatenate([[0], np.cumsum(code_counts)[:-1]]).astype(np.int64)
    return _Tables(
        first_names=pa.array(FIRST_NAMES, pa.string()),
        first_slugs=pa.array([_email_slug(n) for n in FIRST_NAMES], pa.string()),
        first_cdf=_cdf([1.0] * len(FIRST_NAMES)),
        last_names=pa.array(LAST_NAMES, pa.string()),
        last_slugs=pa.array([_email_slug(n) for n in LAST_NAMES], pa.string()),
        last_cdf=_cdf([1.0 / (rank + 25) for rank in range(len(LAST_NAMES))]),
        roles=pa.array([r.name for r in ROLES], pa.string()),
        role_cdf=_cdf([r.weight for r in ROLES]),
        role_base_rate=np.array([r.base_rate for r in ROLES], dtype=np.float64),
        role_years_scale=np.array([r.years_scale for r in ROLES], dtype=np.float64),
        cities=pa.array([c.name for c in CITIES], pa.string()),
        states=pa.array([c.state for c in CITIES], pa.string()),
        state_names=pa.array([STATE_NAMES[c.state] for c in CITIES], pa.string()),
        zips=pa.array([c.zip for c in CITIES], pa.string()),
        city_cdf=_cdf([float(c.population_k) ** CITY_WEIGHT_EXPONENT for c in CITIES]),
        city_pay=np.array([STATE_PAY.get(c.state, 1.0) for c in CITIES], dtype=np.float64),
        city_code_start=code_start,
        city_code_count=code_counts,
        area_codes=pa.array([code for c in CITIES for code in c.area_codes], pa.string()),
        phone_lines=pa.array([f"{i:02d}" for i in range(100)], pa.string()),
        domains=pa.array([d for d, _ in EMAIL_DOMAINS], pa.string()),
        domain_cdf=_cdf([w for _, w in EMAIL_DOMAINS]),
        skills=pa.array(skill_vocab, pa.string()),
        skill_pool=skill_pool,
        skill_weight=skill_weight,
        skill_count_cdf=_cdf(SKILL_COUNT_WEIGHTS),
        certs=pa.array(CERTIFICATIONS, pa.string()),
        cert_pool=cert_pool,
        cert_prob=cert_prob,
        availability=pa.array([a.label for a in AVAILABILITY], pa.string()),
        availability_cdf=_cdf([a.weight for a in AVAILABILITY]),
        availability_ok=np.array([a.available for a in AVAILABILITY], dtype=np.bool_),
    )


def _rng(seed: int, chunk: int, stream: str) -> np.random.Generator:
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(chunk, _STREAM[stream])))
    )


def _pick(rng: np.random.Generator, cdf: _F64, n: int) -> _I64:
    """``n`` weighted indices. searchsorted over one uniform per row keeps draws sequential."""
    idx: _I64 = np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)
    return np.minimum(idx, len(cdf) - 1)  # guards a cdf whose last entry rounds below 1.0


def _list_array(values: _I64, counts: _I64, vocabulary: Any) -> Any:
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), vocabulary.take(pa.array(values)))


def _take(table: Any, idx: _I64) -> Any:
    return table.take(pa.array(idx))


def _chunk(t: _Tables, seed: int, chunk: int, start: int, n: int) -> pa.RecordBatch:
    """Rows ``start + 1 .. start + n`` (ids ``w-<start+1>``…) of chunk number ``chunk``."""
    first = _pick(_rng(seed, chunk, "first_name"), t.first_cdf, n)
    last = _pick(_rng(seed, chunk, "last_name"), t.last_cdf, n)
    role = _pick(_rng(seed, chunk, "role"), t.role_cdf, n)
    city = _pick(_rng(seed, chunk, "city"), t.city_cdf, n)

    code_u = _rng(seed, chunk, "area_code").random(n)
    code = t.city_code_start[city] + (code_u * t.city_code_count[city]).astype(np.int64)
    line = _rng(seed, chunk, "phone_line").integers(0, 100, size=n, dtype=np.int64)
    domain = _pick(_rng(seed, chunk, "email_domain"), t.domain_cdf, n)

    numbers = pc.cast(pa.array(np.arange(start + 1, start + n + 1, dtype=np.int64)), pa.string())
    ids = pc.binary_join_element_wise("w-", numbers, "")
    phones = pc.binary_join_element_wise(
        "(", _take(t.area_codes, code), ") ", PHONE_EXCHANGE, _take(t.phone_lines, line), ""
    )
    emails = pc.binary_join_element_wise(
        _take(t.first_slugs, first),
        ".",
        _take(t.last_slugs, last),
        numbers,
        "@",
        _take(t.domains, domain),
        "",
    )

    # Skills: weighted sampling without replacement by an exponential race (the k smallest of
    # Exp(1)/weight), restricted to the role's pool; padding slots have weight 0 -> key inf.
    count = MIN_SKILLS + _pick(_rng(seed, chunk, "skills_count"), t.skill_count_cdf, n)
    weights = t.skill_weight[role]
    in_pool = weights > 0
    race = _rng(seed, chunk, "skills_pick").standard_exponential(weights.shape)
    keys = np.where(in_pool, race / np.where(in_pool, weights, 1.0), np.inf)
    order = np.argsort(keys, axis=1, kind="stable")[:, :MAX_SKILLS]
    chosen = np.take_along_axis(t.skill_pool[role], order, axis=1)
    count = np.minimum(count, in_pool.sum(axis=1))
    keep = np.arange(MAX_SKILLS) < count[:, None]
    skills = _list_array(chosen[keep], count, t.skills)

    # Certifications: each of the role's certifications held independently with its
    # probability; padding slots have probability 0, so nothing outside the role's list.
    held = _rng(seed, chunk, "certifications").random(t.cert_prob[role].shape) < t.cert_prob[role]
    certs = _list_array(t.cert_pool[role][held], held.sum(axis=1), t.certs)

    experience = _rng(seed, chunk, "years_experience").gamma(2.0, t.role_years_scale[role])
    years = np.minimum(np.floor(experience), MAX_YEARS).astype(np.int32)
    noise = np.exp(_rng(seed, chunk, "hourly_rate").normal(0.0, 0.08, n))
    rate = t.role_base_rate[role] * (1.0 + 0.025 * np.minimum(years, 20)) * t.city_pay[city] * noise
    availability = _pick(_rng(seed, chunk, "availability"), t.availability_cdf, n)

    return pa.RecordBatch.from_arrays(
        [
            ids,
            _take(t.first_names, first),
            _take(t.last_names, last),
            _take(t.roles, role),
            _take(t.cities, city),
            _take(t.states, city),
            _take(t.state_names, city),
            _take(t.zips, city),
            phones,
            emails,
            skills,
            certs,
            pa.array(years, pa.int32()),
            pa.array(np.round(rate, 2), pa.float64()),
            pa.array(t.availability_ok[availability], pa.bool_()),
            _take(t.availability, availability),
        ],
        schema=ROSTER_SCHEMA,
    )


def _check_args(rows: int, seed: int, chunk_rows: int) -> None:
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")


def iter_roster_batches(
    rows: int, seed: int = DEFAULT_SEED, *, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pa.RecordBatch]:
    """Yield the roster as record batches of ``chunk_rows`` rows (the last may be shorter).

    Only one chunk is in memory at a time. Raises ``ValueError`` for a negative ``rows`` or
    ``seed`` or a ``chunk_rows`` below 1.
    """
    _check_args(rows, seed, chunk_rows)
    tables = _tables()
    for chunk, start in enumerate(range(0, rows, chunk_rows)):
        yield _chunk(tables, seed, chunk, start, min(chunk_rows, rows - start))


def generate_roster(
    rows: int, seed: int = DEFAULT_SEED, *, chunk_rows: int = CHUNK_ROWS
) -> pa.Table:
    """The whole roster as one in-memory table (for tests and small rosters)."""
    return pa.Table.from_batches(
        list(iter_roster_batches(rows, seed, chunk_rows=chunk_rows)), schema=ROSTER_SCHEMA
    )


@dataclass(frozen=True)
class RosterFile:
    """What :func:`write_roster` wrote."""

    path: Path
    rows: int
    bytes: int
    seed: int


# Every option that shapes the bytes is fixed here, so a pyarrow default changing under us cannot
# silently change the file.
_WRITER_OPTIONS: Final[dict[str, Any]] = {
    "version": "2.6",
    "compression": "zstd",
    "compression_level": ZSTD_LEVEL,
    "use_dictionary": _DICTIONARY_COLUMNS,
    "write_statistics": True,
    "data_page_version": "1.0",
    "write_page_index": False,
    "write_page_checksum": False,
    "store_schema": True,
    "use_compliant_nested_type": True,
}


def _roster_metadata(rows: int, seed: int, chunk_rows: int) -> dict[bytes, bytes]:
    info: dict[str, object] = {
        "generator": "lakehouse_common.ops.roster",
        "rows": rows,
        "seed": seed,
        "chunk_rows": chunk_rows,
    }
    return {ROSTER_METADATA_KEY: json.dumps(info, separators=(",", ":")).encode()}


def write_roster(
    path: Path | str, rows: int, seed: int = DEFAULT_SEED, *, chunk_rows: int = CHUNK_ROWS
) -> RosterFile:
    """Write the roster to ``path`` as Parquet (zstd), atomically; create missing parents.

    The file is written next to ``path`` under a temporary name, fsynced, then renamed over
    ``path``, so readers see either the old file or the complete new one; a failure leaves no
    temporary file behind. One row group per chunk of ``chunk_rows`` rows.
    """
    _check_args(rows, seed, chunk_rows)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    schema = ROSTER_SCHEMA.with_metadata(_roster_metadata(rows, seed, chunk_rows))
    with replacing(target) as tmp, pq.ParquetWriter(str(tmp), schema, **_WRITER_OPTIONS) as w:
        for batch in iter_roster_batches(rows, seed, chunk_rows=chunk_rows):
            w.write_batch(batch, row_group_size=chunk_rows)
    return RosterFile(path=target, rows=rows, bytes=target.stat().st_size, seed=seed)
