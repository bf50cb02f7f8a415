"""Shard collections and their shards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from orionfs.server import models as m
from orionfs.server.routes.bodies import (
    DOWNLOAD_RESPONSES,
    UPLOAD_SCHEMA,
    blob_response,
    json_field,
    receive_upload,
    required_name,
)
from orionfs.server.routes.deps import (
    ERRORS,
    CurrentUser,
    ItemId,
    Limit,
    ListQuery,
    Offset,
    current_user,
    list_page,
    page,
    storage_of,
)

router = APIRouter(dependencies=[Depends(current_user)], responses=ERRORS)


def _shard_fields(fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """(name, metadata) of a shard's upload form."""
    return required_name(fields), json_field(fields, "metadata", dict)


@router.post(
    "/api/v1/storage/collections/",
    status_code=201,
    response_model=m.CollectionOut,
    tags=["collections"],
)
def collections_create(request: Request, user: CurrentUser, body: m.CollectionIn) -> dict:
    """Create an open shard collection."""
    return storage_of(request).create_collection(user, body.name, body.path, body.metadata)


@router.get(
    "/api/v1/storage/collections/", response_model=m.Page[m.CollectionOut], tags=["collections"]
)
def collections_list(request: Request, user: CurrentUser, query: ListQuery) -> dict:
    """Shard collections the caller can read."""
    return list_page(request, user, "shard_collection", query)


@router.get(
    "/api/v1/storage/collections/{collection_id}/",
    response_model=m.CollectionOut,
    tags=["collections"],
)
def collections_get(request: Request, user: CurrentUser, collection_id: ItemId) -> dict:
    """A shard collection by id."""
    return storage_of(request).get_resource(user, "shard_collection", collection_id)


@router.patch(
    "/api/v1/storage/collections/{collection_id}/",
    response_model=m.CollectionOut,
    tags=["collections"],
)
def collections_patch(
    request: Request, user: CurrentUser, collection_id: ItemId, body: m.CollectionPatchIn
) -> dict:
    """Rename a collection, change its metadata, or close it (``state: ready``)."""
    return storage_of(request).update_resource(
        user, "shard_collection", collection_id, body.model_dump()
    )


@router.delete(
    "/api/v1/storage/collections/{collection_id}/", status_code=204, tags=["collections"]
)
def collections_delete(
    request: Request, user: CurrentUser, collection_id: ItemId, immediate: bool = False
) -> Response:
    """Soft-delete a collection, or purge it (and its shards) with ``immediate=true``."""
    storage_of(request).delete_resource(user, "shard_collection", collection_id, immediate)
    return Response(status_code=204)


@router.post(
    "/api/v1/storage/collections/{collection_id}/shards/",
    status_code=201,
    response_model=m.ShardOut,
    openapi_extra=UPLOAD_SCHEMA,
    tags=["collections"],
)
async def shards_create(request: Request, user: CurrentUser, collection_id: ItemId) -> dict:
    """Upload a shard into an open collection (409 once it is ready)."""
    storage = storage_of(request)
    await run_in_threadpool(storage.get_resource, user, "shard_collection", collection_id)
    upload, (name, metadata) = await receive_upload(request, storage, _shard_fields)
    return await run_in_threadpool(
        storage.commit_shard, user, collection_id, upload, name, metadata
    )


@router.get(
    "/api/v1/storage/collections/{collection_id}/shards/",
    response_model=m.Page[m.ShardOut],
    tags=["collections"],
)
def shards_list(
    request: Request,
    user: CurrentUser,
    collection_id: ItemId,
    limit: Limit = 250,
    offset: Offset = 0,
) -> dict:
    """A collection's shards."""
    total, results = storage_of(request).list_shards(user, collection_id, limit, offset)
    return page(request, total, results, limit, offset)


@router.get(
    "/api/v1/storage/collections/{collection_id}/shards/{shard_id}/",
    response_model=m.ShardOut,
    tags=["collections"],
)
def shards_get(
    request: Request, user: CurrentUser, collection_id: ItemId, shard_id: ItemId
) -> dict:
    """One shard."""
    return storage_of(request).get_shard(user, collection_id, shard_id)


@router.delete(
    "/api/v1/storage/collections/{collection_id}/shards/{shard_id}/",
    status_code=204,
    tags=["collections"],
)
def shards_delete(
    request: Request, user: CurrentUser, collection_id: ItemId, shard_id: ItemId
) -> Response:
    """Remove a shard."""
    storage_of(request).delete_shard(user, collection_id, shard_id)
    return Response(status_code=204)


@router.get(
    "/api/v1/storage/collections/{collection_id}/shards/{shard_id}/download/",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
    tags=["collections"],
)
def shards_download(
    request: Request, user: CurrentUser, collection_id: ItemId, shard_id: ItemId
) -> Response:
    """A shard's content; honours ``Range``."""
    return blob_response(request, storage_of(request).open_shard(user, collection_id, shard_id))
