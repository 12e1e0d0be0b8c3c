"""Power-loss simulation: lose everything that was not fsync'd, then restart (issue 18).

A `kill -9` keeps the page cache, so the crash tests of every durable log would pass with every
fsync removed. This harness models a power cut instead, in process and deterministically:

- **Recording.** :class:`PowerLossRecorder` wraps ``os.fsync`` and ``os.fdatasync`` (the
  product calls them through the ``os`` module at call time) while a workload runs under
  ``root``. After each successful call on a **regular file** it records the file's content at
  that moment — its durable state — keyed by inode; after each call on a **directory** it
  records which names the directory holds and the inode each points to. Every recorded inode
  stays open (pinned) until the recorder closes, so the file system cannot hand its number to
  a new file and confuse the two.
- **Acknowledgements.** The workload calls :meth:`PowerLossRecorder.ack` when an operation
  returns successfully (the daemon would answer 2xx then); the ack remembers how many
  durability events had happened by then.
- **Crash at point k.** :meth:`PowerLossRecorder.materialise` builds the durable state as of
  the first ``k`` events in a fresh directory: a name exists only if it was in its directory's
  last recorded listing (so a file created or renamed whose directory was never fsync'd is
  gone, or is still the old inode), a file holds the bytes of its last fsync (else nothing),
  and a directory never fsync'd is empty. With ``torn`` a file also keeps a random prefix of
  the bytes it gained before its next fsync (a torn, unacknowledged tail). What existed under
  ``root`` before recording started counts as durable.
- **Checking.** :func:`run_power_loss` replays a :class:`Workload`, then for each chosen crash
  point materialises the state, runs the component's own recovery on it (the code a daemon runs
  at start) and lets the workload check it: every write acknowledged at or before the point is
  present and intact, and the log verifies. Nothing unacknowledged is required.

The model is strict POSIX: it assumes no journal ordering luck (ext4 would often keep a new
file's name after a file fsync; POSIX does not promise it).
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# (st_dev, st_ino): one file system object while the recorder pins it.
Inode = tuple[int, int]
# (call, fd) -> whether to skip this fsync/fdatasync.
SkipFsync = Callable[[str, int], bool]


@dataclass(frozen=True)
class FileSynced:
    """A regular file's content became durable (an fsync/fdatasync returned)."""

    inode: Inode
    path: str
    content: bytes


@dataclass(frozen=True)
class DirSynced:
    """A directory's entries became durable: name → (inode, is a directory)."""

    inode: Inode
    path: str
    entries: dict[str, tuple[Inode, bool]]


Event = FileSynced | DirSynced


@dataclass(frozen=True)
class Ack:
    """An acknowledged operation: durable once the first `point` events had happened."""

    point: int
    item: Any


