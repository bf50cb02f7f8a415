"""What every route module shares: the caller, the storage, parameter types and paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.security import APIKeyHeader

from orionfs.server import models as m
from orionfs.server.middleware import USER_SCOPE_KEY
from orionfs.server.storage import MAX_ID, Storage, User

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.Detail} for code in (400, 401, 403, 404, 409, 413)
}

ItemId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
TaggableType = Literal["file", "dataset", "shard_collection"]
OrionPath = Annotated[str, Query(pattern=r"^/(?:[^/]+(?:/[^/]+)*)?$", description="absolute path")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]

_token_header = APIKeyHeader(
    name="Authorization", auto_error=False, description="`Token <token>` or `Token:<token>`"
)


async def current_user(request: Request, _: Annotated[str | None, Security(_token_header)]) -> User:
    """The user the auth middleware found for this request's token.

    ``async`` because it only reads the request scope: no need for a worker thread.
    """
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


def split_list(value: str | None) -> list[str]:
    """The items of a comma-separated query value (none for None or empty)."""
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


def list_page(request: Request, user: User, kind: str, query: ResourceListParams) -> dict:
    """One page of the resources of ``kind`` the caller can read."""
    total, results = storage_of(request).list_resources(
        user,
        kind,
        name=query.name,
        project=query.project,
        tags=split_list(query.tags),
        deleted=query.deleted,
        limit=query.limit,
        offset=query.offset,
    )
    return page(request, total, results, query.limit, query.offset)
