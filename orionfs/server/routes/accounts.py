"""Token retrieval, API versions, users, projects and the balance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from orionfs.server import models as m
from orionfs.server.routes.deps import (
    ERRORS,
    CurrentUser,
    ItemId,
    Limit,
    Offset,
    current_user,
    page,
    storage_of,
)
from orionfs.server.throttle import LoginThrottle

VERSIONS = {"storage": "v3", "datasets": "v1", "projects": "v1", "users": "v1"}

_basic = HTTPBasic(auto_error=False)

auth_router = APIRouter(tags=["auth"], responses=ERRORS)
router = APIRouter(dependencies=[Depends(current_user)], responses=ERRORS)


@auth_router.post(
    "/api/v1/auth/token/",
    response_model=m.Token,
    responses={429: {"model": m.Detail, "description": "Too many failed logins"}},
)
def retrieve_token(
    request: Request, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]
) -> dict:
    """Exchange HTTP Basic username:password for a new token.

    429 with ``Retry-After`` after too many failed logins for the username or the client address.
    """
    storage = storage_of(request)
    user = None
    if credentials is not None:
        throttle: LoginThrottle = request.app.state.login_throttle
        keys = [("user", credentials.username), ("address", _client_address(request))]
        wait = throttle.retry_after(keys)
        if wait is not None:
            raise HTTPException(
                429, "too many failed logins; try again later", headers={"Retry-After": str(wait)}
            )
        user = storage.check_password(credentials.username, credentials.password)
        if user is None:
            throttle.failed(keys)
        else:
            throttle.succeeded(keys[0])
    if user is None:
        raise HTTPException(401, "bad username or password", headers={"WWW-Authenticate": "Basic"})
    return {"token": storage.issue_token(user.id)}


def _client_address(request: Request) -> str:
    return request.client.host if request.client else ""


@router.get("/api/versions/", response_model=m.Versions, tags=["meta"])
def versions() -> dict:
    """API versions per resource group."""
    return {"versions": VERSIONS}


@router.get("/api/v1/users/me/", response_model=m.UserOut, tags=["users"])
def users_me(user: CurrentUser) -> dict:
    """The caller."""
    return user.to_dict()


@router.get("/api/v1/users/{user_id}/", response_model=m.UserOut, tags=["users"])
def users_get(request: Request, user: CurrentUser, user_id: ItemId) -> dict:
    """A user: the caller or a fellow project member (404 otherwise)."""
    return storage_of(request).get_user(user, user_id)


@router.get("/api/v1/projects/", response_model=m.Page[m.ProjectOut], tags=["projects"])
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


@router.get("/api/v1/projects/{project_id}/", response_model=m.ProjectOut, tags=["projects"])
def projects_get(request: Request, user: CurrentUser, project_id: ItemId) -> dict:
    """One of the caller's projects."""
    return storage_of(request).get_project(user, project_id)


@router.post("/api/v1/projects/{project_id}/leave/", status_code=204, tags=["projects"])
def projects_leave(
    request: Request, user: CurrentUser, project_id: ItemId, body: m.LeaveIn
) -> Response:
    """Leave a project (its owner names a new owner)."""
    storage_of(request).leave_project(user, project_id, body.new_owner_id)
    return Response(status_code=204)


@router.get("/api/v1/billing/balance/", response_model=m.Balance, tags=["billing"])
def balance(request: Request, user: CurrentUser) -> dict:
    """The caller's balance (400 without the cost-accounting capability)."""
    return {"balance": storage_of(request).balance(user), "currency": "USD"}