class PowerLossRecorder:
    """Records the durable state of everything below `root` while it is active (a context
    manager; only one may be active at a time)."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.events: list[Event] = []
        self.acks: list[Ack] = []
        # Events up to here describe the state before the workload (taken as durable).
        self.baseline = 0
        self._root_inode: Inode | None = None
        self._pins: dict[Inode, int] = {}
        self._lock = threading.RLock()
        self._saved: dict[str, Callable[[int], None]] = {}
        # The fsyncs a test removes on purpose (see `skip_fsync`).
        self._skip: SkipFsync | None = None

    # -- recording -------------------------------------------------------------------------

    def __enter__(self) -> PowerLossRecorder:
        self.root.mkdir(parents=True, exist_ok=True)
        st = os.stat(self.root)
        self._root_inode = (st.st_dev, st.st_ino)
        self._record_tree(self.root)
        self.baseline = len(self.events)
        for name in ("fsync", "fdatasync"):
            real = getattr(os, name)
            self._saved[name] = real
            setattr(os, name, self._wrap(name, real))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, real in self._saved.items():
            setattr(os, name, real)
        self._saved.clear()
        for fd in self._pins.values():
            os.close(fd)
        self._pins.clear()

    def _wrap(self, call: str, real: Callable[[int], None]) -> Callable[[Any], None]:
        def synced(fd: Any) -> None:
            fileno = fd if isinstance(fd, int) else fd.fileno()
            if self._skip is not None and self._skip(call, fileno):
                return  # a test removing one fsync on purpose: the data stays volatile
            real(fileno)
            self._record_fd(fileno)

        return synced

    def _record_fd(self, fd: int) -> None:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return
        if not _is_below(Path(path), self.root):
            return
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            self._record_dir(Path(path), st)
        elif stat.S_ISREG(st.st_mode):
            # Re-open through /proc: works for a write-only descriptor and keeps the inode.
            with self._lock:
                inode = self._pin(f"/proc/self/fd/{fd}", st)
                content = _read_all(self._pins[inode])
                self.events.append(FileSynced(inode, path, content))

    def _pin(self, path: str, st: os.stat_result) -> Inode:
        inode = (st.st_dev, st.st_ino)
        if inode not in self._pins:
            self._pins[inode] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return inode

    def _record_dir(self, directory: Path, st: os.stat_result) -> None:
        with self._lock:
            inode = self._pin(str(directory), st)
            entries: dict[str, tuple[Inode, bool]] = {}
            with os.scandir(directory) as it:
                for entry in it:
                    try:
                        est = entry.stat(follow_symlinks=False)
                        if not (stat.S_ISREG(est.st_mode) or stat.S_ISDIR(est.st_mode)):
                            continue
                        child = self._pin(entry.path, est)
                    except FileNotFoundError:
                        continue  # removed while we listed: not in this listing
                    entries[entry.name] = (child, stat.S_ISDIR(est.st_mode))
            self.events.append(DirSynced(inode, str(directory), entries))

    def _record_tree(self, directory: Path) -> None:
        """The state before the workload: every file and directory below `root` as it is."""
        self._record_dir(directory, os.stat(directory))
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                self._record_tree(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                with self._lock:
                    inode = self._pin(entry.path, st)
                    content = _read_all(self._pins[inode])
                    self.events.append(FileSynced(inode, entry.path, content))

    # -- the workload's side ---------------------------------------------------------------

    def ack(self, item: Any) -> Ack:
        """Note that the operation `item` was acknowledged now."""
        with self._lock:
            done = Ack(len(self.events), item)
            self.acks.append(done)
        return done

    @contextmanager
    def skip_fsync(self, when: SkipFsync) -> Iterator[None]:
        """Within the block, the calls for which `when(call, fd)` holds (`call` is "fsync" or
        "fdatasync") do nothing and record nothing: a test's way to remove one fsync."""
        previous, self._skip = self._skip, when
        try:
            yield
        finally:
            self._skip = previous

    # -- crashing --------------------------------------------------------------------------

    @property
    def points(self) -> range:
        """Every crash point: `k` means the first `k` events happened, no later one."""
        return range(self.baseline, len(self.events) + 1)

    def acked_by(self, point: int) -> list[Any]:
        """The items acknowledged at or before crash point `point` (they must survive)."""
        return [a.item for a in self.acks if a.point <= point]

    def materialise(self, point: int, target: Path, *, torn: random.Random | None = None) -> None:
        """Write the durable state after the first `point` events into `target` (empty or
        absent); with `torn`, files keep a random prefix of their next unsynced bytes."""
        files: dict[Inode, bytes] = {}
        dirs: dict[Inode, dict[str, tuple[Inode, bool]]] = {}
        for event in self.events[:point]:
            if isinstance(event, FileSynced):
                files[event.inode] = event.content
            else:
                dirs[event.inode] = event.entries
        later: dict[Inode, bytes] = {}
        if torn is not None:
            for event in self.events[point:]:
                if isinstance(event, FileSynced) and event.inode not in later:
                    later[event.inode] = event.content

        def content(inode: Inode) -> bytes:
            durable = files.get(inode, b"")
            nxt = later.get(inode)
            if torn is None or nxt is None or len(nxt) <= len(durable):
                return durable
            if not nxt.startswith(durable):
                return durable  # rewritten, not appended: no prefix model
            return nxt[: len(durable) + torn.randint(0, len(nxt) - len(durable))]

        def build(inode: Inode, dest: Path, above: frozenset[Inode]) -> None:
            dest.mkdir(parents=True, exist_ok=True)
            for name, (child, is_dir) in sorted(dirs.get(inode, {}).items()):
                if is_dir:
                    if child not in above:  # a directory renamed across listings: once
                        build(child, dest / name, above | {child})
                else:
                    (dest / name).write_bytes(content(child))

        assert self._root_inode is not None, "materialise after recording"
        build(self._root_inode, target, frozenset({self._root_inode}))


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _is_below(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


# -- running a workload through crashes --------------------------------------------------------


class Workload(Protocol):
    """A durable component driven through acknowledged writes, then recovered after a crash."""

    name: str
    # Whether the component's recovery must cope with a torn unacknowledged tail.
    torn_tails: bool

    def run(self, root: Path, recorder: PowerLossRecorder) -> None:
        """Perform writes below `root`, calling `recorder.ack(item)` after each success."""

    def check(self, root: Path, acked: Sequence[Any]) -> list[str]:
        """Restart on the crashed state in `root`; answer what is wrong (empty: all well)."""


@dataclass
class CrashFailure:
    point: int
    problems: list[str]


@dataclass
class PowerLossReport:
    workload: str
    events: int
    points_checked: int
    acks: int
    failures: list[CrashFailure] = field(default_factory=list)

    def describe(self, limit: int = 5) -> str:
        head = (
            f"{self.workload}: {len(self.failures)} of {self.points_checked} crash points "
            f"failed ({self.events} durability events, {self.acks} acknowledged writes)"
        )
        lines = [head]
        for failure in self.failures[:limit]:
            lines.append(f"  crash after event {failure.point}:")
            lines.extend(f"    - {p}" for p in failure.problems[:5])
        return "\n".join(lines)


def choose_points(points: range, budget: int, rng: random.Random) -> list[int]:
    """Every point when they fit in `budget`, else the first, the last and a random sample."""
    if len(points) <= budget:
        return list(points)
    inner = rng.sample(range(points.start + 1, points.stop - 1), budget - 2)
    return sorted({points.start, points.stop - 1, *inner})


def run_power_loss(
    workload: Workload,
    workdir: Path,
    *,
    budget: int,
    seed: int = 0,
    torn: bool = False,
    skip_fsync: SkipFsync | None = None,
) -> PowerLossReport:
    """Run `workload` under a recorder, crash it at up to `budget` points and check each.

    `torn` lets files keep random prefixes of their unsynced tails (only for workloads whose
    recovery repairs torn tails). `skip_fsync` removes the fsyncs it selects (by descriptor)
    for the whole run: the harness must then report lost acknowledged writes.
    """
    rng = random.Random(seed)
    live = workdir / "live"
    recorder = PowerLossRecorder(live)
    with recorder:
        if skip_fsync is None:
            workload.run(live, recorder)
        else:
            with recorder.skip_fsync(skip_fsync):
                workload.run(live, recorder)
    chosen = choose_points(recorder.points, budget, rng)
    report = PowerLossReport(workload.name, len(recorder.events), len(chosen), len(recorder.acks))
    for point in chosen:
        crashed = workdir / f"crash-{point}"
        recorder.materialise(point, crashed, torn=rng if torn else None)
        try:
            problems = workload.check(crashed, recorder.acked_by(point))
        except Exception as exc:  # recovery itself failing is a finding, not a harness crash
            problems = [f"recovery raised {type(exc).__name__}: {exc}"]
        if problems:
            report.failures.append(CrashFailure(point, problems))
        shutil.rmtree(crashed)
    shutil.rmtree(live)
    return report
