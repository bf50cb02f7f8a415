"""Writes and the kernel's page cache: a write-only handle writes past it (FUSE ``direct_io``), a
handle that also reads keeps it, and a reader holding the file open reads the new bytes either way.

Which pages the kernel holds is read with mincore(2) on a shared read-only mapping of the file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from pathlib import Path

import pytest

from tests.support.mount import api_bytes

pytestmark = pytest.mark.fuse

PAGE = mmap.PAGESIZE
MiB = 1 << 20

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
]  # fmt: skip
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_MAP_FAILED = ctypes.c_void_p(-1).value


def _resident_pages(fd: int, offset: int, length: int) -> int:
    """How many pages of ``length`` bytes from ``offset`` (page-aligned) of the file open as
    ``fd`` the kernel holds in its page cache."""
    address = _libc.mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, fd, offset)
    if address in (None, _MAP_FAILED):
        raise OSError(ctypes.get_errno(), "mmap of the mounted file failed")
    try:
        pages = (length + PAGE - 1) // PAGE
        vector = ctypes.create_string_buffer(pages)
        if _libc.mincore(address, length, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        return sum(byte & 1 for byte in vector.raw)
    finally:
        _libc.munmap(address, length)


def _read_all(fd: int, size: int) -> bytes:
    return os.pread(fd, size, 0)


@pytest.fixture
def work(mount):
    path = mount.unique("pagecache")
    path.mkdir()
    return path, mount.orion(path.name)


def _write_with(path: Path, flags: int, data: bytes) -> None:
    fd = os.open(path, flags)
    try:
        assert os.pwrite(fd, data, 0) == len(data)
    finally:
        os.close(fd)  # uploads


def test_a_write_only_handle_bypasses_the_page_cache_and_a_reader_sees_its_bytes(
    mount, session, work
):
    folder, orion = work
    path = folder / "shared.bin"
    path.write_bytes(b"A" * (2 * MiB))
    reader = os.open(path, os.O_RDONLY)
    try:
        assert _read_all(reader, 2 * MiB) == b"A" * (2 * MiB)
        assert _resident_pages(reader, 0, 2 * MiB) == 2 * MiB // PAGE  # the reader's pages

        _write_with(path, os.O_WRONLY, b"B" * MiB)  # cp, shell redirections: write-only
        # The written range is not in the kernel's cache (neither kept nor filled by the write);
        # the rest of the reader's pages are.
        assert _resident_pages(reader, 0, MiB) == 0
        assert _resident_pages(reader, MiB, MiB) == MiB // PAGE
        assert _read_all(reader, 2 * MiB) == b"B" * MiB + b"A" * MiB

        _write_with(path, os.O_RDWR, b"C" * MiB)  # a handle that reads keeps the page cache
        assert _resident_pages(reader, 0, MiB) == MiB // PAGE
        assert _read_all(reader, 2 * MiB) == b"C" * MiB + b"A" * MiB
    finally:
        os.close(reader)
    assert api_bytes(session, f"{orion}/shared.bin") == b"C" * MiB + b"A" * MiB


def test_a_file_written_write_only_reads_back_whole_through_a_new_handle(mount, session, work):
    folder, orion = work
    data = os.urandom(3 * MiB + 123)
    path = folder / "copied.bin"
    _write_with(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, data)
    assert path.stat().st_size == len(data)
    assert path.read_bytes() == data
    assert api_bytes(session, f"{orion}/copied.bin") == data
