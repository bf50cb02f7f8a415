"""Crash-safe staging: staged data lives in the account's persistent staging folder with a journal
(path, id, base version, acknowledged); what a mount that died left is handled by the next one
(acknowledged data uploaded where that overwrites nothing, the rest kept in the recovery folder
under its Orion path), by ``orionfs recover`` too; staging folders never pile up."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from orionfs.cli import main
from orionfs.fs.cache import CachedSession
from orionfs.fs.entry import Entry
from orionfs.fs.journal import MOUNT_DIR_PREFIX, JournalRecord, account_dir
from orionfs.fs.leftovers import list_leftovers
from orionfs.fs.openfiles import OpenFileTable
from orionfs.fs.writeback import WriteBackOptions
from tests.support.mount import api_bytes, api_exists, my_data, sh

MiB = 1 << 20
FILES_POST = "POST /api/v3/storage/files/"


class MemoryStore:
    """A ContentStore in memory (no server)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def read(self, entry: Entry, offset: int, length: int) -> bytes:
        return self.files[entry.path][offset : offset + length]

    def _put(self, path: str, fileobj: BinaryIO, size: int) -> Entry:
        self.files[path] = fileobj.read(size)
        return Entry("file", 7, path.rpartition("/")[2], path, size, mtime_ns=2)

    create_file = replace_content = _put

    def unlink(self, path: str) -> None:
        self.files.pop(path)


def _mount_dirs(account: Path) -> list[Path]:
    return sorted(p for p in account.iterdir() if p.name.startswith(MOUNT_DIR_PREFIX))


# -- the journal of a live mount ---------------------------------------------------------------------


def test_staged_data_is_journaled_with_its_path_id_and_base_version(tmp_path):
    store = MemoryStore()
    store.files["/a.txt"] = b"old"
    table = OpenFileTable(store, tmp_path / "acct", tmp_path / "rec", root="/project/1/user/u")
    base = Entry("file", 42, "a.txt", "/a.txt", 3, mtime_ns=1_000, ctime_ns=1_000)
    fh = table.open("/a.txt", base, os.O_RDWR, writable=True, truncate=False)
    assert table.staging.records() == {}  # nothing staged yet: nothing to journal
    table.write(fh, b"new", 0)
    [record] = table.staging.records().values()
    # path, root, id, the base version's time and size, acknowledged, has a data file
    assert record == JournalRecord("/a.txt", "/project/1/user/u", 42, 1_000, 3, False, True)
    assert record.orion_path == "/project/1/user/u/a.txt"
    table.moved("/a.txt", "/b.txt")
    assert [r.path for r in table.staging.records().values()] == ["/b.txt"]
    table.release(fh)  # uploaded: nothing left to recover
    assert table.staging.records() == {}
    table.close()
    assert not (tmp_path / "acct").exists()  # its mount folder is gone, and the account's


def test_the_staging_folders_are_private_and_a_file_that_stays_empty_has_no_data_file(tmp_path):
    table = OpenFileTable(
        MemoryStore(), tmp_path / "acct", tmp_path / "rec", write_back=WriteBackOptions(60)
    )
    fh = table.create("/empty", os.O_WRONLY)
    table.flush(fh)  # acknowledged: journaled, though there is nothing to write
    [record] = table.staging.records().values()
    assert record.acked and not record.data
    assert not list(table.staging_dir.glob("*.data"))
    for folder in (tmp_path / "acct", table.staging_dir):
        assert folder.stat().st_mode & 0o777 == 0o700
    table.release(fh)
    table.close()


# -- leftovers of a mount that died ----------------------------------------------------------------

_DEAD_MOUNT = """
import os, sys
from pathlib import Path
from orionfs.fs.journal import JournalRecord, StagingArea

area = StagingArea(Path(sys.argv[1]), root=sys.argv[2])
for path, data, acked, base in {files!r}:
    slot = area.new_slot()
    if data is not None:
        fd = area.create_data(slot)
        os.write(fd, data)
    base = base or (None, None, None)
    area.record(slot, JournalRecord(path, sys.argv[2], base[0], base[1], base[2], acked,
                                    data is not None))
os._exit(0)  # dies without cleaning up: its lock goes with it
"""


