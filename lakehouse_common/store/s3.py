"""S3 backend of the object ``Store`` (SPEC §4, storaged: "S3 via boto3 with a configurable
endpoint (MinIO, AWS)").

- Store bucket ``b`` is the S3 bucket ``bucket_prefix + b``, created on first write (SPEC §4:
  buckets come into being on first write); path-style addressing so MinIO and moto work.
- Content is staged on local disk (``StagedObject``) and published with one ``PutObject``, or a
  multipart upload above ``multipart_threshold``; both are atomic on S3 (readers never see a
  partial object). Create-only writes use S3's conditional write ``If-None-Match: *`` on the
  ``PutObject`` / ``CompleteMultipartUpload``: ``412 PreconditionFailed`` (or ``409
  ConditionalRequestConflict`` when AWS sees two racing) becomes ``Conflict``.
- The ETag is the SHA-256 of the content (SPEC §4), kept in the user metadata ``x-amz-meta-sha256``
  because S3's own ETag is an MD5 (or not even that for multipart). Single PUTs also send
  ``x-amz-checksum-sha256`` so S3 verifies the bytes it received. An object written by
  something else (no ``sha256`` metadata) is hashed by reading it.
- Listings come from ``ListObjectsV2``, which does not return user metadata, so each listed
  object costs one ``HeadObject`` (run in a small thread pool) to report its SHA-256.
- botocore errors map onto the core family: missing object → ``NotFound``, failed precondition →
  ``Conflict``, unreachable endpoint → ``UpstreamUnavailable`` (naming the endpoint), read
  timeout → ``UpstreamTimeout``, anything else S3 refuses → ``UpstreamError``.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from lakehouse_common.errors import (
    Conflict,
    InvalidInput,
    LakehouseError,
    NotFound,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
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
from lakehouse_common.store.keys import validate_bucket, validate_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        CompleteMultipartUploadRequestTypeDef,
        PutObjectRequestTypeDef,
    )

MIB: Final = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD: Final = 64 * MIB
DEFAULT_PART_SIZE: Final = 16 * MIB
MIN_PART_SIZE: Final = 5 * MIB  # S3 refuses smaller parts (except the last)
MAX_PARTS: Final = 10_000
SHA256_METADATA: Final = "sha256"  # sent as x-amz-meta-sha256

# S3's own bucket-name rule (the store's names are checked first by keys.validate_bucket).
_S3_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_RE = re.compile(r"[a-z0-9.-]{0,40}")
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket"})
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket", "NotFound", "404"})
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


_SESSION_LOCK = threading.Lock()
_SESSION: boto3.session.Session | None = None


def _shared_session() -> boto3.session.Session:
    """One boto3 session per process: a new session re-reads botocore's service models (~0.3 s
    per client); clients made from a shared one take milliseconds. Call with _SESSION_LOCK held
    (sessions are not thread-safe; the clients they make are)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


