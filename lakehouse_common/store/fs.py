"""Local file-system backend of the object ``Store`` (SPEC §4, storaged: the default backend).

Layout below ``root``::

    <root>/<bucket>/<key>         the objects, one file each ("a/b/c" is <root>/<bucket>/a/b/c)
    <root>/.staging/<uuid>.part   content being written (StagedObject), same file system
    <root>/.meta/<bucket>/<key>   JSON sidecar: {sha256, size, mtime_ns, ino, content_type}

``.staging`` and ``.meta`` can never collide with a bucket: bucket names have no ``.``.

Atomic writes (SPEC §4 "temp file + fsync + rename"): the staged file is fsynced, then published
with ``os.replace`` (overwrite) or ``os.link`` (create-only: fails with ``EEXIST`` atomically, so
of two concurrent create-only commits exactly one wins), then the parent directory is fsynced.

ETags are the SHA-256 of the content. Hashing on every ``head``/``list`` would read every byte, so
the hash is cached in a sidecar that is trusted only while the data file's size, mtime_ns and
inode still match; a file replaced behind the store's back is re-hashed (and the sidecar
rewritten). The sidecar is a cache: losing it costs a re-hash, never a wrong answer. The sidecar
tree mirrors the key tree exactly (no ``.json`` suffix) so that it can only hit a file/folder
collision where the data tree would hit the same one first.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from lakehouse_common.durable import fsync_dir, make_dirs_durably
from lakehouse_common.errors import Conflict, Internal, InvalidInput, NotFound
from lakehouse_common.store.base import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    DEFAULT_LIST_LIMIT,
    DEFAULT_STAGING_GRACE_S,
    ListPage,
    ObjectInfo,
    ObjectStream,
    StagedObject,
    Store,
    check_content_type,
    check_list_args,
    check_object_args,
    remove_stale_staged,
)
from lakehouse_common.store.keys import (
    MAX_SEGMENT_BYTES,
    resolve_key,
    validate_bucket,
    validate_key,
)

STAGING_DIR: Final = ".staging"
META_DIR: Final = ".meta"
# A concurrent delete may prune the directory a commit just created; the commit re-creates it.
_PUBLISH_ATTEMPTS: Final = 8

_OPEN_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _hash_fd(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, CHUNK_SIZE, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _modified(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC)


def _valid_segment(name: str) -> bool:
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    if len(encoded) > MAX_SEGMENT_BYTES or name in (".", ".."):
        return False
    return "\\" not in name and not any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in name)


class FsStore(Store):
    """Objects as files below ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: Path, *, staging_grace_s: float = DEFAULT_STAGING_GRACE_S) -> None:
        self.root = Path(root).absolute()
        self._staging = self.root / STAGING_DIR
        self._meta = self.root / META_DIR
        # Durably: a bucket directory's fsync does not make `root`'s own name survive a power
        # loss (issue 18's harness lost every object of a fresh store).
        make_dirs_durably(self._staging)
        self._meta.mkdir(exist_ok=True)
        self.clean_staging(staging_grace_s)

    # -- paths -------------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        return self.root / bucket

    def path_of(self, bucket: str, key: str) -> Path:
        """The file that holds ``bucket/key`` (validates both)."""
        validate_bucket(bucket)
        return resolve_key(self._bucket_dir(bucket), key)

    def _meta_path(self, bucket: str, key: str) -> Path:
        return resolve_key(self._meta / bucket, key)

    # -- staging -----------------------------------------------------------------------------

    @property
    def staging_dir(self) -> Path:
        """Where staged content lives until it is committed."""
        return self._staging

    def stage(self) -> StagedObject:
        return StagedObject(self._staging, owner=self)

    def clean_staging(self, grace_s: float = DEFAULT_STAGING_GRACE_S) -> int:
        """Remove staging files left by crashed writers; returns how many were removed."""
        return remove_stale_staged(self._staging, grace_s)

    # -- writes ------------------------------------------------------------------------------

    def commit(
        self,
        staged: StagedObject,
        bucket: str,
        key: str,
        *,
        create_only: bool = False,
        content_type: str | None = None,
    ) -> ObjectInfo:
        if staged.owner is not self:
            raise ValueError("staged object belongs to another store")
        try:
            check_object_args(bucket, key)
            ctype = check_content_type(content_type)
            target = self.path_of(bucket, key)
            staged.seal()
            st = os.fstat(staged.fileno())
            record = {
                "sha256": staged.sha256,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "ino": st.st_ino,
                "content_type": ctype,
            }
            self._publish(staged, bucket, key, target, create_only, record)
        except BaseException:
            staged.abort()
            raise
        staged.finish()
        return ObjectInfo(bucket, key, st.st_size, staged.sha256, _modified(st), ctype)

    def _publish(
        self,
        staged: StagedObject,
        bucket: str,
        key: str,
        target: Path,
        create_only: bool,
        record: dict[str, Any],
    ) -> None:
        for _ in range(_PUBLISH_ATTEMPTS):
            try:
                self._make_parents(bucket, key, target)
            except (FileNotFoundError, NotADirectoryError):
                continue  # a concurrent delete pruned a directory (the next try names a clash)
            self._refuse_folder(bucket, key, target)
            try:
                if create_only:
                    os.link(staged.path, target)
                else:
                    # Sidecar first: if we crash after the rename, the sidecar already matches
                    # the new file; if we crash before, it mismatches and readers re-hash.
                    self._write_sidecar(bucket, key, record)
                    os.replace(staged.path, target)
            except FileExistsError:
                self._refuse_folder(bucket, key, target)
                raise Conflict(
                    f"object {bucket}/{key} already exists (create-only write)",
                    details={"bucket": bucket, "key": key},
                ) from None
            except FileNotFoundError:
                continue  # a concurrent delete pruned the parent directory; re-create it
            except (IsADirectoryError, NotADirectoryError):
                continue  # a folder/file appeared meanwhile: the next checks name the collision
            else:
                break
        else:
            raise Internal(f"could not publish {bucket}/{key}: its directory kept disappearing")
        # Already deleted, pruned (and maybe replaced by an object) by concurrent calls.
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            fsync_dir(target.parent)
        if create_only:
            self._write_sidecar(bucket, key, record)

    def _make_parents(self, bucket: str, key: str, target: Path) -> None:
        """Create the directories above ``target`` (fsyncing each new entry's parent), or raise
        ``Conflict`` when an object sits where a directory is needed."""
        here = self.root
        parts = [bucket, *key.split("/")[:-1]]
        for depth, part in enumerate(parts):
            child = here / part
            try:
                os.mkdir(child)
            except FileExistsError:
                # FileNotFoundError (removed meanwhile) propagates: the publish loop retries.
                is_dir = stat.S_ISDIR(os.lstat(child).st_mode)
                if not is_dir and depth > 0:
                    blocker = "/".join(parts[1 : depth + 1])
                    raise Conflict(
                        f"cannot write {bucket}/{key}: {bucket}/{blocker} is an object, so it "
                        f"cannot also be a prefix folder of other keys",
                        details={"bucket": bucket, "key": key, "conflicts_with": blocker},
                    ) from None
            else:
                fsync_dir(here)
            here = child

    def _refuse_folder(self, bucket: str, key: str, target: Path) -> None:
        try:
            is_dir = stat.S_ISDIR(os.lstat(target).st_mode)
        except OSError:
            return
        if is_dir:
            raise Conflict(
                f"cannot write {bucket}/{key}: other keys start with '{key}/', and a key cannot "
                f"be both an object and a prefix folder of other keys",
                details={"bucket": bucket, "key": key, "conflicts_with": f"{key}/"},
            )

    # -- sidecars ----------------------------------------------------------------------------

    def _write_sidecar(self, bucket: str, key: str, record: dict[str, Any]) -> None:
        """Best effort: a missing or stale sidecar only costs a re-hash later."""
        meta = self._meta_path(bucket, key)
        tmp = self._staging / f"{uuid.uuid4().hex}.meta"
        try:
            tmp.write_bytes(json.dumps(record).encode())
            for _ in range(2):
                try:
                    meta.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, meta)
                    return
                except (FileExistsError, NotADirectoryError, IsADirectoryError):
                    self._clear_stale_meta(bucket, key, meta)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            tmp.unlink()

    def _clear_stale_meta(self, bucket: str, key: str, meta: Path) -> None:
        # The data tree is authoritative: when it accepted bucket/key, any sidecar file where the
        # sidecar tree needs a folder (or folder where it needs a file) is left over from deleted
        # objects.
        here = self._meta / bucket
        for part in key.split("/")[:-1]:
            here = here / part
            with contextlib.suppress(OSError):
                if not stat.S_ISDIR(os.lstat(here).st_mode):
                    os.unlink(here)
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(meta).st_mode):
                shutil.rmtree(meta, ignore_errors=True)

    def _read_sidecar(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            with open(self._meta_path(bucket, key), "rb") as f:
                record = json.loads(f.read(4096))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _describe(
        self, bucket: str, key: str, path: Path, st: os.stat_result, fd: int | None = None
    ) -> ObjectInfo:
        """Info for the file ``path`` whose stat is ``st`` (of the open ``fd`` when given)."""
        record = self._read_sidecar(bucket, key)
        if (
            record is not None
            and record.get("size") == st.st_size
            and record.get("mtime_ns") == st.st_mtime_ns
            and record.get("ino") == st.st_ino
            and isinstance(record.get("sha256"), str)
        ):
            ctype = record.get("content_type")
            return ObjectInfo(
                bucket,
                key,
                st.st_size,
                record["sha256"],
                _modified(st),
                ctype if isinstance(ctype, str) else DEFAULT_CONTENT_TYPE,
            )
        # Stale or missing sidecar: the file changed behind our back (or the sidecar was lost).
        own_fd = fd is None
        if fd is None:
            fd = self._open_object(bucket, key, path)
        try:
            st = os.fstat(fd)
            sha = _hash_fd(fd)
        finally:
            if own_fd:
                os.close(fd)
        self._write_sidecar(
            bucket,
            key,
            {
                "sha256": sha,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "ino": st.st_ino,
                "content_type": DEFAULT_CONTENT_TYPE,
            },
        )
        return ObjectInfo(bucket, key, st.st_size, sha, _modified(st), DEFAULT_CONTENT_TYPE)

    # -- reads -------------------------------------------------------------------------------

    def _not_found(self, bucket: str, key: str) -> NotFound:
        return NotFound(f"object {bucket}/{key} not found", details={"bucket": bucket, "key": key})

    def _open_object(self, bucket: str, key: str, path: Path) -> int:
        """Open a regular file for reading; anything else (absent, folder, symlink) is absent."""
        try:
            fd = os.open(path, _OPEN_READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(bucket, key) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink planted in the tree: never followed
                raise self._not_found(bucket, key) from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._not_found(bucket, key)
        return fd

    def head(self, bucket: str, key: str) -> ObjectInfo:
        path = self.path_of(bucket, key)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(bucket, key) from None
        if not stat.S_ISREG(st.st_mode):
            raise self._not_found(bucket, key)
        return self._describe(bucket, key, path, st)

    def open_read(self, bucket: str, key: str) -> tuple[ObjectInfo, ObjectStream]:
        path = self.path_of(bucket, key)
        fd = self._open_object(bucket, key, path)
        try:
            info = self._describe(bucket, key, path, os.fstat(fd), fd)
            reader = os.fdopen(fd, "rb", buffering=0)
        except BaseException:
            os.close(fd)
            raise

        def chunks() -> Iterator[bytes]:
            while chunk := reader.read(CHUNK_SIZE):
                yield chunk

        return info, ObjectStream(chunks(), reader.close)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        path = self.path_of(bucket, key)
        fd = self._open_object(bucket, key, path)
        with os.fdopen(fd, "rb") as f:
            return f.read()

    # -- delete ------------------------------------------------------------------------------

    def delete(self, bucket: str, key: str) -> None:
        path = self.path_of(bucket, key)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise self._not_found(bucket, key)
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(bucket, key) from None
        # Pruned (and maybe replaced by an object) by concurrent calls.
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            fsync_dir(path.parent)
        meta = self._meta_path(bucket, key)
        with contextlib.suppress(OSError):
            os.unlink(meta)
        self._prune(path.parent, self._bucket_dir(bucket))
        self._prune(meta.parent, self._meta / bucket)

    @staticmethod
    def _prune(directory: Path, stop: Path) -> None:
        """Remove empty directories from ``directory`` up to, not including, ``stop``."""
        while directory != stop and stop in directory.parents:
            try:
                os.rmdir(directory)
            except OSError:
                return  # not empty (or already gone / re-used): stop here
            directory = directory.parent

    # -- listing -----------------------------------------------------------------------------

    def list(
        self,
        bucket: str,
        *,
        prefix: str = "",
        limit: int = DEFAULT_LIST_LIMIT,
        cursor: str | None = None,
    ) -> ListPage:
        check_list_args(bucket, prefix, limit, cursor)
        bucket_dir = self._bucket_dir(bucket)
        objects: builtins.list[ObjectInfo] = []
        more = False
        for key, path, entry in self._walk(bucket_dir, "", prefix, cursor):
            if len(objects) == limit:
                more = True
                break
            try:
                st = entry.stat(follow_symlinks=False)
                objects.append(self._describe(bucket, key, path, st))
            except (FileNotFoundError, NotFound):
                continue  # deleted while we listed
        return ListPage(objects, objects[-1].key if more and objects else None)

    def _walk(
        self, directory: Path, key_prefix: str, prefix: str, cursor: str | None
    ) -> Iterator[tuple[str, Path, os.DirEntry[str]]]:
        """Yield ``(key, path, entry)`` for files below ``directory`` in lexicographic key
        order, skipping subtrees that cannot hold a key matching ``prefix`` after ``cursor``.

        A folder sorts as ``name + "/"``: every key below it starts with that, so sorting a
        folder's entries this way and walking depth-first yields keys in exactly the order of
        the whole strings (``a-c`` before ``a/b`` because ``-`` < ``/``).
        """
        try:
            with os.scandir(directory) as it:
                entries = [e for e in it if _valid_segment(e.name)]
        except (FileNotFoundError, NotADirectoryError):
            return
        ordered: builtins.list[tuple[str, bool, os.DirEntry[str]]] = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    ordered.append((f"{key_prefix}{entry.name}/", True, entry))
                elif entry.is_file(follow_symlinks=False):
                    ordered.append((f"{key_prefix}{entry.name}", False, entry))
            except OSError:
                continue
        ordered.sort(key=lambda item: item[0])
        for sort_key, is_dir, entry in ordered:
            if is_dir:
                if not (sort_key.startswith(prefix) or prefix.startswith(sort_key)):
                    continue
                if cursor is not None and cursor > sort_key and not cursor.startswith(sort_key):
                    continue  # every key below sorts before the cursor
                yield from self._walk(Path(entry.path), sort_key, prefix, cursor)
            else:
                if not sort_key.startswith(prefix):
                    continue
                if cursor is not None and sort_key <= cursor:
                    continue
                try:
                    validate_key(sort_key)
                except InvalidInput:
                    continue  # a foreign file no key can address
                yield sort_key, Path(entry.path), entry

    def list_buckets(self) -> builtins.list[str]:
        names: builtins.list[str] = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        names.append(validate_bucket(entry.name))
                except InvalidInput:
                    continue  # .staging, .meta, foreign folders
        return sorted(names)

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""
