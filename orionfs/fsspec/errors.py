"""Orion's errors as the builtin OSErrors that fsspec's callers (pandas, Dask, ...) catch.

One table, applied at this package's boundary only (:func:`orion_errors`), by exception class and
status code, never by message text. The Orion exception is chained (``raise ... from exc``), so its
``.response`` stays reachable, and its message (status, request and the server's ``detail``) is the
OSError's ``strerror``:

============================================  ==========================================
Orion                                          raised here
============================================  ==========================================
NotFoundResponse (404)                         FileNotFoundError (ENOENT)
AuthorizationRequired (403), InvalidCredentials PermissionError (EACCES)
BadResponse 409                                ``conflict``: FileExistsError unless told
BadResponse 400                                ``invalid``: OSError EINVAL unless told
BadResponse 413                                OSError (EFBIG)
OrionTimeout, OrionConnectionError             unchanged (already TimeoutError, ConnectionError)
ValidationError                                unchanged (a ValueError: bad input)
anything else                                  OSError (EIO)
============================================  ==========================================
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from orionfs.exceptions import (
    AuthorizationRequired,
    BadResponse,
    InvalidCredentials,
    NotFoundResponse,
    OrionError,
)

__all__ = ["ErrorFactory", "not_empty", "orion_errors", "refuse", "translate"]

#: Makes the OSError for an answer: ``(message, path) -> OSError``.
ErrorFactory = Callable[[str, str], OSError]


def refuse(kind: type[OSError], code: int) -> ErrorFactory:
    """A factory for ``kind(code, message, path)``."""

    def make(message: str, path: str) -> OSError:
        return kind(code, message, path)

    return make


not_empty = refuse(OSError, errno.ENOTEMPTY)
_EXISTS = refuse(FileExistsError, errno.EEXIST)
_INVALID = refuse(OSError, errno.EINVAL)


def translate(
    exc: OrionError,
    path: str,
    conflict: ErrorFactory | None = None,
    invalid: ErrorFactory | None = None,
) -> BaseException:
    """The exception to raise for ``exc`` about ``path`` (see the module's table).

    ``conflict`` / ``invalid`` make the error of a 409 / 400 where the operation gives them a
    meaning of their own (a non-empty folder, a path that is not a folder).
    """
    message = str(exc) or type(exc).__name__
    if isinstance(exc, NotFoundResponse):
        return FileNotFoundError(errno.ENOENT, message, path)
    if isinstance(exc, AuthorizationRequired | InvalidCredentials):
        return PermissionError(errno.EACCES, message, path)
    if isinstance(exc, OSError | ValueError):
        return exc  # OrionTimeout, OrionConnectionError, ValidationError: already builtin kinds
    if isinstance(exc, BadResponse):
        if exc.status_code == 409:
            return (conflict or _EXISTS)(message, path)
        if exc.status_code == 400:
            return (invalid or _INVALID)(message, path)
        if exc.status_code == 413:
            return OSError(errno.EFBIG, message, path)
    return OSError(errno.EIO, message, path)


@contextmanager
def orion_errors(
    path: str,
    conflict: ErrorFactory | None = None,
    invalid: ErrorFactory | None = None,
) -> Iterator[None]:
    """Run the block, raising any OrionError from it as :func:`translate` says (chained)."""
    try:
        yield
    except OrionError as exc:
        error = translate(exc, path, conflict, invalid)
        if error is exc:
            raise
        raise error from exc
