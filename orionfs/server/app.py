"""The FastAPI app of the local Orion server: routes only (no SQL; the storage layer does that).

``create_app(data_dir)`` builds the app over a :class:`~orionfs.server.storage.Storage`. Every
``/api/`` route needs ``Authorization: Token <t>`` (checked by :class:`AuthMiddleware`) except
token retrieval, which takes HTTP Basic. Errors are ``{"detail": ...}`` with the status codes of
docs/wire.md; validation errors are 400, never 422.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBasicCredentials
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from orionfs.server import models as m
from orionfs.server.middleware import (
    USER_SCOPE_KEY,
    AuthMiddleware,
    BodyLimitMiddleware,
    Fault,
    TestHooks,
    TestHooksMiddleware,
)
from orionfs.server.storage import (
    MAX_ID,
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    Storage,
    StorageError,
    User,
)
from orionfs.server.transfer import (
    BlobResponse,
    RangeNotSatisfiable,
    receive_multipart,
    receive_raw,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1 << 20
DEFAULT_MAX_UPLOAD = 64 << 30
VERSIONS = {"storage": "v3", "datasets": "v1", "projects": "v1", "users": "v1"}

_STATUS = {BadInput: 400, Forbidden: 403, NotFound: 404, Conflict: 409}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.Detail} for code in (400, 401, 403, 404, 409, 413)
}
_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", "file"],
                    "properties": {
                        "name": {"type": "string"},
                        "path": {"type": "string"},
                        "description": {"type": "string"},
                        "tags": {"type": "string", "description": "JSON list of strings"},
                        "metadata": {"type": "string", "description": "JSON object (shards)"},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}
_RAW_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    },
    206: {
        "description": "Partial content",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    416: {"model": m.Detail, "description": "Range not satisfiable"},
}

ItemId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
TaggableType = Literal["file", "dataset", "shard_collection"]
OrionPath = Annotated[str, Query(pattern=r"^/(?:[^/]+(?:/[^/]+)*)?$", description="absolute path")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]

_token_header = APIKeyHeader(name="Authorization", auto_error=False, description="`Token <token>`")
_basic = HTTPBasic(auto_error=False)


def current_user(request: Request, _: Annotated[str | None, Security(_token_header)]) -> User:
    """The user the auth middleware found for this request's token."""
    user = request.scope.get(USER_SCOPE_KEY)
    if user is None:  # pragma: no cover - the middleware answers 401 first
        raise HTTPException(401, "invalid or missing token")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def storage_of(request: Request) -> Storage:
    """The app's storage layer."""
    return request.app.state.storage


def page(request: Request, total: int, results: list[Any], limit: int, offset: int) -> dict:
    """A paged answer with ``next``/``previous`` URLs."""
    following = offset + len(results)
    next_url = None
    if following < total and results:
        next_url = str(request.url.include_query_params(offset=following, limit=limit))
    previous = None
    if offset > 0:
        previous = str(request.url.include_query_params(offset=max(0, offset - limit), limit=limit))
    return {"count": total, "next": next_url, "previous": previous, "results": results}


def _split(value: str | None) -> list[str]:
    return [part for part in (value or "").split(",") if part]


@dataclass
class ResourceListParams:
    """The query of every resource list endpoint (files, datasets, collections)."""

    name: str | None = None
    project: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
    tags: str | None = None
    deleted: bool = False
    limit: Limit = 250
    offset: Offset = 0


ListQuery = Annotated[ResourceListParams, Depends()]


def _list_page(request: Request, user: User, kind: str, query: ResourceListParams) -> dict:
    """One page of the resources of ``kind`` the caller can read."""
    total, results = storage_of(request).list_resources(
        user,
        kind,
        name=query.name,
        project=query.project,
        tags=_split(query.tags),
        deleted=query.deleted,
        limit=query.limit,
        offset=query.offset,
    )
    return page(request, total, results, query.limit, query.offset)


def _json_field(fields: dict[str, str], key: str, kind: type) -> Any:
    text = fields.get(key)
    if text is None or text == "":
        return kind()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{key} must be JSON") from exc
    if not isinstance(value, kind) or (
        kind is list and not all(isinstance(item, str) for item in value)
    ):
        raise BadInput(f"{key} must be a JSON {kind.__name__}")
    return value


