"""The object ``Store`` interface every backend implements (SPEC §4, storaged).

Daemons that move bulk data (ingestd, queryd, vectord snapshots) use a ``Store`` in-process;
storaged puts HTTP routes on top of the same interface. The API is synchronous: async callers
run it in a threadpool.

Writing is two steps so that large bodies never sit in memory and a half-written object is never
visible: ``stage()`` returns a ``StagedObject`` that streams content to a file on local disk while
counting its size and SHA-256, and ``commit()`` publishes it atomically under ``bucket/key``
(optionally create-only, which is how catalogd's version commits stay single-winner).
The ETag of every object is the lowercase hex SHA-256 of its content (SPEC §4).

Every method validates its bucket and key before doing anything (``keys.py``) and raises the
core error family: ``InvalidInput`` (400), ``NotFound`` (404), ``Conflict`` (409),
``UpstreamUnavailable`` (502) ...
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from lakehouse_common.errors import InvalidInput
from lakehouse_common.store.keys import validate_bucket, validate_key, validate_prefix

DEFAULT_BUCKET: Final = "lakehouse"  # SPEC §4: "the default bucket is `lakehouse`"
DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
DEFAULT_LIST_LIMIT: Final = 1000
MAX_LIST_LIMIT: Final = 10_000
CHUNK_SIZE: Final = 1024 * 1024  # size of the chunks open_read() yields
STAGED_SUFFIX: Final = ".part"
# A staging file is only removed as stale when no process holds its flock AND it has not been
# written for this long: the age guard covers the instant between a writer creating the file
# and locking it.
DEFAULT_STAGING_GRACE_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows about one object.

    ``etag`` is the lowercase hex SHA-256 of the content; ``modified`` is timezone-aware UTC;
    ``content_type`` is what the writer declared (``application/octet-stream`` when it did not).
    """

    bucket: str
    key: str
    size: int
    etag: str
    modified: datetime
    content_type: str


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing, keys in lexicographic (UTF-8 byte) order.

    ``next_cursor`` is the last key of this page when more keys follow, else ``None``; pass it
    back as ``cursor`` to get the keys strictly after it.
    """

    objects: builtins.list[ObjectInfo]
    next_cursor: str | None


class StagedObject:
    """Content being streamed to a local file before ``Store.commit`` publishes it.

    Use as a context manager: leaving the block without a commit (or with an exception) aborts
    and removes the file. The file is ``flock``-ed while open so that a store cleaning stale
    staging files (after a crash) can tell a live upload from an abandoned one, even across
    processes sharing one data directory.
    """

    def __init__(self, directory: Path, owner: object) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.owner = owner
        self.path = directory / f"{uuid.uuid4().hex}{STAGED_SUFFIX}"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._file = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise
        self._hash = hashlib.sha256()
        self._size = 0
        self._state = "open"  # open -> sealed -> done | aborted

    @property
    def size(self) -> int:
        return self._size

    @property
    def sha256(self) -> str:
        """Lowercase hex SHA-256 of everything written so far."""
        return self._hash.hexdigest()

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._state != "open":
            raise ValueError(f"staged object is {self._state}, cannot write")
        self._file.write(chunk)
        self._hash.update(chunk)
        self._size += len(chunk)

    def fileno(self) -> int:
        return self._file.fileno()

    def seal(self) -> None:
        """Flush and fsync the content; no more writes. Called by ``Store.commit``."""
        if self._state != "open":
            raise ValueError(f"staged object is {self._state}, cannot commit it")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._state = "sealed"

    def finish(self) -> None:
        """Release the file after a successful publish (removes the staging name if it is
        still there, e.g. after a hard link or an upload)."""
        self._state = "done"
        self._release()

    def abort(self) -> None:
        """Discard the content; safe to call more than once and after ``finish``."""
        if self._state in ("done", "aborted"):
            return
        self._state = "aborted"
        self._release()

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def __del__(self) -> None:
        # A staged object dropped without commit/abort must not leak its file.
        if getattr(self, "_state", "done") not in ("done", "aborted"):
            self.abort()


def remove_stale_staged(directory: Path, grace_s: float = DEFAULT_STAGING_GRACE_S) -> int:
    """Remove staging files left behind by crashed writers; returns how many were removed.

    Several processes may share one staging directory (storaged and ingestd both open the data
    directory), so a file goes only when nobody holds its lock and it is older than ``grace_s``.
    """
    removed = 0
    now = time.time()
    try:
        scan = os.scandir(directory)
    except FileNotFoundError:
        return 0
    with scan as entries:
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if now - entry.stat(follow_symlinks=False).st_mtime < grace_s:
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(entry.path)
                removed += 1
            except OSError:
                continue  # a live writer holds the lock, or the file went meanwhile
            finally:
                os.close(fd)
    return removed


class ObjectStream(Iterator[bytes]):
    """The content of an object as an iterator of byte chunks.

    The underlying file or HTTP body is released when the iterator is exhausted, on ``close()``
    and on leaving a ``with`` block; callers that stop early should close it.
    """

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None]) -> None:
        self._chunks = chunks
        self._on_close: Callable[[], None] | None = on_close

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> bytes:
        if self._on_close is None:
            raise StopIteration
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is None:
            return
        try:
            close_chunks = getattr(self._chunks, "close", None)
            if close_chunks is not None:
                close_chunks()  # a generator: run its cleanup now, not at garbage collection
        finally:
            on_close()

    def read_all(self) -> bytes:
        with self:
            return b"".join(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_list_args(
    bucket: str, prefix: str, limit: int, cursor: str | None
) -> tuple[str, str, int, str | None]:
    """Validate ``list`` arguments the same way for every backend."""
    validate_bucket(bucket)
    validate_prefix(prefix)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInput(f"limit must be an integer, got {limit!r}")
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
    if cursor is not None:
        validate_key(cursor)
    return bucket, prefix, limit, cursor


def check_object_args(bucket: str, key: str) -> None:
    validate_bucket(bucket)
    validate_key(key)


def check_content_type(content_type: str | None) -> str:
    """The declared content type, or the default; refuses values that could not travel as an
    HTTP header (S3 sends it as one: a CR/LF here would be header injection)."""
    if content_type is None:
        return DEFAULT_CONTENT_TYPE
    if (
        not isinstance(content_type, str)
        or not 0 < len(content_type) <= 255
        or not all(" " <= ch <= "~" for ch in content_type)
    ):
        raise InvalidInput(
            f"invalid content type {content_type!r}: must be 1-255 printable ASCII characters"
        )
    return content_type


class Store(ABC):
    """An object store: buckets of keys, atomic writes, SHA-256 ETags, paginated listings."""

    @abstractmethod
    def stage(self) -> StagedObject:
        """Start a write: stream content into the returned object, then ``commit`` it."""

    @abstractmethod
    def commit(
        self,
        staged: StagedObject,
        bucket: str,
        key: str,
        *,
        create_only: bool = False,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Publish ``staged`` as ``bucket/key`` atomically; readers see the old object or the
        new one, never a mix. ``create_only`` raises ``Conflict`` if the key exists. The staged
        object is consumed (its file is gone) whether the commit succeeds or not."""

    @abstractmethod
    def open_read(self, bucket: str, key: str) -> tuple[ObjectInfo, ObjectStream]:
        """The object's info and its content as a stream of chunks (``NotFound`` if absent)."""

    @abstractmethod
    def head(self, bucket: str, key: str) -> ObjectInfo:
        """The object's info without its content (``NotFound`` if absent)."""

    @abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Remove the object (``NotFound`` if absent)."""

    @abstractmethod
    def list(
        self,
        bucket: str,
        *,
        prefix: str = "",
        limit: int = DEFAULT_LIST_LIMIT,
        cursor: str | None = None,
    ) -> ListPage:
        """Up to ``limit`` (1..10000) objects whose key starts with ``prefix`` and sorts after
        ``cursor``, in lexicographic order. A bucket that does not exist lists empty."""

    @abstractmethod
    def list_buckets(self) -> builtins.list[str]:
        """Names of the buckets that exist, sorted."""

    @abstractmethod
    def close(self) -> None:
        """Release clients and pools; the store is unusable afterwards."""

    def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes | bytearray | memoryview,
        *,
        create_only: bool = False,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Write a small in-memory object (``stage`` + ``commit``)."""
        check_object_args(bucket, key)
        with self.stage() as staged:
            staged.write(data)
            return self.commit(
                staged, bucket, key, create_only=create_only, content_type=content_type
            )

    def get_bytes(self, bucket: str, key: str) -> bytes:
        """The whole content of a (small) object."""
        _, stream = self.open_read(bucket, key)
        return stream.read_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
