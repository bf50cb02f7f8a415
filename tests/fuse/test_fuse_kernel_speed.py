"""Metadata at kernel speed: what the kernel answers itself, counted with the mount's stats xattr.

- readdir hands the kernel every entry with its attributes and an offset (readdirplus): ``ls -l`` of
  a folder of N entries makes no lookup or getattr call per entry, cold or warm; a warm ``ls -l``
  costs at most 10 + N/100 FUSE calls and no request; a folder read in many small batches, and
  changed meanwhile, is read whole and once, and a rewind sees the change;
- ``security.*``, ``system.*`` and ``trusted.*`` xattrs are EOPNOTSUPP, so ``ls -l`` asks for them a
  constant number of times; ``user.orion.*`` work as before, other ``user.*`` names are ENODATA;
- ``user.orion.stats`` of the mount root is the mount's ``MountStats`` as JSON, read-only, listed
  nowhere, and reading it is not counted;
- an open file shows in a listing as written so far (the kernel takes a listing's attributes as
  the file's own, so ``>>`` appends stay in place).
"""

from __future__ import annotations

import ctypes
import errno
import io
import math
import os
import platform
import stat
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from orionfs.client.config import SessionConfig
from orionfs.client.session import OrionSession
from orionfs.fs.cache import LS_PAGE_SIZE
from orionfs.fuse.dirs import DirHandles
from orionfs.fuse.stats import CacheCounts, MountStats
from tests.support.mount import api_bytes, api_names, my_data, sh

N = 1000
LS = "GET /api/v1/storage/ls/"
TTL = "120"  # long enough that nothing expires during a test
STATS = "user.orion.stats"
fuse = pytest.mark.fuse


def _session(server) -> OrionSession:
    return OrionSession(
        config=SessionConfig(
            url=server.url, username=server.username, token=server.token, project=server.project_id
        )
    )


def _fill(server, name: str, count: int) -> str:
    """A folder of ``count`` small files in My Data, made through the API (8 uploaders)."""
    orion = f"{my_data(server)}/{name}"
    session = _session(server)
    session.create_paths(orion)

    def put(i: int) -> None:
        session.upload_file(orion, f"f{i:04d}.txt", io.BytesIO(b"%d\n" % i))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))
    assert len(api_names(session, orion)) == count
    return orion


@pytest.fixture(scope="module")
def big_folder(server) -> str:
    """The name of a folder of N files in My Data."""
    _fill(server, "speed-1000", N)
    return "speed-1000"


def stats_of(mounted) -> MountStats:
    """The mount's stats, read the way any process can (os.getxattr on the mount point)."""
    return MountStats.from_json(os.getxattr(mounted.path, STATS))


def _fresh(mount_factory, server, name: str):
    """A fresh mount (nothing cached) with the folder's own entry looked up."""
    mounted = mount_factory(server, "--cache-ttl", TTL)
    folder = mounted.path / name
    assert folder.is_dir()
    return mounted, folder


def _ls_l(folder, count: int) -> None:
    out = sh("ls", "-l", folder).stdout
    assert len(out.splitlines()) == count + 1  # "total" + one line each


# -- readdirplus -----------------------------------------------------------------------------------


@fuse
def test_cold_ls_l_costs_one_listing_per_page_and_no_call_per_entry(
    mount_factory, server, big_folder
):
    mounted, folder = _fresh(mount_factory, server, big_folder)
    before = stats_of(mounted)
    server.reset_counters()
    _ls_l(folder, N)
    spent = stats_of(mounted).since(before)
    assert dict(server.counters()["by_endpoint"]) == {LS: math.ceil(N / LS_PAGE_SIZE)}
    assert spent.cache.requests_total == 1  # one listing, whatever its pages
    # no lookup (getattr) per entry: the kernel kept the entries readdir gave it
    assert spent.calls("getattr") <= 3, spent.operations
    assert spent.upcalls <= 10 + N // 100, spent.operations


