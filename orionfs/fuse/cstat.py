"""``Attrs`` -> the platform's ``struct stat`` bytes, with one ``struct.pack`` call.

mfusepy fills a ``struct stat`` field by field from a dict (about 5 us an entry, most of a
readdir of many entries). ``StatPacker`` reads the layout of mfusepy's ``c_stat`` once (offsets and
sizes of the fields orionfs sets) and packs the values in one C call; fields it does not set
(device numbers, padding) are zero.
"""

from __future__ import annotations

import ctypes
import operator
import struct
from typing import Any

import mfusepy

from orionfs.fuse.attrs import MEMO_SIZE, Attrs

#: (c_stat field, timespec member or None) in the order of ``StatPacker._values``.
_FIELDS: tuple[tuple[str, str | None], ...] = (
    ("st_ino", None),
    ("st_nlink", None),
    ("st_mode", None),
    ("st_uid", None),
    ("st_gid", None),
    ("st_size", None),
    ("st_blksize", None),
    ("st_blocks", None),
    ("st_atimespec", "tv_sec"),
    ("st_atimespec", "tv_nsec"),
    ("st_mtimespec", "tv_sec"),
    ("st_mtimespec", "tv_nsec"),
    ("st_ctimespec", "tv_sec"),
    ("st_ctimespec", "tv_nsec"),
)
_SIGNED = {1: "b", 2: "h", 4: "i", 8: "q"}


def _code(ctype: Any) -> str:
    """The struct format letter of a ctypes integer type (its size and signedness)."""
    letter = _SIGNED[ctypes.sizeof(ctype)]
    return letter if str(ctype._type_).islower() else letter.upper()


def _layout(c_stat: type[ctypes.Structure]) -> tuple[struct.Struct, tuple[int, ...]]:
    """The Struct that writes the ``_FIELDS`` at their offsets (zero elsewhere), and the order of
    the values it takes (indexes into ``_FIELDS``)."""
    placed = []
    for index, (name, member) in enumerate(_FIELDS):
        field = getattr(c_stat, name)
        ctype = dict(c_stat._fields_)[name]
        offset = field.offset
        if member is not None:
            offset += getattr(ctype, member).offset
            ctype = dict(ctype._fields_)[member]
        placed.append((offset, ctypes.sizeof(ctype), _code(ctype), index))
    placed.sort()
    fmt, position = "=", 0
    for offset, size, code, _ in placed:
        if offset < position:
            raise ValueError(f"overlapping struct stat fields at {offset}")
        fmt += "x" * (offset - position) + code
        position = offset + size
    fmt += "x" * (ctypes.sizeof(c_stat) - position)
    return struct.Struct(fmt), tuple(index for *_, index in placed)


class StatPacker:
    """Packs ``Attrs`` into ``struct stat`` bytes of mfusepy's ``c_stat`` layout."""

    def __init__(self, c_stat: type[ctypes.Structure] = mfusepy.c_stat) -> None:
        self._struct, order = _layout(c_stat)
        self._order = operator.itemgetter(*order)
        self.size = self._struct.size
        # id(Attrs) -> (those Attrs, their bytes); the Attrs are kept so that the id is not reused.
        self._memo: dict[int, tuple[Attrs, bytes]] = {}

    def _values(self, attrs: Attrs) -> tuple[int, ...]:
        msec, mnsec = divmod(attrs.mtime_ns, 1_000_000_000)
        csec, cnsec = divmod(attrs.ctime_ns, 1_000_000_000)
        return self._order((
            attrs.ino, attrs.nlink, attrs.mode, attrs.uid, attrs.gid, attrs.size, attrs.blksize,
            attrs.blocks, msec, mnsec, msec, mnsec, csec, cnsec,
        ))  # fmt: skip

    def pack(self, attrs: Attrs, remember: bool = True) -> bytes:
        """The ``struct stat`` of ``attrs``; the same Attrs object (orionfs.fuse.attrs keeps one
        per cached entry) is packed once. ``remember=False`` for Attrs made for one use."""
        if not remember:
            return self._struct.pack(*self._values(attrs))
        known = self._memo.get(id(attrs))
        if known is not None and known[0] is attrs:
            return known[1]
        packed = self._struct.pack(*self._values(attrs))
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[id(attrs)] = (attrs, packed)
        return packed
