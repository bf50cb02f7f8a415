"""HTTP transport policy for OrionSession: declared retries, the connection pool, streamed bodies.

- :class:`OrionRetry` is a ``urllib3.util.Retry`` with per-status retry counts (``retry_dict``),
  per-status decorrelated-jitter backoff (``backoff_dict``), ``Retry-After`` honoured, and an overall
  deadline after which nothing is retried. Only idempotent methods are retried on a bad status or a
  read error (429 excepted: it means "not processed", so any method is re-sent); any method is
  retried when the connection could not be made (nothing was sent).
- :class:`OrionHTTPAdapter` mounts it with a pool of at least 16 connections and 1 MiB send blocks.
- :class:`TokenAuth` puts the token on each request (as requests' ``auth``, so a ``~/.netrc`` entry for
  the host can never replace it, and requests does not read that file on every call).
- :func:`transport_error` maps a requests/urllib3 transport failure to the orionfs exception.
- :class:`StreamingBody` is a sized, rewindable, file-like request body over a chunk generator;
  :func:`multipart_body` and :func:`raw_body` build one, so uploads are never held in memory.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import stat
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from orionfs.client import wire
from orionfs.client.config import (
    DEFAULT_BACKOFF,
    DEFAULT_CONNECT_RETRIES,
    DEFAULT_POOL_SIZE,
    DEFAULT_READ_RETRIES,
)
from orionfs.exceptions import OrionConnectionError, OrionError, OrionTimeout, ValidationError

logger = logging.getLogger(__name__)

#: Bytes per send() of a request body and per read of an upload's source file.
SEND_BLOCK_SIZE = 1 << 20
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


class StreamingBody(io.RawIOBase):
    """A sized, rewindable request body whose bytes come from a generator made on demand.

    requests sends ``Content-Length: len(body)`` and urllib3 reads it in blocks; on a retry urllib3
    rewinds it with ``seek(0)``, which starts a fresh generator (the source files are seeked back by
    the generator itself). Raises OSError from ``seek`` when the source cannot be rewound.
    """

    def __init__(self, make_chunks: Callable[[], Iterator[bytes]], length: int, content_type: str):
        super().__init__()
        self._make_chunks = make_chunks
        self._length = length
        self.content_type = content_type
        self._chunks: Iterator[bytes] | None = None
        self._pending = memoryview(b"")
        self._pos = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR and offset == 0:
            return self._pos
        if whence == os.SEEK_END and offset == 0:
            # Only for length probes; reading after this starts over from the beginning.
            return self._length
        if whence != os.SEEK_SET or offset != 0:
            raise OSError("a streaming body can only be rewound to its start")
        self._chunks = None
        self._pending = memoryview(b"")
        self._pos = 0
        return 0

    def read(self, size: int | None = -1) -> bytes | memoryview:  # type: ignore[override]
        if size is None or size < 0:
            parts = []
            while chunk := self.read(SEND_BLOCK_SIZE):
                parts.append(bytes(chunk))
            return b"".join(parts)
        if self._chunks is None:
            self._chunks = self._make_chunks()
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = memoryview(chunk)
        out = self._pending[:size]
        self._pending = self._pending[size:]
        self._pos += len(out)
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


FileSpec = (
    Any  # fileobj | bytes | (filename, fileobj_or_bytes) | (filename, fileobj_or_bytes, size)
)


def _source_size(fileobj: IO[bytes], size: int | None) -> tuple[int, int | None]:
    """(bytes to send, start offset or None when the source cannot seek).

    Raises ValidationError when the size cannot be known.
    """
    start: int | None = None
    try:
        if fileobj.seekable():
            start = fileobj.tell()
    except (AttributeError, OSError, ValueError):
        start = None
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValidationError(f"size must be a non-negative integer, not {size!r}")
        return size, start
    try:
        info = os.fstat(fileobj.fileno())
        if stat.S_ISREG(info.st_mode):  # a pipe or socket reports 0, not its length
            return info.st_size - (start or 0), start
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    if start is not None:
        end = fileobj.seek(0, os.SEEK_END)
        fileobj.seek(start)
        return end - start, start
    raise ValidationError("size is required for a source that cannot seek")


def _as_fileobj(source: Any) -> IO[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    if not hasattr(source, "read"):
        raise ValidationError(f"not a binary file object or bytes: {type(source).__name__}")
    return source


def _file_chunks(fileobj: IO[bytes], start: int | None, size: int) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``fileobj`` from ``start``; raises ValidationError if it is short."""
    if start is not None:
        fileobj.seek(start)
    remaining = size
    while remaining > 0:
        chunk = fileobj.read(min(SEND_BLOCK_SIZE, remaining))
        if not chunk:
            raise ValidationError(f"the source ended {remaining} bytes before its size of {size}")
        remaining -= len(chunk)
        yield chunk


