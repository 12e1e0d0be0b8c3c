"""Witnesses: where the newest checkpoint is published, out of the audit writer's reach (issue 18).

A witness keeps each published checkpoint under its seq and never replaces one; its *head* is
the highest seq it holds. Verification compares that head with the checkpoint log: a log with
fewer checkpoints, or another line at that seq, was cut or rewritten.

- :class:`DirectoryWitness` (development): ``<dir>/checkpoint-<seq:012d>.json``, written to a
  temporary file, fsynced and *linked* into place (``link`` never replaces a file), mode 0444.
  The directory must be outside the data dir (``audit.witness_dir``, default a sibling
  ``<data_dir>-witness``): a tool that rewrites the data dir leaves it alone.
- :class:`S3Witness` (production): ``<prefix><seq:012d>.json`` in a bucket with S3 Object Lock,
  each object put with ``ObjectLockMode`` (``COMPLIANCE``) and ``ObjectLockRetainUntilDate``
  (now + ``audit.witness_retention_days``): not even the bucket's owner can delete or overwrite
  that version before then. :meth:`S3Witness.head` reads each key's *oldest* version, so a
  later version put on top cannot replace what was published first.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lakehouse_common.config import LakehouseSettings, witness_dir_path
from lakehouse_common.durable import create_file, fsync_dir, make_dirs_durably, temp_path_for
from lakehouse_common.errors import LakehouseError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pragma: no cover

__all__ = [
    "DirectoryWitness",
    "S3Witness",
    "Witness",
    "WitnessError",
    "WitnessHead",
    "witness_from_settings",
]

_NAME = re.compile(r"checkpoint-(\d{12})\.json")


class WitnessError(LakehouseError):
    """Publishing to, or reading, the witness failed."""

    code = "witness_unavailable"
    status = 503


@dataclass(frozen=True, slots=True)
class WitnessHead:
    """The newest checkpoint a witness holds: its seq and stored line (no newline)."""

    seq: int
    line: bytes


class Witness(Protocol):
    """Where checkpoints are published; ``describe`` names it in messages."""

    def describe(self) -> str: ...

    def publish(self, seq: int, line: bytes) -> None: ...

    def head(self) -> WitnessHead | None: ...


class DirectoryWitness:
    """A directory outside the data dir: one read-only file per published checkpoint."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def describe(self) -> str:
        return f"directory {self.directory}"

    def _path(self, seq: int) -> Path:
        return self.directory / f"checkpoint-{seq:012d}.json"

    def publish(self, seq: int, line: bytes) -> None:
        data = line.rstrip(b"\n") + b"\n"
        final = self._path(seq)
        try:
            make_dirs_durably(self.directory)
            if final.exists():
                self._same(final, data, seq)
                return
            temp = temp_path_for(final)
            create_file(temp, data, mode=0o444)
            try:
                os.link(temp, final)  # never replaces an existing file
            except FileExistsError:
                self._same(final, data, seq)
            finally:
                temp.unlink(missing_ok=True)
            fsync_dir(self.directory)
        except OSError as exc:
            raise WitnessError(
                f"cannot publish checkpoint {seq} to {self.describe()}: {exc.strerror or exc}"
            ) from exc

    def _same(self, path: Path, data: bytes, seq: int) -> None:
        if path.read_bytes() != data:
            raise WitnessError(
                f"{self.describe()} already holds another checkpoint {seq}; it is never replaced"
            )

    def head(self) -> WitnessHead | None:
        try:
            names = [m for p in os.listdir(self.directory) if (m := _NAME.fullmatch(p))]
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WitnessError(f"cannot read {self.describe()}: {exc.strerror or exc}") from exc
        if not names:
            return None
        newest = max(names, key=lambda m: int(m.group(1)))
        seq = int(newest.group(1))
        try:
            line = self._path(seq).read_bytes()
        except OSError as exc:
            raise WitnessError(f"cannot read {self.describe()}: {exc.strerror or exc}") from exc
        return WitnessHead(seq, line.rstrip(b"\n"))


class S3Witness:
    """An S3 bucket with Object Lock: each checkpoint a locked object version."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        prefix: str = "audit-checkpoints/",
        retention_days: int = 365,
        mode: str = "COMPLIANCE",
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.retention_days = retention_days
        self.mode = mode

    @classmethod
    def connect(
        cls,
        *,
        endpoint_url: str,
        region: str,
        access_key: str | None,
        secret_key: str | None,
        bucket: str,
        prefix: str,
        retention_days: int,
    ) -> S3Witness:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                connect_timeout=2,
                read_timeout=5,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )
        return cls(client, bucket, prefix=prefix, retention_days=retention_days)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, seq: int) -> str:
        return f"{self.prefix}{seq:012d}.json"

    def create_bucket(self) -> None:
        """Create the bucket with Object Lock enabled (development and tests; in production the
        bucket is made once by whoever owns the account, see docs/audit.md)."""
        self._call(
            "create the bucket",
            self.client.create_bucket,
            Bucket=self.bucket,
            ObjectLockEnabledForBucket=True,
        )

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise WitnessError(f"cannot {what} at {self.describe()}: {exc}") from exc

    def publish(self, seq: int, line: bytes) -> None:
        data = line.rstrip(b"\n") + b"\n"
        key = self._key(seq)
        existing = self._first_version(key)
        if existing is not None:
            if existing != data:
                raise WitnessError(
                    f"{self.describe()} already holds another checkpoint {seq}; it is never "
                    "replaced"
                )
            return
        until = datetime.now(UTC) + timedelta(days=self.retention_days)
        self._call(
            f"publish checkpoint {seq}",
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324
            ObjectLockMode=self.mode,
            ObjectLockRetainUntilDate=until,
        )

    def _first_version(self, key: str) -> bytes | None:
        listing = self._call(
            "list versions", self.client.list_object_versions, Bucket=self.bucket, Prefix=key
        )
        versions = [v for v in listing.get("Versions", []) if v.get("Key") == key]
        if not versions:
            return None
        # S3 lists a key's versions newest first: the last is the one published first.
        first = versions[-1]
        body = self._call(
            f"read {key}",
            self.client.get_object,
            Bucket=self.bucket,
            Key=key,
            VersionId=first["VersionId"],
        )
        data: bytes = body["Body"].read()
        return data

    def head(self) -> WitnessHead | None:
        newest: str | None = None
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list checkpoints", self.client.list_objects_v2, **kwargs)
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if re.fullmatch(r"\d{12}\.json", name) and (newest is None or name > newest):
                    newest = name
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
        if newest is None:
            return None
        seq = int(newest[:12])
        data = self._first_version(self._key(seq))
        if data is None:
            return None
        return WitnessHead(seq, data.rstrip(b"\n"))


def witness_from_settings(settings: LakehouseSettings) -> Witness:
    """The configured witness (``audit.witness``): a directory, or an Object Lock bucket."""
    audit = settings.audit
    if audit.witness == "s3":
        s3 = settings.storage.s3
        return S3Witness.connect(
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            access_key=os.environ.get(s3.access_key_env),
            secret_key=os.environ.get(s3.secret_key_env),
            bucket=audit.witness_bucket,
            prefix=audit.witness_prefix,
            retention_days=audit.witness_retention_days,
        )
    return DirectoryWitness(witness_dir_path(settings))
