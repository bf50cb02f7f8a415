"""The libfuse binding: mfusepy's FUSE with the calls orionfs needs changed, the mount options,
and ``run``."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mfusepy

from orionfs.fuse.attrs import BLOCK_SIZE, Attrs
from orionfs.fuse.cstat import StatPacker
from orionfs.fuse.operations import MountOptions, OrionFS
from orionfs.fuse.xattrs import ENOATTR, XATTR_PREFIX, XATTR_STATS

logger = logging.getLogger(__name__)

_XATTR_PREFIX_BYTES = XATTR_PREFIX.encode()
_XATTR_STATS_BYTES = XATTR_STATS.encode()
#: xattr namespaces the mount has nothing in: EOPNOTSUPP, which ``ls`` and libacl remember for the
#: whole device (ENODATA would make them ask again for every file).
_UNSUPPORTED_XATTR_PREFIXES = (b"security.", b"system.", b"trusted.")

#: libfuse 3 readdir flag: the kernel asked for READDIRPLUS (entries with their attributes).
FUSE_READDIR_PLUS: int = 1 << 0
#: libfuse 3 filler flag: the entry's attributes are complete (libfuse then hands the kernel a
#: node id, and the kernel keeps the entry instead of looking it up again).
FUSE_FILL_DIR_PLUS: int = 1 << 1
#: Per libfuse worker thread: whether it keeps its Python thread state (``_keep_thread_state``).
_worker = threading.local()
#: How long the stats value measured by a size query (getxattr with no buffer) answers the read
#: that follows it, so that the two agree.
STATS_MEASURE_SECONDS: float = 1.0


def _copy_out(data: bytes, value: Any, size: int) -> int:
    """An xattr answer: its size for a size query (no buffer), else ``data`` copied into the
    buffer (ERANGE if it does not fit)."""
    if not value:
        return len(data)
    if len(data) > size:
        return -errno.ERANGE
    ctypes.memmove(value, data, len(data))
    return len(data)


def _keep_thread_state() -> bool:
    """Keep this thread's Python thread state for the thread's life; True the first time.

    ctypes gives a callback from a thread Python did not start (every libfuse worker) a new thread
    state, and deletes it when the callback returns: about 10 us of every FUSE call. One
    ``PyGILState_Ensure`` never released keeps the state (and this thread-local) alive. The
    workers live as long as the mount (``max_idle_threads`` in ``fuse_options``), so there are as
    many kept states as workers.
    """
    if getattr(_worker, "kept", False):
        return False
    ctypes.pythonapi.PyGILState_Ensure()
    _worker.kept = True
    return True


def _bypass_page_cache(flags: int) -> bool:
    """Whether a handle opened with ``flags`` writes past the kernel's page cache (FUSE
    ``direct_io``): yes when it is write-only.

    Its writes then go from the writer's buffer straight to the mount, which stages them (and
    keeps the staged copy as the file's cached copy): with the page cache the kernel would also
    copy every byte into pages of its own, which nobody reads, since the next open of the new
    version drops them. A write-only handle cannot be mapped or read, so nothing else changes for
    it; a handle that reads too (``O_RDWR``) keeps the page cache. The kernel drops its pages of
    a range written this way, so a reader holding the file open reads the new bytes.
    """
    return flags & os.O_ACCMODE == os.O_WRONLY


class OrionFUSE(mfusepy.FUSE):
    """mfusepy's FUSE, with readdirplus and offsets, xattr namespaces answered at once, the
    stats xattr, and rename flags (RENAME_NOREPLACE/EXCHANGE) passed on with libfuse 3."""

    def __init__(self, operations: OrionFS, mountpoint: str, **kwargs: Any) -> None:
        self._stats_lock = threading.Lock()
        self._stats_measured: tuple[float, bytes] | None = None
        self._packer = StatPacker()
        super().__init__(operations, mountpoint, **kwargs)  # serves until unmounted

    def _wrapper(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """mfusepy's wrapper of every callback, on a thread that keeps its Python thread state."""
        if _keep_thread_state():
            self.operations.calls.worker_started()
        return super()._wrapper(func, *args, **kwargs)

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:  # noqa: D102
        return self.operations.rename(
            old.decode(self.encoding, self.errors), new.decode(self.encoding, self.errors), flags
        )

    # -- folders -----------------------------------------------------------------------------------

    def readdir_fuse_3(
        self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int
    ) -> int:
        """Entries with nonzero offsets and, when the kernel asks for READDIRPLUS, their full
        attributes flagged FUSE_FILL_DIR_PLUS: the kernel keeps them (no lookup, no getattr per
        entry). With offset 0 on every entry (mfusepy's way) libfuse would send them with node
        id 0, which the kernel ignores."""
        return self._fill_dir(path, buf, filler, offset, fip, bool(flags & FUSE_READDIR_PLUS))

    def readdir_fuse_2(
        self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any
    ) -> int:
        """libfuse 2: entries with offsets, names and types only (no readdirplus)."""
        return self._fill_dir(path, buf, filler, offset, fip, False)

    def _fill_dir(
        self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, plus: bool
    ) -> int:
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        entries: Iterable[tuple[str, Attrs, int]] = self.operations.readdir(
            decoded, fip.contents.fh, offset
        )
        fuse_3 = mfusepy.fuse_version_major == 3
        fill_flags = FUSE_FILL_DIR_PLUS if plus else 0
        raw = bytearray(self._packer.size)  # one struct stat, rewritten for every entry
        st = mfusepy.c_stat.from_buffer(raw)
        pack = self._packer.pack
        encoding, errors = self.encoding, self.errors
        for name, attrs, following in entries:
            if plus:
                raw[:] = pack(attrs)
            else:  # the type, and with use_ino the inode (an inode 0 hides the entry)
                raw[:] = pack(Attrs(attrs.mode, ino=attrs.ino), remember=False)
            encoded = name.encode(encoding, errors)
            if fuse_3:
                full = filler(buf, encoded, st, following, fill_flags)
            else:
                full = filler(buf, encoded, st, following)
            if full:  # the kernel's buffer is full: it asks again from this entry's offset
                break
        return 0

    # -- attributes --------------------------------------------------------------------------------

    def fgetattr(self, path: bytes | None, buf: Any, fip: Any) -> int:
        """mfusepy's getattr, with the ``struct stat`` packed in one call (orionfs.fuse.cstat).
        A name the mount already knows is absent is answered ENOENT at once (no exception, no
        boundary): a probe for an absent name is the commonest lookup of all."""
        fh = (fip.contents if self.raw_fi else fip.contents.fh) if fip else None
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        if fh is None and decoded is not None and self.operations.known_absent(decoded):
            self.operations.calls.tally("getattr", failed=True)
            return -errno.ENOENT
        data = self._packer.pack(self.operations.getattr(decoded, fh))
        ctypes.memmove(buf, data, len(data))
        return 0

    # -- extended attributes -----------------------------------------------------------------------

    def getxattr(self, path: bytes, name: bytes, value: Any, size: int, *args: Any) -> int:
        """Names outside ``user.orion.*`` are answered at once (no decoding, no operation call):
        EOPNOTSUPP for ``security.*``, ``system.*`` and ``trusted.*`` (``ls -l`` probes
        ``security.selinux`` and ``system.posix_acl_access``; with EOPNOTSUPP it stops for the
        whole mount), ENODATA for other ``user.*`` names. ``user.orion.stats`` of the root is the
        mount's stats (not counted)."""
        if not name.startswith(_XATTR_PREFIX_BYTES):
            unsupported = name.startswith(_UNSUPPORTED_XATTR_PREFIXES)
            self.operations.calls.tally("getxattr", failed=True)
            return -errno.EOPNOTSUPP if unsupported else -ENOATTR
        if name == _XATTR_STATS_BYTES and path == b"/":
            return self._stats_xattr(value, size)
        return super().getxattr(path, name, value, size, *args)

    def _stats_xattr(self, value: Any, size: int) -> int:
        """The JSON of ``OrionFS.stats()``. A size query measures a snapshot, and the read right
        after it answers that same snapshot (getfattr sizes its buffer first)."""
        now = time.monotonic()
        with self._stats_lock:
            measured, self._stats_measured = self._stats_measured, None
        if measured is not None and value and now - measured[0] < STATS_MEASURE_SECONDS:
            if len(measured[1]) <= size:
                return _copy_out(measured[1], value, size)
        data = self.operations.stats().to_json().encode()
        if not value:
            with self._stats_lock:
                self._stats_measured = (now, data)
        return _copy_out(data, value, size)

    def setxattr(
        self, path: bytes, name: bytes, value: Any, size: int, options: int, *args: Any
    ) -> int:
        """EOPNOTSUPP at once for ``security.*``, ``system.*``, ``trusted.*``; EPERM for the
        root's stats."""
        refused = self._refused_xattr("setxattr", path, name)
        if refused:
            return refused
        return super().setxattr(path, name, value, size, options, *args)

    def removexattr(self, path: bytes, name: bytes) -> int:
        """EOPNOTSUPP at once for ``security.*``, ``system.*``, ``trusted.*``; EPERM for the
        root's stats."""
        refused = self._refused_xattr("removexattr", path, name)
        if refused:
            return refused
        return super().removexattr(path, name)

    def _refused_xattr(self, operation: str, path: bytes, name: bytes) -> int:
        """The negative errno for a change of a name the mount refuses outright, else 0."""
        if name.startswith(_UNSUPPORTED_XATTR_PREFIXES):
            code = errno.EOPNOTSUPP
        elif name == _XATTR_STATS_BYTES and path == b"/":
            code = errno.EPERM
        else:
            return 0
        self.operations.calls.tally(operation, failed=True)
        return -code

    # -- files -------------------------------------------------------------------------------------

    def open(self, path: bytes, fip: Any) -> int:
        """mfusepy's open, also setting ``keep_cache`` where the kernel's pages of the file are of
        the version opened (orionfs.fs.reads): a hot re-read then costs no read call. A
        write-only handle bypasses the page cache (``_bypass_page_cache``)."""
        fi = fip.contents
        fi.fh = self.operations.open(path.decode(self.encoding, self.errors), fi.flags)
        fi.keep_cache = self.operations.files.keeps_cache(fi.fh)
        fi.direct_io = _bypass_page_cache(fi.flags)
        return 0

    def create(self, path: bytes, mode: int, fip: Any) -> int:
        """mfusepy's create; a write-only handle (``cp``, ``>``) bypasses the page cache."""
        fi = fip.contents
        fi.fh = self.operations.create(path.decode(self.encoding, self.errors), mode, fi.flags)
        fi.direct_io = _bypass_page_cache(fi.flags)
        return 0

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        """mfusepy's read, taking any bytes-like answer (the read-ahead answers memoryviews of
        its segments): copied once, into the kernel's buffer."""
        fh = fip.contents if self.raw_fi else fip.contents.fh
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        data = self.operations.read(decoded, size, offset, fh)
        if not data:
            return 0
        n = len(data)
        if n > size:
            return -errno.EIO
        if isinstance(data, bytes):
            ctypes.memmove(buf, data, n)
        else:
            view = memoryview(data).cast("B")
            if view.readonly:
                ctypes.memmove(buf, view.tobytes(), n)
            else:
                ctypes.memmove(buf, (ctypes.c_char * n).from_buffer(view), n)
        return n

    def write(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        """mfusepy's write, handing the operation a view of libfuse's buffer instead of a copy
        of it (the staged write copies it once, into the staging file). The view is released
        when the call returns: the buffer is libfuse's, reused for the next request."""
        fh = fip.contents if self.raw_fi else fip.contents.fh
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        if size == 0:
            return self.operations.write(decoded, b"", offset, fh)
        address = ctypes.cast(buf, ctypes.c_void_p).value
        with memoryview((ctypes.c_char * size).from_address(address)).cast("B") as view:
            return self.operations.write(decoded, view, offset, fh)

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        """mfusepy drops the file handle of libfuse 3's truncate: ``ftruncate`` on a descriptor
        whose file was unlinked (no path) then fails. Pass it on."""
        fh = (fip.contents if self.raw_fi else fip.contents.fh) if fip else None
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        return self.operations.truncate(decoded, length, fh)


#: libfuse workers kept when idle: more than libfuse starts (at most 10 from 3.12 on).
MAX_IDLE_THREADS: int = 100000


def fuse_options(options: MountOptions, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kernel and libfuse options for the mount (``extra`` from ``-o`` wins)."""
    opts: dict[str, Any] = {
        "fsname": "orionfs",
        "subtype": "orionfs",
        # The kernel checks permissions from the cached attributes: no ACCESS call for cd,
        # access(2), test -r; modes are what they say (no execute on files, even via access).
        "default_permissions": True,
        # Inode numbers from Orion's identity (orionfs.fuse.inodes), not libfuse's node ids: the
        # same file has the same inode after a remount (git, backup tools).
        "use_ino": True,
        "entry_timeout": options.ttl,
        "attr_timeout": options.ttl,
        "negative_timeout": options.ttl,
        "max_read": BLOCK_SIZE,
    }
    if mfusepy.fuse_version_major == 3:
        # Worker threads never exit when idle: each keeps its Python thread state
        # (``_keep_thread_state``), so a thread's exit would leave that state behind.
        opts["max_idle_threads"] = MAX_IDLE_THREADS
    if mfusepy.fuse_version_major == 2:
        opts["big_writes"] = True
        opts["max_write"] = BLOCK_SIZE
    if options.read_only:
        opts["ro"] = True
    opts.update(extra or {})
    return opts


#: The kernel's read-ahead for the mount, in KiB: with it, the kernel asks for 1 MiB per read.
KERNEL_READ_AHEAD_KB: int = 1024


def _raise_kernel_read_ahead(mountpoint: str, timeout: float = 30.0) -> None:
    """Once mounted, set the mount's bdi ``read_ahead_kb`` (best effort: needs root).

    The kernel's default (128 KiB) makes it read a FUSE file in 128 KiB requests, each a Python call.
    """
    deadline = time.monotonic() + timeout
    while not os.path.ismount(mountpoint):
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)
    device = os.stat(mountpoint).st_dev
    knob = Path(f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb")
    try:
        knob.write_text(str(KERNEL_READ_AHEAD_KB))
    except OSError as error:
        logger.debug("cannot raise the kernel read-ahead (%s): %s", knob, error)


def run(
    operations: OrionFS,
    mountpoint: str,
    extra_options: dict[str, Any] | None = None,
    debug: bool = False,
) -> None:
    """Mount and serve until unmounted (foreground, multi-threaded)."""
    threading.Thread(
        target=_raise_kernel_read_ahead, args=(mountpoint,), name="orionfs-readahead", daemon=True
    ).start()
    options = fuse_options(operations.options, extra_options)
    debug = bool(options.pop("debug", debug))  # ``-o debug``: libfuse logs every request
    OrionFUSE(
        operations,
        mountpoint,
        foreground=True,
        nothreads=False,
        debug=debug,
        **options,
    )
