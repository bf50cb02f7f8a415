"""Tags of Files, Datasets and ShardCollections: they show in ``info()[\"tags\"]`` and these
methods of OrionFileSystem change them::

    fs.set_tags("orion://project/1/user/me/scores.csv", ["reviewed", "Job 7"])   # the exact set
    fs.add_tags(path, "reviewed")
    fs.remove_tags(path, "Job 7")

Each returns the tags afterwards. Folders and shards have no tags (OSError ENOTSUP).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from orionfs.client import wire
from orionfs.fsspec.entries import content_ref
from orionfs.fsspec.errors import orion_errors

if TYPE_CHECKING:
    from orionfs.client.session import OrionSession

__all__ = ["TagsMixin"]


class TagsMixin:
    """set_tags, add_tags and remove_tags of OrionFileSystem."""

    session: OrionSession

    # Provided by the other parts of OrionFileSystem.
    _strip_protocol: Any
    info: Any
    _cached_entry_quiet: Any

    def set_tags(self, path: str, tags: Iterable[str]) -> list[str]:
        """Make ``tags`` the exact tag set of a File, Dataset or ShardCollection; returns it.

        At most one request to add and one to remove. Raises OSError ENOTSUP for folders and
        shards (they have no tags), FileNotFoundError, PermissionError.
        """
        path = self._strip_protocol(path)
        info = self.info(path, refresh=True)
        wanted = list(dict.fromkeys(tags))
        current = info.get(wire.F_TAGS) or []
        ref = self._taggable(path, info)
        result = list(current)
        with orion_errors(path):
            add = [t for t in wanted if t not in current]
            drop = [t for t in current if t not in wanted]
            if add:
                result = self.session.tag_resource(ref, *add)
            if drop:
                result = self.session.untag_resource(ref, *drop)
        return self._retagged(path, info, result)

    def add_tags(self, path: str, *tags: str) -> list[str]:
        """Add tags (one request); returns the tags afterwards. Raises as :meth:`set_tags`."""
        path = self._strip_protocol(path)
        info = self.info(path)
        with orion_errors(path):
            result = self.session.tag_resource(self._taggable(path, info), *tags)
        return self._retagged(path, info, result)

    def remove_tags(self, path: str, *tags: str) -> list[str]:
        """Remove tags (one request; absent ones are ignored); returns the tags afterwards."""
        path = self._strip_protocol(path)
        info = self.info(path)
        with orion_errors(path):
            result = self.session.untag_resource(self._taggable(path, info), *tags)
        return self._retagged(path, info, result)

    @staticmethod
    def _taggable(path: str, info: dict[str, Any]) -> dict[str, Any]:
        if info.get(wire.F_RESOURCE_TYPE) not in wire.TAGGABLE_TYPES or info.get(wire.F_ID) is None:
            raise OSError(errno.ENOTSUP, f"a {info.get(wire.F_RESOURCE_TYPE)} has no tags", path)
        return content_ref(info)

    def _retagged(self, path: str, info: dict[str, Any], tags: list[str]) -> list[str]:
        cached = self._cached_entry_quiet(path)
        for target in (info, cached):
            if target is not None:
                target[wire.F_TAGS] = list(tags)
        return list(tags)
