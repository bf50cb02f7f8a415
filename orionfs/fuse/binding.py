"""The libfuse binding: mfusepy's FUSE with the calls orionfs needs changed, the mount options,
and ``run``."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import mfusepy

from orionfs.fuse.operations import BLOCK_SIZE, MountOptions, OrionFS
from orionfs.fuse.xattrs import ENOATTR, XATTR_PREFIX

_XATTR_PREFIX_BYTES = XATTR_PREFIX.encode()

logger = logging.getLogger(__name__)


class OrionFUSE(mfusepy.FUSE):
    """mfusepy's FUSE, passing rename flags (RENAME_NOREPLACE/EXCHANGE) on with libfuse 3."""

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:  # noqa: D102
        return self.operations.rename(
            old.decode(self.encoding, self.errors), new.decode(self.encoding, self.errors), flags
        )

    def getxattr(self, path: bytes, name: bytes, value: Any, size: int, *args: Any) -> int:
        """Names outside ``user.orion.*`` (the kernel's and ``ls``'s per-file ``security.selinux``
        and ``system.posix_acl_access`` probes) are ENODATA at once: no decoding, no operation
        call, no exception raised and caught."""
        if not name.startswith(_XATTR_PREFIX_BYTES):
            return -ENOATTR
        return super().getxattr(path, name, value, size, *args)

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

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        """mfusepy drops the file handle of libfuse 3's truncate: ``ftruncate`` on a descriptor
        whose file was unlinked (no path) then fails. Pass it on."""
        fh = (fip.contents if self.raw_fi else fip.contents.fh) if fip else None
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        return self.operations.truncate(decoded, length, fh)


def fuse_options(options: MountOptions, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kernel and libfuse options for the mount (``extra`` from ``-o`` wins)."""
    opts: dict[str, Any] = {
        "fsname": "orionfs",
        "subtype": "orionfs",
        "entry_timeout": options.ttl,
        "attr_timeout": options.ttl,
        "negative_timeout": options.ttl,
        "max_read": BLOCK_SIZE,
    }
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
    OrionFUSE(
        operations,
        mountpoint,
        foreground=True,
        nothreads=False,
        debug=debug,
        **fuse_options(operations.options, extra_options),
    )
