"""HTTP transport policy: declared retries, the connection pool, credentials, transport errors.

- :class:`OrionRetry` is a ``urllib3.util.Retry`` with per-status retry counts (``retry_dict``),
  per-status decorrelated-jitter backoff (``backoff_dict``), ``Retry-After`` honoured, and an overall
  deadline after which nothing is retried. Only idempotent methods are retried on a bad status or a
  read error (429 excepted: it means "not processed", so any method is re-sent); any method is
  retried when the connection could not be made (nothing was sent).
- :class:`OrionHTTPAdapter` mounts it with a pool of at least 16 connections and 1 MiB send blocks.
- :class:`TokenAuth` puts the token on each request (as requests' ``auth``, so a ``~/.netrc`` entry for
  the host can never replace it, and requests does not read that file on every call).
- :func:`transport_error` maps a requests/urllib3 transport failure to the orionfs exception;
  :func:`redact` makes headers safe to log.
- :class:`RetryingSession` is the plain ``requests.Session`` of ``get_session``: the same retries,
  and a timeout on every request.

The streamed request bodies are in ``orionfs.client.bodies``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from orionfs.client import wire
from orionfs.client.bodies import SEND_BLOCK_SIZE
from orionfs.client.config import (
    DEFAULT_BACKOFF,
    DEFAULT_CONNECT_RETRIES,
    DEFAULT_POOL_SIZE,
    DEFAULT_READ_RETRIES,
)
from orionfs.exceptions import OrionConnectionError, OrionError, OrionTimeout

logger = logging.getLogger(__name__)

#: The pool never has fewer connections than this (the mount runs many threads).
MIN_POOL_SIZE = 16
#: Statuses that mean the server did not process the request (the rate limiter answers before any
#: handler runs), so even a POST may be sent again: its body is rewound and re-sent.
RETRY_ANY_METHOD_STATUSES = frozenset({429})


class OrionRetry(Retry):
    """Per-status retry counts, per-status backoff with decorrelated jitter, and a deadline.

    ``status_retries`` maps status -> retries (statuses absent are never retried);
    ``backoff_dict`` maps status -> (base, cap) seconds, others use ``default_backoff``;
    ``retry_timeout`` is the number of seconds, counted from a request's first failure, after which
    no retry starts (a retry whose wait would end past it is not attempted either). A
    ``Retry-After`` header replaces the computed wait. Each retry's wait is decided in
    :meth:`increment` (so the deadline check sees it) and slept in :meth:`sleep`.
    """

    def __init__(
        self,
        *args: Any,
        status_retries: Mapping[int, int] | None = None,
        backoff_dict: Mapping[int, tuple[float, float]] | None = None,
        default_backoff: tuple[float, float] = DEFAULT_BACKOFF,
        retry_timeout: float | None = None,
        started: float | None = None,
        planned_sleep: float = 0.0,
        last_backoff: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.status_retries: dict[int, int] = dict(status_retries or {})
        self.backoff_dict: dict[int, tuple[float, float]] = dict(backoff_dict or {})
        self.default_backoff = default_backoff
        self.retry_timeout = retry_timeout
        self.started = started
        self.planned_sleep = planned_sleep
        self.last_backoff = last_backoff
        kwargs.setdefault("status_forcelist", frozenset(self.status_retries))
        kwargs.setdefault("raise_on_status", False)  # exhausted: hand back the response to map
        kwargs.setdefault("respect_retry_after_header", True)
        super().__init__(*args, **kwargs)

    def new(self, **kw: Any) -> OrionRetry:
        for name in ("status_retries", "backoff_dict", "default_backoff", "retry_timeout",
                     "started", "planned_sleep", "last_backoff"):  # fmt: skip
            kw.setdefault(name, getattr(self, name))
        return super().new(**kw)

    def _status_used(self, status: int) -> int:
        return sum(1 for h in self.history if h.status == status and h.error is None)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """Retry this answer? Listed statuses with retries left, for idempotent methods (and any
        method for statuses that mean the request was not processed, such as 429)."""
        if status_code not in RETRY_ANY_METHOD_STATUSES and not self._is_method_retryable(method):
            return False
        return self._status_used(status_code) < self.status_retries.get(status_code, 0)

    def _backoff(self, status: int | None) -> float:
        base, cap = (
            self.backoff_dict.get(status, self.default_backoff) if status else self.default_backoff
        )
        previous = self.last_backoff if self.last_backoff is not None else base
        return min(cap, random.uniform(base, max(base, previous * 3)))

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> OrionRetry:
        """Count one failure; raise MaxRetryError when its status's count or the deadline is spent."""
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        now = time.monotonic()
        started = self.started if self.started is not None else now
        status = response.status if (response is not None and error is None) else None
        reason: Exception = error or ResponseError(
            ResponseError.SPECIFIC_ERROR.format(status_code=status)
        )
        if status is not None and new._status_used(status) > self.status_retries.get(status, 0):
            raise MaxRetryError(_pool, url, reason)
        retry_after = None
        if response is not None and self.respect_retry_after_header:
            retry_after = self.get_retry_after(response)
        delay = retry_after if retry_after is not None else self._backoff(status)
        if self.retry_timeout is not None and (now + delay) - started > self.retry_timeout:
            logger.debug("retry deadline of %ss reached for %s", self.retry_timeout, url)
            raise MaxRetryError(_pool, url, reason)
        new.started = started
        new.planned_sleep = delay
        new.last_backoff = delay if retry_after is None else self.last_backoff
        logger.debug("retrying %s %s after %s (wait %.3fs)", method, url, status or error, delay)
        return new

    def sleep(self, response: Any = None) -> None:
        """Wait the delay :meth:`increment` decided (``Retry-After`` or backoff)."""
        if self.planned_sleep > 0:
            time.sleep(self.planned_sleep)


