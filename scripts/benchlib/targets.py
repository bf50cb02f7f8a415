"""The two mounts compared (orionfs and rclone), their direct access for the ratios, and the rig
that starts the servers and proxies behind them and fills both with the same data.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import log
from benchlib.datacache_cases import sniff_content
from benchlib.processes import (
    ORIONFS,
    RCLONE,
    START_TIMEOUT,
    OrionServer,
    ProxyProcess,
    start_mount,
    start_rclone_serve,
    stop,
    stop_mount,
    wait_for,
)
from benchlib.sizes import MiB, Sizes

UPLOAD_THREADS = 8
DIRECT_TIMEOUT = 60.0  # one direct request
DIRECT_UPLOAD_TIMEOUT = 600.0


class Mount:
    """One side of the comparison: a FUSE mount (a foreground process) and its direct access."""

    name = ""
    counts_requests = False

    def __init__(self, work: Path, ttl: float, proxy: ProxyProcess) -> None:
        self.work = work
        self.ttl = ttl
        self.proxy = proxy
        self.mnt = work / f"mnt-{self.name}"
        self.mnt.mkdir()
        self.proc: subprocess.Popen | None = None
        self.base = self.mnt  # the bench folder as seen through the mount
        self.extra_args: list[str] = []  # mount options of the case running (write-back)

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def mount(self) -> None:
        log_path = self.work / f"{self.name}-mount.log"
        self.proc = start_mount(self.name, self.command(), self.mnt, log_path, env=self.env())
        wait_for(lambda: self.base.is_dir(), START_TIMEOUT, f"{self.base} through the mount")

    def unmount(self) -> None:
        try:
            stop_mount(self.mnt, self.proc)
        finally:
            self.proc = None

    def remount(self, keep_cache: bool = False) -> None:
        """A new mount; its data cache (if it has one) emptied first, unless ``keep_cache``."""
        self.unmount()
        if not keep_cache:
            self.clear_cache()
        self.mount()

    def remount_with(self, args: list[str]) -> None:
        """Remount with ``args`` added to the mount command (the mount's own options)."""
        self.extra_args = list(args)
        self.remount()

    def clear_cache(self) -> None:
        """Empty the mount's data cache (unmounted); nothing for a mount without one."""

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

    def count_stored(self, rel_folder: str) -> int:
        """How many entries the far side holds in a folder."""
        raise NotImplementedError

    def remove(self, rel: str) -> None:
        """Remove a file or folder on the far side, not through the mount (cleanup)."""
        raise NotImplementedError


class OrionMount(Mount):
    name = "orionfs"
    counts_requests = True

    def __init__(self, work: Path, ttl: float, server: OrionServer, proxy: ProxyProcess) -> None:
        super().__init__(work, ttl, proxy)
        self.server = server
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
        self.has_data_cache = "--cache-dir" in help_text
        self.base = self.mnt / "bench" if self.use_root else self.mnt / self.orion_base.lstrip("/")
        self._local = threading.local()

    def env(self) -> dict[str, str]:
        return dict(os.environ, ORIONFS_CONFIG_DIR=str(self.config_dir))

    @property
    def cache_dir(self) -> Path:
        """The data cache root of the bench's mounts (in the bench's temp folder)."""
        return self.work / "orion-cache"

    def clear_cache(self) -> None:
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def fill_cache(self, size: int) -> None:
        """Make the data cache hold ``size`` bytes of 1 MiB chunks of items that do not exist
        (sparse files: no disk used), as a cache full of other files would (unmounted)."""
        from orionfs.fs.datacache import DataCache, cache_dir

        folder = cache_dir(self.cache_dir, self.proxy.url, self.server.username)
        data = DataCache(folder, max_size=size + (1 << 30))
        try:
            for i in range(size // MiB):
                key = f"file-{10**9 + i}-{MiB}-1"
                path = data.directory / "chunks" / data.name(key, 0)
                path.parent.mkdir(mode=0o700, exist_ok=True)
                with open(path, "wb") as fh:
                    fh.truncate(MiB)
                data.index.added(data.name(key, 0), MiB)
        finally:
            data.close()

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
        if self.has_data_cache:  # in the bench's folder, large enough for every case
            cmd += ["--cache-dir", str(self.cache_dir), "--cache-max-size", "12G"]
        if self.use_root:
            cmd += ["--root", self.my_data]
        return cmd + self.extra_args

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
        super().__init__(work, ttl, proxy)
        self.served = served  # the local folder `rclone serve webdav` serves
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
        self._http.head(url, timeout=DIRECT_TIMEOUT).raise_for_status()  # warm (untimed)
        start = time.perf_counter()
        r = self._http.get(url, headers={"Range": "bytes=0-4095"}, timeout=DIRECT_TIMEOUT)
        r.raise_for_status()
        ttfb = time.perf_counter() - start
        start = time.perf_counter()
        got = 0
        with self._http.get(url, stream=True, timeout=DIRECT_TIMEOUT) as r:
            r.raise_for_status()
            for chunk in r.iter_content(MiB):
                got += len(chunk)
        elapsed = time.perf_counter() - start
        if got != size:
            raise RuntimeError(f"direct read got {got} of {size} bytes")
        return ttfb, elapsed

    def direct_write(self, src: Path, rel_folder: str, name: str) -> float:
        url = f"{self.proxy.url}/bench/{rel_folder}/{name}"
        self._http.head(f"{self.proxy.url}/bench/{rel_folder}/", timeout=DIRECT_TIMEOUT)  # warm
        start = time.perf_counter()
        with src.open("rb") as fh:
            self._http.put(url, data=fh, timeout=DIRECT_UPLOAD_TIMEOUT).raise_for_status()
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


class _Sink:
    """A write-only file object that keeps nothing (for timing downloads)."""

    def write(self, data: bytes) -> int:
        return len(data)


class Rig:
    """Everything the cases run against: the server, proxies and mounts of the chosen sides,
    and the data on both (the same files and folders). ``cleanup`` stops all it started."""

    def __init__(
        self, work: Path, sizes: Sizes, sides: list[str], ttl: float, server_cmd: list[str]
    ) -> None:
        self.work = work
        self.s = sizes
        self.sides = sides
        self.ttl = ttl
        self.server_cmd = server_cmd
        self.local = work / "local"  # sources for copy in / write, and copy-out targets
        self.local.mkdir()
        self.big_src = self.local / "big.bin"
        self.small_src = self.local / "small"
        self.server: OrionServer | None = None
        self.orion: OrionMount | None = None
        self.rclone: RcloneMount | None = None
        self.rclone_missing = shutil.which(RCLONE) is None
        self.mounts: list[Mount] = []
        self.proxies: list[ProxyProcess] = []
        self._cleanups: list[Callable[[], None]] = []
        self.setup_seconds = 0.0

    def setup(self) -> None:
        start = time.perf_counter()
        if "orionfs" in self.sides:
            self.server = OrionServer(self.work, self.server_cmd)
            self._cleanups.append(self.server.stop)
            port = int(self.server.url.rsplit(":", 1)[1])
            proxy = ProxyProcess(port, self.work / "proxy-orion.log")
            self._cleanups.append(proxy.stop)
            self.orion = OrionMount(self.work, self.ttl, self.server, proxy)
            self.mounts.append(self.orion)
            self.proxies.append(proxy)
        served = self.work / "rclone-served"
        served.mkdir()
        if "rclone" in self.sides and not self.rclone_missing:
            serve, port = start_rclone_serve(served, self.work / "rclone-serve.log")
            self._cleanups.append(lambda: stop(serve))
            rproxy = ProxyProcess(port, self.work / "proxy-rclone.log")
            self._cleanups.append(rproxy.stop)
            self.rclone = RcloneMount(self.work, self.ttl, served, rproxy)
            self.mounts.append(self.rclone)
            self.proxies.append(rproxy)
        where = f"server {self.server.url}, " if self.server else ""
        log(f"{where}mounts: {', '.join(m.name for m in self.mounts)}")
        self.generate(served)
        for m in self.mounts:
            self._cleanups.append(m.unmount)
            m.mount()
        self.setup_seconds = time.perf_counter() - start
        log(f"setup done in {self.setup_seconds:.1f} s")

    def cleanup(self) -> None:
        # Mounts first (they were registered last), then servers and proxies.
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as exc:  # keep cleaning
                print(f"cleanup: {exc}", file=sys.stderr)
        self._cleanups.clear()

    def generate(self, served: Path) -> None:
        s = self.s
        t0 = time.perf_counter()
        # Local sources: the big file and the small files.
        with self.big_src.open("wb") as fh:
            for _ in range(s.big_mib):
                fh.write(os.urandom(MiB))
        self.small_src.mkdir()
        for i in range(s.small_files):
            (self.small_src / f"s{i:05d}.dat").write_bytes(os.urandom(s.small_size))
        tree_payload = b"t" * 512
        # The layout, relative to the bench folder.
        folders = ["ls_small", "ls_large", "tree", "big", "small", "rss", "writes", "work"]
        folders += ["sniff", "readers"]
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
        files += [
            ("sniff", f"n{i:03d}", sniff_content(i, s.sniff_size)) for i in range(s.sniff_files)
        ]
        for i in range(s.readers):
            src = self.local / f"r{i:02d}.bin"
            with src.open("wb") as fh:
                for _ in range(s.reader_mib):
                    fh.write(os.urandom(MiB))
            files.append(("readers", src.name, src))
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
                s_.upload_file(
                    f"{o.orion_base}/{folder}", name, io.BytesIO(content), size=len(content)
                )

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for _ in pool.map(upload, files):
                pass
        log(
            f"data: {len(files):,} files and {len(folders) + len(rss_dirs):,} folders per side "
            f"in {time.perf_counter() - t0:.1f} s"
        )
