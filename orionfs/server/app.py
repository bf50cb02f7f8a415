"""The app factory of the local Orion server: routers, middleware and error handlers.

``create_app(data_dir)`` builds the app over a :class:`~orionfs.server.storage.Storage`, with the
routes of :mod:`orionfs.server.routes`. Every ``/api/`` route needs ``Authorization: Token <t>``
(checked by :class:`AuthMiddleware`) except token retrieval, which takes HTTP Basic. Errors are
``{"detail": ...}`` with the status codes of docs/wire.md; validation errors are 400, never 422.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from orionfs.server.middleware import AuthMiddleware, BodyLimitMiddleware
from orionfs.server.routes import accounts, collections, files, paths, sharing, testhooks
from orionfs.server.storage import (
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    Storage,
    StorageError,
    TooLarge,
)
from orionfs.server.testhooks import StallingStorage, TestHooks, TestHooksMiddleware
from orionfs.server.throttle import LoginThrottle

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1 << 20
DEFAULT_MAX_UPLOAD = 64 << 30

_STATUS = {BadInput: 400, Forbidden: 403, NotFound: 404, Conflict: 409, TooLarge: 413}
# In this order: the first route whose template matches a request serves it.
ROUTERS = (
    accounts.auth_router,
    accounts.router,
    paths.router,
    files.router,
    collections.router,
    sharing.router,
)


def _detail_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _storage_error(request: Request, exc: StorageError) -> Response:
    return _detail_response(_STATUS.get(type(exc), 400), str(exc))


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    return _detail_response(400, _validation_message(exc))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    return _detail_response(exc.status_code, str(exc.detail), exc.headers)


async def _bad_value(request: Request, exc: Exception) -> Response:
    return _detail_response(400, f"bad input: {exc}")


async def _disconnect(request: Request, exc: ClientDisconnect) -> Response:
    logger.info("client disconnected during %s %s", request.method, request.url.path)
    return _detail_response(400, "client disconnected")


async def _internal(request: Request, exc: Exception) -> Response:
    logger.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return _detail_response(500, "internal server error")


# Every error answer is {"detail": str}, with these statuses.
_ERROR_HANDLERS: tuple[tuple[type[Exception], Any], ...] = (
    (StorageError, _storage_error),
    (RequestValidationError, _validation_error),
    (StarletteHTTPException, _http_error),
    (UnicodeError, _bad_value),
    (OverflowError, _bad_value),
    (ClientDisconnect, _disconnect),
    (Exception, _internal),
)

_BAD_INPUT_RESPONSE = {
    "description": "Bad input",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}},
}


class OrionApp(FastAPI):
    """FastAPI with the server's pure ASGI middleware stacked outside Starlette's own."""

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        app = AuthMiddleware(app, self.state.storage)
        app = BodyLimitMiddleware(app, self.state.max_body, self.state.max_upload)
        if self.state.hooks is not None:
            app = TestHooksMiddleware(app, self.state.hooks, self.router.routes)
        return app

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document with 400 where it says 422 (this server answers 400 for those)."""
        if self.openapi_schema is None:
            document = super().openapi()
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None:
                        responses.setdefault("400", dict(_BAD_INPUT_RESPONSE))
            self.openapi_schema = document
        return self.openapi_schema


def create_app(
    data_dir: str | os.PathLike[str],
    test_hooks: bool = False,
    max_body: int = DEFAULT_MAX_BODY,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    storage: Storage | None = None,
    hooks_secret: str | None = None,
) -> FastAPI:
    """Build the server app over the data in ``data_dir`` (or over ``storage``, if given).

    ``test_hooks`` adds the ``/api/v1/_test/`` routes, which need ``hooks_secret`` (a new random
    one if None) in header ``X-Orion-Test-Hooks``, and the counting/fault middleware;
    ``max_body`` limits JSON bodies and ``max_upload`` upload bodies (413 beyond).
    """
    app = OrionApp(
        title="orionfs local Orion",
        version="1",
        description="An Orion-compatible REST server for orionfs (see docs/wire.md).",
    )
    storage = storage or Storage(data_dir)
    app.state.max_body = max_body
    app.state.max_upload = max_upload
    app.state.hooks = TestHooks() if test_hooks else None
    app.state.hooks_secret = hooks_secret or secrets.token_hex(20)
    app.state.login_throttle = LoginThrottle()
    app.state.storage = StallingStorage(storage, app.state.hooks) if test_hooks else storage
    # The routers' routes are added flat (not include_router, which nests them lazily in newer
    # FastAPI), so that app.routes lists every APIRoute with its path template.
    for router in (*ROUTERS, *([testhooks.router] if test_hooks else [])):
        app.router.routes.extend(router.routes)
    for exc_class, handler in _ERROR_HANDLERS:
        app.add_exception_handler(exc_class, handler)
    return app