def build_retry(
    retry_dict: Mapping[int, int],
    backoff_dict: Mapping[int, tuple[float, float]] | None,
    retry_timeout: float | None,
    allow_post: bool = False,
) -> OrionRetry:
    """The Retry policy of a session; ``allow_post`` for endpoints the server makes idempotent."""
    methods = set(Retry.DEFAULT_ALLOWED_METHODS)
    if allow_post:
        methods.add("POST")
    return OrionRetry(
        total=None,
        connect=DEFAULT_CONNECT_RETRIES,
        read=DEFAULT_READ_RETRIES,
        status=None,
        other=0,
        redirect=0,
        raise_on_redirect=False,
        allowed_methods=frozenset(methods),
        status_retries=retry_dict,
        backoff_dict=backoff_dict,
        retry_timeout=retry_timeout,
    )


def build_no_retry() -> Retry:
    """The policy of a streamed request (wire "Streamed uploads"): never sent again, whatever
    happens (its chunks are gone once sent); a bad status is handed back to be mapped."""
    return Retry(total=0, read=False, redirect=0, raise_on_redirect=False, raise_on_status=False)


class OrionHTTPAdapter(HTTPAdapter):
    """An HTTPAdapter with a large pool and 1 MiB send blocks (uploads at loopback speed)."""

    def __init__(self, max_retries: Retry, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        size = max(MIN_POOL_SIZE, pool_size)
        super().__init__(pool_connections=4, pool_maxsize=size, max_retries=max_retries)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        pool_kwargs.setdefault("blocksize", SEND_BLOCK_SIZE)
        super().init_poolmanager(*args, **pool_kwargs)


class TokenAuth(AuthBase):
    """Sends ``Authorization: <wire.auth_header_value(token)>`` on a request."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[wire.AUTH_HEADER] = wire.auth_header_value(self.token)
        return request


def transport_error(exc: BaseException) -> OrionError:
    """The orionfs exception for a requests/urllib3 transport failure (by exception class).

    Follows the chain of causes: a timeout anywhere in it is OrionTimeout, anything else
    OrionConnectionError (a refused connection is a NewConnectionError, which urllib3 makes a
    subclass of its ConnectTimeoutError, so it is tested first).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            break
        if isinstance(current, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError):
            return OrionTimeout(f"request timed out: {exc}")
        if isinstance(current, urllib3.exceptions.MaxRetryError):
            current = current.reason
            continue
        nxt = (
            current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        )
        current = nxt or current.__cause__ or current.__context__
    return OrionConnectionError(f"cannot reach the server: {exc}")


_REDACTED = "<redacted>"
_SECRET_HEADERS = frozenset(
    {wire.AUTH_HEADER.lower(), "cookie", "set-cookie", "proxy-authorization"}
)


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with credential values replaced, safe to log."""
    return {k: (_REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


class RetryingSession(requests.Session):
    """A plain ``requests.Session`` with declared retries and a timeout on every request.

    ``retry_dict`` (status -> retries), ``backoff_dict`` (status -> (base, cap) seconds) and
    ``retry_timeout`` (the overall retry deadline) make one :class:`OrionRetry`, mounted for
    ``http://`` and ``https://``. A request without an explicit ``timeout`` gets
    ``request_timeout``. Answers are returned whatever their status, as by requests (after the
    retries for a bad status ran out, the last answer); ``log_failed_headers`` logs the (redacted)
    headers of a failed request.
    """

    def __init__(
        self,
        retry_dict: Mapping[int, int],
        request_timeout: float,
        retry_timeout: float | None,
        backoff_dict: Mapping[int, tuple[float, float]] | None = None,
        log_failed_headers: bool = False,
    ) -> None:
        super().__init__()
        self.request_timeout = request_timeout
        self.log_failed_headers = log_failed_headers
        adapter = OrionHTTPAdapter(build_retry(retry_dict, backoff_dict, retry_timeout))
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send with ``request_timeout`` unless the caller gave a timeout (every request, redirects
        included, goes through here)."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.request_timeout
        try:
            response = super().send(request, **kwargs)
        except requests.exceptions.RequestException:
            if self.log_failed_headers:
                logger.warning(
                    "%s %s failed; request headers: %s",
                    request.method, request.url, redact(request.headers),
                )  # fmt: skip
            raise
        if self.log_failed_headers and response.status_code >= 400:
            logger.warning(
                "%s %s -> %s; request headers: %s; response headers: %s",
                request.method, request.url, response.status_code,
                redact(request.headers), redact(response.headers),
            )  # fmt: skip
        return response
