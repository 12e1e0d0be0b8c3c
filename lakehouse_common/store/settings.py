"""Open the `Store` a config names (`[storage]`, SPEC §3/§4)."""

from __future__ import annotations

import os

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.store import S3Options, Store, open_store


def store_from_settings(settings: LakehouseSettings) -> Store:
    """FS objects live in `<data_dir>/objects`; S3 uploads stage in `<data_dir>/.staging-s3`."""
    storage = settings.storage
    if storage.backend == "fs":
        return open_store("fs", root=settings.data_dir / "objects")
    s3 = storage.s3
    options = S3Options(
        endpoint_url=s3.endpoint_url or None,
        region=s3.region,
        access_key=os.environ.get(s3.access_key_env) or None,
        secret_key=os.environ.get(s3.secret_key_env) or None,
        bucket_prefix=s3.bucket_prefix,
    )
    return open_store("s3", root=settings.data_dir, s3=options)
