"""The binding's own calls (orionfs.fuse.binding.OrionFUSE), fed C buffers as libfuse would."""

from __future__ import annotations

import ctypes
from typing import Any

import mfusepy
import pytest

from orionfs.fuse.binding import OrionFUSE


class Recorder:
    """An operations object keeping what ``write`` was given."""

    def __init__(self) -> None:
        self.got: list[tuple[Any, bytes, int, int]] = []

    def write(self, path: str | None, data: Any, offset: int, fh: int) -> int:
        self.got.append((data, bytes(data), offset, fh))
        return len(data)


def _binding(operations: Recorder) -> OrionFUSE:
    fuse = object.__new__(OrionFUSE)  # no mount: only the conversion of the call is tested
    fuse.operations = operations  # type: ignore[assignment]
    fuse.encoding, fuse.errors, fuse.raw_fi = "utf-8", "surrogateescape", False
    return fuse


def test_a_write_gets_the_bytes_of_libfuses_buffer_as_a_view_released_after_the_call() -> None:
    operations = Recorder()
    fuse = _binding(operations)
    payload = bytes(range(256)) * 4096
    buf = ctypes.create_string_buffer(payload, len(payload))
    info = mfusepy.fuse_file_info()
    info.fh = 7
    written = fuse.write(
        b"/f",
        ctypes.cast(buf, ctypes.POINTER(ctypes.c_byte)),
        len(payload),
        10,
        ctypes.pointer(info),
    )
    assert written == len(payload)
    view, seen, offset, fh = operations.got[0]
    assert (seen, offset, fh) == (payload, 10, 7)
    with pytest.raises(ValueError):  # kept past the call: unusable, never stale bytes
        bytes(view)
    assert fuse.write(b"/f", None, 0, 0, ctypes.pointer(info)) == 0
