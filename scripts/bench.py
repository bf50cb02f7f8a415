#!/usr/bin/env python3
"""Benchmarks: the orionfs mount against the direct session API and against rclone, in one run.

What it does, all on loopback, in a fresh temp folder:

1. starts the local Orion server (``orionfs serve --test-hooks``) and, in front of it, a latency
   proxy (scripts/latency_proxy.py); writes a client profile that points at the proxy;
2. starts the peer: ``rclone serve webdav`` over a local folder, behind its own latency proxy;
3. generates the same data on both sides (uploads through the session API, in parallel threads,
   straight to the server; plain files in the rclone folder);
4. mounts both (``orionfs mount --cache-ttl TTL`` and ``rclone mount --vfs-cache-mode writes
   --dir-cache-time TTL``) and runs every case at each round trip of ``--rtt-ms`` (default 0 and 20),
   interleaving the two mounts run by run; a cold case starts on a fresh mount;
5. prints a markdown table (median of the runs, with min-max) and writes the same figures as JSON.

For orionfs every case also reports the requests the server counted (reset before the case, read
after it). ``--check`` (CI, with ``--quick``) fails unless every case ran and every request count is
the exact expected number; it asserts nothing about time.

Everything it starts is stopped, and every mount unmounted, on success, failure or Ctrl-C.

    .venv/bin/python scripts/bench.py --quick --check    # CI smoke run, about two minutes
    .venv/bin/python scripts/bench.py --json bench.json  # full size, about 13 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import ctypes
import json
import math
import os
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
PY = sys.executable
ORIONFS = [PY, "-m", "orionfs.cli"]

#: The rclone binary (an environment override, e.g. to try a newer release or to test without it).
RCLONE = os.environ.get("ORIONFS_BENCH_RCLONE", "rclone")
START_TIMEOUT = 60.0  # server / mount start
STOP_TIMEOUT = 15.0
CMD_TIMEOUT = 900.0  # one measured command
STORED_TIMEOUT = 120.0  # waiting for rclone's deferred uploads
UPLOAD_THREADS = 8
MiB = 1024 * 1024
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


# --- sizes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    ls_small: int  # entries of the first ls folder (full: 1,000)
    ls_large: int  # entries of the second (full: 10,000)
    tree_folders: int  # find / stat / du tree: F folders ...
    tree_files: int  # ... x M files
    probes: int
    creates: int  # create+close and unlink
    small_files: int  # copy in and out, 4 KiB each
    small_size: int
    big_mib: int  # sequential read / write
    rss_entries: int  # the folder listed while the mount's RSS is watched
    runs: int  # runs per figure
    heavy_runs: int  # runs of the one-request-per-file cases (create, unlink, copy of small files)
    rss_runs: int


QUICK = Sizes(
    ls_small=100,
    ls_large=300,
    tree_folders=10,
    tree_files=30,
    probes=100,
    creates=100,
    small_files=100,
    small_size=4096,
    big_mib=16,
    rss_entries=2_000,
    runs=2,
    heavy_runs=1,
    rss_runs=1,
)
FULL = Sizes(
    ls_small=1_000,
    ls_large=10_000,
    tree_folders=100,
    tree_files=100,
    probes=100,
    creates=1_000,
    small_files=1_000,
    small_size=4096,
    big_mib=256,
    rss_entries=100_000,
    runs=3,
    heavy_runs=1,
    rss_runs=1,
)


# --- processes -----------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if this process dies (even by SIGKILL).

    The kernel sends it when the *thread* that forked the child ends, so helpers are only ever
    spawned from the main thread."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    """Start a helper in its own session (so a terminal's Ctrl-C reaches only us: we stop it)."""
    out = log.open("ab")
    try:
        return subprocess.Popen(
            cmd,
            stdout=kw.pop("stdout", out),
            stderr=out,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            **kw,
        )
    finally:
        out.close()


def stop_process(proc: subprocess.Popen | None, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, wait (bounded), SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval=0.05):
    """Poll until predicate() is truthy; returns its value or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fusermount() -> str:
    return shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"


def force_unmount(mnt: Path) -> None:
    """Unmount a FUSE mount point (retrying while busy, lazily as a last resort); bounded."""
    for attempt in range(20):
        if not os.path.ismount(mnt):
            return
        subprocess.run([fusermount(), "-u", str(mnt)], capture_output=True, timeout=STOP_TIMEOUT)
        if not os.path.ismount(mnt):
            return
        time.sleep(0.1 * (attempt + 1))
    subprocess.run([fusermount(), "-uz", str(mnt)], capture_output=True, timeout=STOP_TIMEOUT)


class ProxyProcess:
    """scripts/latency_proxy.py in its own process (so its copying never competes for our GIL)."""

    def __init__(self, target_port: int, log: Path) -> None:
        self._log = log
        self.proc = spawn(
            [
                PY,
                str(SCRIPTS / "latency_proxy.py"),
                "--target",
                f"127.0.0.1:{target_port}",
                "--rtt-ms",
                "0",
                "--stdin-control",
            ],
            log,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        words = self._line().split()
        if words[:1] != ["listening"]:
            raise RuntimeError(f"latency proxy did not start: {words}")
        self.port = int(words[2])
        self.url = f"http://127.0.0.1:{self.port}"

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _line(self) -> str:
        try:
            return self._lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise TimeoutError("latency proxy did not answer") from None

    def set_rtt(self, ms: float) -> None:
        self.proc.stdin.write(f"rtt {ms}\n")
        self.proc.stdin.flush()
        answer = self._line()
        if not answer.startswith("ok"):
            raise RuntimeError(f"latency proxy refused 'rtt {ms}': {answer!r}")

    def connections(self) -> int:
        """TCP connections accepted so far (each one paid an emulated handshake)."""
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        words = self._line().split()
        if words[:2] != ["stats", "connections"]:
            raise RuntimeError(f"latency proxy answered {words} to 'stats'")
        return int(words[2])

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()  # the proxy exits when its stdin closes
        stop_process(self.proc)


# --- the local Orion server ----------------------------------------------------------------------
class OrionServer:
    """``orionfs serve --test-hooks`` on a free loopback port, with its request counter."""

    def __init__(self, work: Path, command: list[str]) -> None:
        self.data = work / "orion-data"
        self.config = work / "server-config"
        self.data.mkdir()
        self.config.mkdir(mode=0o700)
        env = dict(os.environ, ORIONFS_CONFIG_DIR=str(self.config))
        self.proc = spawn(
            command + ["serve", "--data", str(self.data), "--port", "0", "--test-hooks"],
            work / "server.log",
            env=env,
        )
        info_path = self.data / "server.json"

        def ready() -> dict | None:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"orionfs serve exited ({self.proc.returncode}); see {work}/server.log"
                )
            try:
                return json.loads(info_path.read_text())
            except (OSError, ValueError):
                return None

        info = wait_for(ready, START_TIMEOUT, "server.json")
        self.url: str = info["url"].rstrip("/")
        self.token: str = info["token"]
        self.username: str = info["username"]
        self.project: int = int(info["project"])
        import requests

        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Token {self.token}"
        wait_for(self._up, START_TIMEOUT, "the server to answer")

    def _up(self) -> bool:
        try:
            return self._http.get(f"{self.url}/api/versions/", timeout=5).ok
        except OSError:
            return False

    def reset_counters(self) -> None:
        r = self._http.post(f"{self.url}/api/v1/_test/counters/reset/", timeout=30)
        r.raise_for_status()

    def counters(self) -> dict[str, int]:
        r = self._http.get(f"{self.url}/api/v1/_test/counters/", timeout=30)
        r.raise_for_status()
        return {k: v for k, v in r.json()["by_endpoint"].items() if v}

    def stop(self) -> None:
        stop_process(self.proc)


def classify(by_endpoint: dict[str, int]) -> dict[str, int]:
    """Counted requests by kind: ls, stat, upload, download, delete, mkdir, other, total."""
    kinds = dict.fromkeys(("ls", "stat", "upload", "download", "delete", "mkdir", "other"), 0)
    for key, n in by_endpoint.items():
        method, _, route = key.partition(" ")
        if route.endswith("/storage/ls/"):
            kinds["ls"] += n
        elif route.endswith("/storage/stat/"):
            kinds["stat"] += n
        elif route.endswith("/download/"):
            kinds["download"] += n
        elif (method == "POST" and route.endswith("/storage/files/")) or (
            method == "PUT" and route.endswith("/content/")
        ):
            kinds["upload"] += n
        elif method == "DELETE" or route.endswith("/storage/paths/remove/"):
            kinds["delete"] += n
        elif method == "POST" and route.endswith("/storage/paths/"):
            kinds["mkdir"] += n
        else:
            kinds["other"] += n
    kinds["total"] = sum(by_endpoint.values())
    return kinds


# --- mounts --------------------------------------------------------------------------------------
class Mount:
    """One side of the comparison: a FUSE mount (a foreground process) and its direct access."""

    name = ""
    counts_requests = False

    def __init__(self, work: Path, ttl: float) -> None:
        self.work = work
        self.ttl = ttl
        self.mnt = work / f"mnt-{self.name}"
        self.mnt.mkdir()
        self.proc: subprocess.Popen | None = None
        self.base = self.mnt  # the bench folder as seen through the mount

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def mount(self) -> None:
        self.proc = spawn(self.command(), self.work / f"{self.name}-mount.log", env=self.env())

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} mount exited ({self.proc.returncode}); see "
                    f"{self.work}/{self.name}-mount.log"
                )
            return os.path.ismount(self.mnt)

        wait_for(ready, START_TIMEOUT, f"the {self.name} mount")
        wait_for(lambda: self.base.is_dir(), START_TIMEOUT, f"{self.base} through the mount")

    def unmount(self) -> None:
        try:
            force_unmount(self.mnt)
        finally:
            if self.proc is not None:
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    stop_process(self.proc)
            self.proc = None

    def remount(self) -> None:
        self.unmount()
        self.mount()

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # Direct access, through the same proxy, for the ratios.
    def direct_read(self, rel: str, size: int) -> tuple[float, float]:
        """(time to first byte, seconds for the whole file)."""
        raise NotImplementedError

    def direct_write(self, src: Path, rel_folder: str, name: str) -> float:
        raise NotImplementedError

    def stored(self, rel: str, size: int) -> bool:
        """Whether the far side holds the file complete (writes may finish after close)."""
        raise NotImplementedError

    def remove(self, rel: str) -> None:
        """Remove a file or folder on the far side, not through the mount (cleanup)."""
        raise NotImplementedError


class OrionMount(Mount):
    name = "orionfs"
    counts_requests = True

    def __init__(self, work: Path, ttl: float, server: OrionServer, proxy: ProxyProcess) -> None:
        super().__init__(work, ttl)
        self.server = server
        self.proxy = proxy
        self.config_dir = work / "bench-config"
        self.config_dir.mkdir(mode=0o700)
        ini = configparser.ConfigParser(interpolation=None)
        ini["bench"] = {
            "url": proxy.url,
            "username": server.username,
            "token": server.token,
            "project": str(server.project),
        }
        path = self.config_dir / "profiles.ini"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            ini.write(fh)
        self.my_data = f"/project/{server.project}/user/{server.username}"
        self.orion_base = f"{self.my_data}/bench"
        help_text = subprocess.run(
            ORIONFS + ["mount", "--help"], capture_output=True, text=True, timeout=60
        ).stdout
        self.use_root = "--root" in help_text
        self.base = self.mnt / "bench" if self.use_root else self.mnt / self.orion_base.lstrip("/")
        self._local = threading.local()

    def env(self) -> dict[str, str]:
        return dict(os.environ, ORIONFS_CONFIG_DIR=str(self.config_dir))

    def command(self) -> list[str]:
        cmd = ORIONFS + [
            "mount",
            str(self.mnt),
            "--profile",
            "bench",
            "--cache-ttl",
            f"{self.ttl:g}",
            "--foreground",
        ]
        if self.use_root:
            cmd += ["--root", self.my_data]
        return cmd

    def session(self, direct: bool = False):
        """An OrionSession per thread: through the proxy, or straight to the server (setup)."""
        from orionfs.client.config import SessionConfig
        from orionfs.client.session import OrionSession

        key = "direct" if direct else "proxied"
        sess = getattr(self._local, key, None)
        if sess is None:
            sess = OrionSession(
                config=SessionConfig(
                    url=self.server.url if direct else self.proxy.url,
                    username=self.server.username,
                    token=self.server.token,
                    project=self.server.project,
                    profile="bench",
                )
            )
            setattr(self._local, key, sess)
        return sess

    def _file(self, rel: str):
        from orionfs.client.types import resource_from_entry

        return resource_from_entry(self.session().stat_path(f"{self.orion_base}/{rel}"))

    def direct_read(self, rel: str, size: int) -> tuple[float, float]:
        sess = self.session()
        file = self._file(rel)  # metadata first (untimed), as the mount's lookup is pre-warmed
        start = time.perf_counter()
        first = sess.read_range(file, 0, 4096)
        ttfb = time.perf_counter() - start
        assert first, "empty first range"
        start = time.perf_counter()
        got = sess.download_file(file, _Sink())
        elapsed = time.perf_counter() - start
        if got != size:
            raise RuntimeError(f"direct read got {got} of {size} bytes")
        return ttfb, elapsed

    def direct_write(self, src: Path, rel_folder: str, name: str) -> float:
        sess = self.session()
        sess.stat_path(f"{self.orion_base}/{rel_folder}")  # warm the connection (untimed)
        size = src.stat().st_size
        start = time.perf_counter()
        with src.open("rb") as fh:
            sess.upload_file(f"{self.orion_base}/{rel_folder}", name, fh, size=size)
        return time.perf_counter() - start

    def stored(self, rel: str, size: int) -> bool:
        try:
            return self.session(direct=True).stat_path(f"{self.orion_base}/{rel}")["size"] == size
        except FileNotFoundError:
            return False

    def count_stored(self, rel_folder: str) -> int:
        return self.session(direct=True).ls_path(f"{self.orion_base}/{rel_folder}")["count"]

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.session(direct=True).remove_paths(f"{self.orion_base}/{rel}", recursive=True)


class RcloneMount(Mount):
    name = "rclone"

    def __init__(self, work: Path, ttl: float, served: Path, proxy: ProxyProcess) -> None:
        super().__init__(work, ttl)
        self.served = served  # the local folder `rclone serve webdav` serves
        self.proxy = proxy
        self.base = self.mnt / "bench"
        self.cache_dir = work / "rclone-cache"
        import requests

        self._http = requests.Session()

    def command(self) -> list[str]:
        return [
            RCLONE,
            "mount",
            ":webdav:",
            str(self.mnt),
            "--webdav-url",
            self.proxy.url,
            "--vfs-cache-mode",
            "writes",
            "--dir-cache-time",
            f"{self.ttl:g}s",
            "--cache-dir",
            str(self.cache_dir),
            "--config",
            "/dev/null",
        ]

    def direct_read(self, rel: str, size: int) -> tuple[float, float]:
        url = f"{self.proxy.url}/bench/{rel}"
        self._http.head(url, timeout=60).raise_for_status()  # warm the connection (untimed)
        start = time.perf_counter()
        r = self._http.get(url, headers={"Range": "bytes=0-4095"}, timeout=60)
        r.raise_for_status()
        ttfb = time.perf_counter() - start
        start = time.perf_counter()
        got = 0
        with self._http.get(url, stream=True, timeout=60) as r:
            r.raise_for_status()
            for chunk in r.iter_content(MiB):
                got += len(chunk)
        elapsed = time.perf_counter() - start
        if got != size:
            raise RuntimeError(f"direct read got {got} of {size} bytes")
        return ttfb, elapsed

    def direct_write(self, src: Path, rel_folder: str, name: str) -> float:
        url = f"{self.proxy.url}/bench/{rel_folder}/{name}"
        self._http.head(f"{self.proxy.url}/bench/{rel_folder}/", timeout=60)  # warm (untimed)
        start = time.perf_counter()
        with src.open("rb") as fh:
            self._http.put(url, data=fh, timeout=600).raise_for_status()
        return time.perf_counter() - start

    def stored(self, rel: str, size: int) -> bool:
        try:
            return (self.served / "bench" / rel).stat().st_size == size
        except FileNotFoundError:
            return False

    def count_stored(self, rel_folder: str) -> int:
        try:
            return sum(1 for _ in (self.served / "bench" / rel_folder).iterdir())
        except FileNotFoundError:
            return 0

    def remove(self, rel: str) -> None:
        path = self.served / "bench" / rel
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


# --- results -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: str


def rows_for(s: Sizes) -> list[Row]:
    n1, n2 = f"{s.ls_small:,}", f"{s.ls_large:,}"
    tree = f"{s.tree_folders} folders x {s.tree_files} files"
    big = f"{s.big_mib} MiB"
    meta = "ahead of rclone at 20 ms"
    return [
        Row(
            "ls_small_cold",
            f"`ls -l` {n1} entries, cold",
            "s",
            False,
            f"ceil(N/page) requests; {meta}",
        ),
        Row("ls_small_warm", f"`ls -l` {n1} entries, warm", "s", False, f"0 requests; {meta}"),
        Row(
            "ls_large_cold",
            f"`ls -l` {n2} entries, cold",
            "s",
            False,
            f"ceil(N/page) requests; {meta}",
        ),
        Row("ls_large_warm", f"`ls -l` {n2} entries, warm", "s", False, f"0 requests; {meta}"),
        Row("find", f"`find`, {tree}, cold", "s", False, f"1 listing per folder; {meta}"),
        Row(
            "stat",
            f"`stat` of every file, {tree}, cold",
            "s",
            False,
            f"1 listing per folder; {meta}",
        ),
        Row("du", f"`du -s`, {tree}, cold", "s", False, f"1 listing per folder; {meta}"),
        Row(
            "probes",
            f"{s.probes} absent-name probes in a listed folder",
            "ms",
            False,
            f"0 requests; {meta}",
        ),
        Row("create_1", f"create+close {s.creates:,} empty files, 1 writer", "files/s", True, meta),
        Row(
            "create_8", f"create+close {s.creates:,} empty files, 8 writers", "files/s", True, meta
        ),
        Row("unlink", f"unlink {s.creates:,} files", "files/s", True, meta),
        Row("read", f"sequential read {big}", "MB/s", True, ">= 80% of direct; not behind rclone"),
        Row("read_ttfb", "read: time to first byte", "ms", False, "<= 1 RTT + 5 ms"),
        Row("read_direct", "read: direct download (API / HTTP GET)", "MB/s", True, "baseline"),
        Row("read_direct_ttfb", "read: direct first byte (4 KiB range)", "ms", False, "baseline"),
        Row("read_ratio", "read: mount / direct", "%", True, ">= 80%"),
        Row(
            "write",
            f"sequential write {big} (`cp`, incl. close)",
            "MB/s",
            True,
            ">= 80% of direct; not behind rclone",
        ),
        Row("write_stored", "write: until stored on the server", "MB/s", True, "not behind rclone"),
        Row("write_direct", "write: direct upload (API / HTTP PUT)", "MB/s", True, "baseline"),
        Row("write_ratio", "write (stored): mount / direct", "%", True, ">= 80%"),
        Row("copy_in", f"`cp -r` {s.small_files:,} x 4 KiB in (until stored)", "s", False, meta),
        Row("copy_out", f"`cp -r` {s.small_files:,} x 4 KiB out, cold", "s", False, meta),
        Row(
            "rss",
            f"peak RSS of the mount, `ls -l` of {s.rss_entries:,} entries",
            "MB",
            False,
            "< 200 MB",
        ),
    ]


class Results:
    def __init__(self) -> None:
        # values[row][rtt][side] -> list of per-run values
        self.values: dict[str, dict[str, dict[str, list[float]]]] = {}
        # requests[row][rtt] -> list of per-run {"by_endpoint":..., "kinds":...}
        self.requests: dict[str, dict[str, list[dict]]] = {}
        # connections[row][rtt][side] -> new TCP connections through the proxy, per run
        self.connections: dict[str, dict[str, dict[str, list[int]]]] = {}
        self.errors: list[str] = []
        self.check_failures: list[str] = []
        self.notes: list[str] = []

    def add(self, row: str, rtt: float, side: str, value: float) -> None:
        self.values.setdefault(row, {}).setdefault(f"{rtt:g}", {}).setdefault(side, []).append(
            value
        )

    def add_requests(self, row: str, rtt: float, by_endpoint: dict[str, int]) -> None:
        self.requests.setdefault(row, {}).setdefault(f"{rtt:g}", []).append(
            {"by_endpoint": by_endpoint, "kinds": classify(by_endpoint)}
        )

    def add_connections(self, row: str, rtt: float, side: str, n: int) -> None:
        self.connections.setdefault(row, {}).setdefault(f"{rtt:g}", {}).setdefault(side, []).append(
            n
        )

    def summary(self, row: str, rtt: float, side: str) -> dict | None:
        runs = self.values.get(row, {}).get(f"{rtt:g}", {}).get(side)
        if not runs:
            return None
        return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs}


def fmt_number(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


# --- the benchmark -------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, sizes: Sizes, work: Path) -> None:
        self.args = args
        self.s = sizes
        self.work = work
        self.rtts: list[float] = args.rtts
        self.results = Results()
        self.rows = rows_for(sizes)
        self.page = self._page_size()
        self.local = work / "local"  # sources for copy in / write, and copy-out targets
        self.local.mkdir()
        self.server: OrionServer | None = None
        self.orion: OrionMount | None = None
        self.rclone: RcloneMount | None = None
        self.rclone_missing = shutil.which(RCLONE) is None
        self.mounts: list[Mount] = []
        self.broken: set[str] = set()
        self._cleanups: list[Callable[[], None]] = []
        self.setup_seconds = 0.0

    @staticmethod
    def _page_size() -> int:
        """The ls page size the client asks for (ceil(N / page) listing requests per folder)."""
        import importlib

        from orionfs.client import wire

        for module in ("orionfs.fuse", "orionfs.fs.cache", "orionfs.client.session"):
            with contextlib.suppress(ImportError):
                mod = importlib.import_module(module)
                for name in ("LS_PAGE_SIZE", "PAGE_SIZE", "LS_PAGE_LIMIT", "DEFAULT_PAGE_SIZE"):
                    if isinstance(getattr(mod, name, None), int):
                        return getattr(mod, name)
        return wire.PAGE_LIMIT_DEFAULT

    # -- setup / teardown ---
    def log(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def setup(self) -> None:
        start = time.perf_counter()
        self.mounts: list[Mount] = []
        self.proxies: list[ProxyProcess] = []
        if "orionfs" in self.args.sides:
            server_cmd = self.args.server_cmd.split() if self.args.server_cmd else ORIONFS
            self.server = OrionServer(self.work, server_cmd)
            self._cleanups.append(self.server.stop)
            port = int(self.server.url.rsplit(":", 1)[1])
            proxy = ProxyProcess(port, self.work / "proxy-orion.log")
            self._cleanups.append(proxy.stop)
            self.orion = OrionMount(self.work, self.args.ttl, self.server, proxy)
            self.mounts.append(self.orion)
            self.proxies.append(proxy)
        served = self.work / "rclone-served"
        served.mkdir()
        if "rclone" in self.args.sides and not self.rclone_missing:
            port = free_port()
            serve = spawn(
                [
                    RCLONE,
                    "serve",
                    "webdav",
                    str(served),
                    "--addr",
                    f"127.0.0.1:{port}",
                    "--config",
                    "/dev/null",
                ],
                self.work / "rclone-serve.log",
            )
            self._cleanups.append(lambda: stop_process(serve))
            wait_for(lambda: _port_open(port), START_TIMEOUT, "rclone serve webdav")
            rproxy = ProxyProcess(port, self.work / "proxy-rclone.log")
            self._cleanups.append(rproxy.stop)
            self.rclone = RcloneMount(self.work, self.args.ttl, served, rproxy)
            self.mounts.append(self.rclone)
            self.proxies.append(rproxy)
        where = f"server {self.server.url}, " if self.server else ""
        self.log(f"{where}mounts: {', '.join(m.name for m in self.mounts)}")
        self.generate(served)
        for m in self.mounts:
            self._cleanups.append(m.unmount)
            m.mount()
        self.setup_seconds = time.perf_counter() - start
        self.log(f"setup done in {self.setup_seconds:.1f} s")

    def cleanup(self) -> None:
        # Mounts first (they were registered last), then servers and proxies.
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as exc:  # keep cleaning
                print(f"cleanup: {exc}", file=sys.stderr)
        self._cleanups.clear()

    # -- data ---
    def generate(self, served: Path) -> None:
        s = self.s
        t0 = time.perf_counter()
        # Local sources: the big file and the small files.
        self.big_src = self.local / "big.bin"
        with self.big_src.open("wb") as fh:
            for _ in range(s.big_mib):
                fh.write(os.urandom(MiB))
        self.small_src = self.local / "small"
        self.small_src.mkdir()
        for i in range(s.small_files):
            (self.small_src / f"s{i:05d}.dat").write_bytes(os.urandom(s.small_size))
        tree_payload = b"t" * 512
        # The layout, relative to the bench folder.
        folders = ["ls_small", "ls_large", "tree", "big", "small", "rss", "writes", "work"]
        folders += [f"tree/d{i:03d}" for i in range(s.tree_folders)]
        files: list[tuple[str, str, bytes | Path]] = []  # (folder, name, content)
        files += [("ls_small", f"f{i:06d}", b"") for i in range(s.ls_small)]
        files += [("ls_large", f"f{i:06d}", b"") for i in range(s.ls_large)]
        for d in range(s.tree_folders):
            files += [
                (f"tree/d{d:03d}", f"f{i:04d}.txt", tree_payload) for i in range(s.tree_files)
            ]
        files += [("small", p.name, p) for p in sorted(self.small_src.iterdir())]
        files += [("big", "big.bin", self.big_src)]
        rss_dirs = [f"rss/e{i:06d}" for i in range(s.rss_entries)]

        # rclone side: plain files in the served folder.
        if self.rclone is not None:
            root = served / "bench"
            for f in folders:
                (root / f).mkdir(parents=True, exist_ok=True)
            for folder, name, content in files:
                target = root / folder / name
                if isinstance(content, Path):
                    os.link(content, target)
                else:
                    target.write_bytes(content)
            for d in rss_dirs:
                (root / d).mkdir()
        # orionfs side: through the session API, straight to the server, in parallel.
        o = self.orion
        if o is None:
            return
        sess = o.session(direct=True)
        sess.create_paths(*[f"{o.orion_base}/{f}" for f in folders], exist_ok=True)
        for i in range(0, len(rss_dirs), 1000):
            sess.create_paths(*[f"{o.orion_base}/{d}" for d in rss_dirs[i : i + 1000]])

        def upload(item: tuple[str, str, bytes | Path]) -> None:
            folder, name, content = item
            s_ = o.session(direct=True)
            if isinstance(content, Path):
                with content.open("rb") as fh:
                    s_.upload_file(
                        f"{o.orion_base}/{folder}", name, fh, size=content.stat().st_size
                    )
            else:
                import io

                s_.upload_file(
                    f"{o.orion_base}/{folder}", name, io.BytesIO(content), size=len(content)
                )

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for _ in pool.map(upload, files):
                pass
        self.log(
            f"data: {len(files):,} files and {len(folders) + len(rss_dirs):,} folders per side "
            f"in {time.perf_counter() - t0:.1f} s"
        )

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

        def record() -> None:
            if done[0]:
                return
            done[0] = True
            new_conns = m.proxy.connections() - conns_before
            for row in rows:
                self.results.add_connections(row, rtt, m.name, new_conns)
            if m.counts_requests:
                by_endpoint = self.server.counters()
                for row in rows:
                    self.results.add_requests(row, rtt, by_endpoint)

        if m.counts_requests:
            self.server.reset_counters()
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
            names = [n for n in PROBE_NAMES][: self.s.probes]
            names += [f"absent-{i:04d}.txt" for i in range(self.s.probes - len(names))]
            with self.counted(m, ["probes"], rtt):
                start = time.perf_counter()
                for name in names:
                    try:
                        os.stat(folder / name)
                    except FileNotFoundError:
                        continue
                    raise RuntimeError(f"probe {name} exists")
                elapsed = time.perf_counter() - start
            self.results.add("probes", rtt, m.name, elapsed * 1000)

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

    def case_read(self, m: Mount, rtt: float, run: int) -> None:
        path = m.base / "big" / "big.bin"
        size = self.s.big_mib * MiB
        self.fresh(m, path)
        buf = bytearray(MiB)
        view = memoryview(buf)
        with self.counted(m, ["read", "read_ttfb"], rtt):
            start = time.perf_counter()
            fd = os.open(path, os.O_RDONLY)
            try:
                got = os.readv(fd, [view[:4096]])
                ttfb = time.perf_counter() - start
                while True:
                    n = os.readv(fd, [view])
                    if not n:
                        break
                    got += n
            finally:
                os.close(fd)
            elapsed = time.perf_counter() - start
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
            self.timed(["cp", str(self.big_src), str(dest)])
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
        d_elapsed = m.direct_write(self.big_src, "writes", d_name)
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
            self.timed(["cp", "-r", str(self.small_src), str(m.base / "work" / tag)])
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
        out = self.local / f"out-{m.name}-{rtt:g}-{run}"
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
            while not done.wait(0.02):
                peak[0] = max(peak[0], _rss(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with self.counted(m, ["rss"], rtt):
            try:
                self.timed(["ls", "-l", "--color=never", str(folder)])
            finally:
                done.set()
                sampler.join(STOP_TIMEOUT)
        hwm = _hwm(pid)  # the kernel's own peak, also catches a spike between samples
        self.results.add("rss", rtt, m.name, max(peak[0], hwm) / 1e6)

    # -- the run ---
    def groups(self) -> list[tuple[str, Callable[[Mount, float, int], None], int]]:
        s = self.s
        return [
            ("ls small + probes", lambda m, r, i: self.case_ls(m, r, i, "small"), s.runs),
            ("ls large", lambda m, r, i: self.case_ls(m, r, i, "large"), s.runs),
            ("find", lambda m, r, i: self.case_tree(m, r, i, "find"), s.runs),
            ("stat", lambda m, r, i: self.case_tree(m, r, i, "stat"), s.runs),
            ("du", lambda m, r, i: self.case_tree(m, r, i, "du"), s.runs),
            ("create / unlink", self.case_create_unlink, s.heavy_runs),
            ("read", self.case_read, s.runs),
            ("write", self.case_write, s.runs),
            ("copy small files", self.case_copy, s.heavy_runs),
            ("rss", self.case_rss, s.rss_runs),
        ]

    def run(self) -> None:
        for ri, rtt in enumerate(self.rtts):
            for p in self.proxies:
                p.set_rtt(rtt)
            for name, fn, runs in self.groups():
                if name == "rss" and ri > 0:
                    continue  # memory does not depend on latency: measured at the first RTT only
                t0 = time.perf_counter()
                for run in range(runs):
                    for m in self.mounts:
                        if m.name in self.broken:
                            continue
                        try:
                            fn(m, rtt, run)
                        except Exception as exc:
                            msg = f"{name} on {m.name} at {rtt:g} ms (run {run + 1}): {exc}"
                            self.results.errors.append(msg)
                            self.log(f"ERROR {msg}")
                            try:
                                m.remount()
                            except Exception as again:
                                # A mount that cannot come back would fail every later case
                                # slowly, one start timeout each: skip its remaining cases.
                                self.broken.add(m.name)
                                msg = f"{m.name}: cannot remount ({again}); its other cases skipped"
                                self.results.errors.append(msg)
                                self.log(f"ERROR {msg}")
                self.log(f"{rtt:g} ms: {name} done in {time.perf_counter() - t0:.1f} s")

    # -- checks ---
    def expected(self) -> dict[str, Callable[[dict[str, int]], tuple[bool, str]]]:
        s, p = self.s, self.page

        def exact(**want: int) -> Callable[[dict[str, int]], tuple[bool, str]]:
            def check(k: dict[str, int]) -> tuple[bool, str]:
                ok = all(k.get(kind, 0) == n for kind, n in want.items())
                return ok, ", ".join(f"{kind}={n}" for kind, n in want.items())

            return check

        def at_most(
            base: Callable[[dict[str, int]], tuple[bool, str]], **limits: int
        ) -> Callable[[dict[str, int]], tuple[bool, str]]:
            def check(k: dict[str, int]) -> tuple[bool, str]:
                ok, want = base(k)
                ok = ok and all(k.get(kind, 0) <= n for kind, n in limits.items())
                return ok, want + ", " + ", ".join(f"{kind}<={n}" for kind, n in limits.items())

            return check

        tree_ls = math.ceil(s.tree_folders / p) + s.tree_folders * math.ceil(s.tree_files / p)
        return {
            "ls_small_cold": exact(ls=math.ceil(s.ls_small / p), total=math.ceil(s.ls_small / p)),
            "ls_small_warm": exact(total=0),
            "ls_large_cold": exact(ls=math.ceil(s.ls_large / p), total=math.ceil(s.ls_large / p)),
            "ls_large_warm": exact(total=0),
            "find": exact(ls=tree_ls, total=tree_ls),
            "stat": exact(ls=tree_ls, total=tree_ls),
            "du": exact(ls=tree_ls, total=tree_ls),
            "probes": exact(total=0),
            "create_1": exact(upload=s.creates, total=s.creates),
            "create_8": exact(upload=s.creates, total=s.creates),
            "unlink": exact(delete=s.creates, total=s.creates),
            "write": exact(upload=1, total=1),
            # mkdir may read the new folder back once (one stat); no per-file lookups.
            "copy_in": at_most(
                exact(mkdir=1, upload=s.small_files), stat=1, total=s.small_files + 2
            ),
            "copy_out": exact(
                ls=math.ceil(s.small_files / p),
                download=s.small_files,
                total=math.ceil(s.small_files / p) + s.small_files,
            ),
            "rss": exact(ls=math.ceil(s.rss_entries / p), total=math.ceil(s.rss_entries / p)),
        }

    def read_check(self, k: dict[str, int]) -> tuple[bool, str]:
        return (k["download"] >= 1 and k["total"] == k["download"]), "download>=1, total=download"

    def check(self) -> list[str]:
        failures = list(self.results.errors)
        sides = [m.name for m in self.mounts]
        for row in self.rows:
            for ri, rtt in enumerate(self.rtts):
                if row.key == "rss" and ri > 0:
                    continue
                for side in sides:
                    if not self.results.summary(row.key, rtt, side):
                        failures.append(f"{row.key} at {rtt:g} ms on {side}: did not run")
        checks = self.expected()
        checks["read"] = self.read_check
        for key, fn in checks.items():
            for rtt, runs in self.results.requests.get(key, {}).items():
                for i, run in enumerate(runs):
                    ok, want = fn(run["kinds"])
                    if not ok:
                        failures.append(
                            f"{key} at {rtt} ms run {i + 1}: requests {run['by_endpoint']} "
                            f"(expected {want})"
                        )
            if key not in self.results.requests and "orionfs" in sides:
                failures.append(f"{key}: no request counts recorded")
        return failures

    # -- report ---
    def cell(self, row: Row, rtt: float, side: str) -> str:
        if side == "rclone" and self.rclone_missing:
            return "rclone: not installed"
        sm = self.results.summary(row.key, rtt, side)
        if sm is None:
            return "n/a (see 0 ms)" if row.key == "rss" and rtt != self.rtts[0] else "—"
        text = f"{fmt_number(sm['median'])} {row.unit}"
        if len(sm["runs"]) > 1:
            text += f" ({fmt_number(sm['min'])}–{fmt_number(sm['max'])})"
        return text

    def requests_cell(self, row: Row) -> str:
        per_rtt = self.results.requests.get(row.key)
        if not per_rtt:
            return ""
        totals = sorted({r["kinds"]["total"] for runs in per_rtt.values() for r in runs})
        kinds = {}
        for runs in per_rtt.values():
            for r in runs:
                for kind, n in r["kinds"].items():
                    if kind != "total" and n:
                        kinds.setdefault(kind, set()).add(n)
        parts = [
            f"{kind} {min(v)}" + (f"–{max(v)}" if len(v) > 1 else "") for kind, v in kinds.items()
        ]
        total = f"{totals[0]}" + (f"–{totals[-1]}" if len(totals) > 1 else "")
        conns = sorted(
            {
                n
                for sides in self.results.connections.get(row.key, {}).values()
                for n in sides.get("orionfs", [])
            }
        )
        if conns and conns[-1]:
            span = f"{conns[0]}" + (f"–{conns[-1]}" if len(conns) > 1 else "")
            parts.append(f"new conn {span}")
        return total + (f" ({', '.join(parts)})" if parts else "")

    def _median(self, key: str, rtt: float, side: str) -> float | None:
        sm = self.results.summary(key, rtt, side)
        return sm["median"] if sm else None

    def target_cell(self, row: Row, checks: dict) -> str:
        """The row's target, each part marked met (yes) or missed (NO) from this run's figures."""
        marks: list[str] = []
        top = max(self.rtts)
        if row.key in checks:
            runs = [r for rs in self.results.requests.get(row.key, {}).values() for r in rs]
            if runs:
                ok = all(checks[row.key](r["kinds"])[0] for r in runs)
                marks.append(f"requests {'yes' if ok else 'NO'}")
        if "ahead of rclone" in row.target or "behind rclone" in row.target:
            o, r = self._median(row.key, top, "orionfs"), self._median(row.key, top, "rclone")
            if o is not None and r is not None:
                if "ahead" in row.target:
                    ok = o > r if row.higher_is_better else o < r
                    marks.append(f"ahead at {top:g} ms {'yes' if ok else 'NO'}")
                else:
                    ok = o >= r if row.higher_is_better else o <= r
                    marks.append(f"not behind at {top:g} ms {'yes' if ok else 'NO'}")
        ratio_key = {
            "read": "read_ratio",
            "write": "write_ratio",
            "read_ratio": "read_ratio",
            "write_ratio": "write_ratio",
        }.get(row.key)
        if ratio_key:
            vals = [self._median(ratio_key, rtt, "orionfs") for rtt in self.rtts]
            if all(v is not None for v in vals):
                marks.append(f">= 80% {'yes' if all(v >= 80 for v in vals) else 'NO'}")
        if row.key == "read_ttfb":
            vals = [(rtt, self._median("read_ttfb", rtt, "orionfs")) for rtt in self.rtts]
            if all(v is not None for _, v in vals):
                ok = all(v <= rtt + 5 for rtt, v in vals)
                marks.append("yes" if ok else "NO")
        if row.key == "rss":
            v = self._median("rss", self.rtts[0], "orionfs")
            if v is not None:
                marks.append("yes" if v < 200 else "NO")
        return row.target + (f" — {', '.join(marks)}" if marks else "")

    def table(self) -> str:
        sides = ["orionfs", "rclone"]
        head = ["case"]
        for rtt in self.rtts:
            head += [f"{side} {rtt:g} ms" for side in sides]
        head += ["orionfs requests", "target"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        checks = self.expected()
        checks["read"] = self.read_check
        for row in self.rows:
            cells = [row.label]
            for rtt in self.rtts:
                cells += [self.cell(row, rtt, side) for side in sides]
            cells += [self.requests_cell(row), self.target_cell(row, checks)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def as_json(self, elapsed: float, failures: list[str]) -> dict:
        return {
            "machine": machine(),
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "sizes": asdict(self.s),
            "rtt_ms": self.rtts,
            "ttl_s": self.args.ttl,
            "page_size": self.page,
            "seconds": {"setup": round(self.setup_seconds, 1), "total": round(elapsed, 1)},
            "rows": [
                {
                    **asdict(row),
                    "results": {
                        f"{rtt:g}": {
                            side: self.results.summary(row.key, rtt, side)
                            for side in ("orionfs", "rclone")
                        }
                        for rtt in self.rtts
                    },
                    "orionfs_requests": self.results.requests.get(row.key, {}),
                    "new_connections": self.results.connections.get(row.key, {}),
                }
                for row in self.rows
            ],
            "rclone": "not installed" if self.rclone_missing else rclone_version(),
            "errors": self.results.errors,
            "check_failures": failures,
            "notes": self.results.notes,
        }


class _Sink:
    """A write-only file object that keeps nothing (for timing downloads)."""

    def write(self, data: bytes) -> int:
        return len(data)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss(pid: int) -> int:
    return _status_kb(pid, "VmRSS")


def _hwm(pid: int) -> int:
    return _status_kb(pid, "VmHWM")


def rclone_version() -> str:
    try:
        out = subprocess.run([RCLONE, "version"], capture_output=True, text=True, timeout=30)
        return out.stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = _status_kb_file("/proc/meminfo", "MemTotal")
    rev = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "orionfs_commit": rev,
    }


def _status_kb_file(path: str, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _print_log_tails(work: Path, lines: int = 20) -> None:
    """The end of every helper's log, for a failed run whose temp folder is about to go."""
    for log in sorted(work.glob("*.log")):
        with contextlib.suppress(OSError):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            if tail:
                print(f"--- {log.name} (last {len(tail)} lines)", file=sys.stderr)
                print("\n".join(tail), file=sys.stderr)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about two minutes)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit non-zero unless every case ran with the expected request counts",
    )
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--rtt-ms", default="0,20", help="round trips to add, comma-separated")
    parser.add_argument(
        "--runs",
        type=int,
        help="runs of every case (default: 3, but once for the per-file cases of 1,000 "
        "operations and the RSS case; --quick: 2, and 1 for those)",
    )
    parser.add_argument(
        "--ttl",
        type=float,
        default=60.0,
        help="cache TTL in seconds, for both mounts (default 60: longer than any one case, so "
        "that a case never sees its own listing expire)",
    )
    parser.add_argument("--workdir", type=Path, help="parent of the temp folder (default: $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, data)")
    parser.add_argument(
        "--server-cmd",
        metavar="CMD",
        help="command that runs the orionfs CLI for the server (default: this "
        "Python with orionfs.cli), e.g. to benchmark a patched server",
    )
    parser.add_argument(
        "--sides", default="orionfs,rclone", help="which mounts to run (default: orionfs,rclone)"
    )
    args = parser.parse_args(argv)
    args.rtts = [float(x) for x in args.rtt_ms.split(",") if x.strip()]
    args.sides = [x.strip() for x in args.sides.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.runs:
        sizes = Sizes(
            **{
                **asdict(sizes),
                "runs": args.runs,
                "heavy_runs": args.runs,
                "rss_runs": args.runs,
            }
        )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where started with it ignored
    work = Path(tempfile.mkdtemp(prefix="orionfs-bench-", dir=args.workdir))
    start = time.perf_counter()
    bench = Bench(args, sizes, work)
    failures: list[str] = []
    interrupted = False
    try:
        if bench.rclone_missing:
            print("rclone: not installed (its column is left empty)", file=sys.stderr)
        bench.setup()
        bench.run()
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: cleaning up", file=sys.stderr)
    except Exception as exc:
        bench.results.errors.append(f"setup or run: {type(exc).__name__}: {exc}")
        print(f"error: {exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        bench.cleanup()
        if bench.results.errors and not args.keep:
            _print_log_tails(work)
        mounted = [m for m in getattr(bench, "mounts", []) if os.path.ismount(m.mnt)]
        if args.keep or mounted:
            print(f"kept {work}" + (" (still mounted!)" if mounted else ""), file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if interrupted:
        return 130
    elapsed = time.perf_counter() - start
    failures = bench.check() if bench.mounts else list(bench.results.errors)
    print(bench.table())
    m = machine()
    print(
        f"\n{m['nproc']} x {m['cpu']}, {m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, "
        f"{'rclone: not installed' if bench.rclone_missing else rclone_version()}; "
        f"TTL {args.ttl:g} s, page {bench.page}; setup {bench.setup_seconds:.0f} s, "
        f"total {elapsed:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(bench.as_json(elapsed, failures), indent=2))
    if bench.results.errors:
        print("\nerrors:\n" + "\n".join(f"- {e}" for e in bench.results.errors), file=sys.stderr)
    if args.check:
        if failures:
            print("\ncheck FAILED:\n" + "\n".join(f"- {f}" for f in failures), file=sys.stderr)
            return 1
        print("\ncheck: every case ran; request counts as expected", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
