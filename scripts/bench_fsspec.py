"""Benchmark of the fsspec layer (``orion://``): figures to read, never timed assertions.

Rows, in one run on loopback against the local server started with ``--test-hooks``:

1. reading a large file (default 256 MiB) through ``fs.open`` (1 MiB reads, and one whole
   ``read()``), against the session's direct download (``session.download_file``) of the same file;
2. ``pandas.read_csv`` of a ~100 MB CSV through fsspec (``orion://local@...``) against the same
   file through the mount (``orionfs mount``);
3. ``find`` over a tree of F folders x M files (default 100 x 100), cold: the requests the server
   counted for ``fs.find`` and for ``find`` on a fresh mount (one listing per folder for both).

Usage::

    .venv/bin/python scripts/bench_fsspec.py                 # full size (~2-3 min on 2 cores)
    .venv/bin/python scripts/bench_fsspec.py --quick         # small sizes (~30 s)
    .venv/bin/python scripts/bench_fsspec.py --json out.json --runs 5 --no-mount

Figures are medians of ``--runs`` runs (min-max in brackets); compare them only within one run.
The mount rows are skipped where FUSE is unavailable (no ``/dev/fuse`` or ``fusermount3``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orionfs.client.config import SessionConfig  # noqa: E402
from orionfs.client.session import OrionSession  # noqa: E402
from orionfs.fsspec import OrionFileSystem  # noqa: E402

MiB = 1 << 20
START_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1
MOUNT_TIMEOUT = 30.0
LS_ROUTE = "GET /api/v1/storage/ls/"


def _die_with_parent() -> None:
    """In a child (``preexec_fn``): get SIGTERM if the bench dies, so that no server or mount
    outlives a killed bench (Linux; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class Sizes:
    read_mib: int
    csv_mb: int
    tree_folders: int
    tree_files: int


FULL = Sizes(read_mib=256, csv_mb=100, tree_folders=100, tree_files=100)
QUICK = Sizes(read_mib=32, csv_mb=10, tree_folders=10, tree_files=30)


# -- the server and the mount ----------------------------------------------------------------
class Server:
    """``python -m orionfs.server serve --test-hooks`` on a free loopback port."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.config_dir = work / "config"
        self.env = {**os.environ, "ORIONFS_CONFIG_DIR": str(self.config_dir)}
        self.env.pop("ORION_PROFILE", None)
        data = work / "data"
        command = [sys.executable, "-m", "orionfs.server", "serve", "--data", str(data)]
        command += ["--port", "0", "--test-hooks", "--log-level", "warning"]
        with open(work / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=work,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited; see {work / 'server.log'}")
            try:
                info = json.loads((data / "server.json").read_text())
                if info.get("pid") == self.proc.pid and self._answers(info):
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {work / 'server.log'}")
            time.sleep(0.05)
        self.url, self.token = info["url"], info["token"]
        self.hooks_secret = info.get("test_hooks_secret", "")
        self.username, self.project = info["username"], int(info["project"])
        self.home = f"/project/{self.project}/user/{self.username}"

    @staticmethod
    def _answers(info: dict[str, Any]) -> bool:
        try:
            headers = {"Authorization": f"Token {info['token']}"}
            return requests.get(f"{info['url']}/api/versions/", headers=headers, timeout=2).ok
        except requests.RequestException:
            return False

    def hook(self, method: str, name: str) -> Any:
        response = requests.request(
            method,
            f"{self.url}/api/v1/_test/{name}",
            headers={
                "Authorization": f"Token {self.token}",
                "X-Orion-Test-Hooks": self.hooks_secret,
            },
            timeout=10,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self) -> None:
        self.hook("POST", "counters/reset/")

    def counts(self) -> dict[str, int]:
        answer = self.hook("GET", "counters/")
        return {**answer["by_endpoint"], "total": answer["total"]}

    def session(self) -> OrionSession:
        return OrionSession(
            config=SessionConfig(
                url=self.url, token=self.token, username=self.username, project=self.project
            )
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fuse_missing() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not shutil.which("fusermount3"):
        return "no fusermount3"
    return None


@contextmanager
def mounted(server: Server, work: Path) -> Iterator[Path]:
    """A fresh ``orionfs mount --foreground`` of the user's My Data; unmounted on the way out."""
    point = Path(tempfile.mkdtemp(prefix="mnt-", dir=work))
    state = Path(tempfile.mkdtemp(prefix="state-", dir=work))
    command = [sys.executable, "-m", "orionfs.cli", "mount", str(point), "--foreground"]
    command += ["--profile", "local", "--root", server.home, "--staging-dir", str(state)]
    runtime = state / "runtime"
    runtime.mkdir(mode=0o700)
    env = {
        **server.env,
        "XDG_DATA_HOME": str(state / "xdg-data"),
        "XDG_CACHE_HOME": str(state / "xdg-cache"),  # a cold data cache for every mount
        "XDG_RUNTIME_DIR": str(runtime),
    }
    with open(state / "mount.log", "ab") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=state,
            preexec_fn=_die_with_parent,
        )
    try:
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(point):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the mount did not come up; see {state / 'mount.log'}")
            time.sleep(0.05)
        yield point
    finally:
        for flags in ("-u", "-uz"):
            if os.path.ismount(point):
                subprocess.run(["fusermount3", flags, str(point)], capture_output=True, timeout=30)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- data --------------------------------------------------------------------------------------