def _blob_response(request: Request, opened: tuple) -> Response:
    handle, size, name = opened
    try:
        return BlobResponse(handle, size, name, request.headers.get("range"))
    except RangeNotSatisfiable as exc:
        return JSONResponse(
            {"detail": str(exc)}, status_code=416, headers={"Content-Range": f"bytes */{exc.size}"}
        )


# -- routes -----------------------------------------------------------------------------------

auth_router = APIRouter(tags=["auth"], responses=_ERRORS)
api = APIRouter(dependencies=[Depends(current_user)], responses=_ERRORS)


@auth_router.post("/api/v1/auth/token/", response_model=m.Token)
def retrieve_token(
    request: Request, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]
) -> dict:
    """Exchange HTTP Basic username:password for a new token."""
    storage = storage_of(request)
    user = None
    if credentials is not None:
        user = storage.check_password(credentials.username, credentials.password)
    if user is None:
        raise HTTPException(401, "bad username or password", headers={"WWW-Authenticate": "Basic"})
    return {"token": storage.issue_token(user.id)}


@api.get("/api/versions/", response_model=m.Versions, tags=["meta"])
def versions() -> dict:
    """API versions per resource group."""
    return {"versions": VERSIONS}


@api.get("/api/v1/users/me/", response_model=m.UserOut, tags=["users"])
def users_me(user: CurrentUser) -> dict:
    """The caller."""
    return user.to_dict()


@api.get("/api/v1/users/{user_id}/", response_model=m.UserOut, tags=["users"])
def users_get(request: Request, user: CurrentUser, user_id: ItemId) -> dict:
    """A user: the caller or a fellow project member (404 otherwise)."""
    return storage_of(request).get_user(user, user_id)


@api.get("/api/v1/projects/", response_model=m.Page[m.ProjectOut], tags=["projects"])
def projects_list(
    request: Request,
    user: CurrentUser,
    name: str | None = None,
    limit: Limit = 250,
    offset: Offset = 0,
) -> dict:
    """The caller's projects."""
    total, results = storage_of(request).list_projects(user, name, limit, offset)
    return page(request, total, results, limit, offset)


@api.get("/api/v1/projects/{project_id}/", response_model=m.ProjectOut, tags=["projects"])
def projects_get(request: Request, user: CurrentUser, project_id: ItemId) -> dict:
    """One of the caller's projects."""
    return storage_of(request).get_project(user, project_id)


@api.post("/api/v1/projects/{project_id}/leave/", status_code=204, tags=["projects"])
def projects_leave(
    request: Request, user: CurrentUser, project_id: ItemId, body: m.LeaveIn
) -> Response:
    """Leave a project (its owner names a new owner)."""
    storage_of(request).leave_project(user, project_id, body.new_owner_id)
    return Response(status_code=204)


@api.get("/api/v1/billing/balance/", response_model=m.Balance, tags=["billing"])
def balance(request: Request, user: CurrentUser) -> dict:
    """The caller's balance (400 without the cost-accounting capability)."""
    return {"balance": storage_of(request).balance(user), "currency": "USD"}


@api.get("/api/v1/storage/ls/", response_model=m.Page[m.Entry], tags=["storage"])
def storage_ls(
    request: Request,
    user: CurrentUser,
    path: OrionPath,
    name: str | None = None,
    name_contains: str | None = None,
    name_icontains: str | None = None,
    order_by: str = "name",
    types: str | None = None,
    tag_filters: str | None = None,
    systag_filters: str | None = None,
    list_: Annotated[str | None, Query(alias="list")] = None,
    limit: Limit = 250,
    offset: Offset = 0,
) -> dict:
    """One page of a folder's entries."""
    total, results = storage_of(request).ls(
        user,
        path,
        name=name,
        name_contains=name_contains,
        name_icontains=name_icontains,
        order_by=order_by,
        types=_split(types),
        tag_filters=_split(tag_filters),
        systag_filters=_split(systag_filters),
        list_kind=list_,
        limit=limit,
        offset=offset,
    )
    return page(request, total, results, limit, offset)


@api.get("/api/v1/storage/stat/", response_model=m.Entry, tags=["storage"])
def storage_stat(request: Request, user: CurrentUser, path: OrionPath) -> dict:
    """The entry at a path."""
    return storage_of(request).stat(user, path)


@api.post("/api/v1/storage/paths/", status_code=201, response_model=m.PathsOut, tags=["storage"])
def paths_create(request: Request, user: CurrentUser, body: m.PathsIn) -> dict:
    """Create folders and their missing ancestors."""
    return {"paths": storage_of(request).create_paths(user, body.paths, body.exist_ok)}


