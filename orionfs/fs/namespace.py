"""The mount's rules over the cache and the open-file table (no FUSE imports, no errnos).

``Namespace`` is what a POSIX call means for Orion: which request a mkdir, an unlink, a rename, an
open or a truncate makes, in which order with the open files, and what it refuses. It raises the
exceptions of orionfs.exceptions; the FUSE layer only translates calls, attributes and errors, so
every rule here is testable without /dev/fuse.

Rules (docs/mount.md):
- a read-only mount refuses every change (ReadOnlyMount);
- a name segment is at most 255 bytes (NameTooLong);
- new items go into real folders only: a shard collection is read-only and a virtual folder (no
  id) holds nothing new (NotWritable); only Files are written (NotWritable for other kinds);
- a new file exists only locally until its first flush; renamed before that, it is uploaded under
  its final name (over an existing File with that File's id);
- a rename is one assign; over an existing file the target is replaced after the assign, never
  before; open descriptors follow their file, not its name;
- libfuse (high-level API, no ``hard_remove``) hides an open file that is unlinked or renamed over
  under a name ``.fuse_hiddenXXXXXXXXXXXXXXXX`` in its folder: such a file is removed from Orion at
  once and lives on, locally, for its descriptors. Such names are never sent to Orion.
"""

from __future__ import annotations

import dataclasses
import os
import re

from orionfs.client import wire
from orionfs.exceptions import (
    AlreadyExists,
    FolderNotEmpty,
    InvalidMove,
    IsAFolder,
    NameTooLong,
    NotAFolder,
    NotFoundResponse,
    NotWritable,
    ReadOnlyMount,
    UnknownHandle,
)
from orionfs.fs.cache import CachedSession
from orionfs.fs.entry import Entry
from orionfs.fs.mountpath import not_found, split
from orionfs.fs.openfiles import OpenFileTable
from orionfs.fs.staged import StagedFile

__all__ = ["HIDDEN_PREFIX", "NAME_MAX", "Namespace", "is_hidden"]

#: Longest name of one path segment, in bytes of UTF-8 (Orion's limit and NAME_MAX).
NAME_MAX: int = 255
#: libfuse's names for open files that were unlinked (see the module docstring).
HIDDEN_PREFIX = ".fuse_hidden"
_HIDDEN_NAME = re.compile(r"\.fuse_hidden[0-9a-f]{16}\Z")


def is_hidden(path: str | None) -> bool:
    """True for libfuse's name of an open, unlinked file (local only)."""
    return path is not None and _HIDDEN_NAME.match(split(path)[1]) is not None


def check_name(path: str) -> None:
    """NameTooLong for a segment over NAME_MAX bytes."""
    encoded = os.fsencode(path)
    if len(encoded) <= NAME_MAX:  # no segment can be longer than the whole path
        return
    for segment in encoded.split(b"/"):
        if len(segment) > NAME_MAX:
            name = os.fsdecode(segment)
            raise NameTooLong(f"{name[:40]}...: name longer than {NAME_MAX} bytes")


