"""Watching mounts: the Prometheus endpoint, ``orionfs status``, ``orionfs stats``, the fsname.

- ``--metrics 127.0.0.1:0``: a scrape parses with prometheus_client's parser and has the orionfs_*
  families (requests by route and status with latency, bytes, FUSE operations with latency, cache
  hits/misses/size, uploads, recovery files), and counts what the test did;
- ``orionfs status`` lists the mount (source, profile, pid, uptime, pending uploads, cache, errors);
  after the mount process is SIGKILLed it shows the mount as dead, and ``orionfs unmount`` clears it;
- ``orionfs stats MOUNTPOINT`` prints the live counters, ``--watch`` what changed per interval;
- mount and df show ``orion:PROFILE:PATH`` with type fuse.orionfs.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orionfs.daemon.process import read_state
from orionfs.daemon.state import is_mount_process, mount_at
from orionfs.fs.openfiles import OpenFileTable
from tests.support.mount import my_data, start_mount
from tests.support.system import ORIONFS, run, wait_for

pytestmark = pytest.mark.fuse

#: Whether the open-file table reports its uploads (the write-back queue); without it the upload
#: numbers have no source and are left out.
UPLOAD_QUEUE = hasattr(OpenFileTable, "upload_stats")


@pytest.fixture(scope="module")
def watched(server, tmp_path_factory):
    """A mount with a metrics endpoint on a free loopback port."""
    base = tmp_path_factory.mktemp("watched")
    mount = start_mount(server, base / "mnt", base / "work", "--metrics", "127.0.0.1:0")
    try:
        yield mount
    finally:
        mount.unmount()


def scrape(mount) -> dict[str, list]:
    """The endpoint's families, parsed: name -> samples."""
    state = wait_for(lambda: (read_state(str(mount.path)) or {}).get("metrics"), what="metrics")
    host, port = state.rsplit(":", 1)
    assert host == "127.0.0.1"
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def test_prometheus_scrape_has_the_orionfs_families_and_counts_what_happened(watched):
    before = scrape(watched)
    target = watched.unique("metrics")
    target.write_bytes(b"m" * 4096)
    assert target.read_bytes() == b"m" * 4096
    os.listdir(watched.path)
    after = scrape(watched)

    assert all(name.startswith("orionfs_") for name in after)
    requests = after["orionfs_http_requests"]
    routes = {(s.labels["method"], s.labels["route"], s.labels["status"]) for s in requests}
    assert ("GET", "/api/v1/storage/ls/", "200") in routes
    assert any(method == "POST" and status.startswith("2") for method, _, status in routes)
    latency = after["orionfs_http_request_duration_seconds"]
    assert value(latency, "orionfs_http_request_duration_seconds_count") == value(
        requests, "orionfs_http_requests_total"
    )
    assert value(after["orionfs_http_sent_bytes"], "orionfs_http_sent_bytes_total") >= 4096

    fuse = after["orionfs_fuse_operations"]
    grew = value(fuse, "orionfs_fuse_operations_total", operation="create") - value(
        before["orionfs_fuse_operations"], "orionfs_fuse_operations_total", operation="create"
    )
    assert grew == 1
    seconds = after["orionfs_fuse_operation_duration_seconds"]
    assert value(seconds, "orionfs_fuse_operation_duration_seconds_count", operation="getattr") > 0
    assert 1 <= value(after["orionfs_fuse_workers"], "orionfs_fuse_workers") <= 20
    assert value(after["orionfs_cache_hits"], "orionfs_cache_hits_total") > 0
    assert "orionfs_cache_misses" in after and "orionfs_cache_entries" in after
    assert value(after["orionfs_recovery_files"], "orionfs_recovery_files") == 0
    if UPLOAD_QUEUE:
        for gauge in ("orionfs_uploads_in_flight", "orionfs_uploads_pending"):
            assert value(after[gauge], gauge) == 0, gauge
        assert value(after["orionfs_uploads_failed"], "orionfs_uploads_failed_total") == 0
    else:  # no source for these numbers: left out, not faked
        assert "orionfs_uploads_pending" not in after
    assert value(after["orionfs_mount_info"], "orionfs_mount_info") == 1


def test_status_lists_the_mount_with_its_numbers(watched, server):
    wait_for(lambda: (read_state(str(watched.path)) or {}).get("started"), what="the state")
    result = run(ORIONFS, "status", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["mountpoint"]: row for row in json.loads(result.stdout)}
    row = rows[str(watched.path)]
    assert row["source"] == f"orion:local:{my_data(server)}"
    assert row["profile"] == "local"
    assert row["pid"] == watched.proc.pid
    assert is_mount_process(watched.proc.pid, str(watched.path))
    assert row["state"] == "mounted"
    assert row["uptime"] > 0
    wait_for(lambda: _status_row(watched)["errors"] is not None, what="the status file")
    row = _status_row(watched)
    assert row["errors"] == 0
    assert row["pending_uploads"] == (0 if UPLOAD_QUEUE else None)
    table = run(ORIONFS, "status").stdout.splitlines()
    assert table[0].split() == [
        "SOURCE", "PROFILE", "MOUNTPOINT", "PID", "UPTIME", "STATE", "PENDING", "CACHE", "ERRORS",
    ]  # fmt: skip
    assert any(str(watched.path) in line and " mounted " in line for line in table[1:])


def _status_row(mount) -> dict:
    rows = json.loads(run(ORIONFS, "status", "--json").stdout)
    return next(row for row in rows if row["mountpoint"] == str(mount.path))


def test_stats_prints_live_counters_and_watch_follows_them(watched):
    os.listdir(watched.path)
    result = run(ORIONFS, "stats", watched.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{watched.path}: up ")
    assert "getattr" in result.stdout and "cache:" in result.stdout
    snapshot = json.loads(run(ORIONFS, "stats", watched.path, "--json").stdout)
    assert snapshot["operations"]["getattr"]["calls"] > 0
    watch = run(ORIONFS, "stats", watched.path, "--watch", "300ms", "--count", "2", "--json")
    assert watch.returncode == 0, watch.stderr
    assert len(watch.stdout.splitlines()) == 2
    assert run(ORIONFS, "stats", "/tmp").returncode == 1


def test_mount_and_df_show_the_remote(watched, server):
    entry = mount_at(str(watched.path))
    assert (entry.fstype, entry.source) == ("fuse.orionfs", f"orion:local:{my_data(server)}")
    df = run("df", "--output=source", watched.path).stdout.splitlines()[-1].strip()
    assert df == f"orion:local:{my_data(server)}"


def test_a_killed_mount_shows_dead_and_unmount_clears_it(server, tmp_path):
    mount = start_mount(server, tmp_path / "mnt", tmp_path / "work")
    try:
        wait_for(lambda: read_state(str(mount.path)), what="the state")
        os.kill(mount.proc.pid, signal.SIGKILL)
        mount.proc.wait(10)
        row = _status_row(mount)
        assert row["state"] == "dead" and row["pid"] is None
        assert "dead" in run(ORIONFS, "status").stderr

        result = run(ORIONFS, "unmount", mount.path)
        assert result.returncode == 0, result.stderr
        assert "cleared the dead mount" in result.stderr
        assert mount_at(str(mount.path)) is None
        assert read_state(str(mount.path)) is None
        rows = json.loads(run(ORIONFS, "status", "--json").stdout)
        assert str(mount.path) not in {row["mountpoint"] for row in rows}
    finally:
        mount.unmount()
