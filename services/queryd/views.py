"""The set of views queries read, kept in step with the catalog and the data dir (SPEC §4).

- Every catalog dataset is a view at its latest version (`workers`) and one per version
  (`workers__v1`, `workers__v2`, …).
- `<data_dir>/_kb/<stream>.jsonl` is the view `kb_<stream>`; `<data_dir>/sessions/*.jsonl`
  together are the view `sessions`. Symbolic links are ignored: nothing outside the data dir is
  read.

Before a query runs, `ensure_fresh()` refreshes the set when the last refresh is older than
`query.catalog_refresh_s`: catalogd's listing says which datasets have a new latest version,
and only those are asked for their history; versions are immutable, so a version's Arrow dataset
is built once and reused. JSON-lines files are re-read only when their size, mtime or inode
changed. One refresh runs at a time (concurrent callers share it), and it publishes a complete
new set at the end, so a query sees either the old set or the new one, never half of each.
When catalogd cannot be reached, the datasets keep their last known views (logged) and the next
query past the interval tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from starlette.concurrency import run_in_threadpool

from lakehouse_common.contracts.catalog import CatalogClient, DatasetManifest
from lakehouse_common.errors import LakehouseError, NotFound
from lakehouse_common.logging import get_logger
from services.queryd.lake import JsonLinesFile, LakeFiles, read_json_lines, view_table

KB_DIR = "_kb"
SESSIONS_DIR = "sessions"
SESSIONS_VIEW = "sessions"
KB_PREFIX = "kb_"
VERSION_SEPARATOR = "__v"

_STREAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,120}")

Source = Literal["dataset", "kb", "sessions"]

log = get_logger("lakehouse.queryd.views")


@dataclass(frozen=True, eq=False)
class View:
    """One view: its name, where it comes from, and the Arrow object DuckDB scans.

    Compared by identity: a cursor re-registers a name only when its `View` object changed.
    """

    name: str
    source: Source
    data: Any = field(repr=False)
    dataset: str | None = None
    version: int | None = None
    files: tuple[Path, ...] = ()  # the JSON-lines files behind a sessions view


def version_view(name: str, version: int) -> str:
    return f"{name}{VERSION_SEPARATOR}{version}"


def kb_view(stream: str) -> str:
    return KB_PREFIX + re.sub(r"[^a-z0-9_]", "_", stream.lower())


class LakeViews:
    """Builds and refreshes the views; hands each complete set to `publish`."""

    def __init__(
        self,
        catalog: CatalogClient,
        files: LakeFiles,
        data_dir: Path,
        refresh_s: float,
        publish: Callable[[Mapping[str, View]], None],
    ) -> None:
        self.catalog = catalog
        self.files = files
        self.data_dir = data_dir
        self.refresh_s = refresh_s
        self._publish = publish
        self._versions: dict[str, dict[int, View]] = {}  # dataset -> version -> view
        self._latest: dict[str, View] = {}  # dataset -> its latest view (`workers`)
        self._files: dict[Path, JsonLinesFile] = {}  # every JSON-lines file being followed
        self._local: dict[str, View] = {}  # kb_* and sessions
        self._checked_at = -math.inf  # when the last refresh ended
        self._began_at = -math.inf  # when the last completed refresh began
        self._task: asyncio.Task[None] | None = None
        self._task_began_at = -math.inf
        self._views: Mapping[str, View] = {}
        self.catalog_refreshed_at: datetime | None = None

    @property
    def views(self) -> Mapping[str, View]:
        """The last published set."""
        return self._views

    def start(self) -> None:
        """Begin the first refresh in the background (the first query waits for it)."""
        self._refresh_task(None)

    async def close(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def ensure_fresh(self, *, wait_s: float, newer_than: float | None = None) -> None:
        """Refresh when the last one is older than `refresh_s` — or, with `newer_than` (a
        `time.monotonic()` instant), unless a refresh began after that instant. Wait for it at
        most `wait_s`; past that the query runs on the current set."""
        if newer_than is None:
            if time.monotonic() - self._checked_at < self.refresh_s:
                return
        elif self._began_at >= newer_than:
            return
        task = self._refresh_task(newer_than)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=max(wait_s, 0.0))
        except TimeoutError:
            log.warning("view refresh still running; querying the current views", wait_s=wait_s)

    def _refresh_task(self, newer_than: float | None) -> asyncio.Task[None]:
        """The refresh in flight, or a new one. A caller with `newer_than` needs a refresh that
        lists the catalog after that instant: one already listing since earlier may have missed
        the version the caller is looking for, so the new one queues behind it."""
        running = self._task if self._task is not None and not self._task.done() else None
        if running is not None and (newer_than is None or self._task_began_at >= newer_than):
            return running
        self._task_began_at = time.monotonic()
        self._task = asyncio.create_task(self._refresh(after=running))
        return self._task

    async def _refresh(self, after: asyncio.Task[None] | None = None) -> None:
        if after is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(after)
        began = time.monotonic()
        try:
            await self._refresh_datasets()
            await run_in_threadpool(self._refresh_local)
            self._views = self._compose()
            self._publish(self._views)
        except Exception:
            log.exception("view refresh failed; keeping the current views")
        finally:
            self._began_at = began
            self._checked_at = time.monotonic()

    async def _refresh_datasets(self) -> None:
        try:
            listing = await self.catalog.list_datasets()
        except LakehouseError as exc:
            log.warning("catalogd unavailable; dataset views unchanged", error=str(exc))
            return
        latest = {d.name: d.latest_version for d in listing.datasets}
        for gone in set(self._versions) - set(latest):
            del self._versions[gone]
            self._latest.pop(gone, None)
        for name, version in latest.items():
            current = self._latest.get(name)
            if current is not None and current.version == version:
                continue
            await self._refresh_dataset(name)
        self.catalog_refreshed_at = datetime.now(UTC)

    async def _refresh_dataset(self, name: str) -> None:
        try:
            history = await self.catalog.history(name)
        except NotFound:
            return  # removed between the listing and now
        except LakehouseError as exc:
            log.warning("dataset history unavailable", dataset=name, error=str(exc))
            return
        built = self._versions.setdefault(name, {})
        for manifest in history.versions:
            if manifest.version not in built:
                view = await self._build_version(manifest)
                if view is not None:
                    built[manifest.version] = view
        known = {m.version for m in history.versions}
        for stale in set(built) - known:
            del built[stale]
        if not built:
            self._versions.pop(name, None)
            self._latest.pop(name, None)
            return
        top = built[max(built)]
        current = self._latest.get(name)
        if current is None or current.version != top.version:
            self._latest[name] = View(name, "dataset", top.data, dataset=name, version=top.version)

    async def _build_version(self, manifest: DatasetManifest) -> View | None:
        try:
            data = await run_in_threadpool(self.files.dataset, manifest)
        except (OSError, pa.ArrowException, LakehouseError) as exc:
            # Skipped now, tried again at the next refresh (the version stays unbuilt).
            log.warning(
                "dataset version unreadable; no view for it",
                dataset=manifest.name,
                version=manifest.version,
                error=str(exc),
            )
            return None
        name = version_view(manifest.name, manifest.version)
        return View(name, "dataset", data, dataset=manifest.name, version=manifest.version)

    def _refresh_local(self) -> None:
        """Bring the JSON-lines views up to date with their files (runs in a worker thread):
        only appended bytes are read, and a view object changes only when its rows did."""
        kb = {p: kb_view(p.stem) for p in _jsonl_files(self.data_dir / KB_DIR)}
        kb = {p: name for p, name in kb.items() if _STREAM_NAME.fullmatch(p.stem)}
        sessions = _jsonl_files(self.data_dir / SESSIONS_DIR)
        wanted = set(kb) | set(sessions)
        self._files = {p: f for p, f in self._files.items() if p in wanted}
        changed: set[Path] = set()
        failed: set[Path] = set()
        for path in wanted:
            followed = self._files.get(path)
            if followed is None:
                followed = JsonLinesFile(path, with_file=path in sessions)
                self._files[path] = followed
            before = followed.skipped
            try:
                if followed.refresh():
                    changed.add(path)
            except OSError as exc:
                log.warning("JSON-lines file unreadable", path=path.name, error=str(exc))
                failed.add(path)
                continue
            if followed.skipped > before:
                log.warning(
                    "skipped malformed JSON lines",
                    path=path.name,
                    skipped=followed.skipped - before,
                )
        local: dict[str, View] = {}
        for path, name in kb.items():
            previous = self._local.get(name)
            if previous is not None and path not in changed:
                local[name] = previous
            elif path not in failed:
                local[name] = View(name, "kb", self._files[path].table)
        if sessions:
            previous = self._local.get(SESSIONS_VIEW)
            same_files = previous is not None and previous.files == tuple(sessions)
            if previous is not None and same_files and not changed.intersection(sessions):
                local[SESSIONS_VIEW] = previous
            else:
                local[SESSIONS_VIEW] = View(
                    SESSIONS_VIEW, "sessions", self._sessions_table(sessions), files=tuple(sessions)
                )
        self._local = local

    def _sessions_table(self, paths: list[Path]) -> pa.Table:
        tables = [self._files[p].raw for p in paths if p in self._files]
        try:
            return view_table(pa.concat_tables(tables, promote_options="permissive"))
        except (pa.ArrowException, TypeError, ValueError):
            # Files disagree on a key's type: one read of them all keeps such keys as JSON text.
            return read_json_lines(paths, with_file=True).table

    def _compose(self) -> dict[str, View]:
        views: dict[str, View] = {}
        for name, versions in self._versions.items():
            for view in versions.values():
                views[view.name] = view
            if name in self._latest:
                views[name] = self._latest[name]
        for name, view in self._local.items():
            if name in views:
                log.warning(
                    "a dataset has the name of a JSON-lines view; the dataset wins", view=name
                )
                continue
            views[name] = view
        return views


def _jsonl_files(directory: Path) -> list[Path]:
    if directory.is_symlink():
        return []
    try:
        candidates = sorted(directory.glob("*.jsonl"))
    except OSError:
        return []
    return [p for p in candidates if not p.is_symlink() and p.is_file()]
