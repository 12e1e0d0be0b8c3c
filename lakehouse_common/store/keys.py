"""Bucket-name and object-key rules shared by every store backend (SPEC §4, storaged).

SPEC §4: bucket names are ``[a-z0-9-]{3,63}``; keys have no ``..`` segment, no absolute path and
no NUL or control characters. The rules below go a little further so that every valid key maps
to exactly one file below the bucket directory on the FS backend and means the same object on
S3 (moving data between backends never meets a key one side cannot hold):

- at most 1024 UTF-8 bytes (S3's limit) and at most 255 bytes per ``/`` segment (a file name's
  limit on Linux file systems);
- no ``.`` or empty segment (``a/./b``, ``a//b``, trailing ``/``): on a file system they name
  the same file as another key, so two keys would alias one object;
- no backslash (a path separator on Windows and a classic traversal vector in proxies);
- no Unicode control character (category ``Cc``: U+0000-U+001F, U+007F-U+009F) and nothing
  that is not encodable as UTF-8 (lone surrogates).

Every failure is an ``InvalidInput`` (HTTP 400) whose message names the bucket or key and the
rule it broke.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lakehouse_common.errors import InvalidInput

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255

_BUCKET_RE = re.compile(r"[a-z0-9-]{3,63}")
# Cc: C0 controls, DEL and C1 controls.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_bucket(name: object) -> str:
    """Return ``name`` if it is a valid bucket name, else raise ``InvalidInput``."""
    if not isinstance(name, str):
        raise InvalidInput(f"bucket name must be a string, got {type(name).__name__}")
    if _BUCKET_RE.fullmatch(name) is None:
        raise InvalidInput(
            f"invalid bucket name {name!r}: must be 3-63 characters of a-z, 0-9 and '-'",
            details={"bucket": repr(name), "rule": "[a-z0-9-]{3,63}"},
        )
    return name


def _key_error(key: str, reason: str) -> InvalidInput:
    # repr() escapes control characters and lone surrogates, so the message is always safe to
    # log and to serialise as JSON; the details carry the same escaped form.
    shown = repr(key if len(key) <= 80 else key[:77] + "...")
    return InvalidInput(f"invalid key {shown}: {reason}", details={"key": shown, "rule": reason})


def _encode(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _key_error(text, f"{what} is not valid UTF-8 (lone surrogate)") from None


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid object key, else raise ``InvalidInput`` naming the rule."""
    if not isinstance(key, str):
        raise InvalidInput(f"key must be a string, got {type(key).__name__}")
    if not key:
        raise _key_error(key, "key is empty")
    encoded = _encode(key, "key")
    if len(encoded) > MAX_KEY_BYTES:
        raise _key_error(key, f"key is {len(encoded)} bytes, the limit is {MAX_KEY_BYTES}")
    if (bad := _CONTROL_RE.search(key)) is not None:
        raise _key_error(key, f"control character U+{ord(bad.group()):04X} is not allowed")
    if "\\" in key:
        raise _key_error(key, "backslash is not allowed")
    if key.startswith("/"):
        raise _key_error(key, "absolute keys (leading '/') are not allowed")
    for segment in key.split("/"):
        if segment == "":
            raise _key_error(key, "empty segment ('//' or trailing '/') is not allowed")
        if segment == ".":
            raise _key_error(key, "'.' segment is not allowed")
        if segment == "..":
            raise _key_error(key, "'..' segment is not allowed")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _key_error(
                key, f"a '/'-separated segment is longer than {MAX_SEGMENT_BYTES} bytes"
            )
    return key


def validate_prefix(prefix: object) -> str:
    """Check a listing prefix: any start of a key (``""``, ``"a/"``, ``"da"``), no forbidden
    characters. A prefix only filters a listing, it never becomes a path."""
    if not isinstance(prefix, str):
        raise InvalidInput(f"prefix must be a string, got {type(prefix).__name__}")
    if prefix == "":
        return prefix
    encoded = _encode(prefix, "prefix")
    if len(encoded) > MAX_KEY_BYTES:
        raise _key_error(prefix, f"prefix is longer than {MAX_KEY_BYTES} bytes")
    if (bad := _CONTROL_RE.search(prefix)) is not None:
        raise _key_error(prefix, f"control character U+{ord(bad.group()):04X} is not allowed")
    if "\\" in prefix:
        raise _key_error(prefix, "backslash is not allowed")
    return prefix


def resolve_key(bucket_dir: Path, key: str) -> Path:
    """The file that holds ``key`` below ``bucket_dir``; validates ``key`` first.

    The rules above already guarantee containment; the final check is defence in depth so that a
    future change to the rules cannot silently open a traversal.
    """
    validate_key(key)
    path = bucket_dir.joinpath(*key.split("/"))
    base = os.path.normpath(bucket_dir)
    resolved = os.path.normpath(path)
    if os.path.commonpath([base, resolved]) != base or resolved == base:
        raise _key_error(key, "key escapes its bucket")
    return path
