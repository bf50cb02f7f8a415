"""Every exception the orionfs client raises, in one tree.

```
OrionError                                  base; .response (requests.Response or None), .status_code
├── InvalidCredentials                      401, or no token configured
├── AuthorizationRequired (PermissionError) 403: visible but not allowed
├── NotFoundResponse (FileNotFoundError)    404: unknown id / path (or one the user may not see)
├── RateLimitedResponse                     429, after the retries for it ran out
├── BadResponse                             any other non-2xx (400, 409, 413, 416...): read .status_code
│   ├── OrionServiceError                   5xx, after the retries for it ran out
│   └── InvalidAPIVersion                   the server speaks other API versions than wire.API_VERSIONS
├── OrionConnectionError (ConnectionError)  refused, reset, dropped, DNS failure
├── OrionTimeout (TimeoutError)             connect or read timeout
├── ValidationError (ValueError)            bad input caught client-side, before any request
│   └── ProfileError                        profiles.ini missing, unreadable, unsafe, or lacks a profile
├── OrionLinkError (ValueError)             a link dict that does not reference a resource
├── NotEnoughDiskError (OSError)            not enough local disk space
├── DatasetDimensionsTooLargeError          a dataset too large to handle
└── MountRuleError                          the mount refuses an operation (no request was made)
    ├── FolderNotEmpty                      rmdir, or a rename over a folder, of a non-empty folder
    ├── AlreadyExists (FileExistsError)     mkdir / O_EXCL / RENAME_NOREPLACE of a taken name
    ├── NotAFolder (NotADirectoryError)     a folder was needed and this is not one
    ├── IsAFolder (IsADirectoryError)       a non-folder was needed and this is a folder
    ├── NotTaggable                         tags changed on a kind that has none
    ├── NotWritable (PermissionError)       a read-only kind or a virtual folder
    ├── ReadOnlyMount                       any write on a read-only mount
    ├── InvalidMove                         a folder moved into itself, or an exchange
    ├── NameTooLong                         a name segment over 255 bytes
    ├── UnknownHandle                       a file handle the open-file table does not know
    └── DataKeptForRecovery                 an open file whose data went to the recovery folder
```

Everything a layer raises is in this tree, and only the FUSE layer turns it into errnos.

The HTTP-status classes take ``(response, custom_error_msg=None)`` like orionclient's; the others take
``(message, response=None)``. Each keeps ``.response`` and ``.status_code`` (None when there was no
response). The client never classifies an error by its message text, only by status code or by the
class of the transport exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orionfs.client.wire import F_DETAIL

if TYPE_CHECKING:
    import requests

__all__ = [
    "AuthorizationRequired",
    "BadResponse",
    "DatasetDimensionsTooLargeError",
    "InvalidAPIVersion",
    "InvalidCredentials",
    "NotEnoughDiskError",
    "NotFoundResponse",
    "OrionConnectionError",
    "OrionError",
    "OrionLinkError",
    "OrionServiceError",
    "OrionTimeout",
    "ProfileError",
    "RateLimitedResponse",
    "ValidationError",
    "exception_for_status",
    "MountRuleError",
    "FolderNotEmpty",
    "AlreadyExists",
    "NotAFolder",
    "IsAFolder",
    "NotTaggable",
    "NotWritable",
    "ReadOnlyMount",
    "InvalidMove",
    "NameTooLong",
    "UnknownHandle",
    "DataKeptForRecovery",
]


class OrionError(Exception):
    """Base of every orionfs client error."""

    def __init__(
        self,
        message: str = "",
        response: requests.Response | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
        if status_code is None and response is not None:
            status_code = response.status_code
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


def _describe(response: requests.Response) -> str:
    """One line: status, method, URL path and the server's ``detail`` (no headers: no token)."""
    detail: Any = None
    try:
        body = response.json()
        if isinstance(body, dict):
            detail = body.get(F_DETAIL)
    except ValueError:
        detail = None
    if detail is None:
        detail = (response.text or "")[:200] if response.content is not None else ""
    request = response.request
    where = f"{request.method} {request.path_url}" if request is not None else response.url
    return f"{response.status_code} {response.reason or ''} for {where}: {detail}".strip()


