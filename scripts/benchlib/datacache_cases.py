"""The data path's cases: re-reads (warm, after a remount), content sniffing, ``grep -r`` over small
files, concurrent readers (throughput and peak RSS) and the RSS of a mount over a full data cache.

Each case is ``case(cases, mount, rtt, run)`` over the ``Cases`` object of benchlib.cases (its
timing, counting and fresh-mount helpers). A cold case starts on a fresh mount with an empty data
cache (``Mount.remount``); "after a remount" keeps it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchlib.processes import STOP_TIMEOUT, status_bytes
from benchlib.sizes import MiB

if TYPE_CHECKING:
    from benchlib.cases import Cases
    from benchlib.targets import Mount

RSS_SAMPLE_INTERVAL = 0.02
#: Heads of the sniffed files (``file`` tells them apart by content; the names have no extension).
SNIFF_HEADS = [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
    b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00",
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    b"#!/bin/sh\necho hello\n",
    b"<?xml version='1.0'?>\n<root/>\n",
    b'{"json": [1, 2, 3]}\n',
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00",
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
]
#: What ``grep -r`` looks for in the small files (never there: every file is read to its end).
GREP_PATTERN = "orionfs-bench-no-such-text"


def sniff_content(i: int, size: int) -> bytes:
    """The i-th sniffed file: a recognisable head, then filler."""
    head = SNIFF_HEADS[i % len(SNIFF_HEADS)]
    return (head + bytes([65 + i % 26]) * size)[:size]


def read_file(path: Path, first: int = MiB) -> tuple[int, float, float]:
    """(bytes, seconds, seconds to the first read) of one sequential read: ``first`` bytes, then
    1 MiB reads."""
    buf = bytearray(MiB)
    view = memoryview(buf)
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        got = os.readv(fd, [view[:first]])
        ttfb = time.perf_counter() - start
        while True:
            n = os.readv(fd, [view])
            if not n:
                break
            got += n
    finally:
        os.close(fd)
    return got, time.perf_counter() - start, ttfb


class _PeakRss:
    """Samples a process's RSS until stopped; ``peak`` is the most seen (or its VmHWM)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(RSS_SAMPLE_INTERVAL):
            self.peak = max(self.peak, status_bytes(self.pid, "VmRSS"))

    def stop(self) -> int:
        self._done.set()
        self._thread.join(STOP_TIMEOUT)
        return max(self.peak, status_bytes(self.pid, "VmHWM"))


def case_reread(c: Cases, m: Mount, rtt: float, run: int) -> None:
    """The big file read cold, again on the same mount, and again after a remount."""
    path = m.base / "big" / "big.bin"
    size = c.s.big_mib * MiB
    c.fresh(m, path)
    speeds = {}
    for row in ("reread_cold", "reread_warm", "reread_remount"):
        if row == "reread_remount":
            m.remount(keep_cache=True)
            os.stat(path)
        with c.counted(m, [row], rtt):
            got, elapsed, _ = read_file(path)
        if got != size:
            raise RuntimeError(f"read {got} of {size} bytes through {m.name}")
        speeds[row] = size / elapsed / 1e6
        c.results.add(row, rtt, m.name, speeds[row])
    c.results.add("reread_speedup", rtt, m.name, speeds["reread_warm"] / speeds["reread_cold"])


def case_sniff(c: Cases, m: Mount, rtt: float, run: int) -> None:
    """``file`` over the extension-less files, twice (a file manager's content types)."""
    folder = m.base / "sniff"
    c.fresh(m, folder)
    os.listdir(folder)  # a file manager lists the folder, then looks at the files
    paths = [str(folder / f"n{i:03d}") for i in range(c.s.sniff_files)]
    for row in ("sniff_cold", "sniff_warm"):
        with c.counted(m, [row], rtt):
            elapsed = c.timed(["file", "-b", *paths])
        c.results.add(row, rtt, m.name, elapsed)


def case_grep(c: Cases, m: Mount, rtt: float, run: int) -> None:
    """``grep -r`` over the small files, cold (every file read to its end: no match)."""
    src = m.base / "small"
    c.fresh(m, src)
    cmd = ["sh", "-c", 'grep -r -c -a "$1" "$2" >/dev/null; test $? -le 1', "sh"]
    with c.counted(m, ["grep_cold"], rtt):
        elapsed = c.timed([*cmd, GREP_PATTERN, str(src)])
    c.results.add("grep_cold", rtt, m.name, elapsed)


def case_readers(c: Cases, m: Mount, rtt: float, run: int) -> None:
    """One sequential reader of a large file, then ``readers`` at once (one file each), cold;
    the mount's peak RSS while they read."""
    paths = [m.base / "readers" / f"r{i:02d}.bin" for i in range(c.s.readers)]
    size = c.s.reader_mib * MiB
    c.fresh(m, *paths)
    with c.counted(m, ["read_one"], rtt):
        got, elapsed, _ = read_file(paths[0])
    if got != size:
        raise RuntimeError(f"read {got} of {size} bytes through {m.name}")
    c.results.add("read_one", rtt, m.name, size / elapsed / 1e6)
    c.fresh(m, *paths)
    sampler = _PeakRss(m.pid())
    results: list[tuple[int, float]] = []
    errors: list[BaseException] = []

    def read(path: Path) -> None:
        try:
            results.append(read_file(path)[:2])
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    with c.counted(m, ["readers_rss", "readers_mbs"], rtt):
        start = time.perf_counter()
        threads = [threading.Thread(target=read, args=(p,)) for p in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        peak = sampler.stop()
    if errors:
        raise RuntimeError(f"a reader failed: {errors[0]}")
    if sum(n for n, _ in results) != size * len(paths):
        raise RuntimeError(f"the readers got {sum(n for n, _ in results)} bytes")
    c.results.add("readers_rss", rtt, m.name, peak / 1e6)
    c.results.add("readers_mbs", rtt, m.name, size * len(paths) / elapsed / 1e6)


def case_rss_full_cache(c: Cases, m: Mount, rtt: float, run: int) -> None:
    """The ``rss`` case (peak RSS while ``ls -l`` lists the big folder) on a mount whose data
    cache holds ``full_cache_gib`` GiB (sparse chunk files made for the case: no disk used)."""
    if not hasattr(m, "fill_cache"):
        raise RuntimeError(f"{m.name} has no data cache to fill")
    m.unmount()
    m.clear_cache()
    m.fill_cache(c.s.full_cache_gib << 30)  # type: ignore[attr-defined]
    m.mount()
    os.stat(m.base / "rss")
    sampler = _PeakRss(m.pid())
    with c.counted(m, ["rss_full_cache"], rtt):
        try:
            c.timed(["ls", "-l", "--color=never", str(m.base / "rss")])
        finally:
            peak = sampler.stop()
    c.results.add("rss_full_cache", rtt, m.name, peak / 1e6)
