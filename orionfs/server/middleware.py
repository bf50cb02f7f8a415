"""Pure ASGI middleware of the server: token auth, body size limits and the test hooks.

Pure ASGI (not ``BaseHTTPMiddleware``) so that request and response bodies stream through
untouched. The app stacks them, outermost first: test hooks -> body limit -> auth -> FastAPI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orionfs.server.storage import Storage

logger = logging.getLogger(__name__)

TOKEN_PATH = "/api/v1/auth/token/"
HOOK_PREFIX = "/api/v1/_test/"
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


class AuthMiddleware:
    """Require ``Authorization: Token <t>`` on every ``/api/`` route but token retrieval (401)."""

    def __init__(self, app: ASGIApp, storage: Storage) -> None:
        self.app = app
        self.storage = storage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            if scope["path"] != TOKEN_PATH:
                header = _header(scope, b"authorization") or ""
                scheme, _, token = header.partition(" ")
                user = None
                if scheme.lower() == "token" and token.strip():
                    user = self.storage.authenticate(token.strip())
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


@dataclass
class Fault:
    """One injected fault: a status, a dropped connection or a stall, for some requests."""

    status: int | None = None
    drop: bool = False
    stall: float | None = None
    remaining: int | None = None
    fraction: float | None = None
    path_prefix: str | None = None
    retry_after: int | None = None
    method: str | None = None
    rng: random.Random = field(default_factory=random.Random)

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request (consumes one of ``remaining``)."""
        if self.path_prefix and not path.startswith(self.path_prefix):
            return False
        if self.method and self.method.upper() != method:
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True
        if self.fraction is not None:
            return self.rng.random() < self.fraction
        return True


class TestHooks:
    """Shared state of the test hooks: counters, latency and faults (thread-safe)."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_endpoint: Counter[str] = Counter()
        self.total = 0
        self.latency_ms = 0.0
        self.faults: list[Fault] = []

    def record(self, key: str) -> None:
        """Count one request to ``key`` ("METHOD /route/template/")."""
        with self._lock:
            self.total += 1
            self.by_endpoint[key] += 1

    def counters(self) -> dict[str, Any]:
        """``{"total", "by_endpoint"}``."""
        with self._lock:
            return {"total": self.total, "by_endpoint": dict(self.by_endpoint)}

    def reset_counters(self) -> None:
        """Zero all counters."""
        with self._lock:
            self.total = 0
            self.by_endpoint.clear()

    def set_latency(self, ms: float) -> None:
        """Delay every later request by ``ms`` milliseconds."""
        with self._lock:
            self.latency_ms = ms

    def add_fault(self, fault: Fault) -> None:
        """Add a fault (checked after the earlier ones)."""
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._lock:
            self.faults.clear()

    def pick_fault(self, method: str, path: str) -> Fault | None:
        """The first fault that applies to this request, if any."""
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    return fault
            self.faults = [f for f in self.faults if f.remaining is None or f.remaining > 0]
            return None


class TestHooksMiddleware:
    """Count, delay and fault every request except the hook routes themselves."""

    __test__ = False

    def __init__(self, app: ASGIApp, hooks: TestHooks, routes: list[BaseRoute]) -> None:
        self.app = app
        self.hooks = hooks
        self.routes = routes

    def _template(self, scope: Scope) -> str:
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", scope["path"])
            if match == Match.PARTIAL and partial is None:
                partial = getattr(route, "path", None)
        return partial or scope["path"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(HOOK_PREFIX):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        self.hooks.record(f"{method} {self._template(scope)}")
        if self.hooks.latency_ms:
            await asyncio.sleep(self.hooks.latency_ms / 1000)
        fault = self.hooks.pick_fault(method, scope["path"])
        if fault is not None:
            if fault.stall:
                await asyncio.sleep(fault.stall)
            if fault.drop:
                await self._drop(receive, send)
                return
            if fault.status:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                await send_detail(send, fault.status, "injected fault", headers)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _drop(receive: Receive, send: Send) -> None:
        """Close the connection without any response.

        ASGI has no "abort" message, so this reaches for the server's transport (uvicorn's
        ``RequestResponseCycle.transport``) and waits until the server has noticed the loss, so
        that it does not send a 500 of its own.
        """
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None:
            raise ConnectionAbortedError("injected dropped connection")
        transport.abort()
        try:
            async with asyncio.timeout(5):
                while (await receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            logger.warning("dropped connection not noticed by the server")