@api.post("/api/v1/storage/paths/remove/", status_code=204, tags=["storage"])
def paths_remove(request: Request, user: CurrentUser, body: m.RemoveIn) -> Response:
    """Remove (soft-delete) paths, all or nothing."""
    storage_of(request).remove_paths(user, body.paths, body.recursive)
    return Response(status_code=204)


@api.post("/api/v1/storage/paths/assign/", response_model=m.EntriesOut, tags=["storage"])
def paths_assign(request: Request, user: CurrentUser, body: m.AssignIn) -> dict:
    """Move items (a folder with everything in it) into folders, optionally renaming them."""
    items = [a.model_dump() for a in body.assignments]
    return {"results": storage_of(request).assign(user, items)}


@api.post("/api/v1/storage/paths/get/", response_model=m.ItemPathsOut, tags=["storage"])
def paths_get(request: Request, user: CurrentUser, body: m.GetPathsIn) -> dict:
    """Paths of items given by type and id."""
    items = [i.model_dump() for i in body.items]
    return {"results": storage_of(request).get_paths(user, items)}


@api.get("/api/v1/storage/folders/{folder_id}/", response_model=m.Entry, tags=["storage"])
def folders_get(request: Request, user: CurrentUser, folder_id: ItemId) -> dict:
    """A folder by id."""
    return storage_of(request).get_folder(user, folder_id)


async def _create_upload(request: Request, user: User, kind: str) -> dict:
    storage = storage_of(request)
    fields, upload = await receive_multipart(request, storage, count_lines=kind == "dataset")
    try:
        name = fields.get("name")
        if not name:
            raise BadInput("the 'name' field is required")
        tags = _json_field(fields, "tags", list)
    except BaseException:
        upload.discard()
        raise
    return await run_in_threadpool(
        storage.commit_upload,
        user,
        upload,
        kind,
        name,
        fields.get("path") or None,
        fields.get("description", ""),
        tags,
    )


# Files -------------------------------------------------------------------------------------------


@api.post(
    "/api/v3/storage/files/",
    status_code=201,
    response_model=m.FileOut,
    openapi_extra=_UPLOAD_SCHEMA,
    tags=["files"],
)
async def files_create(request: Request, user: CurrentUser) -> dict:
    """Upload a file (multipart, streamed); it exists for nobody until the body is complete."""
    return await _create_upload(request, user, "file")


@api.get("/api/v3/storage/files/", response_model=m.Page[m.FileOut], tags=["files"])
def files_list(request: Request, user: CurrentUser, query: ListQuery) -> dict:
    """Files the caller can read."""
    return _list_page(request, user, "file", query)


@api.get("/api/v3/storage/files/{file_id}/", response_model=m.FileOut, tags=["files"])
def files_get(request: Request, user: CurrentUser, file_id: ItemId) -> dict:
    """A file by id."""
    return storage_of(request).get_resource(user, "file", file_id)


@api.patch("/api/v3/storage/files/{file_id}/", response_model=m.FileOut, tags=["files"])
def files_patch(
    request: Request, user: CurrentUser, file_id: ItemId, body: m.ResourcePatchIn
) -> dict:
    """Rename a file or change its description."""
    return storage_of(request).update_resource(user, "file", file_id, body.model_dump())


@api.put(
    "/api/v3/storage/files/{file_id}/content/",
    response_model=m.FileOut,
    openapi_extra=_RAW_SCHEMA,
    tags=["files"],
)
async def files_put_content(request: Request, user: CurrentUser, file_id: ItemId) -> dict:
    """Replace a file's content atomically with the raw body (same id)."""
    storage = storage_of(request)
    await run_in_threadpool(storage.get_resource, user, "file", file_id)  # 404 before reading
    upload = await receive_raw(request, storage)
    return await run_in_threadpool(storage.replace_content, user, file_id, upload)


@api.get(
    "/api/v3/storage/files/{file_id}/download/",
    response_class=Response,
    responses=_DOWNLOAD_RESPONSES,
    tags=["files"],
)
def files_download(request: Request, user: CurrentUser, file_id: ItemId) -> Response:
    """A file's content; honours ``Range``."""
    return _blob_response(request, storage_of(request).open_content(user, "file", file_id))


