"""The one errno table, applied once, at the FUSE boundary (``boundary``).

Every exception leaving a FUSE operation goes through ``errno_for``: the orionfs exception tree
(orionfs.exceptions) and HTTP statuses map to errnos here and nowhere else. Unexpected exceptions
are logged (a traceback at debug level) and become EIO.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import mfusepy

from orionfs import exceptions as exc

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# -- the errno table -------------------------------------------------------------------------------

#: Exception class -> errno, most specific first; the first isinstance match wins.
_ERRNO_BY_CLASS: tuple[tuple[type[BaseException], int], ...] = (
    (exc.FolderNotEmpty, errno.ENOTEMPTY),
    (exc.AlreadyExists, errno.EEXIST),
    (exc.NotAFolder, errno.ENOTDIR),
    (exc.IsAFolder, errno.EISDIR),
    (exc.NotTaggable, errno.ENOTSUP),
    (exc.UnknownHandle, errno.EBADF),
    (exc.NotWritable, errno.EACCES),
    (exc.ReadOnlyMount, errno.EROFS),
    (exc.InvalidMove, errno.EINVAL),
    (exc.NameTooLong, errno.ENAMETOOLONG),
    (exc.NotFoundResponse, errno.ENOENT),
    (exc.InvalidCredentials, errno.EACCES),
    (exc.AuthorizationRequired, errno.EACCES),
    (exc.RateLimitedResponse, errno.EAGAIN),
    (exc.OrionTimeout, errno.ETIMEDOUT),
    (exc.OrionConnectionError, errno.EIO),
    (exc.NotEnoughDiskError, errno.ENOSPC),
    (exc.OrionLinkError, errno.EINVAL),
    (exc.ValidationError, errno.EINVAL),
    (TimeoutError, errno.ETIMEDOUT),
    (ConnectionError, errno.EIO),
)

#: HTTP status (of a BadResponse and its subclasses) -> errno.
_ERRNO_BY_STATUS: dict[int, int] = {
    400: errno.EINVAL,
    401: errno.EACCES,
    403: errno.EACCES,
    404: errno.ENOENT,
    409: errno.EEXIST,
    413: errno.EFBIG,
    414: errno.ENAMETOOLONG,
    416: errno.EINVAL,
    429: errno.EAGAIN,
    503: errno.EAGAIN,
}


def errno_for(error: BaseException) -> int:
    """The errno the kernel gets for an exception raised below the FUSE layer.

    An ``OSError`` that carries an errno (a local file error, or one raised here) keeps it; the
    orionfs and cache exceptions map through the tables above; anything else is EIO.
    """
    for cls, code in _ERRNO_BY_CLASS:
        if isinstance(error, cls):
            return code
    if isinstance(error, exc.OrionError):
        status = error.status_code
        if status is not None and status in _ERRNO_BY_STATUS:
            return _ERRNO_BY_STATUS[status]
        return errno.EIO
    if isinstance(error, OSError) and isinstance(error.errno, int) and error.errno > 0:
        return error.errno
    return errno.EIO


def boundary(method: F) -> F:
    """Apply the errno table to everything a FUSE operation raises (once, here), and record the
    call in the operations object's ``calls`` (orionfs.fuse.calls.Calls)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        outer = self.calls.start(method.__name__)
        failed = True
        try:
            result = method(self, *args, **kwargs)
            failed = False
            return result
        except mfusepy.FuseOSError:
            raise
        except Exception as error:  # the boundary: everything becomes an errno
            code = errno_for(error)
            _log_failure(method.__name__, args, error, code)
            raise mfusepy.FuseOSError(code) from error
        finally:
            if outer:
                self.calls.end(failed)

    return wrapper  # type: ignore[return-value]


def _log_failure(operation: str, args: Iterable[Any], error: BaseException, code: int) -> None:
    """An unexpected exception at error level (traceback at debug), a server or network failure
    at warning level, an expected answer (ENOENT of a probe) at debug level, if enabled: the
    common case, an absent name, formats nothing."""
    unexpected = not isinstance(error, exc.OrionError | OSError)
    failure = code in (errno.EIO, errno.ETIMEDOUT, errno.EAGAIN)
    if not unexpected and not failure and not logger.isEnabledFor(logging.DEBUG):
        return
    where = f"{operation}{_describe_args(args)}"
    name = errno.errorcode.get(code, str(code))
    if unexpected:
        logger.error("unexpected error in %s: %r -> %s", where, error, name)
        logger.debug("traceback of the failed %s", where, exc_info=True)
    elif failure:
        logger.warning("%s failed: %s: %s -> %s", where, type(error).__name__, error, name)
    else:
        logger.debug("%s -> %s (%s)", where, name, error)


def _describe_args(args: Iterable[Any]) -> str:
    shown = [repr(a) if not isinstance(a, bytes) else f"<{len(a)} bytes>" for a in args]
    return "(" + ", ".join(shown)[:300] + ")"


def fail(code: int) -> mfusepy.FuseOSError:
    """The exception that answers ``code`` to the kernel."""
    return mfusepy.FuseOSError(code)
