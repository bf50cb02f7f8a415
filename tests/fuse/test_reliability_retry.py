"""429 with Retry-After (issue 5, "Faults"): the client waits as told, then succeeds.

The server's fault hook answers the next N matching requests with 429 and a ``Retry-After``; the
session must wait at least that long before each retry (measured with a real clock: the wait is the
rule under test) and then succeed, and the server must have seen exactly one request per attempt.
"""

from __future__ import annotations

import io
import os
import time

import pytest

from orionfs.client.config import SessionConfig
from orionfs.client.session import OrionSession

STAT_KEY = "GET /api/v1/storage/stat/"
CREATE_KEY = "POST /api/v1/storage/paths/"
UPLOAD_KEY = "POST /api/v3/storage/files/"


def _session(server) -> OrionSession:
    config = SessionConfig(
        url=server.url,
        username=server.username,
        token=server.token,
        project=server.project_id,
        request_timeout=10,
    )
    return OrionSession(config=config)


@pytest.fixture
def home(server):
    return f"/project/{server.project_id}/user/{server.username}"


@pytest.fixture(autouse=True)
def _clean_faults(server):
    server.clear_faults()
    yield
    server.clear_faults()


def _timed(fn):
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def test_429_on_a_get_waits_retry_after_then_succeeds(server, home):
    session = _session(server)
    session.stat_path(home)  # warm the connection pool; not part of the measure
    server.reset_counters()
    server.set_faults(status=429, count=1, retry_after=2, path_prefix="/api/v1/storage/stat/")
    entry, elapsed = _timed(lambda: session.stat_path(home))
    assert entry["path"] == home
    assert elapsed >= 2.0, f"retried after {elapsed:.2f} s, Retry-After said 2"
    assert elapsed < 2.0 + 5.0, f"waited {elapsed:.2f} s, far beyond Retry-After"
    assert server.count(STAT_KEY) == 2  # the 429 and the retry


def test_429_twice_waits_retry_after_each_time(server, home):
    session = _session(server)
    session.stat_path(home)
    server.reset_counters()
    server.set_faults(status=429, count=2, retry_after=1, path_prefix="/api/v1/storage/stat/")
    entry, elapsed = _timed(lambda: session.stat_path(home))
    assert entry["path"] == home
    assert elapsed >= 2.0, f"two Retry-After: 1 took only {elapsed:.2f} s"
    assert server.count(STAT_KEY) == 3


def test_429_on_a_post_is_retried_after_retry_after_and_applied_once(server, home):
    """A 429 means the request was not processed, so even a POST is safe to send again."""
    session = _session(server)
    folder = f"{home}/ratelimited-{os.getpid()}"
    session.stat_path(home)
    server.reset_counters()
    server.set_faults(status=429, count=1, retry_after=1, path_prefix="/api/v1/storage/paths/")
    _, elapsed = _timed(lambda: session.create_paths(folder))
    assert elapsed >= 1.0
    assert session.stat_path(folder)["resource_type"] == "folder"
    assert server.count(CREATE_KEY) == 2


def test_429_on_an_upload_is_retried_and_the_stored_content_is_exact(server, home):
    session = _session(server)
    data = os.urandom(300_000)
    session.stat_path(home)
    server.reset_counters()
    server.set_faults(status=429, count=1, retry_after=1, path_prefix="/api/v3/storage/files/")
    name = f"ratelimited-upload-{os.getpid()}.bin"
    file, elapsed = _timed(
        lambda: session.upload_file(home, name, io.BytesIO(data), size=len(data))
    )
    assert elapsed >= 1.0
    assert server.count(UPLOAD_KEY) == 2
    assert session.read_range(file, 0, len(data) + 10) == data
    listed = session.ls_path(home, {"name": name})["results"]
    assert len(listed) == 1, "the upload was stored twice (or not at all)"


@pytest.mark.fuse
def test_429_through_the_mount_close_waits_retry_after_and_the_file_is_stored(
    server, home, tmp_path
):
    from tests.support.reliability import mounted

    data = os.urandom(200_000)
    with mounted(server, tmp_path / "mnt") as mount:
        folder = mount.home / f"mount429-{os.getpid()}"
        folder.mkdir()
        os.listdir(folder)
        server.reset_counters()
        server.set_faults(status=429, count=1, retry_after=2, path_prefix="/api/v3/storage/files/")
        started = time.monotonic()
        with open(folder / "f.bin", "wb") as fh:
            fh.write(data)
        elapsed = time.monotonic() - started
        assert elapsed >= 2.0, f"close() returned after {elapsed:.2f} s, Retry-After said 2"
        assert server.count(UPLOAD_KEY) == 2
    session = _session(server)
    entries = session.ls_path(f"{home}/mount429-{os.getpid()}")["results"]
    assert [e["name"] for e in entries] == ["f.bin"]
    assert session.read_range(entries[0], 0, len(data) + 1) == data
