"""Equality-filter postings: which labels have `key == value`, without scanning every item.

A search `filter` used to test every item's metadata (`metadata_matches`): ~31 ms per search
at 20k items, linear in the index. Postings answer the scalar part of a filter with set
lookups. They are built per key on first use (a key nobody filters on costs no memory) and
kept up to date by every write from then on.

Keys follow the filter's JSON equality (`json_equal`): `true` is not `1`, `1` is `1.0`.
Container values (lists, objects) are not posted; a filter on one is checked item by item
over the candidates the scalar keys leave.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from lakehouse_common.contracts.vectors import metadata_matches

Scalar = tuple[str, Any]


def scalar_key(value: Any) -> Scalar | None:
    """The posting key of a JSON scalar; None for a container. Python's `1 == 1.0` (same hash)
    matches JSON's number equality; the tag keeps `true` apart from `1`."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("num", value)
    if isinstance(value, str):
        return ("str", value)
    if value is None:
        return ("null", None)
    return None


def _posted(metadata: Mapping[str, Any], key: str) -> Scalar | None:
    """The posting key of `metadata[key]`; None when absent or a container (not posted)."""
    return scalar_key(metadata[key]) if key in metadata else None


class Postings:
    """Per-key maps `scalar value → labels` over one index's metadata.

    The owner calls `add`/`remove` under its write lock; `candidates` runs under its read lock,
    concurrently with other searches (building a key's map is serialised by a lock of its own).
    """

    def __init__(self) -> None:
        self._keys: dict[str, dict[Scalar, set[int]]] = {}
        self._build = threading.Lock()

    def add(self, label: int, metadata: Mapping[str, Any]) -> None:
        for key, by_value in self._keys.items():
            if (tag := _posted(metadata, key)) is not None:
                by_value.setdefault(tag, set()).add(label)

    def remove(self, label: int, metadata: Mapping[str, Any]) -> None:
        for key, by_value in self._keys.items():
            if (tag := _posted(metadata, key)) is not None:
                labels = by_value.get(tag)
                if labels is not None:
                    labels.discard(label)
                    if not labels:
                        del by_value[tag]

    def _for_key(self, key: str, items: Mapping[int, Mapping[str, Any]]) -> dict[Scalar, set[int]]:
        by_value = self._keys.get(key)
        if by_value is not None:
            return by_value
        with self._build:
            by_value = self._keys.get(key)
            if by_value is None:
                by_value = {}
                for label, metadata in items.items():
                    if (tag := _posted(metadata, key)) is not None:
                        by_value.setdefault(tag, set()).add(label)
                self._keys[key] = by_value
        return by_value

    def candidates(
        self, wanted: Mapping[str, Any], items: Mapping[int, Mapping[str, Any]]
    ) -> set[int]:
        """The labels whose metadata passes `wanted` (`metadata_matches` semantics)."""
        scalars: list[tuple[str, Scalar]] = []
        others: dict[str, Any] = {}
        for key, value in wanted.items():
            tag = scalar_key(value)
            if tag is None:
                others[key] = value
            else:
                scalars.append((key, tag))
        if not scalars:
            return {label for label, meta in items.items() if metadata_matches(meta, others)}
        sets = sorted((self._for_key(key, items).get(tag, set()) for key, tag in scalars), key=len)
        found = sets[0].intersection(*sets[1:])  # a new set: the caller may change it
        if others:
            found = {label for label in found if metadata_matches(items[label], others)}
        return found
