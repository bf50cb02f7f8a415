"""What stat(2) shows of an entry: ``Attrs``, made from an Entry by the mount's mode rules.

``Attrs`` is what getattr and readdir hand the binding (orionfs.fuse.cstat packs it into a
``struct stat``). Atime is the mtime; times are nanoseconds since the epoch.
"""

from __future__ import annotations

import stat
from typing import NamedTuple

from orionfs.fs.entry import Entry
from orionfs.fuse.inodes import inode_of

#: st_blksize: readers (cp, cat) size their buffers from it; the kernel reads up to 1 MiB at once.
BLOCK_SIZE: int = 1 << 20


class Attrs(NamedTuple):
    """One entry's ``struct stat``."""

    mode: int
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    size: int = 0
    blocks: int = 0
    blksize: int = BLOCK_SIZE
    mtime_ns: int = 0
    ctime_ns: int = 0
    ino: int = 0


#: Entries whose Attrs are remembered (all forgotten at once past this; a few MB at most).
MEMO_SIZE: int = 20_000

#: What readdir answers for "." and ".." (the kernel takes only the type from them).
DOT_ATTRS = Attrs(mode=stat.S_IFDIR, nlink=2)


class AttrRules:
    """Modes and owner of the mount's entries (the rules in orionfs.fuse.operations' docstring).

    ``file_mode``/``dir_mode``: modes of writable kinds; read-only kinds, and everything on a
    read-only mount, lose the write bits."""

    def __init__(self, uid: int, gid: int, file_mode: int, dir_mode: int, read_only: bool) -> None:
        self.uid = uid
        self.gid = gid
        self.read_only = read_only
        # id(Entry) -> (that Entry, its Attrs); the Entry is kept so that its id is not reused.
        self._memo: dict[int, tuple[Entry, Attrs]] = {}
        # (is_folder, is_writable) -> st_mode
        self._modes = {
            (folder, writable): self._mode(folder, writable, file_mode, dir_mode)
            for folder in (False, True)
            for writable in (False, True)
        }

    def _mode(self, folder: bool, writable: bool, file_mode: int, dir_mode: int) -> int:
        mode = dir_mode if folder else file_mode
        mode = mode if writable and not self.read_only else mode & ~0o222
        return (stat.S_IFDIR if folder else stat.S_IFREG) | mode

    def of(self, entry: Entry) -> Attrs:
        """The attributes of an Orion entry (its inode from its identity). The same Entry object
        (a cached listing's, read again by every ``ls``) gives the same Attrs object."""
        known = self._memo.get(id(entry))
        if known is not None and known[0] is entry:
            return known[1]
        attrs = self._of(entry)
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[id(entry)] = (entry, attrs)
        return attrs

    def _of(self, entry: Entry) -> Attrs:
        folder = entry.is_folder
        size = entry.size
        return Attrs(
            self._modes[folder, entry.is_writable],
            2 if folder else 1,
            self.uid,
            self.gid,
            size,
            (size + 511) // 512,
            BLOCK_SIZE,
            entry.mtime_ns,
            entry.ctime_ns or entry.mtime_ns,
            inode_of(entry),
        )

    def local(self, mode: int, time_ns: int, ino: int = 0) -> Attrs:
        """Attributes of something the mount makes up (the root, the trash marker): empty, owned
        by the mounting user, of ``time_ns``."""
        return Attrs(
            mode, 2 if stat.S_ISDIR(mode) else 1, self.uid, self.gid, 0, 0, BLOCK_SIZE,
            time_ns, time_ns, ino,
        )  # fmt: skip
