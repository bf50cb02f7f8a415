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

Names follow the mount's rule (docs/mount.md "Names"; this package may not import the mount's
module, so the rule is restated here, in the same terms): a ``/`` in an Orion name shows as ``∕``;
where several entries of a folder share a name, the lowest id keeps it and each other shows as
``NAME (id ID)``. A *plain* name (neither) is the Orion name of the entry ``stat`` answers for it;
any other is resolved through its folder's listing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from orionfs.client import wire

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

#: What a ``/`` inside an Orion name shows as: U+2215 DIVISION SLASH (as on the mount).
SLASH_SUBSTITUTE = "\u2215"
_ID_SUFFIX = re.compile(r" \(id -?\d+\)\Z")
_DIRECTORY_TYPES = frozenset({wire.FOLDER, wire.SHARD_COLLECTION})
_READONLY_TYPES = frozenset({wire.DATASET, wire.SHARD, wire.SHARD_COLLECTION})
#: Entry fields every info dict carries (absent ones as None).
_ENTRY_FIELDS = (
    wire.F_ID, wire.F_RESOURCE_TYPE, wire.F_PATH, wire.F_TAGS, wire.F_SYSTEMTAGS, wire.F_CREATED,
    wire.F_MODIFIED, wire.F_STATE, wire.F_OWNER, wire.F_PROJECT,
)  # fmt: skip
#: Ties between entries of one id (ids are per type) are broken in this order, as on the mount.
_TYPE_ORDER = {
    wire.FOLDER: 0,
    wire.SHARD_COLLECTION: 1,
    wire.FILE: 2,
    wire.DATASET: 3,
    wire.SHARD: 4,
}


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


def is_plain(segment: str) -> bool:
    """Whether a shown name is the entry's Orion name as-is (no ``∕``, no ``" (id N)"``)."""
    return SLASH_SUBSTITUTE not in segment and _ID_SUFFIX.search(segment) is None


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


def _sort_key(entry: Mapping[str, Any]) -> tuple[int, int, int, str]:
    rid = entry.get(wire.F_ID)
    rtype = entry.get(wire.F_RESOURCE_TYPE)
    return (
        0 if rid is None else 1,
        rid if isinstance(rid, int) else 0,
        _TYPE_ORDER.get(rtype, len(_TYPE_ORDER)) if isinstance(rtype, str) else len(_TYPE_ORDER),
        entry.get(wire.F_NAME) or "",
    )


def _shown_names(entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    """Each entry with the name it shows under (unique within the folder)."""
    names: dict[str, Mapping[str, Any]] = {}
    others: list[tuple[str, Mapping[str, Any]]] = []
    for entry in sorted(entries, key=_sort_key):
        base = (entry.get(wire.F_NAME) or "").replace("/", SLASH_SUBSTITUTE)
        if base in names:
            others.append((base, entry))
        else:
            names[base] = entry
    for base, entry in others:  # after every base: a literal "x (id 5)" keeps its own name
        suffix = f" (id {entry.get(wire.F_ID)})"
        name = base + suffix
        while name in names:
            name += suffix
        names[name] = entry
    return sorted(names.items())


def listing_infos(folder: str, entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The info dicts of a folder's entries, sorted by the name they show under.

    ``folder`` is the folder's filesystem path (``""`` for the root).
    """
    prefix = f"{folder}/" if folder else ""
    return [entry_info(entry, prefix + shown) for shown, entry in _shown_names(entries)]