def _dead_mount(account: Path, root: str, files: list[tuple[Any, ...]]) -> None:
    """Run a process that stages ``files`` (path, data or None, acked, (id, mtime_ns, size) or
    None) in ``account`` and dies."""
    code = textwrap.dedent(_DEAD_MOUNT).format(files=files)
    subprocess.run([sys.executable, "-c", code, str(account), root], check=True, timeout=60)


@pytest.fixture
def home(server, session) -> str:
    """A fresh folder in the sample user's My Data (the mounts' root in these tests)."""
    path = f"{my_data(server)}/journal-{uuid.uuid4().hex[:8]}"
    session.create_paths(path)
    return path


def _table(session, root: str, tmp_path: Path) -> OpenFileTable:
    cache = CachedSession(session, root=root)
    return OpenFileTable(cache, tmp_path / "acct", tmp_path / "rec", root=root)


def test_a_live_mounts_files_are_never_claimed(tmp_path, session, home):
    live = _table(session, home, tmp_path)
    fh = live.create("/open.txt", os.O_WRONLY)
    live.write(fh, b"being written", 0)
    other = _table(session, home, tmp_path)
    assert other.recover_leftovers() is None
    assert list_leftovers(tmp_path / "acct") == []
    live.release(fh)
    for table in (other, live):
        table.close()


def test_acknowledged_leftovers_are_uploaded_and_the_others_kept_under_their_orion_path(
    tmp_path, server, session, home, caplog
):
    old = session.upload_file(home, "existing.txt", b"old")
    entry = Entry.from_resource(old, f"{home}/existing.txt")
    session.create_paths(f"{home}/sub")
    _dead_mount(tmp_path / "acct", home, [
        ("/new.txt", b"acknowledged", True, None),
        ("/empty.txt", None, True, None),
        ("/existing.txt", b"replaced", True, (entry.id, entry.mtime_ns, entry.size)),
        ("/sub/draft.txt", b"never closed", False, None),
    ])  # fmt: skip
    assert len(list_leftovers(tmp_path / "acct")) == 4
    table = _table(session, home, tmp_path)
    with caplog.at_level(logging.WARNING, logger="orionfs"):
        thread = table.recover_leftovers()
        assert thread is not None
        thread.join(30)
    assert api_bytes(session, f"{home}/new.txt") == b"acknowledged"
    assert api_bytes(session, f"{home}/empty.txt") == b""
    assert api_bytes(session, f"{home}/existing.txt") == b"replaced"
    assert session.stat_path(f"{home}/existing.txt")["id"] == old.id  # same File, new content
    assert not api_exists(session, f"{home}/sub/draft.txt")
    kept = tmp_path / "rec" / f"{home}/sub/draft.txt".lstrip("/")
    assert kept.read_bytes() == b"never closed"
    assert "found 4 staged files left by a mount that ended" in caplog.text
    assert str(kept) in caplog.text
    assert _mount_dirs(tmp_path / "acct") == [table.staging_dir]  # the dead one is gone
    assert table.upload_stats().leftovers == 0
    table.close()
    assert not (tmp_path / "acct").exists()


def test_recovery_overwrites_nothing_changed_since(tmp_path, session, home):
    old = session.upload_file(home, "shared.txt", b"v1")
    entry = Entry.from_resource(old, f"{home}/shared.txt")
    session.upload_file(home, "taken.txt", b"someone else's")
    _dead_mount(tmp_path / "acct", home, [
        ("/shared.txt", b"mine", True, (entry.id, entry.mtime_ns, entry.size)),
        ("/taken.txt", b"mine too", True, None),
    ])  # fmt: skip
    time.sleep(0.01)
    session.replace_file_content(old, b"v2, written elsewhere meanwhile")
    table = _table(session, home, tmp_path)
    table.recover_leftovers().join(30)
    assert api_bytes(session, f"{home}/shared.txt") == b"v2, written elsewhere meanwhile"
    assert api_bytes(session, f"{home}/taken.txt") == b"someone else's"
    rec = tmp_path / "rec" / home.lstrip("/")
    assert (rec / "shared.txt").read_bytes() == b"mine"
    assert (rec / "taken.txt").read_bytes() == b"mine too"
    table.close()


