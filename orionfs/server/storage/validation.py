"""Validation of the names, tags and paths the API takes; each check raises BadInput."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from orionfs.server.storage.errors import BadInput

MAX_ID = 2**63 - 1
MAX_NAME_BYTES = 255
MAX_TAG_CHARS = 128
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def check_text(value: str, what: str) -> str:
    """Return ``value`` if it is encodable UTF-8 without NUL; raise :class:`BadInput` otherwise."""
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadInput(f"{what} is not valid UTF-8") from exc
    if "\x00" in value:
        raise BadInput(f"{what} contains NUL")
    return value


def check_name(name: str) -> str:
    """Validate an item name; raise BadInput.

    A name is 1..255 bytes of UTF-8, not . or .., without / and without control characters
    (U+0000..U+001F, U+007F).
    """
    check_text(name, "name")
    if name in ("", ".", ".."):
        raise BadInput(f"invalid name {name!r}")
    if control := _CONTROL.search(name):
        raise BadInput(f"name contains a control character (U+{ord(control.group()):04X})")
    if "/" in name:
        raise BadInput("name contains '/'")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise BadInput(f"name longer than {MAX_NAME_BYTES} bytes")
    return name


def check_tag(tag: str) -> str:
    """Validate a tag (1..128 characters, no newline, no NUL); raise BadInput."""
    check_text(tag, "tag")
    if not 1 <= len(tag) <= MAX_TAG_CHARS or "\n" in tag or "\r" in tag:
        raise BadInput(f"invalid tag {tag!r}")
    return tag


def parse_path(path: str) -> list[str]:
    """Split an absolute Orion path into validated segments; raise BadInput for a malformed one."""
    check_text(path, "path")
    if not path.startswith("/"):
        raise BadInput("path must be absolute")
    if path == "/":
        return []
    if path.endswith("/"):
        raise BadInput("path must not end with '/'")
    segments = path[1:].split("/")
    for segment in segments:
        try:
            check_name(segment)
        except BadInput as exc:
            raise BadInput(f"bad path segment: {exc}") from exc
    return segments


def parse_timestamp(value: str, what: str) -> str:
    """An ISO 8601 time with a zone (``Z`` or ``+HH:MM``) as the server stores times.

    That is UTC with microseconds and ``Z`` (``2001-02-03T04:05:06.123456Z``); finer fractions are
    cut to microseconds. Raises BadInput for anything else, a time without a zone included.
    """
    check_text(value, what)
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise BadInput(f"{what} needs a time zone (Z or +HH:MM): {value!r}")
        utc = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError) as exc:
        raise BadInput(f"{what} is not an ISO 8601 time: {value!r}") from exc
    return utc.isoformat(timespec="microseconds") + "Z"
