"""The storage layer's exceptions; the app maps each to one HTTP status.

::

    StorageError          ``str(exc)`` is the API's ``detail``
    ├── BadInput          400: malformed name, path or value
    ├── Forbidden         403: the caller can see the thing but may not change it
    ├── NotFound          404: no such thing, or the caller may not know it exists
    ├── Conflict          409: exists already, or a folder is not empty
    └── TooLarge          413: more input than the server holds (an upload form's fields)
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of the storage errors; ``str(exc)`` is the message for the API's ``detail``."""


class BadInput(StorageError):
    """The input is malformed (bad name, bad path, bad value): HTTP 400."""


class Forbidden(StorageError):
    """The caller can see the thing but may not change it: HTTP 403."""


class NotFound(StorageError):
    """No such thing, or the caller may not know it exists: HTTP 404."""


class Conflict(StorageError):
    """The thing exists already, or a folder is not empty: HTTP 409."""


class TooLarge(StorageError):
    """More input than the server takes, such as too many or too large form fields: HTTP 413."""