class S3Store(Store):
    """Objects in S3 (or any S3-protocol server) through boto3."""

    def __init__(
        self,
        endpoint_url: str | None,
        region: str,
        access_key: str | None,
        secret_key: str | None,
        bucket_prefix: str = "",
        *,
        staging_dir: Path | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 5,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        head_workers: int = 8,
    ) -> None:
        if _PREFIX_RE.fullmatch(bucket_prefix) is None:
            raise ValueError(f"bucket_prefix {bucket_prefix!r} must match [a-z0-9.-]{{0,40}}")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.endpoint = endpoint_url or f"AWS S3 ({region})"
        self.region = region
        self.bucket_prefix = bucket_prefix
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max(10, head_workers + 2),
            # boto3 >= 1.36 adds CRC checksums to every upload by default, which several
            # S3-compatible servers reject; this store sends an explicit SHA-256 instead.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        with _SESSION_LOCK:
            self._client: S3Client = _shared_session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=config,
            )
        self._heads = ThreadPoolExecutor(max_workers=head_workers, thread_name_prefix="s3-head")
        self._known_buckets: set[str] = set()
        self._bucket_lock = threading.Lock()
        if staging_dir is None:
            self._staging = Path(tempfile.mkdtemp(prefix="lakehouse-s3-staging-"))
            self._own_staging = True
        else:
            self._staging = Path(staging_dir)
            self._staging.mkdir(parents=True, exist_ok=True)
            self._own_staging = False
            remove_stale_staged(self._staging, DEFAULT_STAGING_GRACE_S)

    # -- names and errors --------------------------------------------------------------------

    def physical_bucket(self, bucket: str) -> str:
        """The S3 bucket that holds store bucket ``bucket``."""
        validate_bucket(bucket)
        name = self.bucket_prefix + bucket
        if _S3_BUCKET_RE.fullmatch(name) is None or ".." in name:
            raise InvalidInput(
                f"bucket {bucket!r} maps to the S3 bucket {name!r}, which S3 does not accept "
                f"(3-63 characters, starting and ending with a letter or digit)",
                details={"bucket": bucket, "s3_bucket": name},
            )
        return name

    def _error(
        self, exc: Exception, bucket: str | None, key: str | None, action: str
    ) -> LakehouseError:
        details: dict[str, Any] = {"endpoint": self.endpoint}
        if bucket is None:
            what = "buckets"
        else:
            what = f"{bucket}/{key}" if key is not None else f"bucket {bucket}"
            details["bucket"] = bucket
        if key is not None:
            details["key"] = key
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            details["s3_code"] = code
            if key is not None and (code in _MISSING_OBJECT_CODES or status == 404):
                return NotFound(f"object {what} not found", details=details)
            if code in _PRECONDITION_CODES or status == 412:
                return Conflict(
                    f"object {what} already exists (create-only write)", details=details
                )
            if code == "InvalidBucketName":
                return InvalidInput(f"S3 refuses the bucket name for {what}", details=details)
            reason = f"{code} {error.get('Message', '')}".strip()
            message = f"S3 at {self.endpoint} failed to {action} {what}: {reason}"
            if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
                return UpstreamUnavailable(message, details=details)
            return UpstreamError(message, details=details)
        if isinstance(exc, ReadTimeoutError):
            return UpstreamTimeout(
                f"S3 at {self.endpoint} timed out during {action} {what}", details=details
            )
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            return UpstreamUnavailable(
                f"S3 endpoint {self.endpoint} is unreachable ({action} {what}): {exc}",
                details=details,
            )
        return UpstreamError(f"S3 client error during {action} {what}: {exc}", details=details)

    def _raise(self, exc: Exception, bucket: str | None, key: str | None, action: str) -> NoReturn:
        raise self._error(exc, bucket, key, action) from exc

    @contextlib.contextmanager
    def _s3_errors(self, bucket: str | None, key: str | None, action: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            self._raise(exc, bucket, key, action)

    @staticmethod
    def _code(exc: ClientError) -> str:
        return str(exc.response.get("Error", {}).get("Code", ""))

    # -- buckets -----------------------------------------------------------------------------

    def _ensure_bucket(self, bucket: str, physical: str) -> None:
        if physical in self._known_buckets:
            return
        with self._bucket_lock, self._s3_errors(bucket, None, "create"):
            if physical in self._known_buckets:
                return
            try:
                self._client.head_bucket(Bucket=physical)
            except ClientError as exc:
                if self._code(exc) not in _MISSING_BUCKET_CODES:
                    raise
                self._create_bucket(physical)
            self._known_buckets.add(physical)

    def _create_bucket(self, physical: str) -> None:
        try:
            if self.region == "us-east-1":
                self._client.create_bucket(Bucket=physical)
            else:
                self._client.create_bucket(
                    Bucket=physical,
                    CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                )
        except ClientError as exc:
            if self._code(exc) == "BucketAlreadyOwnedByYou":
                return  # another writer created it first
            if self._code(exc) == "BucketAlreadyExists":
                # Someone else owns the name (AWS's global namespace) unless we can see it.
                self._client.head_bucket(Bucket=physical)
                return
            raise

    def list_buckets(self) -> builtins.list[str]:
        with self._s3_errors(None, None, "list"):
            response = self._client.list_buckets()
        names: builtins.list[str] = []
        for entry in response.get("Buckets", []):
            name = entry.get("Name", "")
            if not name.startswith(self.bucket_prefix):
                continue
            try:
                names.append(validate_bucket(name[len(self.bucket_prefix) :]))
            except InvalidInput:
                continue
        return sorted(names)

    # -- writes ------------------------------------------------------------------------------

    @property
    def staging_dir(self) -> Path:
        """Where staged content lives until it is committed."""
        return self._staging

    def stage(self) -> StagedObject:
        return StagedObject(self._staging, owner=self)

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
            physical = self.physical_bucket(bucket)
            staged.seal()
            self._ensure_bucket(bucket, physical)
            try:
                self._upload(staged, bucket, physical, key, create_only, ctype)
            except ClientError as exc:
                if self._code(exc) != "NoSuchBucket":
                    raise
                # Deleted behind our back since we cached it: create it again, once.
                self._known_buckets.discard(physical)
                self._ensure_bucket(bucket, physical)
                self._upload(staged, bucket, physical, key, create_only, ctype)
        except (ClientError, BotoCoreError) as exc:
            staged.abort()
            self._raise(exc, bucket, key, "write")
        except BaseException:
            staged.abort()
            raise
        staged.finish()
        return ObjectInfo(bucket, key, staged.size, staged.sha256, datetime.now(UTC), ctype)

    def _upload(
        self,
        staged: StagedObject,
        bucket: str,
        physical: str,
        key: str,
        create_only: bool,
        content_type: str,
    ) -> None:
        metadata = {SHA256_METADATA: staged.sha256}
        if staged.size <= self.multipart_threshold:
            checksum = base64.b64encode(bytes.fromhex(staged.sha256)).decode()
            with open(staged.path, "rb") as body:
                request: PutObjectRequestTypeDef = {
                    "Bucket": physical,
                    "Key": key,
                    "Body": body,
                    "ContentLength": staged.size,
                    "ContentType": content_type,
                    "Metadata": metadata,
                    "ChecksumSHA256": checksum,
                }
                if create_only:
                    request["IfNoneMatch"] = "*"
                self._client.put_object(**request)
            return
        if create_only:
            # Fail fast rather than upload gigabytes that the conditional complete would refuse;
            # the If-None-Match on the complete below is still what makes it atomic.
            try:
                self._client.head_object(Bucket=physical, Key=key)
            except ClientError as exc:
                if self._code(exc) not in _MISSING_OBJECT_CODES:
                    raise
            else:
                raise Conflict(
                    f"object {bucket}/{key} already exists (create-only write)",
                    details={"bucket": bucket, "key": key},
                )
        upload = self._client.create_multipart_upload(
            Bucket=physical, Key=key, ContentType=content_type, Metadata=metadata
        )
        upload_id = upload["UploadId"]
        part_size = max(self.part_size, -(-staged.size // MAX_PARTS))
        try:
            parts: builtins.list[CompletedPartTypeDef] = []
            with open(staged.path, "rb") as body:
                number = 1
                while chunk := body.read(part_size):
                    part = self._client.upload_part(
                        Bucket=physical,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ContentLength=len(chunk),
                    )
                    parts.append({"ETag": part["ETag"], "PartNumber": number})
                    number += 1
            complete: CompleteMultipartUploadRequestTypeDef = {
                "Bucket": physical,
                "Key": key,
                "UploadId": upload_id,
                "MultipartUpload": {"Parts": parts},
            }
            if create_only:
                complete["IfNoneMatch"] = "*"
            self._client.complete_multipart_upload(**complete)
        except BaseException:
            with contextlib.suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(Bucket=physical, Key=key, UploadId=upload_id)
            raise

    # -- reads -------------------------------------------------------------------------------

    def _info(self, bucket: str, key: str, response: Any, physical: str) -> ObjectInfo:
        """Info from a HeadObject/GetObject response; hashes foreign objects (no metadata)."""
        metadata = response.get("Metadata") or {}
        sha = metadata.get(SHA256_METADATA)
        if not isinstance(sha, str) or len(sha) != 64:
            sha = self._hash_object(bucket, physical, key)
        modified = response.get("LastModified")
        if not isinstance(modified, datetime):
            modified = datetime.now(UTC)
        return ObjectInfo(
            bucket,
            key,
            int(response.get("ContentLength", 0)),
            sha.lower(),
            modified.astimezone(UTC),
            str(response.get("ContentType") or DEFAULT_CONTENT_TYPE),
        )

    def _hash_object(self, bucket: str, physical: str, key: str) -> str:
        digest = hashlib.sha256()
        with self._s3_errors(bucket, key, "read"):
            body = self._client.get_object(Bucket=physical, Key=key)["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK_SIZE):
                    digest.update(chunk)
            finally:
                body.close()
        return digest.hexdigest()

    def _head(self, bucket: str, physical: str, key: str) -> ObjectInfo:
        with self._s3_errors(bucket, key, "head"):
            response = self._client.head_object(Bucket=physical, Key=key)
        return self._info(bucket, key, response, physical)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        check_object_args(bucket, key)
        return self._head(bucket, self._readable_bucket(bucket, key), key)

    def _readable_bucket(self, bucket: str, key: str) -> str:
        """The physical bucket for a read; a name S3 cannot hold has no objects."""
        try:
            return self.physical_bucket(bucket)
        except InvalidInput:
            validate_bucket(bucket)
            raise NotFound(
                f"object {bucket}/{key} not found", details={"bucket": bucket, "key": key}
            ) from None

    def open_read(self, bucket: str, key: str) -> tuple[ObjectInfo, ObjectStream]:
        check_object_args(bucket, key)
        physical = self._readable_bucket(bucket, key)
        with self._s3_errors(bucket, key, "read"):
            response = self._client.get_object(Bucket=physical, Key=key)
        body = response["Body"]
        try:
            info = self._info(bucket, key, response, physical)
        except BaseException:
            body.close()
            raise

        def chunks() -> Iterator[bytes]:
            with self._s3_errors(bucket, key, "read"):
                yield from body.iter_chunks(CHUNK_SIZE)

        return info, ObjectStream(chunks(), body.close)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        check_object_args(bucket, key)
        physical = self._readable_bucket(bucket, key)
        with self._s3_errors(bucket, key, "read"):
            body = self._client.get_object(Bucket=physical, Key=key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def delete(self, bucket: str, key: str) -> None:
        check_object_args(bucket, key)
        physical = self._readable_bucket(bucket, key)
        # S3's DeleteObject succeeds on a missing key; the contract says NotFound, so look first
        # (a delete racing another delete may both succeed: S3 offers no conditional delete
        # that every S3-compatible server implements).
        with self._s3_errors(bucket, key, "delete"):
            self._client.head_object(Bucket=physical, Key=key)
            self._client.delete_object(Bucket=physical, Key=key)

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
        try:
            physical = self.physical_bucket(bucket)
        except InvalidInput:
            return ListPage([], None)  # a name S3 cannot hold: no such bucket
        keys: builtins.list[str] = []
        more = False
        token: str | None = None
        with self._s3_errors(bucket, None, "list"):
            while len(keys) < limit:
                params: dict[str, Any] = {
                    "Bucket": physical,
                    "Prefix": prefix,
                    "MaxKeys": min(1000, limit - len(keys)),
                }
                if token is not None:
                    params["ContinuationToken"] = token
                elif cursor is not None:
                    params["StartAfter"] = cursor
                try:
                    response = self._client.list_objects_v2(**params)
                except ClientError as exc:
                    if self._code(exc) in _MISSING_BUCKET_CODES:
                        return ListPage([], None)
                    raise
                for entry in response.get("Contents", []):
                    key = entry.get("Key", "")
                    try:
                        keys.append(validate_key(key))
                    except InvalidInput:
                        continue  # written by something else under a key we cannot address
                more = bool(response.get("IsTruncated"))
                token = response.get("NextContinuationToken")
                if not more or token is None:
                    more = False
                    break
        infos = self._heads.map(lambda k: self._head_or_none(bucket, physical, k), keys)
        objects = [info for info in infos if info is not None]
        return ListPage(objects, keys[-1] if more and keys else None)

    def _head_or_none(self, bucket: str, physical: str, key: str) -> ObjectInfo | None:
        try:
            return self._head(bucket, physical, key)
        except NotFound:
            return None  # deleted between the listing and the head

    def close(self) -> None:
        self._heads.shutdown(wait=True)
        self._client.close()
        if self._own_staging:
            shutil.rmtree(self._staging, ignore_errors=True)
