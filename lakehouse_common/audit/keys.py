"""The audit chain's HMAC keys: the key file, its permissions, generation and rotation (SPEC §8).

The key is the file's raw bytes, exactly as stored: nothing is stripped or decoded, so a
trailing newline written by ``echo`` is part of the key. Every reader (catalogd, the CLI, a
parity probe) must read the file the same way, and "the bytes of the file" is the only rule
that cannot drift; to make a key without a newline use ``lakehouse audit keygen`` (or
``head -c 32 /dev/urandom > key``).

- :func:`load_key`: the bytes, at least 32 of them (what the offline verifier needs).
- :func:`load_private_key`: the same, and the file must be a regular file that no group or other
  user can read or write — what catalogd demands before it starts (issue 7).
- Rotation (``lakehouse audit rotate``) keeps every earlier key: the current key stays at
  ``key_file`` and each retired one moves to ``<key_file>.retired/epoch-NNNN.key``, so the epoch of
  the current key is one more than the newest retired epoch. A :class:`Keyring` holds them all;
  logs name a key by :func:`key_id` (the first 16 hex digits of its SHA-256), never by its bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lakehouse_common.durable import atomic_write, create_file, fsync_dir, make_dirs_durably
from lakehouse_common.errors import InvalidInput

__all__ = [
    "GENERATED_KEY_BYTES",
    "MIN_KEY_BYTES",
    "AuditKeyError",
    "Keyring",
    "Rotation",
    "generate_key",
    "key_id",
    "load_key",
    "load_keyring",
    "load_private_key",
    "retired_dir",
    "rotate_key",
]

# SPEC §8: a shorter key is refused (the original system's Rust and Go readers agree).
MIN_KEY_BYTES = 32
# What keygen and rotate write: the SHA-256 block size, beyond which HMAC hashes the key first.
GENERATED_KEY_BYTES = 64

_RETIRED = re.compile(r"epoch-(\d{4,9})\.key")


class AuditKeyError(InvalidInput):
    """The audit key file is missing, unreadable, too short or readable by other users."""


def load_key(path: str | os.PathLike[str]) -> bytes:
    """Read the HMAC key: the raw bytes of the file, at least 32 of them."""
    key_path = Path(path)
    try:
        key = key_path.read_bytes()
    except FileNotFoundError as exc:
        raise AuditKeyError(f"audit key file {str(key_path)!r} is missing") from exc
    except IsADirectoryError as exc:
        raise AuditKeyError(f"audit key file {str(key_path)!r} is a directory") from exc
    except OSError as exc:
        raise AuditKeyError(
            f"audit key file {str(key_path)!r} is unreadable: {exc.strerror or exc}"
        ) from exc
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyError(
            f"audit key file {str(key_path)!r} is too short: {len(key)} bytes, "
            f"at least {MIN_KEY_BYTES} required"
        )
    return key


def load_private_key(path: str | os.PathLike[str]) -> bytes:
    """:func:`load_key`, refusing a file that group or other users can read or write."""
    key_path = Path(path)
    try:
        info = key_path.stat()
    except FileNotFoundError as exc:
        raise AuditKeyError(
            f"audit key file {str(key_path)!r} is missing (create one with "
            "`lakehouse audit keygen`)"
        ) from exc
    except OSError as exc:
        raise AuditKeyError(
            f"audit key file {str(key_path)!r} is unreadable: {exc.strerror or exc}"
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        raise AuditKeyError(f"audit key file {str(key_path)!r} is not a regular file")
    exposed = info.st_mode & 0o077
    if exposed:
        who = "readable" if exposed & 0o044 else "writable"
        raise AuditKeyError(
            f"audit key file {str(key_path)!r} is {who} by group/other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {key_path}"
        )
    return load_key(key_path)


def key_id(key: bytes) -> str:
    """How logs and messages name a key: 16 hex digits of its SHA-256 (never the key itself)."""
    return hashlib.sha256(key).hexdigest()[:16]


def retired_dir(key_file: str | os.PathLike[str]) -> Path:
    """Where rotation keeps the earlier keys of ``key_file``."""
    path = Path(key_file)
    return path.with_name(path.name + ".retired")


class Keyring:
    """The current key and every retired one, by epoch (1 = the first key ever used)."""

    __slots__ = ("_by_id", "_epochs", "current", "epoch", "retired")

    def __init__(self, current: bytes, epoch: int = 1, retired: Mapping[int, bytes] | None = None):
        self.current = current
        self.epoch = epoch
        self.retired: dict[int, bytes] = dict(retired or {})
        for key in (current, *self.retired.values()):
            if len(key) < MIN_KEY_BYTES:
                raise AuditKeyError(
                    f"audit key is {len(key)} bytes, at least {MIN_KEY_BYTES} required"
                )
        self._by_id = {key_id(k): k for k in (*self.retired.values(), current)}
        self._epochs = {key_id(k): e for e, k in self.retired.items()}
        self._epochs[key_id(current)] = epoch

    @classmethod
    def of(cls, *keys: bytes) -> Keyring:
        """A keyring from keys given newest first (the CLI's repeated ``--key-file``)."""
        if not keys:
            raise AuditKeyError("no audit key given")
        count = len(keys)
        return cls(keys[0], count, {count - i: k for i, k in enumerate(keys[1:], start=1)})

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def by_id(self, kid: str) -> bytes | None:
        return self._by_id.get(kid)

    def epoch_of(self, kid: str) -> int | None:
        return self._epochs.get(kid)

    def keys(self) -> list[bytes]:
        """Every key, the current one first, then the retired ones newest first."""
        return [self.current, *(self.retired[e] for e in sorted(self.retired, reverse=True))]


def _retired_keys(key_file: Path, *, private: bool) -> dict[int, bytes]:
    directory = retired_dir(key_file)
    if not directory.is_dir():
        return {}
    out: dict[int, bytes] = {}
    for path in sorted(directory.iterdir()):
        match = _RETIRED.fullmatch(path.name)
        if match is not None:
            out[int(match.group(1))] = load_private_key(path) if private else load_key(path)
    return out


def load_keyring(key_file: str | os.PathLike[str], *, private: bool = True) -> Keyring:
    """The current key at ``key_file`` and the retired ones beside it.

    With ``private`` (catalogd) every file must pass :func:`load_private_key`.
    """
    path = Path(key_file)
    current = load_private_key(path) if private else load_key(path)
    retired = _retired_keys(path, private=private)
    newest = max(retired, default=0)
    if newest and retired[newest] == current:
        # A rotation stopped after retiring the key and before replacing it: still that epoch.
        del retired[newest]
        return Keyring(current, newest, retired)
    return Keyring(current, newest + 1, retired)


def generate_key(path: str | os.PathLike[str], nbytes: int = GENERATED_KEY_BYTES) -> bytes:
    """Write a new random key to ``path`` (mode 0600, parents 0700); never overwrites.

    Raises ``FileExistsError`` when ``path`` exists.
    """
    if nbytes < MIN_KEY_BYTES:
        raise AuditKeyError(f"a key needs at least {MIN_KEY_BYTES} bytes, asked for {nbytes}")
    key_path = Path(path)
    make_dirs_durably(key_path.parent, mode=0o700)
    key = secrets.token_bytes(nbytes)
    create_file(key_path, key, mode=0o600)
    fsync_dir(key_path.parent)
    return key


@dataclass(frozen=True)
class Rotation:
    """What :func:`rotate_key` did: the epoch now current and the keys' ids."""

    epoch: int
    previous_key_id: str
    key_id: str
    retired_path: Path


def rotate_key(key_file: str | os.PathLike[str]) -> Rotation:
    """Start a new epoch: keep the current key as ``<key_file>.retired/epoch-N.key`` and write a
    fresh key to ``key_file`` (atomically: temp file, fsync, rename).

    Resumable: if an earlier run stopped after retiring the key but before replacing it, the
    retired copy (same bytes) is reused.
    """
    path = Path(key_file)
    keyring = load_keyring(path)
    directory = retired_dir(path)
    make_dirs_durably(directory, mode=0o700)
    retired_path = directory / f"epoch-{keyring.epoch:04d}.key"
    try:
        create_file(retired_path, keyring.current, mode=0o600)
    except FileExistsError:
        if load_private_key(retired_path) != keyring.current:
            raise AuditKeyError(
                f"{retired_path} exists with another key; the keyring is inconsistent"
            ) from None
    fsync_dir(directory)
    new_key = secrets.token_bytes(GENERATED_KEY_BYTES)
    atomic_write(path, new_key, mode=0o600)
    return Rotation(
        epoch=keyring.epoch + 1,
        previous_key_id=keyring.current_id,
        key_id=key_id(new_key),
        retired_path=retired_path,
    )
