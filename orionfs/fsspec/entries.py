"""Orion Entries (ls / stat answers) as fsspec info dicts, and the names they show under.

An info dict has fsspec's keys ``name`` (the filesystem path), ``size`` and ``type`` (``directory``
or ``file``), ``readonly``, and the Entry's own fields under their wire names (``id``,
``resource_type``, ``path`` = the Orion path, ``tags``, ``systemtags``, ``created``, ``modified``,
``state``, ``owner``, ``project``).

What each kind shows as (the mount's rules, docs/mount.md):

=================  ================================  ========
Orion              info ``type``                      readonly
=================  ================================  ========
folder             directory                          virtual folders (id null) only
File               file                               no
Dataset            file (its download)                yes
ShardCollection    directory (of its shards)          yes
Shard              file                               yes
=================  ================================  ========

Names follow the mount's one rule (orionfs.fs.names, docs/mount.md "Names"): a ``/`` in an Orion
name shows as ``∕``; where several entries of a folder share a name, the lowest id keeps it and each
other shows as ``NAME (id ID)``. A *plain* name (neither) is the Orion name of the entry ``stat``
answers for it; any other is resolved through its folder's listing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orionfs.client import wire
from orionfs.fs.entry import Entry
from orionfs.fs.names import display_names, is_plain

__all__ = [
    "DIRECTORY",
    "FILE",
    "INFO_NAME",
    "INFO_READONLY",
    "INFO_SIZE",
    "INFO_TYPE",
    "content_ref",
    "entry_info",
    "is_directory",
    "is_plain",
    "listing_infos",
    "orion_name",
    "root_info",
]

# fsspec's own info keys and types (its contract, not Orion's wire format).
INFO_NAME = "name"
INFO_SIZE = "size"
INFO_TYPE = "type"
DIRECTORY = "directory"
FILE = "file"
#: Ours: True for what no write may change (datasets, shards, collections, virtual folders).
INFO_READONLY = "readonly"

_DIRECTORY_TYPES = frozenset({wire.FOLDER, wire.SHARD_COLLECTION})
_READONLY_TYPES = frozenset({wire.DATASET, wire.SHARD, wire.SHARD_COLLECTION})
#: Entry fields every info dict carries (absent ones as None).
_ENTRY_FIELDS = (
    wire.F_ID, wire.F_RESOURCE_TYPE, wire.F_PATH, wire.F_TAGS, wire.F_SYSTEMTAGS, wire.F_CREATED,
    wire.F_MODIFIED, wire.F_STATE, wire.F_OWNER, wire.F_PROJECT,
)  # fmt: skip


def entry_info(entry: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The info dict of an Entry shown at filesystem path ``name``."""
    rtype = entry.get(wire.F_RESOURCE_TYPE)
    info: dict[str, Any] = {field: entry.get(field) for field in _ENTRY_FIELDS}
    for field in (wire.F_TAGS, wire.F_SYSTEMTAGS):
        info[field] = list(info[field] or [])
    directory = rtype in _DIRECTORY_TYPES
    info[INFO_NAME] = name
    info[INFO_TYPE] = DIRECTORY if directory else FILE
    info[INFO_SIZE] = 0 if directory else int(entry.get(wire.F_SIZE) or 0)
    info[INFO_READONLY] = rtype in _READONLY_TYPES or entry.get(wire.F_ID) is None
    if entry.get(wire.F_COLLECTION) is not None:
        info[wire.F_COLLECTION] = entry[wire.F_COLLECTION]
    return info


def root_info() -> dict[str, Any]:
    """The info of the root (``orion://``), a virtual folder that lists ``project``."""
    entry = {wire.F_RESOURCE_TYPE: wire.FOLDER, wire.F_ID: None, wire.F_PATH: "/"}
    return entry_info(entry, "")


def is_directory(info: Mapping[str, Any]) -> bool:
    """Whether an info dict is a directory (a folder or a shard collection)."""
    return info.get(INFO_TYPE) == DIRECTORY


def orion_name(info: Mapping[str, Any]) -> str:
    """The Orion name of the entry an info dict describes (the last part of its Orion path)."""
    path = info.get(wire.F_PATH) or ""
    return path.rsplit("/", 1)[-1]


def content_ref(info: Mapping[str, Any], collection: int | None = None) -> dict[str, Any]:
    """The resource reference the session's content methods take (type, id, shard collection)."""
    ref = {wire.F_RESOURCE_TYPE: info.get(wire.F_RESOURCE_TYPE), wire.F_ID: info.get(wire.F_ID)}
    if collection is None:
        collection = info.get(wire.F_COLLECTION)
    if collection is not None:
        ref[wire.F_COLLECTION] = collection
    return ref


def listing_infos(folder: str, entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The info dicts of a folder's entries, sorted by the name they show under.

    ``folder`` is the folder's filesystem path (``""`` for the root).
    """
    prefix = f"{folder}/" if folder else ""
    raw: dict[int, Mapping[str, Any]] = {}
    typed: list[Entry] = []
    for item in entries:
        entry = Entry.from_wire(item)
        raw[id(entry)] = item
        typed.append(entry)
    shown = display_names(typed)
    return [entry_info(raw[id(entry)], prefix + name) for name, entry in sorted(shown.items())]
