"""The FUSE layer: POSIX calls -> ``orionfs.fs.cache.CachedSession`` calls, and the one errno table.

This is the only module that imports mfusepy or knows errnos. ``OrionFS`` is a thin operations
class: each method resolves a mount path through the cache (or the open-file table of
``orionfs.fs.openfiles``) and returns attributes, bytes or nothing; every exception leaving a method goes
through ``errno_for`` once, at the boundary (``_boundary``), so the binding always gets an errno.

Policies (documented in docs/mount.md):
- kinds: folder -> directory 0755; File -> regular file 0644 (read/write); Dataset and Shard ->
  regular file 0444; ShardCollection and virtual folders (no id) -> directory 0555. ``--read-only``
  makes everything 0444/0555 and every write EROFS. Owner: the mounting user.
- ``chmod`` is accepted and ignored (modes follow the kind); ``chown`` is accepted when it names the
  mounting user (or -1), else EPERM; ``utimens`` is accepted and ignored (times are Orion's).
- xattrs: ``user.orion.tags`` (one tag a line; set replaces the set), ``user.orion.tag.<tag>``
  (present / set / remove one tag; value ignored, reads as empty), ``user.orion.link`` (JSON of
  ``create_link``), ``user.orion.id``, ``user.orion.type``, ``user.orion.systemtags`` (read-only:
  EPERM). Unknown names: ENODATA on get, ENOTSUP on set. ``security.*``/``system.*``/``trusted.*``:
  ENODATA without a request. Tag writes on untaggable kinds: ENOTSUP. Values over 64 KiB: E2BIG.
  A new file not uploaded yet: type ``file``, empty tags and system tags; ENODATA for id and link.
- open files follow their file, not its name (handles hold the node); one unlinked or renamed over
  while open is deleted in Orion at once and lives on locally, for its descriptors, under libfuse's
  hidden name (``HIDDEN_PREFIX``; no ``hard_remove``, so ``fstat`` still works on it).
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import mfusepy

from orionfs import exceptions as exc
from orionfs.exceptions import UnknownHandle
from orionfs.fs.cache import CachedSession
from orionfs.fs.openfiles import OpenFileTable, StagedFile
from orionfs.fuse.errors import _boundary, _fail

logger = logging.getLogger(__name__)

ENOATTR = getattr(errno, "ENOATTR", errno.ENODATA)

#: st_blksize: readers (cp, cat) size their buffers from it; the kernel reads up to 1 MiB at once.
BLOCK_SIZE: int = 1 << 20
#: Longest name of one path segment, in bytes of UTF-8 (Orion's limit and NAME_MAX).
NAME_MAX: int = 255
#: Largest xattr value accepted (the kernel's XATTR_SIZE_MAX).
XATTR_SIZE_MAX: int = 64 * 1024
#: statfs: the capacity shown by df (Orion has no quota the client can read).
STATFS_CAPACITY: int = 1 << 50
STATFS_FRSIZE: int = 4096

FOLDER_KINDS = frozenset({"folder", "shard_collection"})
TAGGABLE_KINDS = frozenset({"file", "dataset", "shard_collection"})
XATTR_PREFIX = "user.orion."
XATTR_TAGS = "user.orion.tags"
XATTR_TAG_PREFIX = "user.orion.tag."
XATTR_LINK = "user.orion.link"
XATTR_ID = "user.orion.id"
XATTR_TYPE = "user.orion.type"
XATTR_SYSTEMTAGS = "user.orion.systemtags"
READ_ONLY_XATTRS = frozenset({XATTR_LINK, XATTR_ID, XATTR_TYPE, XATTR_SYSTEMTAGS})
_XATTR_PREFIX_BYTES = XATTR_PREFIX.encode()
LOCAL_XATTR_NAMESPACES = ("security.", "system.", "trusted.")
XATTR_CREATE, XATTR_REPLACE = 1, 2
#: libfuse renames an open file that is unlinked (or replaced by a rename) to a name like
#: ``.fuse_hidden0000000200000001`` in its folder, so that its descriptors keep a path (``fstat``
#: needs one). Such names live only in this mount (the open-file table): no request is made for
#: them and Orion never sees them. (A name of that exact form cannot be created through the mount.)
HIDDEN_PREFIX = ".fuse_hidden"
_HIDDEN_NAME = re.compile(r"\.fuse_hidden[0-9a-f]{16}\Z")
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2

Entry = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])

#: What the xattrs of a new file not uploaded yet show: a file with no tags (no id, no link).
PENDING_ENTRY: Entry = {"resource_type": "file", "id": None, "tags": [], "systemtags": []}


# -- attributes ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def timestamp_ns(value: str | None) -> int:
    """Nanoseconds since the epoch of an ISO 8601 timestamp (0 if absent or unreadable)."""
    if not value:
        return 0
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    seconds = int(moment.timestamp())
    return seconds * 1_000_000_000 + moment.microsecond * 1000


@dataclass(frozen=True)
class MountOptions:
    """What the operations class needs to know about the mount (built once by orionfs.daemon.mount)."""

    read_only: bool = False
    ttl: float = 5.0
    uid: int = -1
    gid: int = -1
    staging_dir: Path | None = None
    recovery_dir: Path | None = None


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent or "/", name


def _is_hidden(path: str | None) -> bool:
    """True for libfuse's name of an open, unlinked file (local only, see HIDDEN_PREFIX)."""
    return path is not None and _HIDDEN_NAME.match(_split(path)[1]) is not None


