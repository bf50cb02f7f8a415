"""The test hooks' state and middleware: request counters, latency and injected faults.

Only built with ``--test-hooks``. :class:`TestHooksMiddleware` sits outside every other middleware,
so that it counts, delays and faults every request (except the hook routes themselves) before any
other work is done for it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from orionfs.server.middleware import send_detail

logger = logging.getLogger(__name__)

HOOK_PREFIX = "/api/v1/_test/"


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
    """Shared state of the test hooks: counters, latency, faults and storage stalls (thread-safe)."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_endpoint: Counter[str] = Counter()
        self.total = 0
        self.latency_ms = 0.0
        self.faults: list[Fault] = []
        self.storage_stalls: dict[str, list[float]] = {}

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
        """Remove every fault and storage stall."""
        with self._lock:
            self.faults.clear()
            self.storage_stalls.clear()

    def add_storage_stall(self, method: str, seconds: float, count: int) -> None:
        """Make the next ``count`` calls of storage method ``method`` block for ``seconds``."""
        with self._lock:
            self.storage_stalls.setdefault(method, []).extend([seconds] * count)

    def take_storage_stall(self, method: str) -> float:
        """The stall armed for this call of ``method`` (consumed), or 0."""
        with self._lock:
            pending = self.storage_stalls.get(method)
            return pending.pop(0) if pending else 0.0

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


class StallingStorage:
    """The storage as the app sees it with test hooks on: armed calls block first.

    A call of a method armed with :meth:`TestHooks.add_storage_stall` sleeps in the calling thread
    (``time.sleep``, as a slow disk or a busy database would) before it runs, so that tests can
    show that slow storage work never holds up the event loop.
    """

    def __init__(self, storage: Any, hooks: TestHooks) -> None:
        self._storage = storage
        self._hooks = hooks

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._storage, name)
        if name.startswith("_") or not callable(value):
            return value

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            seconds = self._hooks.take_storage_stall(name)
            if seconds:
                time.sleep(seconds)
            return value(*args, **kwargs)

        return call
