"""Extended attributes: Orion's tags, ids and links as ``user.orion.*`` names.

- ``user.orion.tags``: one tag a line; setting it replaces the set; ``user.orion.tag.<tag>``:
  present / set / removed alone (its value is ignored and reads as empty);
- ``user.orion.link`` (the JSON of ``create_link``), ``user.orion.id``, ``user.orion.type``,
  ``user.orion.systemtags``: read-only (EPERM on set or remove);
- unknown names: ENODATA on get, ENOTSUP on set; tag writes on untaggable kinds: ENOTSUP; values
  over 64 KiB: E2BIG; a new file not uploaded yet: type ``file``, empty tags and system tags,
  ENODATA for id and link (a tag write uploads it first).
Names outside ``user.orion.*`` never reach an operation (orionfs.fuse.binding answers them:
EOPNOTSUPP for ``security.*``, ``system.*``, ``trusted.*``; ENODATA on get of other ``user.*``
names), nor does ``user.orion.stats`` of the root (the mount's stats, orionfs.fuse.stats).
"""

from __future__ import annotations

import errno
import json

from orionfs.fs.entry import Entry
from orionfs.fs.namespace import Namespace
from orionfs.fuse.errors import fail

ENOATTR = getattr(errno, "ENOATTR", errno.ENODATA)
#: Largest xattr value accepted (the kernel's XATTR_SIZE_MAX).
XATTR_SIZE_MAX: int = 64 * 1024
XATTR_PREFIX = "user.orion."
XATTR_TAGS = "user.orion.tags"
XATTR_TAG_PREFIX = "user.orion.tag."
XATTR_LINK = "user.orion.link"
XATTR_ID = "user.orion.id"
XATTR_TYPE = "user.orion.type"
XATTR_SYSTEMTAGS = "user.orion.systemtags"
#: The mount's stats (orionfs.fuse.stats), on the mount root only; answered by the binding, not
#: listed.
XATTR_STATS = "user.orion.stats"
READ_ONLY_XATTRS = frozenset({XATTR_LINK, XATTR_ID, XATTR_TYPE, XATTR_SYSTEMTAGS})
XATTR_CREATE, XATTR_REPLACE = 1, 2


def _lines(values: tuple[str, ...]) -> bytes:
    return "\n".join(values).encode()


class Xattrs:
    """The xattr calls of the mount, over its Namespace."""

    def __init__(self, namespace: Namespace) -> None:
        self.namespace = namespace

    def _entry(self, path: str) -> Entry:
        if path == "/":
            return Entry.virtual("/")
        return self.namespace.entry(path)

    def names(self, path: str) -> list[str]:
        """The user.orion.* names that apply to the entry's kind (from the cached entry)."""
        entry = self._entry(path)
        names = [XATTR_TYPE]
        if entry.id is not None:
            names.append(XATTR_ID)
        if entry.is_taggable:
            names += [XATTR_TAGS, XATTR_SYSTEMTAGS]
            if entry.has_link:
                names.append(XATTR_LINK)
            names += [XATTR_TAG_PREFIX + tag for tag in entry.tags]
        elif entry.has_link:
            names.append(XATTR_LINK)
        return names

    def get(self, path: str, name: str) -> bytes:
        """The value of one user.orion.* attribute; ENODATA where the entry has none."""
        if not name.startswith(XATTR_PREFIX):
            raise fail(ENOATTR)
        entry = self._entry(path)
        if name == XATTR_TYPE:
            return entry.kind.encode()
        if name == XATTR_ID and entry.id is not None:
            return str(entry.id).encode()
        if name == XATTR_LINK and entry.has_link:
            return json.dumps(self.namespace.cache.link(entry), sort_keys=True).encode()
        if entry.is_taggable:
            if name == XATTR_TAGS:
                return _lines(entry.tags)
            if name == XATTR_SYSTEMTAGS:
                return _lines(entry.systemtags)
            if name.startswith(XATTR_TAG_PREFIX) and name[len(XATTR_TAG_PREFIX) :] in entry.tags:
                return b""
        raise fail(ENOATTR)

    def set(self, path: str, name: str, value: bytes, options: int) -> None:
        """Set the tag list, or one tag; EPERM for the read-only names, ENOTSUP for others."""
        if len(value) > XATTR_SIZE_MAX:
            raise fail(errno.E2BIG)
        if name in READ_ONLY_XATTRS:
            self._entry(path)
            raise fail(errno.EPERM)
        if name != XATTR_TAGS and not name.startswith(XATTR_TAG_PREFIX):
            raise fail(errno.ENOTSUP)
        entry = self.namespace.tagged_entry(path)
        if not entry.is_taggable:
            raise fail(errno.ENOTSUP)
        cache = self.namespace.cache
        if name == XATTR_TAGS:
            text = value.decode("utf-8", errors="strict")
            cache.set_tags(path, (t.strip() for t in text.splitlines() if t.strip()))
            return
        tag = name[len(XATTR_TAG_PREFIX) :]
        if not tag:
            raise fail(errno.EINVAL)
        present = tag in entry.tags
        if options & XATTR_CREATE and present:
            raise fail(errno.EEXIST)
        if options & XATTR_REPLACE and not present:
            raise fail(ENOATTR)
        cache.add_tag(path, tag)

    def remove(self, path: str, name: str) -> None:
        """Remove one tag (ENODATA if absent), or every tag (``user.orion.tags``)."""
        if name in READ_ONLY_XATTRS:
            self._entry(path)
            raise fail(errno.EPERM)
        if name != XATTR_TAGS and not name.startswith(XATTR_TAG_PREFIX):
            raise fail(ENOATTR)
        entry = self._entry(path)
        if not entry.is_taggable and entry.id is not None:
            raise fail(errno.ENOTSUP)
        if entry.id is None:  # a new file not uploaded yet has no tags
            if name == XATTR_TAGS and entry.is_file:
                return
            raise fail(errno.ENOTSUP if not entry.is_file else ENOATTR)
        if name == XATTR_TAGS:
            self.namespace.cache.set_tags(path, [])
            return
        tag = name[len(XATTR_TAG_PREFIX) :]
        if tag not in entry.tags:
            raise fail(ENOATTR)
        self.namespace.cache.remove_tag(path, tag)