@fuse
def test_warm_ls_l_costs_at_most_10_plus_n_over_100_calls_and_no_request(
    mount_factory, server, big_folder
):
    mounted, folder = _fresh(mount_factory, server, big_folder)
    _ls_l(folder, N)
    before = stats_of(mounted)
    server.reset_counters()
    _ls_l(folder, N)
    spent = stats_of(mounted).since(before)
    assert server.counters()["total"] == 0
    assert spent.cache.requests_total == 0
    assert spent.upcalls <= 10 + N // 100, spent.operations


@fuse
def test_ls_l_asks_for_security_and_acl_xattrs_a_constant_number_of_times(
    mount_factory, server, big_folder
):
    mounted, folder = _fresh(mount_factory, server, big_folder)
    for _ in range(2):  # cold, then warm
        before = stats_of(mounted)
        _ls_l(folder, N)
        spent = stats_of(mounted).since(before)
        assert spent.calls("getxattr") <= 4, spent.operations  # not 2 per entry


# -- offsets -----------------------------------------------------------------------------------------

_SYS_GETDENTS64 = {"x86_64": 217, "aarch64": 61}.get(platform.machine())
_libc = ctypes.CDLL(None, use_errno=True)


def _getdents(fd: int, size: int = 4096) -> list[str]:
    """One getdents64 call with a small buffer (so the kernel asks the mount in small batches)."""
    buf = ctypes.create_string_buffer(size)
    n = _libc.syscall(_SYS_GETDENTS64, fd, buf, size)
    if n < 0:
        raise OSError(ctypes.get_errno(), "getdents64")
    names, pos, raw = [], 0, buf.raw
    while pos < n:
        reclen = struct.unpack_from("H", raw, pos + 16)[0]
        names.append(os.fsdecode(raw[pos + 19 : pos + reclen].split(b"\0", 1)[0]))
        pos += reclen
    return names


def _read_dir(fd: int, between: Callable[[int], None] | None = None) -> tuple[list[str], int]:
    """Every name from the descriptor's position on, in small batches; ``between(batches)`` runs
    after each batch. Returns the names and the number of batches."""
    names: list[str] = []
    batches = 0
    while batch := _getdents(fd):
        names += batch
        batches += 1
        if between is not None:
            between(batches)
    return names, batches


