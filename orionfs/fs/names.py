"""The name rule: how an Orion folder's entries show as POSIX names, and back (no I/O).

Orion allows two items of one name in a folder and any character in a name; a POSIX directory allows
neither a ``/`` in a name nor two entries of one name. The mount shows a folder's entries under
*display names* given by one rule, applied here and nowhere else:

1. The *base* display name of an entry is its Orion name with every ``/`` replaced by U+2215 ``∕``
   (DIVISION SLASH), which looks like a slash but is an ordinary character to the kernel.
2. Entries are ordered by id (virtual folders, whose id is null, first; ties between resource types
   broken by a fixed type order). Of the entries that share a base, the first keeps the base.
3. Every other entry of a shared base shows as ``<base> (id <id>)``. Should that name be taken by an
   entry whose *own* base is exactly that (a literal name such as ``x (id 5)``), or by an earlier
   generated name, ``" (id <id>)"`` is appended again until the name is free.

Literal names win over generated ones so that a name typed into the mount shows back as typed. The
result is injective: each display name identifies exactly one entry, and it does not depend on the
order the server listed the entries in.

The way back: a *plain* display name (no ``∕``, no ``" (id N)"`` suffix) is always the Orion name of
the lowest-id entry of that name, which is what ``stat`` answers for that path, so a plain name is
resolved with one ``stat`` request. Any other display name can only be resolved against the folder's
listing. A name that is already an entry keeps that entry's Orion name; a new name created through
the mount is sent to Orion as typed (:func:`orion_name`): a ``∕`` stays a ``∕`` (Orion names cannot
hold ``/``, docs/wire.md, so mapping it back would only make the create fail), and a typed
``" (id N)"`` stays part of the name. Either way the rule above shows it back exactly as typed
unless the folder already holds that display name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from orionfs.client import wire

if TYPE_CHECKING:
    from orionfs.fs.entry import Entry

__all__ = [
    "SLASH_SUBSTITUTE",
    "display_base",
    "display_names",
    "entry_sort_key",
    "is_plain",
    "orion_name",
]

#: What a ``/`` inside an Orion name shows as: U+2215 DIVISION SLASH.
SLASH_SUBSTITUTE = "\u2215"

# Decides ties between entries of different resource types that share an id (ids are per type).
_TYPE_ORDER = {
    wire.FOLDER: 0,
    wire.SHARD_COLLECTION: 1,
    wire.FILE: 2,
    wire.DATASET: 3,
    wire.SHARD: 4,
}
_ID_SUFFIX = re.compile(r" \(id -?\d+\)\Z")


def display_base(name: str) -> str:
    """The base display name of an Orion name: ``/`` shown as ``∕``."""
    return name.replace("/", SLASH_SUBSTITUTE)


def orion_name(display: str) -> str:
    """The Orion name to create for a display name that is not an entry yet: the name as typed.

    Neither a ``∕`` nor a typed ``" (id N)"`` suffix is translated; both are part of the name, and
    the rule shows the new entry back under the same display name (an existing entry's own Orion
    name is what a rename over it or a move of it keeps; see the module docstring).
    """
    return display


def is_plain(display: str) -> bool:
    """Whether a display name is its Orion name as-is, so that ``stat`` of it is exact.

    True when the name holds no ``∕`` and does not end in ``" (id N)"``: such a name can only be the
    base of the lowest-id entry of that Orion name, never a generated or translated one.
    """
    return SLASH_SUBSTITUTE not in display and _ID_SUFFIX.search(display) is None


def entry_sort_key(entry: Entry) -> tuple[int, int, int, str]:
    """The order of rule 2: null ids (virtual folders) first, then by id, type and name."""
    return (
        0 if entry.id is None else 1,
        entry.id or 0,
        _TYPE_ORDER.get(entry.kind, len(_TYPE_ORDER)),
        entry.name,
    )


def display_names(entries: Iterable[Entry]) -> dict[str, Entry]:
    """A folder's entries keyed by the name the mount shows for each (see the module docstring).

    The values are the given entry objects themselves (not copies). Every entry gets exactly one
    key. Raises nothing for well-formed entries; an entry without a ``name`` shows under ``""``.
    """
    ordered = sorted(entries, key=entry_sort_key)
    names: dict[str, Entry] = {}
    losers: list[tuple[str, Entry]] = []
    # Rule 2 first, for every base, so that a literal "x (id 5)" keeps its name (rule 3).
    for entry in ordered:
        base = display_base(entry.name)
        if base in names:
            losers.append((base, entry))
        else:
            names[base] = entry
    for base, entry in losers:
        suffix = f" (id {entry.id})"
        name = base + suffix
        while name in names:
            name += suffix
        names[name] = entry
    return names