class Null:
    """A sink that keeps nothing."""

    def write(self, data: bytes) -> int:
        return len(data)


def upload(session: OrionSession, folder: str, name: str, data: bytes) -> None:
    session.upload_file(folder, name, io.BytesIO(data), size=len(data))


def make_csv(target_mb: int) -> bytes:
    """A CSV of about ``target_mb`` MB: an id, a name, four floats per row."""
    import numpy as np
    import pandas as pd

    rows = target_mb * 1_000_000 // 64  # ~64 bytes a row
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "name": [f"mol-{i:08d}" for i in range(rows)],
            **{f"x{k}": rng.random(rows) for k in range(4)},
        }
    )
    return frame.to_csv(index=False, float_format="%.8f").encode()


def make_tree(server: Server, folder: str, sizes: Sizes) -> None:
    session = server.session()
    session.create_paths(*[f"{folder}/d{i:03d}" for i in range(sizes.tree_folders)])
    payload = b"t" * 512
    jobs = [
        (f"{folder}/d{i:03d}", f"f{j:04d}.txt")
        for i in range(sizes.tree_folders)
        for j in range(sizes.tree_files)
    ]
    sessions = [server.session() for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: upload(sessions[k % 8], *jobs[k], payload), range(len(jobs))))


# -- measuring ---------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(values: list[float], unit: str) -> str:
    digits = 2 if unit == "s" else 0
    low, high = min(values), max(values)
    return f"{statistics.median(values):8.{digits}f} {unit} [{low:.{digits}f}-{high:.{digits}f}]"


def new_fs(server: Server) -> OrionFileSystem:
    return OrionFileSystem(
        url=server.url,
        token=server.token,
        username=server.username,
        project=server.project,
        skip_instance_cache=True,
    )


def bench_read(server: Server, folder: str, sizes: Sizes, runs: int) -> dict[str, Any]:
    size = sizes.read_mib * MiB
    upload(server.session(), folder, "big.bin", os.urandom(size))
    path = f"{folder}/big.bin".lstrip("/")
    direct_session = server.session()
    ref = direct_session.stat_path(f"/{path}")

    def direct() -> None:
        assert direct_session.download_file(ref, Null()) == size

    def chunked() -> None:
        fs = new_fs(server)
        with fs.open(path, "rb") as f:
            total = 0
            while chunk := f.read(MiB):
                total += len(chunk)
        assert total == size

    def whole() -> None:
        fs = new_fs(server)
        with fs.open(path, "rb") as f:
            assert len(f.read()) == size

    mbs: dict[str, list[float]] = {"direct": [], "fs.open 1 MiB reads": [], "fs.open read()": []}
    for _ in range(runs):
        mbs["direct"].append(size / timed(direct) / 1e6)
        mbs["fs.open 1 MiB reads"].append(size / timed(chunked) / 1e6)
        mbs["fs.open read()"].append(size / timed(whole) / 1e6)
    base = statistics.median(mbs["direct"])
    print(f"\nRead {sizes.read_mib} MiB (MB/s, ratio to the direct download)")
    for name, values in mbs.items():
        ratio = statistics.median(values) / base
        print(f"  {name:22s} {summary(values, 'MB/s')}  x{ratio:.2f}")
    return {name: statistics.median(v) for name, v in mbs.items()}


