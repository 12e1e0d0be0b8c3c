"""vectord's domain (SPEC §5): the set of named durable indexes under `<data_dir>/vectors/`.

No FastAPI here: routes call these methods in a threadpool, tests call them directly.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse_common.config import VectorSettings
from lakehouse_common.contracts.vectors import (
    CreateIndexRequest,
    Hit,
    IndexInfo,
    IndexSummary,
    MultiSearchRequest,
    SearchRequest,
    validate_index_name,
)
from lakehouse_common.durable import fsync_dir, make_dirs_durably
from lakehouse_common.errors import Conflict, NotFound, UnprocessableEntity
from lakehouse_common.logging import get_logger
from services.vectord.durable import PARAMS_FILE, TMP_SUFFIX, DurableIndex
from services.vectord.index import IndexParams, Tuning

log = get_logger("lakehouse.vectord")


class VectorService:
    """Every index of one vectord; `open()` loads them all, `close()` snapshots and closes."""

    def __init__(self, root: Path, settings: VectorSettings) -> None:
        self.root = root
        self.settings = settings
        self.tuning = Tuning(
            default_ef=settings.default_ef,
            exact_threshold=settings.exact_threshold,
            initial_capacity=settings.initial_capacity,
        )
        self._indexes: dict[str, DurableIndex] = {}
        self._lock = threading.Lock()  # create / delete / list

    def open(self) -> None:
        make_dirs_durably(self.root)  # else a power loss can drop `vectors/` and every index
        for path in sorted(self.root.iterdir()):
            if path.name.endswith(TMP_SUFFIX):  # a create or delete cut short by a crash
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_dir() and (path / PARAMS_FILE).exists():
                started = time.perf_counter()
                self._indexes[path.name] = DurableIndex.open(path, self.tuning)
                log.info(
                    "index loaded",
                    index=path.name,
                    items=len(self._indexes[path.name].index),
                    seconds=round(time.perf_counter() - started, 3),
                )

    def close(self) -> None:
        with self._lock:
            for durable in self._indexes.values():
                try:
                    durable.close(snapshot=True)
                except Exception:  # one index failing to snapshot must not stop the others
                    log.exception("closing index failed", index=durable.params.name)
            self._indexes.clear()

    # ----------------------------------------------------------------- indexes

    def index(self, name: str) -> DurableIndex:
        durable = self._indexes.get(name)
        if durable is None:
            validate_index_name(name)
            raise NotFound(f"no index {name!r}", details={"index": name})
        return durable

    def create_index(self, name: str, req: CreateIndexRequest) -> tuple[IndexInfo, bool]:
        """Answer (info, created). An existing index with the same parameters is not an error;
        omitted `space`/`M`/`ef_construction` match whatever the index has."""
        validate_index_name(name)
        with self._lock:
            existing = self._indexes.get(name)
            if existing is not None:
                p = existing.params
                wanted: dict[str, Any] = {"dim": req.dim}
                for key in ("space", "M", "ef_construction"):
                    if getattr(req, key) is not None:
                        wanted[key] = getattr(req, key)
                have = p.to_json()
                differ = {
                    k: {"have": have[k], "asked": v} for k, v in wanted.items() if have[k] != v
                }
                if differ:
                    raise Conflict(
                        f"index {name!r} exists with different parameters",
                        details={"index": name, "differences": differ},
                    )
                return IndexInfo.model_validate(existing.info()), False
            params = IndexParams(
                name=name,
                dim=req.dim,
                space=req.space or self.settings.default_space,
                M=req.M or self.settings.default_m,
                ef_construction=req.ef_construction or self.settings.default_ef_construction,
                created_at=datetime.now(UTC).isoformat(),
            )
            durable = DurableIndex.create(self.root / name, params, self.tuning)
            self._indexes[name] = durable
            log.info("index created", index=name, dim=params.dim, space=params.space)
            return IndexInfo.model_validate(durable.info()), True

    def delete_index(self, name: str) -> None:
        with self._lock:
            durable = self.index(name)
            durable.close(snapshot=False)
            del self._indexes[name]
            graveyard = self.root / f".{name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
            (self.root / name).rename(graveyard)
            fsync_dir(self.root)
        shutil.rmtree(graveyard, ignore_errors=True)
        log.info("index deleted", index=name)

    def list_indexes(self) -> list[IndexSummary]:
        out = []
        for name in sorted(self._indexes):
            durable = self._indexes.get(name)
            if durable is None:
                continue
            p = durable.params
            out.append(IndexSummary(name=name, dim=p.dim, space=p.space, count=len(durable.index)))
        return out

    def info(self, name: str) -> IndexInfo:
        return IndexInfo.model_validate(self.index(name).info())

    # ----------------------------------------------------------------- items

    def add(self, name: str, items: list[Any]) -> tuple[int, int, int]:
        """Upsert; answer (added, updated, live count)."""
        durable = self.index(name)
        record = durable.index.prepare_add(items)
        added, updated = durable.add(record)
        return added, updated, len(durable.index)

    def delete(self, name: str, ids: list[str]) -> tuple[list[str], list[str], int]:
        durable = self.index(name)
        deleted, missing = durable.delete(ids)
        return deleted, missing, len(durable.index)

    def get_item(self, name: str, item_id: str) -> tuple[list[float], dict[str, Any]]:
        return self.index(name).index.get(item_id)

    def list_items(
        self, name: str, *, after: str | None, limit: int, filter: dict[str, Any] | None
    ) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
        return self.index(name).index.list_items(after=after, limit=limit, filter=filter)

    def search(self, name: str, req: SearchRequest) -> list[list[Hit]]:
        """`POST /indexes/{name}/search`: one list of hits per query vector."""
        rows = [req.vector] if req.vector is not None else req.vectors
        assert rows is not None
        return self._search(name, rows, req.k, req.ef, req.filter, req.exclude_ids)

    def search_indexes(self, req: MultiSearchRequest) -> list[list[Hit]]:
        """`POST /v1/vectors/search`: each search as its per-index form; an absent index of a
        `missing_ok` search answers no hits."""
        out: list[list[Hit]] = []
        for one in req.searches:
            if one.missing_ok and one.index not in self._indexes:
                validate_index_name(one.index)
                out.append([])
            else:
                # The parsed fields as they are: the vector was validated once, by the parse.
                hits = self._search(
                    one.index, [one.vector], one.k, one.ef, one.filter, one.exclude_ids
                )
                out.append(hits[0])
        return out

    def _search(
        self,
        name: str,
        rows: Sequence[Sequence[float]],
        k: int,
        ef: int | None,
        filter: dict[str, Any] | None,
        exclude_ids: list[str],
    ) -> list[list[Hit]]:
        durable = self.index(name)
        if k > self.settings.max_k:
            raise UnprocessableEntity(
                f"k={k} is above the limit of {self.settings.max_k} (vector.max_k)",
                details={"field": "k", "limit": self.settings.max_k},
            )
        queries = durable.index.prepare_queries(rows)
        return durable.index.search(queries, k, ef=ef, filter=filter, exclude_ids=exclude_ids)

    # ----------------------------------------------------------------- snapshots

    def snapshot_due(self) -> list[DurableIndex]:
        now = time.monotonic()
        every, interval = self.settings.snapshot_every_ops, self.settings.snapshot_interval_s
        return [d for d in list(self._indexes.values()) if d.snapshot_due(every, interval, now)]