class Namespace:
    """The mount's operations on Orion paths, over a CachedSession and an OpenFileTable."""

    def __init__(self, cache: CachedSession, files: OpenFileTable, read_only: bool = False) -> None:
        self.cache = cache
        self.files = files
        self.read_only = read_only

    # -- reading -----------------------------------------------------------------------------------

    def entry(self, path: str) -> Entry:
        """The Entry at a mount path, or of the open file there (a new file not uploaded yet
        shows as ``Entry.pending``). Raises NotFoundResponse (also, locally, for a hidden name
        that no open file holds)."""
        node = self.files.node_at(path)
        if node is not None:
            return self.node_entry(node)
        if is_hidden(path):
            raise not_found(path)
        return self.cache.lookup(path)

    def known_absent(self, path: str) -> bool:
        """True when ``entry`` would raise NotFoundResponse without a request (no open file at
        the path, and a hidden name or one the cache knows is absent), answered without raising."""
        if self.files.node_at(path) is not None:
            return False
        return is_hidden(path) or self.cache.known_absent(path)

    def node_entry(self, node: StagedFile) -> Entry:
        """What an open file shows: its current Entry (tags changed while it is open included)
        with the staged size and time, or a pending Entry for a new file not uploaded yet."""
        if node.entry is None:
            return dataclasses.replace(
                Entry.pending(node.path, node.size, node.mtime_ns), ctime_ns=node.changed_ns
            )
        entry = node.entry
        if not is_hidden(node.path):
            current = self.cache.find(node.path)
            if current is not None and current.key == entry.key:
                entry = current
        if node.loaded or node.dirty or node.set_mtime_ns is not None:
            if node.set_mtime_ns is not None:
                mtime_ns = node.set_mtime_ns
            else:
                mtime_ns = max(entry.mtime_ns, node.mtime_ns)
            ctime_ns = max(entry.ctime_ns, node.changed_ns)
            return dataclasses.replace(entry, size=node.size, mtime_ns=mtime_ns, ctime_ns=ctime_ns)
        return entry

    def handle_entry(self, fh: int) -> Entry | None:
        """What the open file of handle ``fh`` shows, wherever its name went (None: no such
        handle, e.g. a folder's)."""
        node = self.files.node_of(fh)
        return None if node is None else self.node_entry(node)

    def find(self, path: str) -> Entry | None:
        """``entry``, with None for a path that does not exist."""
        try:
            return self.entry(path)
        except NotFoundResponse:
            return None

    def listdir(self, path: str) -> dict[str, Entry]:
        """A folder's entries by display name, with the new files not uploaded yet; an open file
        shows as ``entry`` shows it (its staged size and time): the kernel takes a listing's
        attributes as the files' own."""
        entries = self.cache.listdir(path)
        for name, node in self.files.children(path).items():
            if node.pending:
                entries.setdefault(name, self.node_entry(node))
            elif name in entries:
                entries[name] = self.node_entry(node)
        return entries

    # -- folders -----------------------------------------------------------------------------------

    def mkdir(self, path: str) -> Entry:
        """One create_paths request."""
        self._writable(path)
        self._folder_for_create(path)
        return self.cache.mkdir(path)

    def rmdir(self, path: str) -> None:
        """Remove an empty folder; FolderNotEmpty also for files still being written in it."""
        self._writable()
        if self.files.has_nodes_below(path):
            raise FolderNotEmpty(f"{path}: holds a file being written")
        self.cache.rmdir(path)

    # -- unlink and rename -------------------------------------------------------------------------

    def unlink(self, path: str) -> None:
        """Remove a file (by id); a new file never uploaded is just forgotten. A file still open
        keeps its content locally for its descriptors (downloaded first, if need be)."""
        self._writable()
        if is_hidden(path):  # the last close of an unlinked open file: it is already gone
            self.files.detach(path)
            return
        node = self.files.node_at(path)
        if node is not None and node.pending:
            self.files.detach(path)
            return
        if self.entry(path).is_folder:
            raise IsAFolder(f"{path}: is a folder")
        self.files.keep_local(path)
        self.cache.unlink(path)
        self.files.detach(path)

    def rename(self, old: str, new: str, noreplace: bool = False) -> None:
        """One assign_paths request (whatever a folder holds); over an existing file the target is
        replaced after the assign, never before. A new file never uploaded is renamed locally and
        uploaded under its final name. ``noreplace``: AlreadyExists where ``new`` exists."""
        self._writable(new)
        if old == new:
            return
        if new.startswith(old.rstrip("/") + "/"):
            raise InvalidMove(f"{old} cannot move into itself")
        if is_hidden(new) and split(new)[0] == split(old)[0]:
            self._hide(old, new)
            return
        if is_hidden(new):
            raise NotWritable(f"{new}: libfuse's hidden names are local")
        if is_hidden(old):
            raise NotFoundResponse(custom_error_msg=f"{old}: an unlinked file has no name")
        target = self.find(new)
        if noreplace and target is not None:
            raise AlreadyExists(f"{new}: exists")
        node = self.files.node_at(old)
        if node is not None and node.pending:
            self._rename_pending(old, new, target)
            return
        source = self.entry(old)
        if target is not None and target.id is not None:
            if target.is_folder and not source.is_folder:
                raise IsAFolder(f"{new}: is a folder")
            if source.is_folder and not target.is_folder:
                raise NotAFolder(f"{new}: not a folder")
            self.files.keep_local(new)  # its descriptors outlive the replaced file
        self.cache.rename(old, new)
        if self.files.node_at(new) is not None:
            self.files.detach(new)
        self.files.moved(old, new)

    def _rename_pending(self, old: str, new: str, target: Entry | None) -> None:
        """A new file never uploaded: renamed locally, uploaded under its final name."""
        self._folder_for_create(new)
        if target is not None and target.id is not None:
            if target.is_folder:
                raise IsAFolder(f"{new}: is a folder")
            if not target.is_file:
                self.cache.unlink(new)
                target = None
        elif target is not None:
            target = None  # another pending file: replaced locally
        self.files.rename_pending(old, new, target)

    def _hide(self, old: str, hidden: str) -> None:
        """libfuse hides an open file that is unlinked or renamed over: it is removed from Orion
        (a new file never uploaded: nothing to remove) and lives on, locally, under the hidden
        name for its descriptors; it is never uploaded again, and goes away with the last close."""
        node = self.files.node_at(old)
        if node is None or not node.pending:
            if self.entry(old).is_folder:
                raise IsAFolder(f"{old}: is a folder")
            self.files.keep_local(old)
            self.cache.unlink(old)
        self.files.hide(old, hidden)

    # -- files -------------------------------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        """Open a file; nothing is downloaded here (reads are ranged, writes staged lazily)."""
        writable = flags & os.O_ACCMODE != os.O_RDONLY
        truncate = bool(flags & os.O_TRUNC) and writable
        if writable:
            self._writable()
        node = self.files.node_at(path)
        entry = None if node is not None and node.pending else self.entry(path)
        if entry is not None:
            if entry.is_folder:
                raise IsAFolder(f"{path}: is a folder")
            if writable and not entry.is_file:
                raise NotWritable(f"{path}: a {entry.kind} is read-only")
            if node is not None:
                entry = node.entry
        return self.files.open(path, entry, flags, writable, truncate)

    def create(self, path: str, flags: int) -> int:
        """A new file, local until its first flush (O_EXCL: AlreadyExists where the name is
        taken); an existing one is opened instead."""
        self._writable(path)
        if is_hidden(path) and self.files.node_at(path) is None:
            raise NotWritable(f"{path}: libfuse's hidden names are local")
        existing = self.find(path)
        if existing is not None:
            if flags & os.O_EXCL:
                raise AlreadyExists(f"{path}: exists")
            return self.open(path, flags & ~os.O_CREAT)
        self._folder_for_create(path)
        handle = self.files.create(path, flags)
        self.cache.touch(split(path)[0])
        return handle

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        """Truncate an open file's staged copy (``ftruncate``: the handle's, whatever its name
        now), or a closed file at once (one upload)."""
        self._writable()
        if length < 0:
            raise InvalidMove(f"negative length {length}")
        if fh is not None:
            self.files.truncate_handle(fh, length)
            return
        if path is None:
            raise UnknownHandle("truncate of neither a path nor a handle")
        if self.files.node_at(path) is not None:
            self.files.truncate(path, length, None)
            return
        entry = self.entry(path)
        if entry.is_folder:
            raise IsAFolder(f"{path}: is a folder")
        if not entry.is_file:
            raise NotWritable(f"{path}: a {entry.kind} is read-only")
        self.files.truncate(path, length, entry)

    # -- times -------------------------------------------------------------------------------------

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        """utimens: keep the time the writer sets (``touch``, ``cp -p``, ``tar x``, ``rsync -a``).

        One request for a stored file or dataset; an open file whose content is not stored yet
        sends it after its upload; folders and shards keep the server's times (accepted, nothing
        sent); an unlinked open file keeps it locally."""
        self._writable()
        node = self.files.node_at(path)
        if node is not None and (node.pending or node.dirty or is_hidden(path)):
            node.keep_mtime(mtime_ns)
            return
        entry = self.entry(path)
        if entry.kind in (wire.FILE, wire.DATASET):
            self.cache.set_mtime(path, mtime_ns)
            if node is not None:
                node.mtime_ns = node.changed_ns = mtime_ns

    # -- tags --------------------------------------------------------------------------------------

    def tagged_entry(self, path: str) -> Entry:
        """The Entry whose tags a tag write changes: a new file not uploaded yet is uploaded
        first (through the open-file table), so that the tags have an Orion item."""
        self._writable()
        self.files.materialize(path)
        return self.entry(path)

    # -- helpers -----------------------------------------------------------------------------------

    def _writable(self, path: str | None = None) -> None:
        """ReadOnlyMount on a read-only mount; NameTooLong for a long new name."""
        if self.read_only:
            raise ReadOnlyMount("the mount is read-only")
        if path is not None:
            check_name(path)

    def _folder_for_create(self, path: str) -> None:
        """Raise unless the parent of ``path`` is a real folder we may create in."""
        parent = self.entry(split(path)[0])
        if not parent.is_folder:
            raise NotAFolder(f"{split(path)[0]}: not a folder")
        if not parent.is_writable:
            raise NotWritable(f"{split(path)[0]}: holds nothing new (read-only or virtual)")
