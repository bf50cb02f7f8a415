"""Write-back (``--write-back DELAY``): close() returns once the file is staged and journaled as
acknowledged; uploads run in the background, several at a time, retried within the deadline,
then kept in the recovery folder; fsync() still waits; unmount waits for the queue; a mount killed
with uploads queued loses nothing (the next mount uploads them)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orionfs.cli import main
from orionfs.exceptions import AuthorizationRequired, OrionConnectionError
from orionfs.fs import writeback
from orionfs.fs.cache import CachedSession
from orionfs.fs.openfiles import OpenFileTable
from orionfs.fs.writeback import WriteBackOptions, WriteBackQueue
from tests.support.mount import api_bytes, api_exists, my_data, sh

FILES_POST = "POST /api/v3/storage/files/"


def _wait(predicate: Callable[[], object], timeout: float = 15.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Recorder:
    """Queue callbacks that record what happened (thread-safe)."""

    def __init__(self, fail: Callable[[str, int], BaseException | None] | None = None) -> None:
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}
        self.uploaded: list[tuple[str, float]] = []
        self.given_up: list[tuple[str, BaseException]] = []
        self.fail = fail

    def upload(self, item: str) -> None:
        with self.lock:
            self.attempts[item] = self.attempts.get(item, 0) + 1
            attempt = self.attempts[item]
        error = self.fail(item, attempt) if self.fail else None
        if error is not None:
            raise error

    def done(self, item: str) -> None:
        with self.lock:
            self.uploaded.append((item, time.monotonic()))

    def give_up(self, item: str, error: BaseException) -> None:
        with self.lock:
            self.given_up.append((item, error))

    def queue(self, **kwargs) -> WriteBackQueue[str]:
        return WriteBackQueue(self.upload, self.done, self.give_up, **kwargs)


# -- the queue ------------------------------------------------------------------------------------


def test_an_upload_starts_after_the_delay_and_a_new_close_restarts_it():
    rec = Recorder()
    queue = rec.queue(delay=0.3, workers=2)
    start = time.monotonic()
    queue.submit("a")
    time.sleep(0.2)
    queue.submit("a")  # closed again: waits its delay anew
    assert queue.stats().queued == 1
    _wait(lambda: rec.uploaded, what="the upload")
    assert rec.uploaded[0][1] - start >= 0.45
    assert rec.attempts == {"a": 1}
    assert queue.stats().queued == 0 and queue.stats().uploaded == 1
    queue.stop()


def test_a_failing_upload_is_retried_within_the_deadline_then_given_up(monkeypatch):
    monkeypatch.setattr(writeback, "RETRY_FIRST_WAIT", 0.02)
    rec = Recorder(fail=lambda item, attempt: OrionConnectionError("server gone"))
    queue = rec.queue(delay=0, deadline=0.5)
    queue.submit("a")
    _wait(lambda: rec.given_up, what="the give-up")
    assert rec.attempts["a"] >= 3
    assert isinstance(rec.given_up[0][1], OrionConnectionError)
    assert queue.stats().failed == 1 and queue.stats().queued == 0
    queue.stop()


def test_a_refused_upload_is_given_up_at_once():
    rec = Recorder(fail=lambda item, attempt: AuthorizationRequired(custom_error_msg="no"))
    queue = rec.queue(delay=0, deadline=60)
    queue.submit("a")
    _wait(lambda: rec.given_up, what="the give-up")
    assert rec.attempts == {"a": 1}
    queue.stop()


def test_a_transient_failure_is_uploaded_on_a_later_attempt(monkeypatch):
    monkeypatch.setattr(writeback, "RETRY_FIRST_WAIT", 0.02)
    rec = Recorder(fail=lambda item, attempt: OrionConnectionError("blip") if attempt < 3 else None)
    queue = rec.queue(delay=0, deadline=30)
    queue.submit("a")
    _wait(lambda: rec.uploaded, what="the upload")
    assert rec.attempts == {"a": 3} and not rec.given_up
    queue.stop()


def test_drain_uploads_everything_now_several_at_a_time():
    running, peak = [0], [0]
    lock = threading.Lock()

    def slow(item: str) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1

    done: list[str] = []
    queue = WriteBackQueue(slow, done.append, lambda i, e: None, delay=3600, workers=4)
    for i in range(8):
        queue.submit(f"f{i}")
    reports = []
    start = time.monotonic()
    assert queue.drain(progress=reports.append, interval=0.05)
    assert time.monotonic() - start < 2 and sorted(done) == [f"f{i}" for i in range(8)]
    assert peak[0] == 4
    assert reports and reports[0].queued > 0
    queue.stop()


@pytest.mark.parametrize("outcome", ["uploaded", "failed"])
def test_an_item_is_counted_and_drained_only_once_its_callback_has_finished(outcome):
    """``failed == 1`` means the data is in the recovery folder; an empty queue (drain, unmount)
    means every staging file is handled: the callback runs before the item is let go."""
    release = threading.Event()
    entered = threading.Event()

    def callback(*args) -> None:
        entered.set()
        assert release.wait(10)

    def upload(item: str) -> None:
        if outcome == "failed":
            raise AuthorizationRequired(custom_error_msg="no")

    queue = WriteBackQueue(upload, callback, callback, delay=0)
    queue.submit("a")
    assert entered.wait(10)
    time.sleep(0.1)  # the worker is inside the callback
    stats = queue.stats()
    assert (stats.uploaded, stats.failed, stats.queued) == (0, 0, 1)
    assert not queue.drain(timeout=0.2)  # still handling it
    release.set()
    assert queue.drain(timeout=10)
    stats = queue.stats()
    assert getattr(stats, outcome) == 1 and stats.queued == 0
    queue.stop()


def test_an_item_submitted_again_during_its_callback_is_uploaded_again():
    rec = Recorder()
    entered, release = threading.Event(), threading.Event()
    first = [True]

    def done(item: str) -> None:
        if first[0]:
            first[0] = False
            entered.set()
            assert release.wait(10)
        rec.done(item)

    queue = WriteBackQueue(rec.upload, done, rec.give_up, delay=0)
    queue.submit("a")
    assert entered.wait(10)
    queue.submit("a")  # written and closed again while the first upload's callback runs
    release.set()
    _wait(lambda: len(rec.uploaded) == 2, what="the second upload")
    assert queue.drain(timeout=10)
    assert rec.attempts == {"a": 2} and queue.stats().queued == 0
    queue.stop()


# -- the open-file table ------------------------------------------------------------------------


@pytest.fixture
def make_table(server, session, tmp_path: Path) -> Iterator[Callable[..., OpenFileTable]]:
    made: list[OpenFileTable] = []

    def make(delay: float = 0.2, deadline: float = 60.0) -> OpenFileTable:
        cache = CachedSession(session, root=my_data(server))
        table = OpenFileTable(
            cache,
            tmp_path / "staging",
            tmp_path / "recovery",
            root=cache.root,
            write_back=WriteBackOptions(delay=delay, deadline=deadline),
        )
        made.append(table)
        return table

    yield make
    for table in made:
        table.close()


def test_close_returns_before_the_upload_and_the_file_shows_until_stored(
    server, session, make_table
):
    table = make_table(delay=0.5)
    name = f"/wb-{uuid.uuid4().hex[:8]}.txt"
    fh = table.create(name, os.O_WRONLY)
    table.write(fh, b"written back", 0)
    table.flush(fh)
    table.release(fh)
    assert server.count(FILES_POST) == 0  # close() returned; nothing sent yet
    node = table.node_at(name)
    assert node is not None and node.size == 12  # stat, open and reads still see it
    [record] = table.staging.records().values()
    assert record.acked  # a crash now: the next mount uploads it
    assert table.upload_stats().queued == 1
    _wait(lambda: table.node_at(name) is None, what="the upload")
    assert api_bytes(session, my_data(server) + name) == b"written back"
    assert table.staging.records() == {}
    assert table.upload_stats().uploaded == 1


def test_fsync_waits_until_the_file_is_stored(server, session, make_table):
    table = make_table(delay=3600)
    name = f"/fsync-{uuid.uuid4().hex[:8]}.txt"
    fh = table.create(name, os.O_WRONLY)
    table.write(fh, b"durable", 0)
    table.fsync(fh)
    assert api_bytes(session, my_data(server) + name) == b"durable"
    table.release(fh)
    assert table.upload_stats().queued == 0


def test_a_failed_upload_lands_in_the_recovery_folder_and_the_log(
    server, make_table, tmp_path, caplog
):
    server.set_faults(status=403, method="POST", path_prefix="/api/v3/storage/files/")
    table = make_table(delay=0)
    name = f"/refused-{uuid.uuid4().hex[:8]}.txt"
    with caplog.at_level(logging.ERROR, logger="orionfs"):
        fh = table.create(name, os.O_WRONLY)
        table.write(fh, b"precious", 0)
        table.release(fh)
        _wait(lambda: table.upload_stats().failed == 1, what="the failure")
    [kept] = list((tmp_path / "recovery").iterdir())
    assert kept.read_bytes() == b"precious"
    assert str(kept) in caplog.text
    assert table.node_at(name) is None and table.staging.records() == {}


def test_closed_files_waiting_for_their_upload_hold_no_descriptor(server, session, make_table):
    table = make_table(delay=3600)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(40):  # a write-back `cp -r` of thousands of files must not run out of them
        fh = table.create(f"/fds-{uuid.uuid4().hex[:8]}-{i}", os.O_WRONLY)
        table.write(fh, b"data", 0)
        table.release(fh)
    assert len(os.listdir("/proc/self/fd")) < before + 5
    assert table.upload_stats().queued == 40
    waiting = next(iter(table.staging.records().values())).path
    fh = table.open(waiting, None, os.O_RDONLY, False, False)
    assert table.read(fh, 100, 0) == b"data"  # a parked file reopens its staging file
    table.release(fh)


def test_unmount_waits_for_the_queue(server, session, make_table):
    table = make_table(delay=3600)
    names = [f"/q-{uuid.uuid4().hex[:8]}-{i}" for i in range(6)]
    for i, name in enumerate(names):
        fh = table.create(name, os.O_WRONLY)
        table.write(fh, b"%d" % i, 0)
        table.release(fh)
    seen = []
    table.progress = seen.append
    table.close()
    for i, name in enumerate(names):
        assert api_bytes(session, my_data(server) + name) == b"%d" % i
    assert seen and seen[0].queued == 6


# -- real mounts ---------------------------------------------------------------------------------


def test_write_back_mount_create_close_returns_at_once_and_unmount_uploads_everything(
    server, session, mount_factory, capsys, monkeypatch
):
    server.set_latency(200)  # every upload takes a while: the queue is still full at unmount
    mounted = mount_factory(server, "--write-back", "3600")
    folder = mounted.unique("wb")
    folder.mkdir()
    for i in range(12):
        (folder / f"f{i:02d}").write_bytes(b"x" * i)
    assert server.count(FILES_POST) == 0  # every close() returned before its upload
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: progress is shown
    assert main(["unmount", str(mounted.path)]) == 0
    assert mounted.proc.wait(30) == 0
    assert "orionfs: uploading" in capsys.readouterr().err
    for i in range(12):
        assert api_bytes(session, mounted.orion(f"{folder.name}/f{i:02d}")) == b"x" * i


def test_kill_9_with_uploads_queued_loses_nothing(server, session, mount_factory, tmp_path):
    staging = ("--staging-dir", str(tmp_path / "staging"))
    first = mount_factory(server, "--write-back", "3600", *staging)
    folder = first.unique("crash")
    folder.mkdir()
    existing = folder / "existing.txt"
    existing.write_text("old")
    fd = os.open(existing, os.O_RDONLY)
    try:
        os.fsync(fd)  # fsync() waits until stored, write-back or not
    finally:
        os.close(fd)
    assert api_bytes(session, first.orion(f"{folder.name}/existing.txt")) == b"old"
    expected = {"existing.txt": b"rewritten after the last upload", "empty": b""}
    expected |= {f"f{i}.bin": os.urandom(1000 * i) for i in range(1, 10)}
    for name, data in expected.items():
        (folder / name).write_bytes(data)
    assert not api_exists(session, first.orion(f"{folder.name}/f1.bin"))  # all still queued
    first.proc.kill()
    first.proc.wait(10)
    sh("fusermount3", "-uz", first.path, check=False)
    second = mount_factory(server, *staging)

    def stored() -> bool:
        with contextlib.suppress(FileNotFoundError):
            return all(
                api_bytes(session, first.orion(f"{folder.name}/{name}")) == data
                for name, data in expected.items()
            )
        return False

    _wait(stored, timeout=30, what="every file to be stored")
    assert "found 11 staged files left by a mount that ended" in second.log()
