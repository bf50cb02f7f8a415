"""The measured cases and the run loop: every case at each round trip, the mounts interleaved run by
run; a cold case starts on a fresh mount. For orionfs the server's request counter is reset before
each measured block and read after it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import affinity, log
from benchlib import datacache_cases as data_path
from benchlib.processes import STOP_TIMEOUT, status_bytes, wait_for
from benchlib.report import Results
from benchlib.sizes import MiB, Sizes
from benchlib.targets import Mount, Rig

CMD_TIMEOUT = 900.0  # one measured command
STORED_TIMEOUT = 120.0  # waiting for rclone's deferred uploads
RSS_SAMPLE_INTERVAL = 0.02
# Names file managers and shells probe for (design.md, rule 3), then numbered absent names.
PROBE_NAMES = [
    ".hidden",
    ".Trash",
    ".Trash-0",
    ".Trash-1000",
    ".xdg-volume-info",
    "autorun.inf",
    "desktop.ini",
    ".DS_Store",
    "._listing",
    ".git",
    ".directory",
    ".localized",
    "Thumbs.db",
    ".svn",
    ".hg",
    "folder.jpg",
    ".envrc",
    ".python-version",
    "package.json",
    "CVS",
]

Case = Callable[[Mount, float, int], None]
#: Groups measured at the first round trip only.
MEMORY_GROUPS = ("rss", "readers", "rss full cache")


class Cases:
    """Runs every case of ``sizes`` on the rig's mounts at each of ``rtts`` (ms), into ``results``."""

    def __init__(self, rig: Rig, sizes: Sizes, results: Results, rtts: list[float]) -> None:
        self.rig = rig
        self.s = sizes
        self.results = results
        self.rtts = rtts
        self.broken: set[str] = set()
        self.only: set[str] = set()  # run only these groups (all if empty)

    # -- measuring helpers ---
    def timed(self, cmd: list[str], cwd: Path | None = None) -> float:
        env = dict(os.environ, LC_ALL="C")
        start = time.perf_counter()
        proc = subprocess.run(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            timeout=CMD_TIMEOUT,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-500:]!r}"
            )
        return elapsed

    @contextlib.contextmanager
    def counted(self, m: Mount, rows: list[str], rtt: float) -> Iterator[Callable[[], None]]:
        """Reset the server's counter (and note the proxy's connection count) before the block;
        record what was counted after it. The block may call the yielded function to record early
        (before its own checks, which would otherwise be counted too)."""
        done = [False]
        server = self.rig.server

        def record() -> None:
            if done[0]:
                return
            done[0] = True
            new_conns = m.proxy.connections() - conns_before
            for row in rows:
                self.results.add_connections(row, rtt, m.name, new_conns)
            if m.counts_requests:
                by_endpoint = server.counters()
                for row in rows:
                    self.results.add_requests(row, rtt, by_endpoint)

        if m.counts_requests:
            server.reset_counters()
        conns_before = m.proxy.connections()
        yield record
        record()

    def fresh(self, m: Mount, *paths: Path) -> None:
        """A cold start: a new mount, then the paths to the case's folders looked up."""
        m.remount()
        for p in paths:
            os.stat(p)

    # -- cases: each runs one run of a group of rows on one mount ---
    def case_ls(self, m: Mount, rtt: float, run: int, which: str) -> None:
        folder = m.base / f"ls_{which}"
        self.fresh(m, folder)
        cmd = ["ls", "-l", "--color=never", str(folder)]
        with self.counted(m, [f"ls_{which}_cold"], rtt):
            cold = self.timed(cmd)
        with self.counted(m, [f"ls_{which}_warm"], rtt):
            warm = self.timed(cmd)
        self.results.add(f"ls_{which}_cold", rtt, m.name, cold)
        self.results.add(f"ls_{which}_warm", rtt, m.name, warm)
        if which == "small":  # probes in a listed folder, within the TTL
            names = PROBE_NAMES[: self.s.probes]
            names += [f"absent-{i:04d}.txt" for i in range(self.s.probes - len(names))]
            with self.counted(m, ["probes"], rtt):
                elapsed = self._probe(folder, names)
            self.results.add("probes", rtt, m.name, elapsed)
            cpus = affinity.two_cpus()
            if cpus is None:
                return
            # The same count of new absent names with the caller and the mount pinned: on one
            # CPU, then on two (each a name not probed before, so each is one FUSE lookup).
            for row, mount_cpu in (("probes_one_cpu", cpus[0]), ("probes_two_cpus", cpus[1])):
                names = [f"{row}-{i:04d}.txt" for i in range(self.s.probes)]
                with self.counted(m, [row], rtt), affinity.pinned(m.pid(), cpus[0], mount_cpu):
                    elapsed = self._probe(folder, names)
                self.results.add(row, rtt, m.name, elapsed)

    @staticmethod
    def _probe(folder: Path, names: list[str]) -> float:
        """Milliseconds to stat every name in ``folder``; RuntimeError if one exists."""
        start = time.perf_counter()
        for name in names:
            try:
                os.stat(folder / name)
            except FileNotFoundError:
                continue
            raise RuntimeError(f"probe {name} exists")
        return (time.perf_counter() - start) * 1000

    def case_tree(self, m: Mount, rtt: float, run: int, which: str) -> None:
        tree = m.base / "tree"
        self.fresh(m, tree)
        cmd = {
            "find": ["find", str(tree)],
            "stat": [
                "sh",
                "-c",
                'find "$1" -type f -print0 | xargs -0 stat -c "%s %Y" >/dev/null',
                "sh",
                str(tree),
            ],
            "du": ["du", "-s", str(tree)],
        }[which]
        with self.counted(m, [which], rtt):
            elapsed = self.timed(cmd)
        self.results.add(which, rtt, m.name, elapsed)

    def case_create_unlink(self, m: Mount, rtt: float, run: int) -> None:
        n = self.s.creates
        tag = f"{m.name}-{rtt:g}-{run}"
        folders = {}
        for writers, row in ((8, "create_8"), (1, "create_1")):
            folder = folders[writers] = m.base / "work" / f"c{writers}-{tag}"
            folder.mkdir()
            os.listdir(folder)
            names = [folder / f"e{i:05d}" for i in range(n)]

            def create(paths: list[Path]) -> None:
                for p in paths:
                    os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))

            with self.counted(m, [row], rtt):
                start = time.perf_counter()
                if writers == 1:
                    create(names)
                else:
                    with ThreadPoolExecutor(writers) as pool:
                        list(pool.map(create, [names[i::writers] for i in range(writers)]))
                elapsed = time.perf_counter() - start
            self.results.add(row, rtt, m.name, n / elapsed)
        # rclone uploads after close (--vfs-write-back): unlink what the far side holds, and let
        # no upload run on into the next case.
        for writers in folders:
            wait_for(
                lambda w=writers: m.count_stored(f"work/c{w}-{tag}") >= n,
                STORED_TIMEOUT,
                f"{m.name} to store the created files",
            )
        folder = folders[1]
        listed = os.listdir(folder)
        assert len(listed) == n, f"{len(listed)} of {n} created files listed"
        with self.counted(m, ["unlink"], rtt):
            start = time.perf_counter()
            for name in listed:
                os.unlink(folder / name)
            elapsed = time.perf_counter() - start
        self.results.add("unlink", rtt, m.name, n / elapsed)

    def case_create_write_back(self, m: Mount, rtt: float, run: int) -> None:
        """create+close with write-back on both sides: orionfs ``--write-back 5`` (rclone's mount
        writes back after 5 s by default); then the time until the server holds every file."""
        n = self.s.creates
        tag = f"wb-{m.name}-{rtt:g}-{run}"
        if m.counts_requests:
            m.remount_with(["--write-back", "5"])
        try:
            folder = m.base / "work" / tag
            folder.mkdir()
            os.listdir(folder)
            with self.counted(m, ["create_wb_1"], rtt):
                start = time.perf_counter()
                for i in range(n):
                    os.close(os.open(folder / f"e{i:05d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                closed = time.perf_counter() - start
                wait_for(
                    lambda: m.count_stored(f"work/{tag}") >= n,
                    STORED_TIMEOUT,
                    f"{m.name} to store the created files",
                    interval=0.05,
                )
                stored = time.perf_counter() - start
        finally:
            if m.counts_requests:
                m.remount_with([])
        self.results.add("create_wb_1", rtt, m.name, n / closed)
        self.results.add("create_wb_stored", rtt, m.name, stored)

    def case_read(self, m: Mount, rtt: float, run: int) -> None:
        path = m.base / "big" / "big.bin"
        size = self.s.big_mib * MiB
        self.fresh(m, path)
        with self.counted(m, ["read", "read_ttfb"], rtt):
            got, elapsed, ttfb = data_path.read_file(path, first=4096)
        if got != size:
            raise RuntimeError(f"read {got} of {size} bytes through {m.name}")
        d_ttfb, d_elapsed = m.direct_read("big/big.bin", size)
        mbs, d_mbs = size / elapsed / 1e6, size / d_elapsed / 1e6
        self.results.add("read", rtt, m.name, mbs)
        self.results.add("read_ttfb", rtt, m.name, ttfb * 1000)
        self.results.add("read_direct", rtt, m.name, d_mbs)
        self.results.add("read_ratio", rtt, m.name, 100 * mbs / d_mbs)
        self.results.add("read_direct_ttfb", rtt, m.name, d_ttfb * 1000)

    def case_write(self, m: Mount, rtt: float, run: int) -> None:
        size = self.s.big_mib * MiB
        name = f"w-{m.name}-{rtt:g}-{run}.bin"
        dest = m.base / "writes" / name
        os.listdir(dest.parent)
        with self.counted(m, ["write", "write_stored"], rtt) as record:
            start = time.perf_counter()
            self.timed(["cp", str(self.rig.big_src), str(dest)])
            closed = time.perf_counter() - start
            record()
            wait_for(
                lambda: m.stored(f"writes/{name}", size),
                STORED_TIMEOUT,
                f"{m.name} to store {name}",
                interval=0.01,
            )
            stored = time.perf_counter() - start
        m.remove(f"writes/{name}")
        d_name = f"d-{name}"
        d_elapsed = m.direct_write(self.rig.big_src, "writes", d_name)
        m.remove(f"writes/{d_name}")
        d_mbs = size / d_elapsed / 1e6
        self.results.add("write", rtt, m.name, size / closed / 1e6)
        self.results.add("write_stored", rtt, m.name, size / stored / 1e6)
        self.results.add("write_direct", rtt, m.name, d_mbs)
        self.results.add("write_ratio", rtt, m.name, 100 * (size / stored / 1e6) / d_mbs)

    def case_copy(self, m: Mount, rtt: float, run: int) -> None:
        n = self.s.small_files
        tag = f"in-{m.name}-{rtt:g}-{run}"
        os.listdir(m.base / "work")
        with self.counted(m, ["copy_in"], rtt) as record:
            start = time.perf_counter()
            self.timed(["cp", "-r", str(self.rig.small_src), str(m.base / "work" / tag)])
            record()
            wait_for(
                lambda: m.count_stored(f"work/{tag}") >= n,
                STORED_TIMEOUT,
                f"{m.name} to store the copied files",
                interval=0.01,
            )
            elapsed = time.perf_counter() - start
        self.results.add("copy_in", rtt, m.name, elapsed)
        src = m.base / "small"
        self.fresh(m, src)
        out = self.rig.local / f"out-{m.name}-{rtt:g}-{run}"
        with self.counted(m, ["copy_out"], rtt):
            elapsed = self.timed(["cp", "-r", str(src), str(out)])
        got = sum(1 for _ in out.iterdir())
        shutil.rmtree(out, ignore_errors=True)
        if got != n:
            raise RuntimeError(f"copied out {got} of {n} files from {m.name}")
        self.results.add("copy_out", rtt, m.name, elapsed)

    def case_rss(self, m: Mount, rtt: float, run: int) -> None:
        folder = m.base / "rss"
        self.fresh(m, folder)
        pid = m.pid()
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(RSS_SAMPLE_INTERVAL):
                peak[0] = max(peak[0], status_bytes(pid, "VmRSS"))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with self.counted(m, ["rss"], rtt):
            try:
                self.timed(["ls", "-l", "--color=never", str(folder)])
            finally:
                done.set()
                sampler.join(STOP_TIMEOUT)
        hwm = status_bytes(pid, "VmHWM")  # the kernel's own peak, also catches a spike
        self.results.add("rss", rtt, m.name, max(peak[0], hwm) / 1e6)

    # -- the run ---
    def groups(self) -> list[tuple[str, Case, int]]:
        s = self.s
        return [
            ("ls small + probes", lambda m, r, i: self.case_ls(m, r, i, "small"), s.runs),
            ("ls large", lambda m, r, i: self.case_ls(m, r, i, "large"), s.runs),
            ("find", lambda m, r, i: self.case_tree(m, r, i, "find"), s.runs),
            ("stat", lambda m, r, i: self.case_tree(m, r, i, "stat"), s.runs),
            ("du", lambda m, r, i: self.case_tree(m, r, i, "du"), s.runs),
            ("create / unlink", self.case_create_unlink, s.heavy_runs),
            ("create, write-back", self.case_create_write_back, s.heavy_runs),
            ("read", self.case_read, s.runs),
            ("write", self.case_write, s.runs),
            ("copy small files", self.case_copy, s.heavy_runs),
            ("rss", self.case_rss, s.rss_runs),
            ("re-read", lambda m, r, i: data_path.case_reread(self, m, r, i), s.runs),
            ("sniff", lambda m, r, i: data_path.case_sniff(self, m, r, i), s.runs),
            ("grep small files", lambda m, r, i: data_path.case_grep(self, m, r, i), s.heavy_runs),
            ("readers", lambda m, r, i: data_path.case_readers(self, m, r, i), s.rss_runs),
            ("rss full cache", self._rss_full_cache, s.rss_runs),
        ]

    def _rss_full_cache(self, m: Mount, rtt: float, run: int) -> None:
        if m.counts_requests:  # the mounts with a data cache (not rclone's writes-only cache)
            data_path.case_rss_full_cache(self, m, rtt, run)

    def run(self) -> None:
        for ri, rtt in enumerate(self.rtts):
            for p in self.rig.proxies:
                p.set_rtt(rtt)
            for name, fn, runs in self.groups():
                if name in MEMORY_GROUPS and ri > 0:
                    continue  # memory does not depend on latency: measured at the first RTT only
                if self.only and name not in self.only:
                    continue
                t0 = time.perf_counter()
                for run in range(runs):
                    for m in self.rig.mounts:
                        if m.name not in self.broken:
                            self._run_one(name, fn, m, rtt, run)
                log(f"{rtt:g} ms: {name} done in {time.perf_counter() - t0:.1f} s")

    def _run_one(self, name: str, fn: Case, m: Mount, rtt: float, run: int) -> None:
        """One run of one case on one mount; a failure is recorded and the mount made afresh."""
        try:
            fn(m, rtt, run)
        except Exception as exc:
            msg = f"{name} on {m.name} at {rtt:g} ms (run {run + 1}): {exc}"
            self.results.errors.append(msg)
            log(f"ERROR {msg}")
            try:
                m.remount()
            except Exception as again:
                # A mount that cannot come back would fail every later case slowly, one start
                # timeout each: skip its remaining cases.
                self.broken.add(m.name)
                msg = f"{m.name}: cannot remount ({again}); its other cases skipped"
                self.results.errors.append(msg)
                log(f"ERROR {msg}")