@api.delete("/api/v3/storage/files/{file_id}/", status_code=204, tags=["files"])
def files_delete(
    request: Request, user: CurrentUser, file_id: ItemId, immediate: bool = False
) -> Response:
    """Soft-delete a file, or purge it with ``immediate=true``."""
    storage_of(request).delete_resource(user, "file", file_id, immediate)
    return Response(status_code=204)


# Datasets ------------------------------------------------------------------------------------


@api.post(
    "/api/v1/datasets/",
    status_code=201,
    response_model=m.DatasetOut,
    openapi_extra=_UPLOAD_SCHEMA,
    tags=["datasets"],
)
async def datasets_create(request: Request, user: CurrentUser) -> dict:
    """Upload a dataset (records one per line)."""
    return await _create_upload(request, user, "dataset")


@api.get("/api/v1/datasets/", response_model=m.Page[m.DatasetOut], tags=["datasets"])
def datasets_list(request: Request, user: CurrentUser, query: ListQuery) -> dict:
    """Datasets the caller can read."""
    return _list_page(request, user, "dataset", query)


@api.get("/api/v1/datasets/{dataset_id}/", response_model=m.DatasetOut, tags=["datasets"])
def datasets_get(request: Request, user: CurrentUser, dataset_id: ItemId) -> dict:
    """A dataset by id."""
    return storage_of(request).get_resource(user, "dataset", dataset_id)


@api.patch("/api/v1/datasets/{dataset_id}/", response_model=m.DatasetOut, tags=["datasets"])
def datasets_patch(
    request: Request, user: CurrentUser, dataset_id: ItemId, body: m.ResourcePatchIn
) -> dict:
    """Rename a dataset or change its description."""
    return storage_of(request).update_resource(user, "dataset", dataset_id, body.model_dump())


@api.delete("/api/v1/datasets/{dataset_id}/", status_code=204, tags=["datasets"])
def datasets_delete(
    request: Request, user: CurrentUser, dataset_id: ItemId, immediate: bool = False
) -> Response:
    """Soft-delete a dataset, or purge it with ``immediate=true``."""
    storage_of(request).delete_resource(user, "dataset", dataset_id, immediate)
    return Response(status_code=204)


@api.get(
    "/api/v1/datasets/{dataset_id}/download/",
    response_class=Response,
    responses=_DOWNLOAD_RESPONSES,
    tags=["datasets"],
)
def datasets_download(request: Request, user: CurrentUser, dataset_id: ItemId) -> Response:
    """A dataset's records; honours ``Range``."""
    return _blob_response(request, storage_of(request).open_content(user, "dataset", dataset_id))


# Shard collections ---------------------------------------------------------------------------


@api.post(
    "/api/v1/storage/collections/",
    status_code=201,
    response_model=m.CollectionOut,
    tags=["collections"],
)
def collections_create(request: Request, user: CurrentUser, body: m.CollectionIn) -> dict:
    """Create an open shard collection."""
    return storage_of(request).create_collection(user, body.name, body.path, body.metadata)


@api.get(
    "/api/v1/storage/collections/", response_model=m.Page[m.CollectionOut], tags=["collections"]
)
def collections_list(request: Request, user: CurrentUser, query: ListQuery) -> dict:
    """Shard collections the caller can read."""
    return _list_page(request, user, "shard_collection", query)


@api.get(
    "/api/v1/storage/collections/{collection_id}/",
    response_model=m.CollectionOut,
    tags=["collections"],
)
def collections_get(request: Request, user: CurrentUser, collection_id: ItemId) -> dict:
    """A shard collection by id."""
    return storage_of(request).get_resource(user, "shard_collection", collection_id)


