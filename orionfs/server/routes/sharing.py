"""Tags and sharing of files, datasets and shard collections."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from orionfs.server import models as m
from orionfs.server.routes.deps import (
    ERRORS,
    CurrentUser,
    ItemId,
    TaggableType,
    current_user,
    storage_of,
)

router = APIRouter(dependencies=[Depends(current_user)], responses=ERRORS)


@router.get("/api/v1/tags/{resource_type}/{resource_id}/", response_model=m.TagsOut, tags=["tags"])
def tags_get(
    request: Request, user: CurrentUser, resource_type: TaggableType, resource_id: ItemId
) -> dict:
    """Tags and systemtags of a resource."""
    return storage_of(request).get_tags(user, resource_type, resource_id)


@router.post("/api/v1/tags/{resource_type}/{resource_id}/", response_model=m.TagsOut, tags=["tags"])
def tags_add(
    request: Request,
    user: CurrentUser,
    resource_type: TaggableType,
    resource_id: ItemId,
    body: m.TagsIn,
) -> dict:
    """Add tags (existing ones stay)."""
    return storage_of(request).add_tags(user, resource_type, resource_id, body.tags)


@router.post(
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


@router.get(
    "/api/v1/sharing/{resource_type}/{resource_id}/", response_model=m.SharingOut, tags=["sharing"]
)
def sharing_get(
    request: Request, user: CurrentUser, resource_type: TaggableType, resource_id: ItemId
) -> dict:
    """Whom a resource is shared with."""
    return storage_of(request).get_sharing(user, resource_type, resource_id)


@router.post(
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


@router.post(
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
