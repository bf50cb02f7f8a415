"""The test hooks (only with ``--test-hooks``): counters, latency, faults, stalls, test users.

Besides a token they need their own secret in header ``X-Orion-Test-Hooks`` (403 otherwise): it is
made at every start and written to the owner-only DATA_DIR/server.json, so that a token alone can
neither create users nor inject faults.
"""

from __future__ import annotations

import hmac
import random
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.responses import Response
from fastapi.security import APIKeyHeader

from orionfs.server import models as m
from orionfs.server.routes.deps import (
    ERRORS,
    current_user,
    storage_of,
)
from orionfs.server.storage import BadInput, Storage
from orionfs.server.testhooks import Fault, TestHooks

HOOKS_SECRET_HEADER = "X-Orion-Test-Hooks"

_secret_header = APIKeyHeader(
    name=HOOKS_SECRET_HEADER,
    auto_error=False,
    description="the test hooks' secret (`test_hooks_secret` in server.json)",
)


async def hooks_secret(
    request: Request, secret: Annotated[str | None, Security(_secret_header)]
) -> None:
    """Refuse (403) a hook request without the server's test-hooks secret."""
    expected: str = request.app.state.hooks_secret
    if not hmac.compare_digest((secret or "").encode(), expected.encode()):
        raise HTTPException(403, f"test hooks need the {HOOKS_SECRET_HEADER} secret")


router = APIRouter(
    prefix="/api/v1/_test",
    dependencies=[Depends(current_user), Depends(hooks_secret)],
    responses=ERRORS,
    tags=["test"],
)


def hooks_of(request: Request) -> TestHooks:
    """The app's test hooks."""
    return request.app.state.hooks


@router.get("/counters/", response_model=m.Counters)
def hook_counters(request: Request) -> dict:
    """Requests per endpoint ("METHOD /route/template/") since the last reset."""
    return hooks_of(request).counters()


@router.post("/counters/reset/", status_code=204)
def hook_counters_reset(request: Request) -> Response:
    """Zero the counters."""
    hooks_of(request).reset_counters()
    return Response(status_code=204)


@router.post("/latency/", status_code=204)
def hook_latency(request: Request, body: m.LatencyIn) -> Response:
    """Delay every later request by ``ms``."""
    hooks_of(request).set_latency(body.ms)
    return Response(status_code=204)


@router.post("/faults/", status_code=204)
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


@router.post("/storage-stall/", status_code=204)
def hook_storage_stall(request: Request, body: m.StorageStallIn) -> Response:
    """Make the next ``count`` calls of a storage method block their thread for ``seconds``."""
    if not callable(getattr(Storage, body.method, None)) or body.method.startswith("_"):
        raise BadInput(f"no storage method {body.method!r}")
    hooks_of(request).add_storage_stall(body.method, body.seconds, body.count)
    return Response(status_code=204)


@router.post("/users/", status_code=201, response_model=m.TestUserOut)
def hook_users(request: Request, body: m.TestUserIn) -> dict:
    """Create a user (joining ``project``, or in a new project of their own) and a token."""
    storage = storage_of(request)
    user, project = storage.create_user(
        body.username, body.password, body.project, body.cost_accounting
    )
    return {"user": user.to_dict(), "token": storage.issue_token(user.id), "project": project}