@api.patch(
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


@api.delete("/api/v1/storage/collections/{collection_id}/", status_code=204, tags=["collections"])
def collections_delete(
    request: Request, user: CurrentUser, collection_id: ItemId, immediate: bool = False
) -> Response:
    """Soft-delete a collection, or purge it (and its shards) with ``immediate=true``."""
    storage_of(request).delete_resource(user, "shard_collection", collection_id, immediate)
    return Response(status_code=204)


@api.post(
    "/api/v1/storage/collections/{collection_id}/shards/",
    status_code=201,
    response_model=m.ShardOut,
    openapi_extra=_UPLOAD_SCHEMA,
    tags=["collections"],
)
async def shards_create(request: Request, user: CurrentUser, collection_id: ItemId) -> dict:
    """Upload a shard into an open collection (409 once it is ready)."""
    storage = storage_of(request)
    await run_in_threadpool(storage.get_resource, user, "shard_collection", collection_id)
    fields, upload = await receive_multipart(request, storage)
    try:
        name = fields.get("name")
        if not name:
            raise BadInput("the 'name' field is required")
        metadata = _json_field(fields, "metadata", dict)
    except BaseException:
        upload.discard()
        raise
    return await run_in_threadpool(
        storage.commit_shard, user, collection_id, upload, name, metadata
    )


@api.get(
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


@api.get(
    "/api/v1/storage/collections/{collection_id}/shards/{shard_id}/",
    response_model=m.ShardOut,
    tags=["collections"],
)
def shards_get(
    request: Request, user: CurrentUser, collection_id: ItemId, shard_id: ItemId
) -> dict:
    """One shard."""
    return storage_of(request).get_shard(user, collection_id, shard_id)


@api.delete(
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


@api.get(
    "/api/v1/storage/collections/{collection_id}/shards/{shard_id}/download/",
    response_class=Response,
    responses=_DOWNLOAD_RESPONSES,
    tags=["collections"],
)
def shards_download(
    request: Request, user: CurrentUser, collection_id: ItemId, shard_id: ItemId
) -> Response:
    """A shard's content; honours ``Range``."""
    return _blob_response(request, storage_of(request).open_shard(user, collection_id, shard_id))


# Tags and sharing --------------------------------------------------------------------------


@api.get("/api/v1/tags/{resource_type}/{resource_id}/", response_model=m.TagsOut, tags=["tags"])
def tags_get(
    request: Request, user: CurrentUser, resource_type: TaggableType, resource_id: ItemId
) -> dict:
    """Tags and systemtags of a resource."""
    return storage_of(request).get_tags(user, resource_type, resource_id)


@api.post("/api/v1/tags/{resource_type}/{resource_id}/", response_model=m.TagsOut, tags=["tags"])
def tags_add(
    request: Request,
    user: CurrentUser,
    resource_type: TaggableType,
    resource_id: ItemId,
    body: m.TagsIn,
) -> dict:
    """Add tags (existing ones stay)."""
    return storage_of(request).add_tags(user, resource_type, resource_id, body.tags)


@api.post(
    "/api/v1/tags/{resource_type}/{resource_id}/remove/", response_model=m.TagsOut, tags=["tags"]
)
def tags_remove(
    request: Request,
    user: CurrentUser,
    resource_type: TaggableType,
    resource_id: ItemId,
    body: m.TagsRemoveIn,
) -> dict:
    """Remove tags (absent ones are ignored)."""
    return storage_of(request).remove_tags(user, resource_type, resource_id, body.tags)


@api.get(
    "/api/v1/sharing/{resource_type}/{resource_id}/", response_model=m.SharingOut, tags=["sharing"]
)
def sharing_get(
    request: Request, user: CurrentUser, resource_type: TaggableType, resource_id: ItemId
) -> dict:
    """Whom a resource is shared with."""
    return storage_of(request).get_sharing(user, resource_type, resource_id)


@api.post(
    "/api/v1/sharing/{resource_type}/{resource_id}/", response_model=m.SharingOut, tags=["sharing"]
)
def sharing_add(
    request: Request,
    user: CurrentUser,
    resource_type: TaggableType,
    resource_id: ItemId,
    body: m.ShareIn,
) -> dict:
    """Share a resource with users or projects."""
    return storage_of(request).set_sharing(
        user, resource_type, resource_id, body.share_with, body.ids, add=True
    )


@api.post(
    "/api/v1/sharing/{resource_type}/{resource_id}/remove/",
    response_model=m.SharingOut,
    tags=["sharing"],
)
def sharing_remove(
    request: Request,
    user: CurrentUser,
    resource_type: TaggableType,
    resource_id: ItemId,
    body: m.ShareIn,
) -> dict:
    """Stop sharing a resource with users or projects."""
    return storage_of(request).set_sharing(
        user, resource_type, resource_id, body.share_with, body.ids, add=False
    )


# Test hooks ------------------------------------------------------------------------------------

hooks_router = APIRouter(
    prefix="/api/v1/_test", dependencies=[Depends(current_user)], responses=_ERRORS, tags=["test"]
)


def hooks_of(request: Request) -> TestHooks:
    """The app's test hooks."""
    return request.app.state.hooks


@hooks_router.get("/counters/", response_model=m.Counters)
def hook_counters(request: Request) -> dict:
    """Requests per endpoint ("METHOD /route/template/") since the last reset."""
    return hooks_of(request).counters()


@hooks_router.post("/counters/reset/", status_code=204)
def hook_counters_reset(request: Request) -> Response:
    """Zero the counters."""
    hooks_of(request).reset_counters()
    return Response(status_code=204)


@hooks_router.post("/latency/", status_code=204)
def hook_latency(request: Request, body: m.LatencyIn) -> Response:
    """Delay every later request by ``ms``."""
    hooks_of(request).set_latency(body.ms)
    return Response(status_code=204)


@hooks_router.post("/faults/", status_code=204)
def hook_faults(request: Request, body: m.FaultsIn) -> Response:
    """Inject a fault for the next ``count`` (or a ``fraction`` of) matching requests."""
    hooks = hooks_of(request)
    if body.clear:
        hooks.clear_faults()
        return Response(status_code=204)
    if not (body.status or body.drop or body.stall):
        raise BadInput("a fault needs a status, drop or stall")
    hooks.add_fault(
        Fault(
            status=body.status,
            drop=body.drop,
            stall=body.stall,
            remaining=body.count,
            fraction=body.fraction,
            path_prefix=body.path_prefix,
            retry_after=body.retry_after,
            method=body.method,
            rng=random.Random(body.seed),
        )
    )
    return Response(status_code=204)


@hooks_router.post("/users/", status_code=201, response_model=m.TestUserOut)
def hook_users(request: Request, body: m.TestUserIn) -> dict:
    """Create a user (joining ``project``, or in a new project of their own) and a token."""
    storage = storage_of(request)
    user, project = storage.create_user(
        body.username, body.password, body.project, body.cost_accounting
    )
    return {"user": user.to_dict(), "token": storage.issue_token(user.id), "project": project}


# -- the app -------------------------------------------------------------------------------------


def _detail_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class OrionApp(FastAPI):
    """FastAPI with the server's pure ASGI middleware stacked outside Starlette's own."""

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        app = AuthMiddleware(app, self.state.storage)
        app = BodyLimitMiddleware(app, self.state.max_body, self.state.max_upload)
        if self.state.hooks is not None:
            app = TestHooksMiddleware(app, self.state.hooks, self.router.routes)
        return app


def create_app(
    data_dir: str | os.PathLike[str],
    test_hooks: bool = False,
    max_body: int = DEFAULT_MAX_BODY,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    storage: Storage | None = None,
) -> FastAPI:
    """Build the server app over the data in ``data_dir``.

    ``test_hooks`` adds the ``/api/v1/_test/`` routes and the counting/fault middleware;
    ``max_body`` limits JSON bodies and ``max_upload`` upload bodies (413 beyond).
    """
    app = OrionApp(
        title="orionfs local Orion",
        version="1",
        description="An Orion-compatible REST server for orionfs (see docs/wire.md).",
    )
    app.state.storage = storage or Storage(data_dir)
    app.state.max_body = max_body
    app.state.max_upload = max_upload
    app.state.hooks = TestHooks() if test_hooks else None
    # The routers' routes are added flat (not include_router, which nests them lazily in newer
    # FastAPI), so that app.routes lists every APIRoute with its path template.
    for router in (auth_router, api, *([hooks_router] if test_hooks else [])):
        app.router.routes.extend(router.routes)

    def openapi() -> dict[str, Any]:
        # FastAPI documents 422 for validation errors; this server answers them with 400.
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None:
                        responses.setdefault(
                            "400",
                            {
                                "description": "Bad input",
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/Detail"}
                                    }
                                },
                            },
                        )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(StorageError)
    async def _storage_error(request: Request, exc: StorageError) -> Response:
        return _detail_response(_STATUS.get(type(exc), 400), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _detail_response(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _detail_response(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(UnicodeError)
    @app.exception_handler(OverflowError)
    async def _bad_value(request: Request, exc: Exception) -> Response:
        return _detail_response(400, f"bad input: {exc}")

    @app.exception_handler(ClientDisconnect)
    async def _disconnect(request: Request, exc: ClientDisconnect) -> Response:
        logger.info("client disconnected during %s %s", request.method, request.url.path)
        return _detail_response(400, "client disconnected")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        logger.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _detail_response(500, "internal server error")

    return app
