"""One folder's entries by display name (``Listing``), kept exact through local changes.

The display names come from the one rule of orionfs.fs.names. ``simple`` says every entry shows
under its base name (no duplicates in the folder), so inserting a new base or removing any entry
needs no recomputation of the other names; otherwise the rule is applied to the whole folder again.
Each method returns the display names whose meaning changed, so the owner can drop what it cached
under them.
"""

from __future__ import annotations

from collections.abc import Iterable

from orionfs.fs.entry import Entry
from orionfs.fs.names import display_base, display_names


class Listing:
    """A folder's entries keyed by the name the mount shows for each."""

    __slots__ = ("names", "simple")

    def __init__(self, names: dict[str, Entry], simple: bool) -> None:
        self.names = names
        self.simple = simple

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Listing:
        """The listing of a folder's entries (any order; duplicates get the rule's names)."""
        names: dict[str, Entry] = {}
        clashes: list[Entry] = []
        for entry in entries:
            base = display_base(entry.name)
            if base in names:
                clashes.append(entry)
            else:
                names[base] = entry
        if not clashes:
            return cls(names, True)
        return cls._ruled([*names.values(), *clashes])

    @classmethod
    def _ruled(cls, entries: list[Entry]) -> Listing:
        names = display_names(entries)
        simple = all(name == display_base(entry.name) for name, entry in names.items())
        return cls(names, simple)

    def name_of(self, entry: Entry, hint: str = "") -> str:
        """The display name of ``entry`` (by identity), trying ``hint`` first; "" if absent."""
        found = self.names.get(hint)
        if found is not None and found.key == entry.key:
            return hint
        return next((n for n, e in self.names.items() if e.key == entry.key), "")

    def remove(self, entry: Entry, hint: str = "") -> list[str]:
        """``entry`` is gone; returns the display names whose entry changed."""
        name = self.name_of(entry, hint)
        if not name:
            return []
        if self.simple:
            del self.names[name]
            return [name]
        return self._reapply([e for n, e in self.names.items() if n != name])

    def insert(self, entry: Entry) -> list[str]:
        """``entry`` is new here (or replaces an entry of its identity); returns the display
        names whose entry changed."""
        base = display_base(entry.name)
        if self.simple and base not in self.names:
            self.names[base] = entry
            return [base]
        others = [e for e in self.names.values() if e.key != entry.key]
        return self._reapply([*others, entry])

    def replace(self, old: Entry, new: Entry, hint: str = "") -> bool:
        """``old`` changed in place (same identity and name); False if it is not listed."""
        name = self.name_of(old, hint)
        if name:
            self.names[name] = new
        return bool(name)

    def _reapply(self, entries: list[Entry]) -> list[str]:
        new = Listing._ruled(entries)
        changed = [n for n, e in self.names.items() if new.names.get(n) is not e]
        changed += [n for n in new.names if n not in self.names]
        self.names, self.simple = new.names, new.simple
        return changed
