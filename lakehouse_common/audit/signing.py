"""The Ed25519 key that signs audit checkpoints (SPEC §8 "Anchored heads", issue 18).

The private key (PKCS#8 PEM, mode 0600, parents 0700) lives at ``audit.signing_key_file``
(default ``<data_dir>/keys/checkpoint.key``); the public key (SubjectPublicKeyInfo PEM) beside it,
same name with the suffix ``.pub``. Only catalogd and ``lakehouse audit rotate`` need the private
key; anyone verifying checkpoints offline needs only the public one. A key is named by
:func:`public_key_id` (16 hex digits of the SHA-256 of its 32 raw bytes).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lakehouse_common.audit.keys import AuditKeyError
from lakehouse_common.durable import create_file, fsync_dir, make_dirs_durably

__all__ = [
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "generate_signing_key",
    "load_public_key",
    "load_signing_key",
    "public_key_id",
    "public_key_path",
    "sign_hex",
    "verify_hex",
]


def public_key_path(private_key_file: str | os.PathLike[str]) -> Path:
    """Where the public key of ``private_key_file`` lives: beside it, suffix ``.pub``."""
    return Path(private_key_file).with_suffix(".pub")


def public_key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_signing_key(private_key_file: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Write a new Ed25519 key pair: the private key (mode 0600) at ``private_key_file`` and the
    public key (mode 0644) beside it. Never overwrites: ``FileExistsError`` when either exists."""
    path = Path(private_key_file)
    pub_path = public_key_path(path)
    if pub_path.exists():
        raise FileExistsError(f"{pub_path} exists")
    make_dirs_durably(path.parent, mode=0o700)
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    create_file(
        path,
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        mode=0o600,
    )
    create_file(
        pub_path,
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        mode=0o644,
    )
    fsync_dir(path.parent)
    return public


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise AuditKeyError(
            f"{what} {str(path)!r} is missing (create one with `lakehouse audit keygen`)"
        ) from exc
    except OSError as exc:
        raise AuditKeyError(f"{what} {str(path)!r} is unreadable: {exc.strerror or exc}") from exc


def load_signing_key(private_key_file: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The checkpoint signing key; refused when group/other users can reach the file."""
    path = Path(private_key_file)
    data = _read(path, "checkpoint signing key")
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise AuditKeyError(f"checkpoint signing key {str(path)!r} is not a regular file")
    if mode & 0o077:
        raise AuditKeyError(
            f"checkpoint signing key {str(path)!r} is accessible by group/other users (mode "
            f"{stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"checkpoint signing key {str(path)!r} is not a PEM key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"checkpoint signing key {str(path)!r} is not an Ed25519 key")
    return key


def load_public_key(public_key_file: str | os.PathLike[str]) -> Ed25519PublicKey:
    """The public key checkpoints are verified with (PEM, or the private key's ``.pub``)."""
    path = Path(public_key_file)
    data = _read(path, "checkpoint public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"checkpoint public key {str(path)!r} is not a PEM key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"checkpoint public key {str(path)!r} is not an Ed25519 key")
    return key


def sign_hex(key: Ed25519PrivateKey, data: bytes) -> str:
    return key.sign(data).hex()


def verify_hex(key: Ed25519PublicKey, signature: str, data: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature), data)
    except (InvalidSignature, ValueError):
        return False
    return True
