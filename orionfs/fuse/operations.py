"""The FUSE operations: POSIX calls -> Namespace calls, Entries -> attributes, errors -> errnos.

``OrionFS`` is a thin translation layer over ``orionfs.fs.namespace.Namespace`` (which owns every
rule of the mount) and ``orionfs.fuse.xattrs.Xattrs``. Every method goes through ``boundary`` once,
so the binding always gets an errno, and the call is counted in ``calls``.

Attributes (docs/mount.md): folder -> directory 0755; File -> regular file 0644; Dataset and Shard ->
regular file 0444; ShardCollection and virtual folders (no id) -> directory 0555. ``--read-only``
makes everything 0444/0555. ``--file-mode``, ``--dir-mode`` and ``--umask`` change the writable
modes (``MountOptions.file_mode``/``dir_mode``; read-only kinds lose the write bits). Owner: the
mounting user (``--uid``/``--gid``). ``chmod`` is accepted and ignored (modes follow the kind);
``chown`` is accepted when it names the mounting user (or -1), else EPERM; ``utimens`` is accepted
and ignored (times are Orion's). At the mount root, ``.Trash-<uid>`` is a read-only marker file and
``.Trash`` cannot be made (no desktop trash: orionfs.fs.trash); changes to those names are EPERM.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mfusepy

from orionfs.exceptions import NameTooLong
from orionfs.fs.cache import CachedSession
from orionfs.fs.entry import Entry
from orionfs.fs.namespace import NAME_MAX, Namespace, check_name
from orionfs.fs.openfiles import OpenFileTable
from orionfs.fs.reads import ReadPath
from orionfs.fs.trash import is_trash_marker, is_trash_name
from orionfs.fs.writeback import WriteBackOptions
from orionfs.fuse.attrs import BLOCK_SIZE, DOT_ATTRS, AttrRules, Attrs
from orionfs.fuse.calls import Calls
from orionfs.fuse.dirs import DirHandles
from orionfs.fuse.errors import boundary, fail
from orionfs.fuse.inodes import ROOT_INODE
from orionfs.fuse.stats import CacheCounts, MountStats
from orionfs.fuse.xattrs import Xattrs

logger = logging.getLogger(__name__)

#: statfs: the capacity shown by df (Orion has no quota the client can read).
STATFS_CAPACITY: int = 1 << 50
STATFS_FRSIZE: int = 4096
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
#: utimensat's special nanoseconds, as libfuse passes them (seconds 0): now, and leave as is.
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2

#: A row of a folder snapshot: display name, and its Entry (None for "." and "..").
DirRow = tuple[str, Entry | None]
#: What readdir yields: name, attributes, offset of the next entry.
DirEntry = tuple[str, Attrs, int]


@dataclass(frozen=True)
class MountOptions:
    """What the operations class needs to know about the mount (built once by the daemon)."""

    read_only: bool = False
    ttl: float = 5.0
    uid: int = -1
    gid: int = -1
    #: Modes of writable files and folders (``--umask``/``--file-mode``/``--dir-mode``, via
    #: orionfs.daemon.options.permission_modes); read-only kinds lose the write bits.
    file_mode: int = 0o644
    dir_mode: int = 0o755
    staging_dir: Path | None = None
    recovery_dir: Path | None = None
    #: ``--write-back DELAY``: close() returns once staged, uploads run in the background.
    write_back: WriteBackOptions | None = None


class OrionFS(mfusepy.Operations):
    """The mount's operations: a thin layer over the Namespace."""

    use_ns = True

    def __init__(
        self,
        cache: CachedSession,
        options: MountOptions | None = None,
        reads: ReadPath | None = None,
    ) -> None:
        self.options = options or MountOptions()
        self.uid = self.options.uid if self.options.uid >= 0 else os.getuid()
        self.gid = self.options.gid if self.options.gid >= 0 else os.getgid()
        self.files = OpenFileTable(
            cache,
            staging_dir=self.options.staging_dir,
            recovery_dir=self.options.recovery_dir,
            reads=reads,  # the data cache, read-ahead budget and keep_cache (orionfs.fs.reads)
            root=cache.root,
            write_back=self.options.write_back,
        )
        self.namespace = Namespace(cache, self.files, read_only=self.options.read_only)
        self.xattrs = Xattrs(self.namespace)
        self.attrs = AttrRules(
            self.uid,
            self.gid,
            self.options.file_mode,
            self.options.dir_mode,
            self.options.read_only,
        )
        self.calls = Calls()
        self.dirs: DirHandles[DirRow] = DirHandles()
        self._mounted_ns = time.time_ns()
        self._started = time.monotonic()
        #: Set when the mount process is told to stop (orionfs.daemon): nothing more is uploaded.
        self.stopping = False

    def calls_in_flight(self) -> list[tuple[str, float]]:
        """(operation, seconds running) of every FUSE call being served now."""
        return self.calls.in_flight()

    def stats(self) -> MountStats:
        """The mount's FUSE calls by operation and its cache's counters, now (orionfs.fuse.stats).
        Not a FUSE operation: not counted."""
        return MountStats(
            uptime=time.monotonic() - self._started,
            operations=self.calls.counts(),
            in_flight=len(self.calls.in_flight()),
            cache=CacheCounts.of(self.namespace.cache.stats()),
            workers=self.calls.workers(),
        )

    # -- metadata ----------------------------------------------------------------------------------

    @boundary
    def getattr(self, path: str | None, fh: int | None = None) -> Attrs:
        """Attributes from the stat cache (the listing filled it), or the open file's.

        ``fstat``: the handle's own file answers, whatever its name is now (libfuse may hand over
        no path, or a hidden name in a folder removed since)."""
        entry = self.namespace.handle_entry(fh) if fh else None
        if entry is not None:
            return self.attrs.of(entry)
        if path is None:
            raise fail(errno.ENOENT)
        check_name(path)
        if path == "/":
            mode = self.options.dir_mode & ~(0o222 if self.options.read_only else 0)
            return self.attrs.local(stat.S_IFDIR | mode, self._mounted_ns, ROOT_INODE)
        if is_trash_marker(path):  # no desktop trash here (orionfs.fs.trash)
            return self.attrs.local(stat.S_IFREG | 0o444, self._mounted_ns)
        return self.attrs.of(self.namespace.entry(path))

    def known_absent(self, path: str) -> bool:
        """True when ``getattr(path)`` (no handle) would answer ENOENT with no request: the hot
        path of a probe for an absent name, answered without an exception (orionfs.fuse.binding).
        False for anything else, which ``getattr`` then answers (an over-long name, the root, the
        trash markers)."""
        if path == "/" or is_trash_marker(path):
            return False
        try:
            check_name(path)
        except NameTooLong:  # getattr answers ENAMETOOLONG
            return False
        return self.namespace.known_absent(path)

    @staticmethod
    def _no_trash(*paths: str | None) -> None:
        """EPERM for a change of a trash name at the mount root (orionfs.fs.trash)."""
        if any(is_trash_name(path) for path in paths):
            raise fail(errno.EPERM)

    @boundary
    def opendir(self, path: str) -> int:
        """A folder handle; its entries are read at its first readdir (nothing fetched here)."""
        return self.dirs.open()

    @boundary
    def readdir(self, path: str, fh: int, offset: int = 0) -> Iterator[DirEntry]:
        """The folder's entries from ``offset``: (display name, full attributes, offset of the
        next entry), so that the kernel keeps them (readdirplus) instead of looking each one up.

        Offset 0 takes a snapshot of the folder for the handle (every page of its listing, new
        files not uploaded yet, and open files as getattr shows them); later offsets, the kernel's
        next batches, resume in that snapshot (orionfs.fuse.dirs)."""
        rows = self.dirs.read(fh, offset, lambda: self._dir_rows(path))
        return (
            (name, DOT_ATTRS if entry is None else self.attrs.of(entry), following)
            for (name, entry), following in rows
        )

    def _dir_rows(self, path: str) -> Sequence[DirRow]:
        return [(".", None), ("..", None), *self.namespace.listdir(path).items()]

    @boundary
    def releasedir(self, path: str | None, fh: int) -> int:
        """The folder handle is closed: its snapshot goes."""
        self.dirs.release(fh)
        return 0

    @boundary
    def access(self, path: str, amode: int) -> int:
        """F_OK/R_OK/X_OK from the kind; W_OK refused on read-only kinds and mounts."""
        attrs = self.getattr(path)
        if amode & os.W_OK:
            if self.options.read_only:
                raise fail(errno.EROFS)
            if not attrs.mode & stat.S_IWUSR:
                raise fail(errno.EACCES)
        return 0

    @boundary
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

    @boundary
    def chmod(self, path: str, mode: int) -> int:
        """Accepted and ignored: modes follow the kind (documented policy)."""
        self._writable()
        self.getattr(path)
        return 0

    @boundary
    def chown(self, path: str, uid: int, gid: int) -> int:
        """Accepted when it names the mounting user (or -1), else EPERM; from root, accepted and
        ignored (``sudo tar x``, ``sudo rsync -a``, ``sudo cp -a``: Orion keeps no owners), as
        rclone and gcsfuse do. default_permissions still keeps other users out."""
        self._writable()
        self.getattr(path)
        if mfusepy.fuse_get_context()[0] == 0:
            return 0
        if uid not in (-1, self.uid) or gid not in (-1, self.gid):
            raise fail(errno.EPERM)
        return 0

    @boundary
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        """Keep the modification time the writer sets (one request; see Namespace.set_mtime);
        the access time is not kept (it shows the modification time)."""
        self._writable()
        mtime = time.time_ns() if times is None else times[1]
        if mtime == UTIME_NOW:
            mtime = time.time_ns()
        if mtime == UTIME_OMIT:
            self.getattr(path)
        else:
            self.namespace.set_mtime(path, mtime)
        return 0

    def _writable(self) -> None:
        if self.options.read_only:
            raise fail(errno.EROFS)

    # -- namespace ---------------------------------------------------------------------------------

    @boundary
    def mkdir(self, path: str, mode: int) -> int:
        """One create_paths request."""
        if is_trash_marker(path):
            raise fail(errno.EEXIST)
        self._no_trash(path)
        self.namespace.mkdir(path)
        return 0

    @boundary
    def rmdir(self, path: str) -> int:
        """Remove an empty folder; ENOTEMPTY otherwise (also for files still being written in it)."""
        self.namespace.rmdir(path)
        return 0

    @boundary
    def unlink(self, path: str) -> int:
        """Remove a file (by id); see Namespace.unlink."""
        self._no_trash(path)
        self.namespace.unlink(path)
        return 0

    @boundary
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        """One assign_paths request; see Namespace.rename. RENAME_EXCHANGE is EINVAL."""
        if flags & RENAME_EXCHANGE:
            raise fail(errno.EINVAL)
        self._no_trash(old, new)
        self.namespace.rename(old, new, noreplace=bool(flags & RENAME_NOREPLACE))
        return 0

    # -- files -------------------------------------------------------------------------------------

    @boundary
    def open(self, path: str, flags: int) -> int:
        """Open a file; nothing is downloaded here (reads are ranged, writes staged lazily)."""
        self._no_trash(path)
        return self.namespace.open(path, flags)

    @boundary
    def create(self, path: str, mode: int, flags: int = os.O_WRONLY | os.O_CREAT) -> int:
        """A new file, local until its first flush (O_EXCL: EEXIST where the name is taken)."""
        self._no_trash(path)
        return self.namespace.create(path, flags)

    @boundary
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        """Ranged reads with read-ahead, or the staged copy."""
        return self.files.read(fh, size, offset)

    @boundary
    def write(self, path: str, data: bytes | memoryview, offset: int, fh: int) -> int:
        """Into the staged copy; uploaded on flush/fsync/release. ``data`` is valid only during
        the call (a view of libfuse's buffer): it is copied, never kept."""
        self._writable()
        return self.files.write(fh, data, offset)

    @boundary
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        """Truncate an open file's staged copy, or a closed file at once (one upload)."""
        self._no_trash(path)
        self.namespace.truncate(path, length, fh)
        return 0

    @boundary
    def flush(self, path: str, fh: int) -> int:
        """Every close(): upload what changed; an upload error is close()'s error."""
        self.files.flush(fh)
        return 0

    @boundary
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        """Upload what changed, now (write-back too); an upload error is fsync()'s error."""
        self.files.fsync(fh)
        return 0

    @boundary
    def release(self, path: str, fh: int) -> int:
        """Last close: upload what is still unsaved, or keep it in the recovery folder."""
        self.files.release(fh)
        return 0

    # -- extended attributes -----------------------------------------------------------------------

    @boundary
    def listxattr(self, path: str) -> list[str]:
        """The user.orion.* names that apply to the kind (answered from the cached entry)."""
        return self.xattrs.names(path)

    @boundary
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        """Values of the user.orion.* attributes."""
        return self.xattrs.get(path, name)

    @boundary
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        """Set the tag list, or one tag (orionfs.fuse.xattrs)."""
        self._writable()
        self.xattrs.set(path, name, value, options)
        return 0

    @boundary
    def removexattr(self, path: str, name: str) -> int:
        """Remove one tag, or every tag (orionfs.fuse.xattrs)."""
        self._writable()
        self.xattrs.remove(path, name)
        return 0

    # -- life cycle --------------------------------------------------------------------------------

    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        """Kernel caching from the TTL (libfuse 3 config; libfuse 2 takes the mount options)."""
        if config_3 is not None and mfusepy.fuse_version_major == 3:
            config_3.entry_timeout = self.options.ttl
            config_3.attr_timeout = self.options.ttl
            config_3.negative_timeout = self.options.ttl
            # No hard_remove: libfuse hides an open file that is unlinked (see
            # orionfs.fs.namespace), so fstat on its descriptors still has a path.
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
