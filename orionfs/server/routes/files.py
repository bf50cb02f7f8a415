"""Files and datasets: streamed uploads, content replacement, resources by id, downloads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from orionfs.server import models as m
from orionfs.server.routes.bodies import (
    DOWNLOAD_RESPONSES,
    RAW_SCHEMA,
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
    ListQuery,
    current_user,
    list_page,
    storage_of,
)
from orionfs.server.storage import User
from orionfs.server.transfer import receive_raw

router = APIRouter(dependencies=[Depends(current_user)], responses=ERRORS)


def _resource_fields(fields: dict[str, str]) -> dict[str, Any]:
    """The keyword arguments of ``Storage.commit_upload`` an upload form gives."""
    return {
        "name": required_name(fields),
        "path": fields.get("path") or None,
        "description": fields.get("description", ""),
        "tags": json_field(fields, "tags", list),
        "mtime": fields.get("mtime"),
    }


async def _create_upload(request: Request, user: User, kind: str) -> dict:
    storage = storage_of(request)
    upload, form = await receive_upload(
        request, storage, _resource_fields, count_lines=kind == "dataset"
    )
    return await run_in_threadpool(storage.commit_upload, user, upload, kind, **form)


# Files -------------------------------------------------------------------------------------------


@router.post(
    "/api/v3/storage/files/",
    status_code=201,
    response_model=m.FileOut,
    openapi_extra=UPLOAD_SCHEMA,
    tags=["files"],
)
async def files_create(request: Request, user: CurrentUser) -> dict:
    """Upload a file (multipart, streamed); it exists for nobody until the body is complete."""
    return await _create_upload(request, user, "file")


@router.get("/api/v3/storage/files/", response_model=m.Page[m.FileOut], tags=["files"])
def files_list(request: Request, user: CurrentUser, query: ListQuery) -> dict:
    """Files the caller can read."""
    return list_page(request, user, "file", query)


@router.get("/api/v3/storage/files/{file_id}/", response_model=m.FileOut, tags=["files"])
def files_get(request: Request, user: CurrentUser, file_id: ItemId) -> dict:
    """A file by id."""
    return storage_of(request).get_resource(user, "file", file_id)


@router.patch("/api/v3/storage/files/{file_id}/", response_model=m.FileOut, tags=["files"])
def files_patch(
    request: Request, user: CurrentUser, file_id: ItemId, body: m.ResourcePatchIn
) -> dict:
    """Rename a file or change its description."""
    return storage_of(request).update_resource(user, "file", file_id, body.model_dump())


@router.put(
    "/api/v3/storage/files/{file_id}/content/",
    response_model=m.FileOut,
    openapi_extra=RAW_SCHEMA,
    tags=["files"],
)
async def files_put_content(
    request: Request,
    user: CurrentUser,
    file_id: ItemId,
    mtime: Annotated[str | None, Query(description="ISO 8601 with a zone; default now")] = None,
) -> dict:
    """Replace a file's content atomically with the raw body (same id)."""
    storage = storage_of(request)
    await run_in_threadpool(storage.get_resource, user, "file", file_id)  # 404 before reading
    upload = await receive_raw(request, storage)
    return await run_in_threadpool(storage.replace_content, user, file_id, upload, mtime)


@router.get(
    "/api/v3/storage/files/{file_id}/download/",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
    tags=["files"],
)
def files_download(request: Request, user: CurrentUser, file_id: ItemId) -> Response:
    """A file's content; honours ``Range``."""
    return blob_response(request, storage_of(request).open_content(user, "file", file_id))


@router.delete("/api/v3/storage/files/{file_id}/", status_code=204, tags=["files"])
def files_delete(
    request: Request, user: CurrentUser, file_id: ItemId, immediate: bool = False
) -> Response:
    """Soft-delete a file, or purge it with ``immediate=true``."""
    storage_of(request).delete_resource(user, "file", file_id, immediate)
    return Response(status_code=204)


# Datasets ------------------------------------------------------------------------------------


@router.post(
    "/api/v1/datasets/",
    status_code=201,
    response_model=m.DatasetOut,
    openapi_extra=UPLOAD_SCHEMA,
    tags=["datasets"],
)
async def datasets_create(request: Request, user: CurrentUser) -> dict:
    """Upload a dataset (records one per line)."""
    return await _create_upload(request, user, "dataset")


@router.get("/api/v1/datasets/", response_model=m.Page[m.DatasetOut], tags=["datasets"])
def datasets_list(request: Request, user: CurrentUser, query: ListQuery) -> dict:
    """Datasets the caller can read."""
    return list_page(request, user, "dataset", query)


@router.get("/api/v1/datasets/{dataset_id}/", response_model=m.DatasetOut, tags=["datasets"])
def datasets_get(request: Request, user: CurrentUser, dataset_id: ItemId) -> dict:
    """A dataset by id."""
    return storage_of(request).get_resource(user, "dataset", dataset_id)


@router.patch("/api/v1/datasets/{dataset_id}/", response_model=m.DatasetOut, tags=["datasets"])
def datasets_patch(
    request: Request, user: CurrentUser, dataset_id: ItemId, body: m.ResourcePatchIn
) -> dict:
    """Rename a dataset or change its description."""
    return storage_of(request).update_resource(user, "dataset", dataset_id, body.model_dump())


@router.delete("/api/v1/datasets/{dataset_id}/", status_code=204, tags=["datasets"])
def datasets_delete(
    request: Request, user: CurrentUser, dataset_id: ItemId, immediate: bool = False
) -> Response:
    """Soft-delete a dataset, or purge it with ``immediate=true``."""
    storage_of(request).delete_resource(user, "dataset", dataset_id, immediate)
    return Response(status_code=204)


@router.get(
    "/api/v1/datasets/{dataset_id}/download/",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
    tags=["datasets"],
)
def datasets_download(request: Request, user: CurrentUser, dataset_id: ItemId) -> Response:
    """A dataset's records; honours ``Range``."""
    return blob_response(request, storage_of(request).open_content(user, "dataset", dataset_id))
