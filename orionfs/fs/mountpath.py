"""Mount paths: ``/``-rooted strings of display names, relative to the mount root (no I/O)."""

from __future__ import annotations

from orionfs.exceptions import NotFoundResponse, ValidationError
from orionfs.fs.names import orion_name


def normalize(path: str) -> str:
    """A mount path as ``/a/b`` (no empty segments, no trailing slash).

    Raises ValidationError for a relative path.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValidationError(f"not an absolute mount path: {path!r}")
    if "//" not in path and not path.endswith("/"):
        return path  # already so (every path libfuse hands over)
    return "/" + "/".join(part for part in path.split("/") if part)


def split(path: str) -> tuple[str, str]:
    """``/a/b`` -> (``/a``, ``b``); ``/x`` -> (``/``, ``x``)."""
    parent, _, name = path.rpartition("/")
    return parent or "/", name


def child(parent: str, name: str) -> str:
    """The path of ``name`` in the folder ``parent``."""
    return "/" + name if parent == "/" else f"{parent}/{name}"


def under(key: str, path: str) -> bool:
    """Whether mount path ``key`` is ``path`` or below it."""
    return path == "/" or key == path or key.startswith(path + "/")


def is_utf8(name: str) -> bool:
    """Whether a name can be sent at all: the kernel hands undecodable bytes over as surrogates."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def new_name(display: str) -> str:
    """The Orion name for a new entry typed as ``display``.

    Raises ValidationError, before any request, for a name Orion cannot hold (docs/wire.md: empty,
    ``.``/``..``, a NUL, or not UTF-8).
    """
    if display in ("", ".", "..") or "\0" in display or not is_utf8(display):
        raise ValidationError(f"not a valid Orion name: {display!r}")
    return orion_name(display)


def not_found(path: str) -> NotFoundResponse:
    """The answer for a mount path with no entry."""
    return NotFoundResponse(custom_error_msg=f"{path}: no such entry", status_code=404)
