"""storaged routes (SPEC §4): object PUT/GET/HEAD/DELETE, listing, buckets."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from lakehouse_common.contracts.storage import BucketList, ObjectList, StoredObject
from lakehouse_common.errors import InvalidInput
from lakehouse_common.store import ObjectInfo, ObjectStream, Store
from lakehouse_common.store.base import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from lakehouse_common.store.keys import validate_bucket, validate_key
from services.storaged.state import object_store

router = APIRouter(prefix="/v1/storage", tags=["storage"])


# Objects up to this size are read in the same worker-thread hop that opens them and answered
# in one piece; larger ones stream chunk by chunk. Halves the thread hops of a small GET.
SMALL_OBJECT = 1024 * 1024


def _open_object(
    store: Store, bucket: str, key: str
) -> tuple[ObjectInfo, ObjectStream, bytes | None]:
    info, chunks = store.open_read(bucket, key)
    if info.size > SMALL_OBJECT:
        return info, chunks, None
    with chunks:
        return info, chunks, chunks.read_all()


def _object_headers(info: ObjectInfo) -> dict[str, str]:
    return {
        "ETag": f'"{info.etag}"',
        "Content-Length": str(info.size),
        "Content-Type": info.content_type,
        "Last-Modified": format_datetime(info.modified, usegmt=True),
    }


@router.put(
    "/objects/{bucket}/{key:anypath}",
    response_model=StoredObject,
    summary="Write an object atomically; `If-None-Match: *` makes it create-only (409 if taken).",
)
async def put_object(
    request: Request,
    store: Annotated[Store, Depends(object_store)],
    bucket: str,
    key: str,
    if_none_match: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> StoredObject:
    """Stream the body to a staging file (never all in memory), then publish it atomically."""
    validate_bucket(bucket)
    validate_key(key)
    if if_none_match is not None and if_none_match.strip() != "*":
        raise InvalidInput("If-None-Match supports only '*' (create-only write)")
    staged = await run_in_threadpool(store.stage)
    with staged:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(staged.write, chunk)
        info = await run_in_threadpool(
            store.commit,
            staged,
            bucket,
            key,
            create_only=if_none_match is not None,
            content_type=content_type,
        )
    return StoredObject.of(info)


@router.get(
    "/objects/{bucket}/{key:anypath}",
    summary="Read an object (streamed); ETag is the quoted sha256 of the content.",
    response_class=Response,
)
async def get_object(
    store: Annotated[Store, Depends(object_store)], bucket: str, key: str
) -> Response:
    """404 when the object does not exist."""
    info, chunks, whole = await run_in_threadpool(_open_object, store, bucket, key)
    if whole is not None:
        return Response(whole, headers=_object_headers(info), media_type=info.content_type)
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        headers=_object_headers(info),
        media_type=info.content_type,
        background=BackgroundTask(chunks.close),
    )


@router.head(
    "/objects/{bucket}/{key:anypath}",
    summary="An object's metadata as headers, without the body.",
    response_class=Response,
)
async def head_object(
    store: Annotated[Store, Depends(object_store)], bucket: str, key: str
) -> Response:
    """404 (without a body, as HEAD requires) when the object does not exist."""
    info = await run_in_threadpool(store.head, bucket, key)
    return Response(headers=_object_headers(info), media_type=info.content_type)


@router.delete(
    "/objects/{bucket}/{key:anypath}",
    status_code=204,
    summary="Delete an object; 404 when it does not exist.",
    response_class=Response,
)
async def delete_object(
    store: Annotated[Store, Depends(object_store)], bucket: str, key: str
) -> Response:
    """Delete an object; 404 when it does not exist."""
    await run_in_threadpool(store.delete, bucket, key)
    return Response(status_code=204)


@router.get(
    "/objects/{bucket}",
    response_model=ObjectList,
    summary="List a bucket's objects in key order, paged by `cursor`.",
)
async def list_objects(
    store: Annotated[Store, Depends(object_store)],
    bucket: str,
    prefix: str = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = DEFAULT_LIST_LIMIT,
    cursor: str | None = None,
) -> ObjectList:
    """An unknown bucket lists empty; `next_cursor` is null on the last page."""
    page = await run_in_threadpool(store.list, bucket, prefix=prefix, limit=limit, cursor=cursor)
    objects = [StoredObject.of(info) for info in page.objects]
    return ObjectList(objects=objects, count=len(objects), next_cursor=page.next_cursor)


@router.get("/buckets", response_model=BucketList, summary="The buckets that hold objects.")
async def list_buckets(store: Annotated[Store, Depends(object_store)]) -> BucketList:
    """Buckets come into being on first write."""
    buckets = await run_in_threadpool(store.list_buckets)
    return BucketList(buckets=buckets, count=len(buckets))
