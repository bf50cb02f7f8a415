"""The mount's typed view of one Orion item: ``Entry``, built once per listed or stat'ed item.

``Entry.from_wire`` is, with orionfs.client.wire, the only place that reads wire field names: the
cache, the open-file table, the namespace rules and the FUSE layer read attributes of an Entry.
Entries are immutable (a change makes a new one with ``dataclasses.replace``) and slotted, so a
100,000-entry folder costs a few hundred bytes an entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orionfs.client import wire
from orionfs.client.types import OrionResource, ResourceKey
from orionfs.exceptions import ValidationError

__all__ = ["FOLDER_KINDS", "Entry", "timestamp_ns"]

#: Kinds shown as directories: a folder, and a shard collection (a folder of its shards).
FOLDER_KINDS = frozenset({wire.FOLDER, wire.SHARD_COLLECTION})
#: The kind names as the wire module spells them, so every Entry shares one string per kind.
_KINDS = {
    kind: kind for kind in (wire.FOLDER, wire.SHARD_COLLECTION, wire.FILE, wire.DATASET, wire.SHARD)
}


def timestamp_ns(value: Any) -> int:
    """Nanoseconds since the epoch of an ISO 8601 timestamp (0 if absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return 0
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strings(values: Any) -> tuple[str, ...]:
    if not isinstance(values, Iterable) or isinstance(values, str | bytes):
        return ()
    return tuple(v for v in values if isinstance(v, str))


@dataclass(frozen=True, slots=True)
class Entry:
    """One Orion item as the mount shows it.

    ``id`` is None for virtual folders (``/``, ``/project``, a project's ``user`` folder) and for
    a new file that exists only in this mount until its first upload (``Entry.pending``).
    ``collection`` is a shard's collection id. Times are nanoseconds since the epoch (0: unknown):
    ``mtime_ns`` is the content's time (which a client may set: ``touch``, ``rsync -a``), ``ctime_ns``
    the server's time of the item's last change, which no client sets: with the id and the size it
    is the item's ``version``.
    """

    kind: str
    id: int | None
    name: str
    path: str
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    tags: tuple[str, ...] = ()
    systemtags: tuple[str, ...] = ()
    collection: int | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], collection: int | None = None) -> Entry:
        """The Entry of an ls/stat/create/assign answer item (docs/wire.md "Entry").

        ``collection``: the id of the shard collection listed, for its shards. Raises
        ValidationError for an item without a known ``resource_type`` or a ``path``.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"an entry must be a JSON object, not {type(data).__name__}")
        kind = _KINDS.get(data.get(wire.F_RESOURCE_TYPE))  # type: ignore[arg-type]
        path = data.get(wire.F_PATH)
        if kind is None or not isinstance(path, str):
            raise ValidationError(f"not an entry of a known kind with a path: {dict(data)!r}")
        changed = timestamp_ns(data.get(wire.F_MODIFIED)) or timestamp_ns(data.get(wire.F_CREATED))
        size = data.get(wire.F_SIZE)
        return cls(
            kind=kind,
            id=_int_or_none(data.get(wire.F_ID)),
            name=data.get(wire.F_NAME) or path.rpartition("/")[2],
            path=path,
            size=size if isinstance(size, int) and size > 0 else 0,
            mtime_ns=timestamp_ns(data.get(wire.F_MTIME)) or changed,
            ctime_ns=changed,
            tags=_strings(data.get(wire.F_TAGS)),
            systemtags=_strings(data.get(wire.F_SYSTEMTAGS)),
            collection=_int_or_none(data.get(wire.F_COLLECTION)) or collection,
        )

    @classmethod
    def from_resource(cls, resource: OrionResource, path: str) -> Entry:
        """The Entry of a resource the session returned (an upload's File), at ``path``."""
        fields = dict(resource.to_dict())
        fields.setdefault(wire.F_RESOURCE_TYPE, resource.resource_type)
        fields[wire.F_PATH] = fields.get(wire.F_PATH) or path
        return cls.from_wire(fields)

    @classmethod
    def pending(cls, path: str, size: int, mtime_ns: int) -> Entry:
        """A new file that exists only in this mount (not uploaded yet)."""
        return cls(wire.FILE, None, path.rpartition("/")[2], path, size, mtime_ns, mtime_ns)

    @classmethod
    def virtual(cls, path: str) -> Entry:
        """A folder Orion shows but that holds no items of its own (``/``, ``/project``)."""
        return cls(wire.FOLDER, None, path.rpartition("/")[2], path)

    # -- what the kind allows ----------------------------------------------------------------------

    @property
    def is_folder(self) -> bool:
        """Shown as a directory (a folder or a shard collection)."""
        return self.kind in FOLDER_KINDS

    @property
    def is_taggable(self) -> bool:
        """Carries user tags (files, datasets, shard collections)."""
        return self.kind in wire.TAGGABLE_TYPES

    @property
    def is_writable(self) -> bool:
        """Its content (a file) or its children (a real folder) can change through the mount."""
        return self.kind == wire.FILE or (self.kind == wire.FOLDER and self.id is not None)

    @property
    def is_file(self) -> bool:
        """A File (the only kind whose content can be replaced)."""
        return self.kind == wire.FILE

    @property
    def is_shard(self) -> bool:
        return self.kind == wire.SHARD

    @property
    def has_link(self) -> bool:
        """``create_link`` can reference it (an item with an id that is not a folder)."""
        return self.id is not None and (self.is_taggable or self.kind == wire.SHARD)

    @property
    def version(self) -> tuple[str, int | None, int, int]:
        """What changes whenever the content changes: (kind, id, size, the server's change time).
        A client-set ``mtime`` is not part of it (``rsync -a`` sets an old time on new content)."""
        return self.kind, self.id, self.size, self.ctime_ns

    @property
    def key(self) -> tuple[str, int | None]:
        """Its identity: (kind, id). Ids are per kind."""
        return self.kind, self.id

    @property
    def ref(self) -> ResourceKey:
        """The typed reference the session's methods take (no request, no resource object)."""
        if self.id is None:
            raise ValidationError(f"{self.path}: has no Orion id")
        return ResourceKey(self.kind, self.id, self.collection)

    def renamed(self, name: str, path: str) -> Entry:
        """This entry under another name and path (a move whose answer the server did not send)."""
        return dataclasses.replace(self, name=name, path=path)

    def with_tags(self, tags: Iterable[str], systemtags: Iterable[str] | None = None) -> Entry:
        """This entry with other tags (and system tags, if given)."""
        changed = tuple(tags)
        system = self.systemtags if systemtags is None else tuple(systemtags)
        return dataclasses.replace(self, tags=changed, systemtags=system)
