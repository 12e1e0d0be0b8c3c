"""The object store used by storaged and, in-process, by the daemons that move bulk data
(SPEC §4, storaged): one ``Store`` interface, a local file-system backend (the default) and an
S3 backend (boto3, any S3-protocol endpoint).

``open_store`` builds the configured backend from plain parameters; the config layer decides
which ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lakehouse_common.store.base import (
    DEFAULT_BUCKET,
    DEFAULT_CONTENT_TYPE,
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    ListPage,
    ObjectInfo,
    ObjectStream,
    StagedObject,
    Store,
)
from lakehouse_common.store.fs import FsStore
from lakehouse_common.store.keys import (
    MAX_KEY_BYTES,
    MAX_SEGMENT_BYTES,
    resolve_key,
    validate_bucket,
    validate_key,
    validate_prefix,
)
from lakehouse_common.store.s3 import S3Store

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_CONTENT_TYPE",
    "DEFAULT_LIST_LIMIT",
    "MAX_KEY_BYTES",
    "MAX_LIST_LIMIT",
    "MAX_SEGMENT_BYTES",
    "FsStore",
    "ListPage",
    "ObjectInfo",
    "ObjectStream",
    "S3Options",
    "S3Store",
    "StagedObject",
    "Store",
    "open_store",
    "resolve_key",
    "validate_bucket",
    "validate_key",
    "validate_prefix",
]


@dataclass(frozen=True, slots=True)
class S3Options:
    """Connection parameters of the S3 backend (``endpoint_url=None`` means AWS itself)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    bucket_prefix: str = ""


def open_store(
    backend: Literal["fs", "s3"],
    *,
    root: Path | None = None,
    s3: S3Options | None = None,
) -> Store:
    """Open the store backend named by ``backend``.

    ``fs`` keeps objects below ``root`` (required). ``s3`` connects with ``s3`` (defaults to
    AWS with the ambient credentials); when ``root`` is given too, uploads are staged in
    ``root/.staging-s3`` rather than the system temp directory.
    """
    if backend == "fs":
        if root is None:
            raise ValueError("the fs store backend needs a root directory")
        return FsStore(root)
    if backend == "s3":
        options = s3 or S3Options()
        return S3Store(
            options.endpoint_url,
            options.region,
            options.access_key,
            options.secret_key,
            options.bucket_prefix,
            staging_dir=None if root is None else Path(root) / ".staging-s3",
        )
    raise ValueError(f"unknown store backend {backend!r} (expected 'fs' or 's3')")