def bench_csv(
    server: Server, folder: str, sizes: Sizes, runs: int, mount_factory: Callable[[], Any] | None
) -> dict[str, Any]:
    """pandas.read_csv through fsspec and through a fresh (cold) mount, alternately."""
    import pandas as pd

    data = make_csv(sizes.csv_mb)
    upload(server.session(), folder, "table.csv", data)
    rel = f"{folder}/table.csv"[len(server.home) + 1 :]
    url = f"orion://local@{folder.lstrip('/')}/table.csv"
    seconds: dict[str, list[float]] = {"fsspec": [], "mount": []}
    for _ in range(runs):
        OrionFileSystem.clear_instance_cache()
        seconds["fsspec"].append(timed(lambda: pd.read_csv(url)))
        if mount_factory is not None:
            with mount_factory() as point:
                seconds["mount"].append(timed(lambda: pd.read_csv(point / rel)))
    print(f"\npandas.read_csv of a {len(data) / 1e6:.0f} MB CSV (seconds; the mount cold each run)")
    for name, values in seconds.items():
        if values:
            print(f"  {name:22s} {summary(values, 's')}")
    if seconds["mount"]:
        ratio = statistics.median(seconds["mount"]) / statistics.median(seconds["fsspec"])
        print(f"  fsspec speed / mount speed: x{ratio:.2f}")
    return {name: statistics.median(v) for name, v in seconds.items() if v}


def bench_find(
    server: Server, folder: str, sizes: Sizes, runs: int, mount_factory: Callable[[], Any] | None
) -> dict[str, Any]:
    """``find`` of the tree, cold each run (a new filesystem, a new mount), alternately."""
    make_tree(server, f"{folder}/tree", sizes)
    path = f"{folder}/tree".lstrip("/")
    rel = f"{folder}/tree"[len(server.home) + 1 :]
    want = sizes.tree_folders * sizes.tree_files
    seconds: dict[str, list[float]] = {"fsspec": [], "mount": []}
    requests_seen: dict[str, dict[str, int]] = {}
    for _ in range(runs):
        fs = new_fs(server)
        server.reset()
        start = time.perf_counter()
        found = fs.find(path)
        seconds["fsspec"].append(time.perf_counter() - start)
        requests_seen["fsspec"] = server.counts()
        assert len(found) == want
        if mount_factory is not None:
            with mount_factory() as point:
                server.reset()
                start = time.perf_counter()
                subprocess.run(["find", str(point / rel)], capture_output=True, check=True)
                seconds["mount"].append(time.perf_counter() - start)
                requests_seen["mount"] = server.counts()
    expected = 1 + sizes.tree_folders  # one listing per folder (each under 1,000 entries)
    print(f"\nfind over {sizes.tree_folders} folders x {sizes.tree_files} files, cold each run")
    print(f"  one listing per folder: {expected} listings")
    for name, values in seconds.items():
        if values:
            routes = ", ".join(f"{k}={v}" for k, v in sorted(requests_seen[name].items()))
            print(f"  {name:8s} {summary(values, 's')}  requests: {routes}")
    return {
        name: {"seconds": statistics.median(values), **requests_seen[name]}
        for name, values in seconds.items()
        if values
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--runs", type=int, default=3, help="runs per timed figure (default 3)")
    parser.add_argument("--no-mount", action="store_true", help="skip the rows that need FUSE")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    missing = "--no-mount" if args.no_mount else fuse_missing()
    work = Path(tempfile.mkdtemp(prefix="orionfs-bench-fsspec-"))
    server = Server(work)
    os.environ["ORIONFS_CONFIG_DIR"] = str(server.config_dir)  # the "local" profile for orion://
    os.environ.pop("ORION_PROFILE", None)
    figures: dict[str, Any] = {"sizes": sizes.__dict__}
    try:
        folder = f"{server.home}/bench"
        server.session().create_paths(folder)
        print(f"orionfs fsspec bench: server {server.url}, work {work}")
        if missing:
            print(f"(mount rows skipped: {missing})")
        factory = None if missing else (lambda: mounted(server, work))
        figures["read"] = bench_read(server, folder, sizes, args.runs)
        figures["read_csv"] = bench_csv(server, folder, sizes, args.runs, factory)
        figures["find"] = bench_find(server, folder, sizes, args.runs, factory)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