def _check_name(path: str) -> None:
    """ENAMETOOLONG for a segment over 255 bytes; EINVAL for an empty one."""
    for segment in path.split("/")[1:]:
        if len(os.fsencode(segment)) > NAME_MAX:
            raise _fail(errno.ENAMETOOLONG)


class OrionFS(mfusepy.Operations):
    """The mount's operations: a thin layer over CachedSession and the open-file table."""

    use_ns = True

    def __init__(self, cache: CachedSession, options: MountOptions | None = None) -> None:
        self.cache = cache
        self.options = options or MountOptions()
        self.uid = self.options.uid if self.options.uid >= 0 else os.getuid()
        self.gid = self.options.gid if self.options.gid >= 0 else os.getgid()
        self.files = OpenFileTable(
            cache, staging_dir=self.options.staging_dir, recovery_dir=self.options.recovery_dir
        )
        self._mounted_ns = time.time_ns()
        #: Set when the mount process is told to stop (orionfs.daemon.mount): nothing more is uploaded.
        self.stopping = False

    # -- helpers -----------------------------------------------------------------------------------

    def _writable_check(self) -> None:
        if self.options.read_only:
            raise _fail(errno.EROFS)

    def _entry(self, path: str) -> Entry:
        """The Entry of a mount path (raises NotFoundResponse; ENOENT, locally, for a hidden name
        no open file holds)."""
        if _is_hidden(path):
            node = self.files.node_at(path)
            if node is None or not node.entry:
                raise _fail(errno.ENOENT)
            return node.entry
        return self.cache.lookup(path)

    def _mode(self, entry: Entry) -> int:
        kind = entry.get("resource_type")
        read_only = self.options.read_only
        if kind in FOLDER_KINDS:
            writable = kind == "folder" and entry.get("id") is not None and not read_only
            return stat.S_IFDIR | (0o755 if writable else 0o555)
        writable = kind == "file" and not read_only
        return stat.S_IFREG | (0o644 if writable else 0o444)

    def _attrs(self, entry: Entry, node: StagedFile | None = None) -> dict[str, Any]:
        mode = self._mode(entry)
        size = int(entry.get("size") or 0)
        mtime = timestamp_ns(entry.get("modified")) or timestamp_ns(entry.get("created"))
        if node is not None and (node.loaded or node.dirty):
            size = node.size
            mtime = max(mtime, node.mtime_ns)
        return self._stat(mode, size, mtime, timestamp_ns(entry.get("created")) or mtime)

    def _stat(self, mode: int, size: int, mtime: int, ctime: int) -> dict[str, Any]:
        return {
            "st_mode": mode,
            "st_nlink": 2 if stat.S_ISDIR(mode) else 1,
            "st_uid": self.uid,
            "st_gid": self.gid,
            "st_size": size,
            "st_blocks": (size + 511) // 512,
            "st_blksize": BLOCK_SIZE,
            "st_mtime": mtime,
            "st_atime": mtime,
            "st_ctime": ctime,
        }

    def _pending_attrs(self, node: StagedFile) -> dict[str, Any]:
        mode = stat.S_IFREG | (0o444 if self.options.read_only else 0o644)
        return self._stat(mode, node.size, node.mtime_ns, node.mtime_ns)

    def _folder_for_create(self, path: str) -> None:
        """Raise unless the parent of ``path`` is a real folder we may create in."""
        parent, _ = _split(path)
        entry = self._entry(parent)
        kind = entry.get("resource_type")
        if kind not in FOLDER_KINDS:
            raise _fail(errno.ENOTDIR)
        if kind != "folder" or entry.get("id") is None:
            raise _fail(errno.EACCES)  # collections are read-only; virtual folders hold nothing new

    # -- metadata ----------------------------------------------------------------------------------

    @_boundary
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        """Attributes from the stat cache (the listing filled it), or the open node's."""
        # fstat: the open file's own node answers, whatever its name is now. libfuse may hand us
        # no path, or a hidden name in a folder removed since (an unlinked open file), and only
        # the handle still knows the file.
        node = self._handle_node(fh)
        if node is not None:
            if node.pending or not node.entry:
                return self._pending_attrs(node)
            return self._attrs(node.entry, node)
        if path is None:
            raise _fail(errno.ENOENT)
        _check_name(path)
        node = self.files.node_at(path)
        if node is not None and node.pending:
            return self._pending_attrs(node)
        if node is None and _is_hidden(path):
            raise _fail(errno.ENOENT)  # libfuse probing for a free hidden name: no request
        if path == "/":
            return self._stat(
                stat.S_IFDIR | (0o555 if self.options.read_only else 0o755),
                0,
                self._mounted_ns,
                self._mounted_ns,
            )
        entry = node.entry if node is not None and node.entry else self._entry(path)
        return self._attrs(entry, node)

    def _handle_node(self, fh: int | None) -> StagedFile | None:
        """The node of file handle ``fh``; None for no handle or a folder's (not in the table)."""
        if not fh:
            return None
        try:
            return self.files.handle(fh).node
        except UnknownHandle:
            return None

    @_boundary
    def readdir(self, path: str, fh: int) -> Iterable[str | tuple[str, dict[str, int], int]]:
        """The folder's display names (every page of its listing), plus new files not yet uploaded."""
        entries = self.cache.listdir(path)
        result: list[str | tuple[str, dict[str, int], int]] = [".", ".."]
        result.extend((name, {"st_mode": self._mode(entry)}, 0) for name, entry in entries.items())
        for name in self.files.pending_children(path):
            if name not in entries:
                result.append((name, {"st_mode": stat.S_IFREG | 0o644}, 0))
        return result

    @_boundary
    def access(self, path: str, amode: int) -> int:
        """F_OK/R_OK/X_OK from the kind; W_OK refused on read-only kinds and mounts."""
        attrs = self.getattr(path)
        if amode & os.W_OK:
            if self.options.read_only:
                raise _fail(errno.EROFS)
            if not attrs["st_mode"] & stat.S_IWUSR:
                raise _fail(errno.EACCES)
        return 0

    @_boundary
    def statfs(self, path: str) -> dict[str, int]:
        """Sane numbers for df: a large capacity, nothing used that the client can know of."""
        blocks = STATFS_CAPACITY // STATFS_FRSIZE
        return {
            "f_bsize": BLOCK_SIZE,
            "f_frsize": STATFS_FRSIZE,
            "f_blocks": blocks,
            "f_bfree": blocks,
            "f_bavail": blocks,
            "f_files": 1 << 32,
            "f_ffree": 1 << 32,
            "f_favail": 1 << 32,
            "f_namemax": NAME_MAX,
        }

    @_boundary
    def chmod(self, path: str, mode: int) -> int:
        """Accepted and ignored: modes follow the kind (documented policy)."""
        self._writable_check()
        self.getattr(path)
        return 0

    @_boundary
    def chown(self, path: str, uid: int, gid: int) -> int:
        """Accepted when it names the mounting user (or -1), else EPERM."""
        self._writable_check()
        self.getattr(path)
        if uid not in (-1, self.uid) or gid not in (-1, self.gid):
            raise _fail(errno.EPERM)
        return 0

    @_boundary
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        """Accepted and ignored: times are Orion's ``modified`` (documented policy)."""
        self._writable_check()
        self.getattr(path)
        return 0

    # -- namespace ---------------------------------------------------------------------------------

    @_boundary
    def mkdir(self, path: str, mode: int) -> int:
        """One create_paths request."""
        self._writable_check()
        _check_name(path)
        self._folder_for_create(path)
        self.cache.mkdir(path)
        return 0

    @_boundary
    def rmdir(self, path: str) -> int:
        """Remove an empty folder; ENOTEMPTY otherwise (also for files still being written in it)."""
        self._writable_check()
        if self.files.has_nodes_below(path):
            raise _fail(errno.ENOTEMPTY)
        self.cache.rmdir(path)
        return 0

    @_boundary
    def unlink(self, path: str) -> int:
        """Remove a file (by id); a new file never uploaded is just forgotten. A file still open
        keeps its content locally for its descriptors (downloaded first, if need be)."""
        self._writable_check()
        if _is_hidden(path):  # the last close of an unlinked open file: it is already gone
            self.files.detach(path)
            return 0
        node = self.files.node_at(path)
        if node is not None and node.pending:
            self.files.detach(path)
            return 0
        entry = self._entry(path)
        if entry.get("resource_type") in FOLDER_KINDS:
            raise _fail(errno.EISDIR)
        self.files.keep_local(path)
        self.cache.unlink(path)
        self.files.detach(path)
        return 0

    @_boundary
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        """One assign_paths request (whatever a folder holds); over an existing file the target is
        replaced after the assign, never before. A new file never uploaded is renamed locally and
        uploaded under its final name."""
        self._writable_check()
        _check_name(new)
        if flags & RENAME_EXCHANGE:
            raise _fail(errno.EINVAL)
        if old == new:
            return 0
        if new.startswith(old.rstrip("/") + "/"):
            raise _fail(errno.EINVAL)
        if _is_hidden(new) and _split(new)[0] == _split(old)[0]:
            return self._hide(old, new)
        if _is_hidden(new):
            raise _fail(errno.EACCES)
        if _is_hidden(old):
            raise _fail(errno.ENOENT)  # an unlinked file cannot get a name back
        target = self._lookup_optional(new)
        if flags & RENAME_NOREPLACE and (target is not None or self._pending(new)):
            raise _fail(errno.EEXIST)
        node = self.files.node_at(old)
        if node is not None and node.pending:
            self._folder_for_create(new)
            if target is not None:
                if target.get("resource_type") in FOLDER_KINDS:
                    raise _fail(errno.EISDIR)
                if target.get("resource_type") != "file":
                    self.cache.unlink(new)
                    target = None
            self.files.rename_pending(old, new, target)
            return 0
        source = self._entry(old)
        if target is not None:
            source_is_dir = source.get("resource_type") in FOLDER_KINDS
            target_is_dir = target.get("resource_type") in FOLDER_KINDS
            if target_is_dir and not source_is_dir:
                raise _fail(errno.EISDIR)
            if source_is_dir and not target_is_dir:
                raise _fail(errno.ENOTDIR)
        if target is not None:
            self.files.keep_local(new)  # its descriptors outlive the replaced file
        self.cache.rename(old, new)
        if self.files.node_at(new) is not None:
            self.files.detach(new)
        self.files.moved(old, new)
        return 0

    def _hide(self, old: str, hidden: str) -> int:
        """libfuse hides an open file that is unlinked or renamed over: it is removed from Orion
        (a new file never uploaded: nothing to remove) and lives on, locally, under the hidden
        name for the descriptors still open on it, which read, write, fstat and ftruncate it like
        on a local disk; it is never uploaded again, and goes away with the last close."""
        node = self.files.node_at(old)
        if node is None or not node.pending:
            entry = self._entry(old)
            if entry.get("resource_type") in FOLDER_KINDS:
                raise _fail(errno.EISDIR)
            self.files.keep_local(old)
            self.cache.unlink(old)
        self.files.hide(old, hidden)
        return 0

    def _lookup_optional(self, path: str) -> Entry | None:
        if _is_hidden(path) and self.files.node_at(path) is None:
            return None
        try:
            return self._entry(path)
        except exc.NotFoundResponse:
            return None

    def _pending(self, path: str) -> bool:
        node = self.files.node_at(path)
        return node is not None and node.pending

    # -- files -------------------------------------------------------------------------------------

    @_boundary
    def open(self, path: str, flags: int) -> int:
        """Open a file; nothing is downloaded here (reads are ranged, writes staged lazily)."""
        accmode = flags & os.O_ACCMODE
        writable = accmode != os.O_RDONLY
        truncate = bool(flags & os.O_TRUNC) and writable
        if writable or truncate:
            self._writable_check()
        node = self.files.node_at(path)
        if node is not None and node.pending:
            return self.files.open(path, {}, flags, writable, truncate)
        entry = node.entry if node is not None and node.entry else self._entry(path)
        kind = entry.get("resource_type")
        if kind in FOLDER_KINDS:
            raise _fail(errno.EISDIR)
        if writable and kind != "file":
            raise _fail(errno.EACCES)
        return self.files.open(path, entry, flags, writable, truncate)

    @_boundary
    def create(self, path: str, mode: int, flags: int = os.O_WRONLY | os.O_CREAT) -> int:
        """A new file, local until its first flush (O_EXCL: EEXIST where the name is taken)."""
        self._writable_check()
        _check_name(path)
        if _is_hidden(path) and self.files.node_at(path) is None:
            raise _fail(errno.EACCES)  # libfuse's names for unlinked open files (HIDDEN_PREFIX)
        if self._pending(path):
            if flags & os.O_EXCL:
                raise _fail(errno.EEXIST)
            return self.files.open(path, {}, flags, True, bool(flags & os.O_TRUNC))
        existing = self._lookup_optional(path)
        if existing is not None:
            if flags & os.O_EXCL:
                raise _fail(errno.EEXIST)
            return self.open(path, flags & ~os.O_CREAT)
        self._folder_for_create(path)
        return self.files.create(path, flags)

    @_boundary
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        """Ranged reads with read-ahead, or the staged copy."""
        return self.files.read(fh, size, offset)

    @_boundary
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        """Into the staged copy; uploaded on flush/fsync/release."""
        self._writable_check()
        return self.files.write(fh, data, offset)

    @_boundary
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        """Truncate an open file's staged copy (``ftruncate``: the handle's, whatever its name
        now), or a closed file at once (one upload)."""
        self._writable_check()
        if length < 0:
            raise _fail(errno.EINVAL)
        if fh is not None:
            self.files.truncate_handle(fh, length)
        elif path is None:
            raise _fail(errno.EBADF)
        elif self.files.node_at(path) is None:
            entry = self._entry(path)
            if entry.get("resource_type") in FOLDER_KINDS:
                raise _fail(errno.EISDIR)
            if entry.get("resource_type") != "file":
                raise _fail(errno.EACCES)
            self.files.truncate(path, length, entry)
        else:
            self.files.truncate(path, length, None)
        return 0

    @_boundary
    def flush(self, path: str, fh: int) -> int:
        """Every close(): upload what changed; an upload error is close()'s error."""
        self.files.flush(fh)
        return 0

    @_boundary
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        """Upload what changed; an upload error is fsync()'s error."""
        self.files.flush(fh)
        return 0

    @_boundary
    def release(self, path: str, fh: int) -> int:
        """Last close: upload what is still unsaved, or keep it in the recovery folder."""
        self.files.release(fh)
        return 0

    # -- extended attributes -----------------------------------------------------------------------

    def _xattr_entry(self, path: str, materialize: bool = False) -> Entry:
        """The Entry whose attributes a path shows. A new file not yet uploaded has none, unless
        ``materialize`` (tag writes): then it is uploaded first, so the tags have a resource."""
        node = self.files.node_at(path)
        if node is not None and node.pending and materialize:
            node.upload(self.cache)
        if node is not None and node.entry:
            return node.entry
        if node is not None and node.pending:
            return PENDING_ENTRY
        if path == "/":
            return {"resource_type": "folder", "id": None, "tags": [], "systemtags": []}
        return self._entry(path)

    @_boundary
    def listxattr(self, path: str) -> list[str]:
        """The user.orion.* names that apply to the kind (answered from the cached entry)."""
        entry = self._xattr_entry(path)
        if entry is PENDING_ENTRY:
            return [XATTR_TYPE, XATTR_TAGS, XATTR_SYSTEMTAGS]
        names = [XATTR_TYPE]
        if entry.get("id") is not None:
            names.append(XATTR_ID)
        kind = entry.get("resource_type")
        if kind in TAGGABLE_KINDS:
            names += [XATTR_TAGS, XATTR_SYSTEMTAGS, XATTR_LINK]
            names += [XATTR_TAG_PREFIX + tag for tag in entry.get("tags") or []]
        elif kind == "shard":
            names.append(XATTR_LINK)
        return names

    @_boundary
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        """Values of the user.orion.* attributes; security/system/trusted probes: ENODATA, locally."""
        if name.startswith(LOCAL_XATTR_NAMESPACES) or not name.startswith(XATTR_PREFIX):
            raise _fail(ENOATTR)
        entry = self._xattr_entry(path)
        kind = entry.get("resource_type")
        if name == XATTR_TYPE:
            return str(kind).encode()
        if entry is PENDING_ENTRY:
            # A new file not uploaded yet: a file with no tags; no id or link until it exists.
            if name in (XATTR_TAGS, XATTR_SYSTEMTAGS):
                return b""
            raise _fail(ENOATTR)
        if name == XATTR_ID:
            if entry.get("id") is None:
                raise _fail(ENOATTR)
            return str(entry["id"]).encode()
        taggable = kind in TAGGABLE_KINDS
        if name == XATTR_LINK and (taggable or kind == "shard"):
            return json.dumps(self.cache.link(path), sort_keys=True).encode()
        if not taggable:
            raise _fail(ENOATTR)
        if name == XATTR_TAGS:
            return _lines(self.cache.tags(path))
        if name == XATTR_SYSTEMTAGS:
            return _lines(self.cache.systemtags(path))
        if name.startswith(XATTR_TAG_PREFIX):
            if name[len(XATTR_TAG_PREFIX) :] in self.cache.tags(path):
                return b""
        raise _fail(ENOATTR)

    @_boundary
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        """Set the tag list, or one tag; EPERM for the read-only names, ENOTSUP for others."""
        self._writable_check()
        if len(value) > XATTR_SIZE_MAX:
            raise _fail(errno.E2BIG)
        if name in READ_ONLY_XATTRS:
            self._xattr_entry(path)
            raise _fail(errno.EPERM)
        if name != XATTR_TAGS and not name.startswith(XATTR_TAG_PREFIX):
            raise _fail(errno.ENOTSUP)
        entry = self._xattr_entry(path, materialize=True)
        if entry.get("resource_type") not in TAGGABLE_KINDS:
            raise _fail(errno.ENOTSUP)
        if name == XATTR_TAGS:
            text = value.decode("utf-8", errors="strict")
            tags = list(dict.fromkeys(t.strip() for t in text.splitlines() if t.strip()))
            self.cache.set_tags(path, tags)
            return 0
        tag = name[len(XATTR_TAG_PREFIX) :]
        if not tag:
            raise _fail(errno.EINVAL)
        if options & (XATTR_CREATE | XATTR_REPLACE):
            present = tag in self.cache.tags(path)
            if options & XATTR_CREATE and present:
                raise _fail(errno.EEXIST)
            if options & XATTR_REPLACE and not present:
                raise _fail(ENOATTR)
        self.cache.add_tag(path, tag)
        return 0

    @_boundary
    def removexattr(self, path: str, name: str) -> int:
        """Remove one tag (ENODATA if absent), or every tag (``user.orion.tags``)."""
        self._writable_check()
        if name in READ_ONLY_XATTRS:
            self._xattr_entry(path)
            raise _fail(errno.EPERM)
        if name != XATTR_TAGS and not name.startswith(XATTR_TAG_PREFIX):
            raise _fail(ENOATTR)
        entry = self._xattr_entry(path)
        if entry.get("resource_type") not in TAGGABLE_KINDS:
            raise _fail(errno.ENOTSUP)
        if entry is PENDING_ENTRY:  # a new file not uploaded yet has no tags
            if name == XATTR_TAGS:
                return 0
            raise _fail(ENOATTR)
        if name == XATTR_TAGS:
            self.cache.set_tags(path, [])
            return 0
        tag = name[len(XATTR_TAG_PREFIX) :]
        if tag not in self.cache.tags(path):
            raise _fail(ENOATTR)
        self.cache.remove_tag(path, tag)
        return 0

    # -- life cycle --------------------------------------------------------------------------------

    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        """Kernel caching from the TTL (libfuse 3 config; libfuse 2 takes the mount options)."""
        if config_3 is not None and mfusepy.fuse_version_major == 3:
            config_3.entry_timeout = self.options.ttl
            config_3.attr_timeout = self.options.ttl
            config_3.negative_timeout = self.options.ttl
            # No hard_remove: libfuse hides an open file that is unlinked (see HIDDEN_PREFIX), so
            # fstat on its descriptors still has a path (with hard_remove it is ESTALE).
            config_3.hard_remove = 0
        if conn_info is not None and mfusepy.fuse_version_major == 3:
            conn_info.max_read = BLOCK_SIZE  # must equal the max_read mount option
        logger.info(
            "mounted (libfuse %s.%s)", mfusepy.fuse_version_major, mfusepy.fuse_version_minor
        )

    def destroy(self, path: str) -> None:
        """Unmounted: save what is unsaved (upload; after a stop, the recovery folder), stop the
        fetch workers, drop staging files."""
        if self.stopping:
            self.files.stop()
            self.files.abandon()
        self.files.close()


def _lines(values: Iterable[str]) -> bytes:
    return "\n".join(values).encode()


