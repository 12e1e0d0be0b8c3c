"""The audit chain's HMAC key file (SPEC §8: "the key file must hold at least 32 bytes").

The key is the file's raw bytes, exactly as stored: nothing is stripped or decoded, so a
trailing newline written by ``echo`` is part of the key. Every reader (catalogd, the CLI, a
parity probe) must read the file the same way, and "the bytes of the file" is the only rule
that cannot drift; to make a key without a newline use e.g. ``head -c 32 /dev/urandom > key``.
"""

from __future__ import annotations

import os
from pathlib import Path

from lakehouse_common.errors import InvalidInput

__all__ = ["MIN_KEY_BYTES", "AuditKeyError", "load_key"]

# SPEC §8: a shorter key is refused (the original system's Rust and Go readers agree).
MIN_KEY_BYTES = 32


class AuditKeyError(InvalidInput):
    """The audit key file is missing, unreadable or shorter than :data:`MIN_KEY_BYTES`."""


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
