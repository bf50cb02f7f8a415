"""The path API: ls, stat, create/remove/assign paths, paths of items, folders by id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from orionfs.server import models as m
from orionfs.server.routes.deps import (
    ERRORS,
    CurrentUser,
    ItemId,
    Limit,
    Offset,
    OrionPath,
    current_user,
    page,
    split_list,
    storage_of,
)

router = APIRouter(dependencies=[Depends(current_user)], responses=ERRORS)


@router.get("/api/v1/storage/ls/", response_model=m.Page[m.Entry], tags=["storage"])
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
        types=split_list(types),
        tag_filters=split_list(tag_filters),
        systag_filters=split_list(systag_filters),
        list_kind=list_,
        limit=limit,
        offset=offset,
    )
    return page(request, total, results, limit, offset)


@router.get("/api/v1/storage/stat/", response_model=m.Entry, tags=["storage"])
def storage_stat(request: Request, user: CurrentUser, path: OrionPath) -> dict:
    """The entry at a path."""
    return storage_of(request).stat(user, path)


@router.post("/api/v1/storage/paths/", status_code=201, response_model=m.PathsOut, tags=["storage"])
def paths_create(request: Request, user: CurrentUser, body: m.PathsIn) -> dict:
    """Create folders and their missing ancestors."""
    return {"paths": storage_of(request).create_paths(user, body.paths, body.exist_ok)}


@router.post("/api/v1/storage/paths/remove/", status_code=204, tags=["storage"])
def paths_remove(request: Request, user: CurrentUser, body: m.RemoveIn) -> Response:
    """Remove (soft-delete) paths, all or nothing."""
    storage_of(request).remove_paths(user, body.paths, body.recursive)
    return Response(status_code=204)


@router.post("/api/v1/storage/paths/assign/", response_model=m.EntriesOut, tags=["storage"])
def paths_assign(request: Request, user: CurrentUser, body: m.AssignIn) -> dict:
    """Move items (a folder with everything in it) into folders, optionally renaming them."""
    items = [a.model_dump() for a in body.assignments]
    return {"results": storage_of(request).assign(user, items)}


@router.post("/api/v1/storage/paths/get/", response_model=m.ItemPathsOut, tags=["storage"])
def paths_get(request: Request, user: CurrentUser, body: m.GetPathsIn) -> dict:
    """Paths of items given by type and id."""
    items = [i.model_dump() for i in body.items]
    return {"results": storage_of(request).get_paths(user, items)}


@router.get("/api/v1/storage/folders/{folder_id}/", response_model=m.Entry, tags=["storage"])
def folders_get(request: Request, user: CurrentUser, folder_id: ItemId) -> dict:
    """A folder by id."""
    return storage_of(request).get_folder(user, folder_id)
