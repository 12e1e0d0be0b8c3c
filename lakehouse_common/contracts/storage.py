"""storaged's wire format and typed client (SPEC §4).

Objects: `PUT/GET/HEAD/DELETE /v1/storage/objects/{bucket}/{key...}`; listing:
`GET /v1/storage/objects/{bucket}?prefix=&limit=&cursor=`; buckets: `GET /v1/storage/buckets`.
`If-None-Match: *` on PUT makes a create-only write (409 when the key exists). The ETag header is
the quoted sha256 of the content; the `etag` field is the bare hex.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from pydantic import BaseModel

from lakehouse_common.http import ServiceClient, decode_answer
from lakehouse_common.store.base import ObjectInfo

AREA = "storage"
OBJECTS = "/v1/storage/objects"


class StoredObject(BaseModel):
    """One object's metadata; `etag` is the lowercase hex sha256 of its content."""

    bucket: str
    key: str
    size: int
    etag: str
    modified: datetime
    content_type: str

    @classmethod
    def of(cls, info: ObjectInfo) -> StoredObject:
        return cls(
            bucket=info.bucket,
            key=info.key,
            size=info.size,
            etag=info.etag,
            modified=info.modified,
            content_type=info.content_type,
        )


class ObjectList(BaseModel):
    """A page of a listing; pass `next_cursor` back as `cursor` for the keys after it."""

    objects: list[StoredObject]
    count: int
    next_cursor: str | None


class BucketList(BaseModel):
    buckets: list[str]
    count: int


def bucket_path(bucket: str) -> str:
    """`GET` lists a bucket's objects (`?prefix=`)."""
    return f"{OBJECTS}/{quote(bucket, safe='')}"


def object_path(bucket: str, key: str) -> str:
    return f"{bucket_path(bucket)}/{quote(key, safe='/')}"


class StorageClient:
    """storaged over HTTP, for daemons that do not hold a `Store` in-process."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        create_only: bool = False,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        headers = {"Content-Type": content_type}
        if create_only:
            headers["If-None-Match"] = "*"
        status, _, body = await self.client.request(
            "PUT", object_path(bucket, key), data=data, headers=headers
        )
        return StoredObject.model_validate_json(self._ok(status, body))

    async def get_object(self, bucket: str, key: str) -> bytes:
        status, _, body = await self.client.request("GET", object_path(bucket, key))
        return self._ok(status, body)

    async def delete_object(self, bucket: str, key: str) -> None:
        status, _, body = await self.client.request("DELETE", object_path(bucket, key))
        self._ok(status, body)

    async def list_objects(
        self, bucket: str, *, prefix: str = "", limit: int = 1000, cursor: str | None = None
    ) -> ObjectList:
        params: dict[str, str | int] = {"prefix": prefix, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        data = await self.client.call_json("GET", bucket_path(bucket), params=params)
        return ObjectList.model_validate(data)

    def _ok(self, status: int, body: bytes) -> bytes:
        if status >= 400:
            decode_answer(self.client.daemon, status, body, "a storage call")
        return body
