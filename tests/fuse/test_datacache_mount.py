"""The data cache through real mounts: what a re-read, a remount, a changed file and a killed mount
cost and serve, counted by the server.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from orionfs.client.types import ResourceKey

pytestmark = pytest.mark.fuse

DOWNLOAD = "GET /api/v3/storage/files/{file_id}/download/"
MiB = 1 << 20


def _put(session: Any, folder: str, name: str, data: bytes) -> int:
    return session.upload_file(folder, name, io.BytesIO(data), size=len(data)).id


def _chunks(cache_root: Path) -> list[Path]:
    """The chunk files (not the temporary files chunks are written to)."""
    return [p for p in cache_root.rglob("chunks/*/*") if p.is_file() and p.name[0] != "."]


def test_a_reread_and_a_read_after_a_remount_cost_no_download(
    server: Any, session: Any, mount_factory: Any, tmp_path: Path
) -> None:
    data = os.urandom(3 * MiB + 5)
    cache = str(tmp_path / "cache")
    first = mount_factory(server, "--cache-dir", cache)
    _put(session, first.root, "reread.bin", data)
    path = first.path / "reread.bin"
    server.reset_counters()
    assert path.read_bytes() == data
    assert server.count(DOWNLOAD) >= 1
    server.reset_counters()
    assert path.read_bytes() == data
    assert server.count(DOWNLOAD) == 0
    first.unmount()
    second = mount_factory(server, "--cache-dir", cache)
    server.reset_counters()
    assert (second.path / "reread.bin").read_bytes() == data
    assert server.count(DOWNLOAD) == 0


def _read_calls(mounted: Any) -> int:
    """The read calls the mount has served (its stats xattr)."""
    stats = json.loads(os.getxattr(mounted.path, "user.orion.stats"))
    return int(stats["operations"].get("read", {}).get("calls", 0))


def test_a_hot_reread_makes_no_read_call_and_a_changed_file_is_read_again(
    server: Any, session: Any, mount_factory: Any
) -> None:
    mounted = mount_factory(server, "--cache-ttl", "0.5")
    data = os.urandom(MiB + 1)
    ident = _put(session, mounted.root, "hot.bin", data)
    path = mounted.path / "hot.bin"
    assert path.read_bytes() == data
    before = _read_calls(mounted)
    assert path.read_bytes() == data  # the kernel kept its pages: keep_cache
    assert _read_calls(mounted) == before
    changed = os.urandom(MiB + 1)
    session.replace_file_content(ResourceKey("file", ident), io.BytesIO(changed), len(changed))
    time.sleep(1.2)  # past the TTL
    assert path.read_bytes() == changed  # the kernel's pages were dropped
    assert _read_calls(mounted) > before


def test_reading_back_what_the_mount_wrote_costs_no_download(
    server: Any, mount_factory: Any
) -> None:
    mounted = mount_factory(server)
    data = os.urandom(2 * MiB + 3)
    path = mounted.path / "written.bin"
    path.write_bytes(data)
    server.reset_counters()
    assert path.read_bytes() == data
    assert server.count(DOWNLOAD) == 0


def test_a_file_changed_elsewhere_is_read_anew(
    server: Any, session: Any, mount_factory: Any
) -> None:
    mounted = mount_factory(server, "--cache-ttl", "0.5")
    ident = _put(session, mounted.root, "changes.txt", b"first version")
    path = mounted.path / "changes.txt"
    assert path.read_bytes() == b"first version"
    session.replace_file_content(ResourceKey("file", ident), io.BytesIO(b"later version"), 13)
    time.sleep(1.2)  # past the TTL: the mount sees the new modification time
    server.reset_counters()
    assert path.read_bytes() == b"later version"  # same size: only the version tells
    assert server.count(DOWNLOAD) == 1


def test_a_killed_mount_leaves_no_damaged_chunk_to_serve(
    server: Any, session: Any, mount_factory: Any, tmp_path: Path
) -> None:
    data = os.urandom(48 * MiB)
    cache = tmp_path / "cache"
    first = mount_factory(server, "--cache-dir", str(cache))
    _put(session, first.root, "killed.bin", data)
    server.set_latency(30)  # the read takes long enough to be killed in the middle
    reader = subprocess.Popen(
        ["cat", str(first.path / "killed.bin")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while len(_chunks(cache)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _chunks(cache), "nothing cached before the kill"
    os.kill(first.proc.pid, signal.SIGKILL)
    first.unmount()
    reader.wait(30)
    server.set_latency(0)
    for chunk in _chunks(cache):  # complete, or not there under a chunk's name
        assert chunk.stat().st_size == MiB, chunk
    second = mount_factory(server, "--cache-dir", str(cache))
    assert (second.path / "killed.bin").read_bytes() == data
    # (the second mount may still be writing a chunk it read ahead: only the killed one's count)
    killed = [p for p in cache.rglob(f"chunks/*/.*.{first.proc.pid}.*.tmp")]
    assert not killed, "temporary files of the killed mount"
