"""Which rows of a query result disclose a subject's PII, so they are audited before the answer
leaves queryd (SPEC §8, issue 7).

A dataset is *governed* when subject manifests name it (catalogd's governance policy: its key
column and PII fields); every view of it (``workers``, ``workers__v3``) is governed alike. For a
SELECT that reads a governed view, the statement's syntax tree (already parsed by the sandbox)
says which columns the answer can carry:

- a PII field is *disclosed* when it is an output column by name, or is referenced anywhere in a
  select list at any depth (``upper(phone) AS p``, ``SELECT p FROM (SELECT phone AS p …)``), or a
  ``*`` / ``COLUMNS(…)`` may expand to it (``* EXCLUDE (phone)`` does not). Filters alone
  (``WHERE phone LIKE …``) and counts (``count(phone)``) disclose nothing. ``SUMMARIZE`` of a
  governed view discloses every PII field (its min/max are values); ``DESCRIBE`` nothing.
- A result that discloses PII must carry the dataset's key column, so each row names its
  subject; otherwise the query is refused (400) before anything is answered. The rule is
  deliberately conservative: a query may be audited for a field it merely passed through.

Then the distinct key values of the returned rows (after the row limit) are the row keys the
:class:`~lakehouse_common.audit.access.AccessAuditor` records, with ``purpose: "query"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_common.contracts.subjects import DatasetPolicy
from lakehouse_common.errors import InvalidInput, LakehouseError

# Aggregates that answer a count, never a value: what they read is not disclosed.
COUNT_FUNCTIONS = frozenset({"count", "count_star", "approx_count_distinct"})


@dataclass(frozen=True)
class GovernedView:
    """A view of a governed dataset: its key column and PII fields, by lowercase name."""

    dataset: str
    key_column: str
    pii: Mapping[str, str]  # lowercase → the field's name in the policy


@dataclass(frozen=True)
class Disclosure:
    """The PII of one governed dataset an answer carries, and whose."""

    dataset: str
    fields: tuple[str, ...]
    row_keys: list[str]


@dataclass
class _Scan:
    tables: set[str] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)
    stars: list[dict[str, Any]] = field(default_factory=list)
    summarized: set[str] = field(default_factory=set)


def _walk(tree: Any) -> _Scan:
    """Tables read, column names referenced in select lists, stars; iterative (deep trees)."""
    scan = _Scan()
    stack: list[tuple[Any, bool, bool]] = [(tree, False, False)]
    while stack:
        item, in_select, in_summary = stack.pop()
        if isinstance(item, list):
            stack.extend((child, in_select, in_summary) for child in item)
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "SHOW_REF":
            if item.get("show_type") != "SUMMARY":
                continue  # DESCRIBE / SHOW: the schema, no values
            in_select = in_summary = True
        elif kind == "BASE_TABLE":
            name = str(item.get("table_name") or "").lower()
            scan.tables.add(name)
            if in_summary:
                scan.summarized.add(name)
        cls = item.get("class")
        if cls == "FUNCTION" and str(item.get("function_name", "")).lower() in COUNT_FUNCTIONS:
            continue
        if in_select and cls == "COLUMN_REF":
            names = item.get("column_names") or []
            if names:
                scan.refs.add(str(names[-1]).lower())
        elif in_select and cls == "STAR":
            scan.stars.append(item)
        for key, value in item.items():
            if isinstance(value, dict | list):
                stack.append((value, in_select or key == "select_list", in_summary))
    return scan


def _star_fields(star: Mapping[str, Any], pii: Mapping[str, str]) -> set[str]:
    """The PII fields (lowercase) a ``*`` may expand to."""
    if star.get("columns") or star.get("expr") is not None:
        return set(pii)  # COLUMNS(regex/lambda): assume the worst
    excluded: set[str] = {str(n).lower() for n in star.get("exclude_list") or []}
    for qualified in star.get("qualified_exclude_list") or []:
        names = qualified.get("column_names") if isinstance(qualified, dict) else None
        if names:
            excluded.add(str(names[-1]).lower())
    return set(pii) - excluded


def _key_values(table: pa.Table, indices: Sequence[int]) -> list[str]:
    keys: dict[str, None] = {}
    for index in indices:
        column = table.column(index)
        for value in pc.unique(column.drop_null()).to_pylist():
            keys[str(value)] = None
    return list(keys)


@dataclass(frozen=True)
class GovernanceSnapshot:
    """The governed views as of one query, and how to find what its answer discloses."""

    views: Mapping[str, GovernedView]
    dataset_views: frozenset[str]
    # Set when the policy could not be fetched (fail closed): a dataset read is refused.
    unknown: LakehouseError | None = None

    @classmethod
    def build(
        cls,
        views: Mapping[str, Any],
        policies: Mapping[str, DatasetPolicy],
        unknown: LakehouseError | None = None,
    ) -> GovernanceSnapshot:
        governed: dict[str, GovernedView] = {}
        datasets: set[str] = set()
        for name, view in views.items():
            dataset = getattr(view, "dataset", None)
            if dataset is None:
                continue
            datasets.add(name.lower())
            policy = policies.get(dataset)
            if policy is not None:
                governed[name.lower()] = GovernedView(
                    dataset, policy.key_column, {f.lower(): f for f in policy.pii_fields}
                )
        return cls(governed, frozenset(datasets), unknown)

    def disclosures(
        self, tree: Any, columns: Sequence[tuple[str, str]], table: pa.Table
    ) -> tuple[Disclosure, ...]:
        if tree is None or (not self.views and self.unknown is None):
            return ()
        scan = _walk(tree)
        if self.unknown is not None and scan.tables & self.dataset_views:
            raise self.unknown
        by_dataset: dict[str, tuple[GovernedView, set[str]]] = {}
        outputs = {name.lower() for name, _ in columns}
        for table_name in scan.tables:
            view = self.views.get(table_name)
            if view is None:
                continue
            touched = (scan.refs | outputs) & set(view.pii)
            for star in scan.stars:
                touched |= _star_fields(star, view.pii)
            if table_name in scan.summarized:
                touched |= set(view.pii)
            if touched:
                _, fields = by_dataset.setdefault(view.dataset, (view, set()))
                fields.update(touched)
        return tuple(self._disclosure(v, f, columns, table) for v, f in by_dataset.values())

    @staticmethod
    def _disclosure(
        view: GovernedView, touched: set[str], columns: Sequence[tuple[str, str]], table: pa.Table
    ) -> Disclosure:
        fields = tuple(sorted(view.pii[f] for f in touched))
        key = view.key_column.lower()
        indices = [i for i, (name, _) in enumerate(columns) if name.lower() == key]
        if not indices:
            raise InvalidInput(
                f"the query returns personal data ({', '.join(fields)}) of the governed dataset "
                f"{view.dataset!r} without its key column {view.key_column!r}: add "
                f"{view.key_column!r} to the select list, so every returned row's subject is "
                "audited (SPEC §8)",
                details={
                    "dataset": view.dataset,
                    "key_column": view.key_column,
                    "pii_fields": list(fields),
                },
            )
        return Disclosure(view.dataset, fields, _key_values(table, indices))


def iter_disclosed(disclosures: Sequence[Disclosure]) -> Iterator[Disclosure]:
    """The disclosures that name at least one row."""
    return (d for d in disclosures if d.row_keys)