def test_an_upload_that_went_through_before_the_crash_is_not_sent_again(
    tmp_path, server, session, home
):
    session.upload_file(home, "done.txt", b"uploaded just before the crash")
    _dead_mount(tmp_path / "acct", home, [
        ("/done.txt", b"uploaded just before the crash", True, None),
    ])  # fmt: skip
    server.reset_counters()
    table = _table(session, home, tmp_path)
    table.recover_leftovers().join(30)
    assert server.count(FILES_POST) == 0
    assert not (tmp_path / "rec").exists()
    table.close()


def test_staging_folders_never_pile_up(tmp_path, server, session, home):
    root = tmp_path / "staging"
    mine = account_dir(root, server.url, server.username)

    def table() -> OpenFileTable:
        return OpenFileTable(CachedSession(session, root=home), mine, tmp_path / "rec", root=home)

    for _ in range(3):
        files = table()
        fh = files.create(f"/f-{uuid.uuid4().hex[:6]}", os.O_WRONLY)
        files.write(fh, b"x", 0)
        files.release(fh)
        files.close()
        assert not mine.exists()  # the account's last mount ended: nothing of it is left
    _dead_mount(mine, home, [])  # died with nothing staged
    gone = account_dir(root, "http://127.0.0.1:1", "a test server's port, once")
    _dead_mount(gone, "/", [])
    kept = account_dir(root, "http://127.0.0.1:2", "someone")
    _dead_mount(kept, "/", [("/unsaved.txt", b"x", False, None)])  # its own mount handles it
    files = table()
    assert files.recover_leftovers() is None  # nothing of its own, but empty folders go
    assert _mount_dirs(mine) == [files.staging_dir]
    assert not gone.exists() and len(_mount_dirs(kept)) == 1
    files.close()
    assert sorted(root.iterdir()) == [kept]


def test_orionfs_recover_lists_then_handles_what_a_dead_mount_left(
    tmp_path, server, session, home, config_dir, capsys
):
    staging = tmp_path / "staging"
    account = account_dir(staging, server.url, server.username)
    _dead_mount(account, home, [
        ("/closed.txt", b"acknowledged", True, None),
        ("/open.txt", b"unsaved", False, None),
    ])  # fmt: skip
    args = ["recover", "--profile", "local", "--staging-dir", str(staging)]
    assert main([*args, "--list"]) == 0
    listed = capsys.readouterr().out
    assert f"acknowledged\t12\t{home}/closed.txt" in listed
    assert f"unsaved\t7\t{home}/open.txt" in listed
    assert main([*args, "--recovery-dir", str(tmp_path / "rec")]) == 0
    out = capsys.readouterr().out
    assert f"uploaded\t{home}/closed.txt" in out and f"kept\t{home}/open.txt" in out
    assert api_bytes(session, f"{home}/closed.txt") == b"acknowledged"
    assert (tmp_path / "rec" / home.lstrip("/") / "open.txt").read_bytes() == b"unsaved"
    assert not account.exists()
    assert main([*args, "--list"]) == 0
    assert "nothing left" in capsys.readouterr().out


# -- a real mount killed while a file is being written -------------------------------------------


def test_kill_9_while_writing_leaves_the_data_to_the_next_mount_under_its_orion_path(
    tmp_path, server, session, mount_factory
):
    staging, recovery = tmp_path / "staging", tmp_path / "recovery"
    opts = ("--staging-dir", str(staging), "--recovery-dir", str(recovery))
    first = mount_factory(server, *opts)
    name = f"crash-{uuid.uuid4().hex[:8]}.bin"
    data = os.urandom(3 * MiB)
    fd = os.open(first.path / name, os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, data)
        first.proc.kill()
        first.proc.wait(10)
        with pytest.raises(OSError):
            os.write(fd, b"more")  # ENOTCONN: the writer is told
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        sh("fusermount3", "-uz", first.path, check=False)  # the dead mount
    second = mount_factory(server, *opts)
    kept = recovery / first.orion(name).lstrip("/")
    deadline = time.monotonic() + 30
    while not kept.exists():
        assert time.monotonic() < deadline, second.log()
        time.sleep(0.05)
    assert kept.read_bytes() == data
    assert "found 1 staged files left by a mount that ended" in second.log()
    assert not api_exists(session, first.orion(name))  # never closed: not uploaded
    account = account_dir(staging, server.url, server.username)
    assert len(_mount_dirs(account)) == 1  # the second mount's own