class _ResponseError(OrionError):
    """An error made from an HTTP response: ``(response, custom_error_msg=None)``."""

    def __init__(
        self,
        response: requests.Response | None = None,
        custom_error_msg: str | None = None,
        status_code: int | None = None,
    ) -> None:
        if custom_error_msg is not None:
            message = custom_error_msg
        elif response is not None:
            message = _describe(response)
        else:
            message = type(self).__name__
        super().__init__(message, response=response, status_code=status_code)


class InvalidCredentials(_ResponseError):
    """401: the token is missing, unknown or expired (or HTTP Basic credentials were wrong)."""


class AuthorizationRequired(_ResponseError, PermissionError):
    """403: the user may see the thing but not do this to it."""


class NotFoundResponse(_ResponseError, FileNotFoundError):
    """404: no such id or path, or one the user may not know exists."""


class RateLimitedResponse(_ResponseError):
    """429: rate limited, and the retries for 429 (honouring ``Retry-After``) ran out."""


class BadResponse(_ResponseError):
    """Any other non-2xx answer (400 bad input, 409 conflict, 413, 416...); see ``.status_code``."""


class OrionServiceError(BadResponse):
    """5xx: the server failed, and the retries for that status ran out."""


class InvalidAPIVersion(BadResponse):
    """The server speaks API versions other than the ones this client was written for."""


class OrionConnectionError(OrionError, ConnectionError):
    """The server could not be reached or dropped the connection."""


class OrionTimeout(OrionError, TimeoutError):
    """Connecting to, or waiting for, the server took longer than the request timeout."""


class ValidationError(OrionError, ValueError):
    """Bad input, caught client-side before any request was sent."""


class ProfileError(ValidationError):
    """The profiles file is missing, unsafe (group/other readable) or lacks the profile asked for."""


class OrionLinkError(OrionError, ValueError):
    """A link dict that does not reference a resource."""


class NotEnoughDiskError(OrionError, OSError):
    """Not enough local disk space for the operation."""


class DatasetDimensionsTooLargeError(OrionError):
    """A dataset too large to handle."""


class MountRuleError(OrionError):
    """The mount refuses an operation by its own rules; no request was made for it."""


class FolderNotEmpty(MountRuleError):
    """rmdir, or a rename over a folder, found the folder not empty."""


class AlreadyExists(MountRuleError, FileExistsError):
    """mkdir, an exclusive create or a no-replace rename found the name taken."""


class NotAFolder(MountRuleError, NotADirectoryError):
    """A folder was needed (a parent, rmdir, a folder rename's target) and this is not one."""


class IsAFolder(MountRuleError, IsADirectoryError):
    """A non-folder was needed (unlink, open, a file rename's target) and this is a folder."""


class NotTaggable(MountRuleError):
    """Tags were changed on a kind that has none (folders, shards)."""


class NotWritable(MountRuleError, PermissionError):
    """A write to a read-only kind (datasets, shards, collections) or into a virtual folder."""


class ReadOnlyMount(MountRuleError):
    """Any write on a mount made with --read-only."""


class InvalidMove(MountRuleError):
    """A folder moved into itself, or a rename the mount does not do (RENAME_EXCHANGE)."""


class NameTooLong(MountRuleError):
    """A name segment over 255 bytes of UTF-8."""


class UnknownHandle(MountRuleError):
    """A file handle the open-file table does not know (already released, or never opened)."""


class DataKeptForRecovery(MountRuleError):
    """An open file whose staged data went to the recovery folder (its upload failed): its
    descriptors can neither read nor write it any more."""


_BY_STATUS: dict[int, type[_ResponseError]] = {
    401: InvalidCredentials,
    403: AuthorizationRequired,
    404: NotFoundResponse,
    429: RateLimitedResponse,
}


def exception_for_status(status_code: int) -> type[_ResponseError]:
    """The exception class for a non-2xx HTTP status code."""
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return OrionServiceError
    return BadResponse