@fuse
@pytest.mark.skipif(_SYS_GETDENTS64 is None, reason="getdents64 number unknown here")
def test_a_folder_read_in_many_batches_is_read_whole_and_once(mount, big_folder):
    fd = os.open(mount.path / big_folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names, batches = _read_dir(fd)
    finally:
        os.close(fd)
    assert batches > 10  # the kernel resumed at the offsets readdir gave it, many times
    assert len(names) == len(set(names)) == N + 2
    assert set(names) == {".", ".."} | {f"f{i:04d}.txt" for i in range(N)}


@fuse
@pytest.mark.skipif(_SYS_GETDENTS64 is None, reason="getdents64 number unknown here")
def test_a_folder_changed_while_read_is_neither_skipped_nor_repeated_and_a_rewind_sees_it(
    mount, server
):
    count = 300
    _fill(server, "speed-changing", count)
    folder = mount.path / "speed-changing"
    original = {f"f{i:04d}.txt" for i in range(count)}
    removed: list[str] = []

    def change(batches: int) -> None:
        if batches == 2:  # remove what was read already (it shifts what follows), add some
            for name in sorted(original)[:60]:
                os.unlink(folder / name)
                removed.append(name)
            for i in range(5):
                (folder / f"new{i}.txt").write_bytes(b"new")

    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names, batches = _read_dir(fd, change)
        assert batches > 2 and removed
        assert len(names) == len(set(names))
        assert set(names) == {".", ".."} | original  # the folder as it was when read began
        os.lseek(fd, 0, os.SEEK_SET)  # rewinddir
        again, _ = _read_dir(fd)
    finally:
        os.close(fd)
    expected = (original - set(removed)) | {f"new{i}.txt" for i in range(5)}
    assert set(again) == {".", ".."} | expected
    assert len(again) == len(set(again))


@fuse
def test_libfuse_2_still_lists_folders(mount_factory, server, big_folder):
    mounted = mount_factory(server, env_extra={"FUSE_LIBRARY_NAME": "fuse"})
    assert "libfuse 2." in mounted.log()
    folder = mounted.path / big_folder
    assert sorted(os.listdir(folder)) == [f"f{i:04d}.txt" for i in range(N)]
    _ls_l(folder, N)
    assert stats_of(mounted).calls("readdir") >= 1


# -- absent names ------------------------------------------------------------------------------------


@fuse
def test_absent_names_of_a_listed_folder_cost_nothing_and_other_answers_are_unchanged(
    mount, server
):
    """Names a listing says are absent are answered ENOENT with no request (the probe's fast path,
    orionfs.fuse.binding.fgetattr); an over-long name is still ENAMETOOLONG, a new file still open
    is still there, and the trash marker at the root is still a file."""
    folder = mount.unique("probes")
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a")
    os.listdir(folder)
    os.listdir(mount.path)
    before = stats_of(mount)
    server.reset_counters()
    for i in range(50):
        assert _errno(lambda i=i: os.stat(folder / f"absent-{i}")) == errno.ENOENT
    assert _errno(lambda: os.stat(folder / ("n" * 300))) == errno.ENAMETOOLONG
    marker = os.stat(mount.path / f".Trash-{os.getuid()}")
    assert stat.S_ISREG(marker.st_mode)
    spent = stats_of(mount).since(before)
    assert server.counters()["total"] == 0
    getattrs = spent.operations["getattr"]
    assert getattrs.calls >= 52 and getattrs.errors >= 51, spent.operations
    with open(folder / "new.txt", "wb", buffering=0) as new:  # not uploaded until closed
        new.write(b"abc")
        assert os.stat(folder / "new.txt").st_size == 3
        assert sorted(os.listdir(folder)) == ["a.txt", "new.txt"]
    assert os.stat(folder / "a.txt").st_size == 1


# -- open files in listings --------------------------------------------------------------------------


@fuse
def test_a_listing_shows_an_open_file_as_written_so_far(mount, session):
    folder = mount.unique("open")
    folder.mkdir()
    path = folder / "log.txt"
    path.write_bytes(b"0123456789")
    with open(path, "ab", buffering=0) as appender:
        appender.write(b"a" * 100)
        # A read of the folder from offset 0 is readdirplus: its attributes become the file's own.
        # (In this process: a child would close its copy of the descriptor, and that close is a
        # flush that uploads.)
        assert os.listdir(folder) == ["log.txt"]
        assert os.stat(path).st_size == 110
        appender.write(b"b" * 100)  # appended at the end the kernel knows
    expected = b"0123456789" + b"a" * 100 + b"b" * 100
    assert path.read_bytes() == expected
    assert api_bytes(session, mount.orion(f"{folder.name}/log.txt")) == expected


# -- xattr namespaces --------------------------------------------------------------------------------


@pytest.fixture
def a_file(mount):
    folder = mount.unique("xns")
    folder.mkdir()
    path = folder / "f.txt"
    path.write_bytes(b"x")
    return path


def _errno(call: Callable[[], object]) -> int:
    with pytest.raises(OSError) as info:
        call()
    return info.value.errno


@fuse
def test_security_system_and_trusted_xattrs_are_not_supported(mount, a_file, server):
    os.stat(a_file)
    server.reset_counters()
    result = sh("getfattr", "-n", "security.selinux", a_file, check=False)
    assert result.returncode != 0
    assert "Operation not supported" in result.stderr
    for name in ("security.capability", "system.posix_acl_access", "trusted.x"):
        assert _errno(lambda n=name: os.getxattr(a_file, n)) == errno.EOPNOTSUPP, name
        assert _errno(lambda n=name: os.removexattr(a_file, n)) == errno.EOPNOTSUPP, name
    for name in ("security.x", "trusted.x"):  # (the kernel checks capability and ACL values)
        assert _errno(lambda n=name: os.setxattr(a_file, n, b"1")) == errno.EOPNOTSUPP, name
    assert server.counters()["total"] == 0  # answered without a request


@fuse
def test_orion_xattrs_still_work_and_other_user_names_are_enodata(mount, a_file):
    out = sh("getfattr", "-d", a_file).stdout
    assert 'user.orion.type="file"' in out and "user.orion.id=" in out
    assert "user.orion.tags" in out
    assert os.getxattr(a_file, "user.orion.type") == b"file"
    assert _errno(lambda: os.getxattr(a_file, "user.unknown")) == errno.ENODATA
    assert _errno(lambda: os.getxattr(a_file, "user.orion.unknown")) == errno.ENODATA


# -- the stats xattr ---------------------------------------------------------------------------------


@fuse
def test_stats_xattr_of_the_root_is_the_mounts_stats_as_json(mount, a_file):
    out = sh("getfattr", "-n", STATS, "--only-values", mount.path).stdout
    stats = MountStats.from_json(out)
    assert stats.upcalls > 0 and stats.calls("getattr") > 0
    assert stats.cache.requests_total > 0
    assert stats.uptime > 0


@fuse
def test_stats_xattr_is_read_only_listed_nowhere_and_only_on_the_root(mount, a_file):
    assert STATS not in os.listxattr(mount.path)
    assert STATS not in os.listxattr(a_file)
    assert STATS not in sh("getfattr", "-d", mount.path).stdout
    assert _errno(lambda: os.getxattr(a_file, STATS)) == errno.ENODATA
    assert _errno(lambda: os.setxattr(mount.path, STATS, b"{}")) == errno.EPERM
    assert _errno(lambda: os.removexattr(mount.path, STATS)) == errno.EPERM


@fuse
def test_reading_the_stats_is_not_counted(mount):
    first = stats_of(mount)
    second = stats_of(mount)
    assert second.since(first).upcalls == 0


# -- the Python side of a call -----------------------------------------------------------------------

#: At most this many libfuse workers serve a mount (libfuse 3.12+ starts at most 10).
MAX_WORKERS = 16


@fuse
def test_each_libfuse_worker_keeps_one_python_thread_state(mount, a_file):
    """ctypes would make and delete a Python thread state on every call from a libfuse thread; the
    binding keeps one per worker, so 2,000 calls from 8 threads make at most one per worker."""
    folder = a_file.parent
    os.listdir(folder)
    before = stats_of(mount)

    def probe(start: int) -> None:
        for i in range(start, 2000, 8):
            with pytest.raises(FileNotFoundError):
                os.stat(folder / f"absent-{i}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(probe, range(8)))
    after = stats_of(mount)
    assert after.since(before).calls("getattr") >= 2000  # one lookup per distinct absent name
    assert 1 <= after.workers <= MAX_WORKERS
    assert after.workers - before.workers <= MAX_WORKERS


# -- the pieces, without a mount ---------------------------------------------------------------------


def test_dir_handles_resume_at_offsets_in_the_snapshot_and_refresh_at_zero():
    handles: DirHandles[str] = DirHandles()
    folder = ["a", "b", "c", "d"]
    fh = handles.open()
    assert list(handles.read(fh, 0, lambda: list(folder))) == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 4),
    ]
    folder.remove("a")
    assert list(handles.read(fh, 2, lambda: list(folder))) == [("c", 3), ("d", 4)]
    assert list(handles.read(fh, 4, lambda: list(folder))) == []
    assert list(handles.read(fh, 0, lambda: list(folder))) == [("b", 1), ("c", 2), ("d", 3)]
    handles.release(fh)
    assert len(handles) == 0


def test_mount_stats_round_trip_through_json_and_subtract():
    from orionfs.fuse.calls import CallCount

    early = MountStats(
        1.0, {"getattr": CallCount(5, 1, 0.5)}, 0, CacheCounts(requests={"stat_path": 2})
    )
    late = MountStats(
        3.0,
        {"getattr": CallCount(7, 1, 0.75), "readdir": CallCount(2, 0, 0.25)},
        1,
        CacheCounts(hits=4, requests={"stat_path": 2, "iter_ls_path": 1}, requests_total=3),
        workers=3,
    )
    assert MountStats.from_json(late.to_json()) == late
    spent = late.since(early)
    assert spent.upcalls == 4
    assert spent.calls("getattr") == 2 and spent.calls("readdir") == 2
    assert spent.cache.requests == {"iter_ls_path": 1}
    assert spent.uptime == 2.0
    assert spent.workers == 3  # a gauge: the later snapshot's
