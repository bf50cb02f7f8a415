"""Pure ASGI middleware of the server: token auth and body size limits.

Pure ASGI (not ``BaseHTTPMiddleware``) so that request and response bodies stream through
untouched. The app stacks them, outermost first: test hooks (testhooks.py) -> body limit -> auth ->
FastAPI.
"""

from __future__ import annotations

import json
import logging
import re

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orionfs.server.storage import Storage

logger = logging.getLogger(__name__)

TOKEN_PATH = "/api/v1/auth/token/"
USER_SCOPE_KEY = "orionfs.user"
UPLOAD_ROUTES = (
    ("POST", re.compile(r"^/api/v3/storage/files/$")),
    ("POST", re.compile(r"^/api/v1/datasets/$")),
    ("POST", re.compile(r"^/api/v1/storage/collections/[^/]+/shards/$")),
    ("PUT", re.compile(r"^/api/v3/storage/files/[^/]+/content/$")),
)
_DRAIN_LIMIT = 64 << 20


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def send_detail(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    """Send a complete JSON error response ``{"detail": ...}``."""
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# "Token <t>" (what orionfs sends), or the orionclient docs' "Token:<t>" / "Token: <t>".
_TOKEN_HEADER = re.compile(r"token(?: +|: ?)(\S+)\s*", re.IGNORECASE)


def token_of(header: str) -> str | None:
    """The token an ``Authorization`` header value carries, or None if it is of another form."""
    match = _TOKEN_HEADER.fullmatch(header)
    return match.group(1) if match else None


class AuthMiddleware:
    """Require a token (:func:`token_of`) on every ``/api/`` route but token retrieval (401)."""

    def __init__(self, app: ASGIApp, storage: Storage) -> None:
        self.app = app
        self.storage = storage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            if scope["path"] != TOKEN_PATH:
                token = token_of(_header(scope, b"authorization") or "")
                user = None
                if token is not None:
                    # A SQLite query: in a worker thread, never on the event loop.
                    user = await anyio.to_thread.run_sync(self.storage.authenticate, token)
                if user is None:
                    await send_detail(
                        send, 401, "invalid or missing token", {"WWW-Authenticate": "Token"}
                    )
                    return
                scope[USER_SCOPE_KEY] = user
        await self.app(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answer 413 for bodies over the limit (``max_upload`` for upload routes, else ``max_body``)."""

    def __init__(self, app: ASGIApp, max_body: int, max_upload: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    def _limit(self, scope: Scope) -> int:
        for method, pattern in UPLOAD_ROUTES:
            if scope["method"] == method and pattern.match(scope["path"]):
                return self.max_upload
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        length_text = _header(scope, b"content-length")
        if length_text is not None:
            if not length_text.strip().isdigit():
                await send_detail(send, 400, "bad Content-Length")
                return
            length = int(length_text)
            if length > limit:
                if length <= _DRAIN_LIMIT:  # read it so that the client sees the answer
                    while (await receive()).get("more_body"):
                        pass
                await send_detail(send, 413, f"request body larger than {limit} bytes")
                return
        received = 0
        state = {"started": False, "too_large": False}

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    state["too_large"] = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["too_large"] and not state["started"]:
                return  # the 413 below replaces whatever the app answers
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["too_large"]:
                raise
        # The app may have turned the overflow into an answer of its own (swallowed above).
        if state["too_large"] and not state["started"]:
            await send_detail(send, 413, f"request body larger than {limit} bytes")
