"""The DuckDB side of queryd: one sandboxed database, a cursor per running query (SPEC §4).

- The database is in memory and opened locked down: `enable_external_access=false` (no file,
  network, extension or Python-variable access from SQL), community extensions and extension
  auto-install/auto-load off, Python replacement scans off, and `lock_configuration=true`, so
  no statement can loosen any of it. The views are Arrow objects registered from Python, which
  is the one way data gets in.
- Registered views belong to the cursor that registered them, and registering costs ~0.5 ms, so
  cursors are pooled: each query checks one out, brings its registrations up to the published
  view set (only the names that changed), runs, and checks it back in. A cursor serves one
  query at a time; queries never share one.
- A watchdog timer interrupts the cursor when the time limit passes (`RequestTimeout`, 408); an
  interrupted cursor is closed rather than reused.
- Rows are fetched from DuckDB's streaming Arrow reader until `limit + 1` rows are in hand, so
  `truncated` is exact and the query itself is never rewritten.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from lakehouse_common.config import QuerySettings
from lakehouse_common.errors import (
    Internal,
    InvalidInput,
    LakehouseError,
    RequestTimeout,
    UpstreamError,
)
from lakehouse_common.logging import get_logger
from services.queryd.sandbox import check_statement

MAX_BATCH_ROWS = 65_536
_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")
_SCAN_FAILED = "reading the stream registered as"

log = get_logger("lakehouse.queryd.engine")


class UnknownRelation(InvalidInput):
    """The query names a table or view that does not exist (yet: the caller may refresh)."""

    def __init__(self, message: str, relation: str) -> None:
        super().__init__(message, details={"relation": relation})
        self.relation = relation


@dataclass(frozen=True)
class QueryResult:
    columns: list[tuple[str, str]]  # (name, DuckDB type)
    table: pa.Table
    truncated: bool
    # The SELECT's syntax tree (None for EXPLAIN): what governance reads.
    tree: dict[str, Any] | None = None


class _Session:
    """A pooled cursor and the views it has registered."""

    __slots__ = ("cursor", "epoch", "generation", "registered")

    def __init__(self, cursor: duckdb.DuckDBPyConnection, epoch: int) -> None:
        self.cursor = cursor
        self.epoch = epoch
        self.generation = -1
        self.registered: dict[str, Any] = {}


class _Watchdog:
    """Interrupts `cursor` after `timeout_s` unless the block ended first."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, timeout_s: float) -> None:
        self._cursor = cursor
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._timer = threading.Timer(max(timeout_s, 0.0), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            self._cursor.interrupt()

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


class QueryEngine:
    """The database, the cursor pool and the published view set."""

    def __init__(self, settings: QuerySettings, temp_dir: Path) -> None:
        self.settings = settings
        self.temp_dir = temp_dir
        self._lock = threading.Lock()
        self._views: Mapping[str, Any] = {}
        self._generation = 0
        self._idle: list[_Session] = []
        self._epoch = 0
        self._db = self._open()

    def _open(self) -> duckdb.DuckDBPyConnection:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        db = duckdb.connect(
            ":memory:",
            config={
                "threads": self.settings.threads,
                "memory_limit": self.settings.memory_limit,
                # Spill files; fixed here because external access off forbids changing it.
                "temp_directory": str(self.temp_dir),
                "allow_community_extensions": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "python_enable_replacements": False,
            },
        )
        # After the options above (DuckDB refuses temp_directory once external access is off),
        # and locked last so no statement can turn anything back on.
        db.execute("SET enable_external_access = false")
        db.execute("SET lock_configuration = true")
        return db

    # -- views -------------------------------------------------------------------------------

    def publish(self, views: Mapping[str, Any]) -> None:
        """Make `views` (name → view with `.data`, compared by identity) the set queries see."""
        snapshot = dict(views)
        with self._lock:
            self._views = snapshot
            self._generation += 1

    def _sync(self, session: _Session) -> None:
        with self._lock:
            generation, views = self._generation, self._views
        if session.generation == generation:
            return
        cursor = session.cursor
        for name in [n for n in session.registered if n not in views]:
            cursor.unregister(name)
            del session.registered[name]
        for name, view in views.items():
            if session.registered.get(name) is not view:
                cursor.register(name, view.data)
                session.registered[name] = view
        session.generation = generation

    # -- the pool ----------------------------------------------------------------------------

    def _checkout(self) -> _Session:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            epoch, db = self._epoch, self._db
        return _Session(db.cursor(), epoch)

    def _checkin(self, session: _Session, reusable: bool) -> None:
        with self._lock:
            if reusable and session.epoch == self._epoch:
                self._idle.append(session)
                return
        session.cursor.close()

    def _reopen(self) -> None:
        """After a fatal DuckDB error the database is unusable: start a new one."""
        with self._lock:
            old, idle = self._db, self._idle
            self._db = self._open()
            self._idle = []
            self._epoch += 1
        for session in idle:
            session.cursor.close()
        old.close()

    # -- queries -----------------------------------------------------------------------------

    def execute(
        self, sql: str, params: list[Any], *, limit: int, deadline: float, time_limit_s: float
    ) -> QueryResult:
        """Check and run `sql`; stop it at `deadline` (a `time.perf_counter()` instant, the
        request's start + `time_limit_s`)."""
        timeout_s = deadline - time.perf_counter()
        if timeout_s <= 0:
            raise _timeout(time_limit_s)
        session = self._checkout()
        reusable = False
        try:
            self._sync(session)
            with _Watchdog(session.cursor, timeout_s) as watchdog:
                try:
                    tree = check_statement(session.cursor, sql)
                    result = self._fetch(session.cursor, sql, params, limit)
                    result = QueryResult(result.columns, result.table, result.truncated, tree)
                except duckdb.InterruptException:
                    if watchdog.fired:
                        raise _timeout(time_limit_s) from None
                    raise InvalidInput("the query was interrupted") from None
                except duckdb.Error as exc:
                    raise self._translate(exc) from None
            reusable = not watchdog.fired
            return result
        except LakehouseError as exc:
            reusable = not isinstance(exc, RequestTimeout | Internal)
            raise
        finally:
            self._checkin(session, reusable)

    def _fetch(
        self, cursor: duckdb.DuckDBPyConnection, sql: str, params: list[Any], limit: int
    ) -> QueryResult:
        relation = cursor.sql(sql, params=params or None)
        if relation is None:
            raise InvalidInput("the statement answered no result")
        columns = [
            (name, str(kind)) for name, kind in zip(relation.columns, relation.types, strict=True)
        ]
        reader = relation.to_arrow_reader(max(1, min(limit + 1, MAX_BATCH_ROWS)))
        batches = []
        rows = 0
        try:
            while rows <= limit:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                batches.append(batch)
                rows += batch.num_rows
            schema = reader.schema
        finally:
            reader.close()  # also ends the query when rows were left unread
        table = pa.Table.from_batches(batches, schema=schema)
        truncated = table.num_rows > limit
        if truncated:
            table = table.slice(0, limit)
        return QueryResult(columns, table, truncated)

    def _translate(self, exc: duckdb.Error) -> LakehouseError:
        message = str(exc)
        if isinstance(exc, duckdb.CatalogException):
            missing = _MISSING_TABLE.search(message)
            if missing is not None:
                return UnknownRelation(message, missing.group(1))
        if _SCAN_FAILED in message:
            log.warning("lake read failed", error=message)
            return UpstreamError(f"reading the lake's data failed: {message}")
        if isinstance(exc, duckdb.FatalException | duckdb.InternalException):
            log.error("DuckDB failed internally; reopening the database", error=message)
            self._reopen()
            return Internal(f"the query engine failed: {message}")
        if isinstance(exc, duckdb.OutOfMemoryException):
            return InvalidInput(f"{message} (limit: query.memory_limit)")
        return InvalidInput(message)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for session in idle:
            session.cursor.close()
        self._db.close()


def _timeout(time_limit_s: float) -> RequestTimeout:
    return RequestTimeout(
        f"the query ran past its time limit of {time_limit_s:g}s and was stopped",
        details={"timeout_s": time_limit_s},
    )
