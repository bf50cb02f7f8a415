"""Tag changes through the cache: one add and/or one remove request, the Entry updated from the
server's answer (a mixin of CachedSession; no FUSE, no errnos)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from orionfs.exceptions import NotTaggable
from orionfs.fs.entry import Entry
from orionfs.fs.mountpath import normalize, split

if TYPE_CHECKING:
    from orionfs.fs.cache import CachedSession


class Tagging:
    """``set_tags``, ``add_tag`` and ``remove_tag`` of CachedSession."""

    def set_tags(self: CachedSession, path: str, tags: Iterable[str]) -> tuple[str, ...]:
        """Make the entry's tags exactly ``tags`` (one add and/or one remove request, or none).

        Returns the new tags. Raises NotTaggable for folders and shards, NotFoundResponse, and
        what the session raises (ValidationError / BadResponse for a bad tag).
        """
        path = normalize(path)
        entry = self._taggable(path)
        want = tuple(dict.fromkeys(tags))
        add = [t for t in want if t not in entry.tags]
        drop = [t for t in entry.tags if t not in want]
        return self._change_tags(path, entry, add, drop, want)

    def add_tag(self: CachedSession, path: str, tag: str) -> tuple[str, ...]:
        """Add one tag (no request if present); returns the new tags. Raises as set_tags."""
        path = normalize(path)
        entry = self._taggable(path)
        if tag in entry.tags:
            return entry.tags
        return self._change_tags(path, entry, [tag], [], (*entry.tags, tag))

    def remove_tag(self: CachedSession, path: str, tag: str) -> tuple[str, ...]:
        """Remove one tag (no request if absent); returns the new tags. Raises as set_tags."""
        path = normalize(path)
        entry = self._taggable(path)
        if tag not in entry.tags:
            return entry.tags
        return self._change_tags(path, entry, [], [tag], tuple(t for t in entry.tags if t != tag))

    def _taggable(self: CachedSession, path: str) -> Entry:
        entry = self.lookup(path)
        if not entry.is_taggable:
            raise NotTaggable(f"{path}: a {entry.kind} has no tags")
        return entry

    def _change_tags(
        self: CachedSession,
        path: str,
        entry: Entry,
        add: list[str],
        drop: list[str],
        expected: tuple[str, ...],
    ) -> tuple[str, ...]:
        tags: list[str] | None = None
        try:
            if add:
                tags = self._call("tag_resource", self.session.tag_resource, entry.ref, *add)
            if drop:
                tags = self._call("untag_resource", self.session.untag_resource, entry.ref, *drop)
        except BaseException:
            # An add may have happened before a remove failed: what the entry holds is unknown.
            with self._lock:
                self._stat.pop(path, None)
                self._drop_listing(split(path)[0])
            raise
        new = entry.with_tags(tags if tags is not None else expected)
        with self._lock:
            self._replace(path, entry, new)
        return new.tags