def raw_body(source: Any, size: int | None = None) -> StreamingBody:
    """A streamed ``application/octet-stream`` body of ``size`` bytes (default: to the end)."""
    fileobj = _as_fileobj(source)
    length, start = _source_size(fileobj, size)
    if start is None:
        used = False

        def once() -> Iterator[bytes]:
            nonlocal used
            if used:
                raise OSError("the upload source cannot seek, so it cannot be sent again")
            used = True
            return _file_chunks(fileobj, None, length)

        return StreamingBody(once, length, wire.OCTET_STREAM)
    return StreamingBody(lambda: _file_chunks(fileobj, start, length), length, wire.OCTET_STREAM)


def _form_value(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return (wire.TRUE if value else wire.FALSE).encode()
    if name in wire.JSON_FORM_FIELDS or isinstance(value, list | tuple | dict):
        return json.dumps(value).encode()
    return str(value).encode()


def _quote_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def multipart_body(fields: Mapping[str, Any], files: Mapping[str, FileSpec]) -> StreamingBody:
    """A streamed ``multipart/form-data`` body: form ``fields`` then the file parts.

    Each ``files`` value is a binary file object, bytes, ``(filename, source)`` or
    ``(filename, source, size)``. The Content-Length is computed up front; file parts are read in
    1 MiB blocks while sending. Raises ValidationError for a source of unknown size.
    """
    boundary = f"orionfs-{uuid.uuid4().hex}"
    crlf = b"\r\n"
    pieces: list[bytes | tuple[IO[bytes], int | None, int]] = []
    for name, value in fields.items():
        if value is None:
            continue
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_header(name)}"\r\n\r\n'
        ).encode()
        pieces.append(head + _form_value(value, name) + crlf)
    for name, spec in files.items():
        filename, source, size = name, spec, None
        if isinstance(spec, Sequence) and not isinstance(spec, bytes | bytearray | str):
            filename, source, *rest = spec
            size = rest[0] if rest else None
        fileobj = _as_fileobj(source)
        length, start = _source_size(fileobj, size)
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_header(name)}"; '
            f'filename="{_quote_header(str(filename))}"\r\n'
            f"{wire.H_CONTENT_TYPE}: {wire.OCTET_STREAM}\r\n\r\n"
        ).encode()
        pieces.append(head)
        pieces.append((fileobj, start, length))
        pieces.append(crlf)
    pieces.append(f"--{boundary}--\r\n".encode())
    total = sum(p[2] if isinstance(p, tuple) else len(p) for p in pieces)
    sent_once = False

    def chunks() -> Iterator[bytes]:
        nonlocal sent_once
        if sent_once and any(isinstance(p, tuple) and p[1] is None for p in pieces):
            raise OSError("an upload source cannot seek, so the body cannot be sent again")
        sent_once = True
        for piece in pieces:
            if isinstance(piece, tuple):
                yield from _file_chunks(*piece)
            else:
                yield piece

    return StreamingBody(chunks, total, f"multipart/form-data; boundary={boundary}")
