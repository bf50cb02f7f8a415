"""Request budgets of the mount, asserted on the server's request counter (design.md rules 1-3).

A folder of 1,000 files costs ceil(1000 / LS_PAGE_SIZE) listing requests and no per-entry request for ``ls -l``,
``find`` and ``stat`` of every entry; repeating within the TTL costs nothing; 100 absent names cost
nothing; moving the folder is one assign request.
"""

from __future__ import annotations

import io
import math
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from orionfs.client.config import SessionConfig
from orionfs.client.session import OrionSession
from orionfs.fs.cache import LS_PAGE_SIZE
from tests.support.mount import api_exists, api_names, my_data, sh

pytestmark = pytest.mark.fuse

N = 1000
PAGE = LS_PAGE_SIZE  # the mount's listing page size
LS = "GET /api/v1/storage/ls/"
ASSIGN = "POST /api/v1/storage/paths/assign/"
TTL = "120"  # long enough that nothing expires during a test


@pytest.fixture(scope="module")
def big_folder(server):
    """A folder of 1,000 small files in My Data, made through the API (8 uploaders)."""
    name = "budget-1000"
    orion = f"{my_data(server)}/{name}"
    session = OrionSession(
        config=SessionConfig(
            url=server.url, username=server.username, token=server.token, project=server.project_id
        )
    )
    session.create_paths(orion)

    def put(i: int) -> None:
        session.upload_file(orion, f"f{i:04d}.txt", io.BytesIO(b"%d\n" % i))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(N)))
    assert len(api_names(session, orion)) == N
    return name, orion


def _requests(server) -> dict[str, int]:
    return dict(server.counters()["by_endpoint"])


def _cold(mount_factory, server, name):
    """A fresh mount, the big folder's own entry looked up, the counters reset."""
    mounted = mount_factory(server, "--cache-ttl", TTL)
    folder = mounted.path / name
    assert folder.is_dir()
    server.reset_counters()
    return mounted, folder


def test_ls_l_costs_one_listing_per_page_and_nothing_per_entry(mount_factory, server, big_folder):
    name, _ = big_folder
    _, folder = _cold(mount_factory, server, name)
    out = sh("ls", "-l", folder).stdout
    assert len(out.splitlines()) == N + 1  # "total" + one line each
    assert _requests(server) == {LS: math.ceil(N / PAGE)}
    server.reset_counters()
    sh("ls", "-l", folder)
    sh("find", folder)
    assert server.counters()["total"] == 0  # within the TTL: nothing


def test_find_costs_one_listing_per_page(mount_factory, server, big_folder):
    name, _ = big_folder
    _, folder = _cold(mount_factory, server, name)
    out = sh("find", folder, "-type", "f").stdout
    assert len(out.splitlines()) == N
    assert _requests(server) == {LS: math.ceil(N / PAGE)}


def test_stat_of_every_entry_costs_no_per_entry_request(mount_factory, server, big_folder):
    name, _ = big_folder
    _, folder = _cold(mount_factory, server, name)
    names = os.listdir(folder)
    for entry in names:
        os.stat(folder / entry)
    sh("sh", "-c", f"stat '{folder}'/* > /dev/null")
    assert len(names) == N
    assert _requests(server) == {LS: math.ceil(N / PAGE)}
    server.reset_counters()
    for entry in names:
        os.stat(folder / entry)
    assert server.counters()["total"] == 0


def test_absent_name_probes_cost_nothing_after_a_listing(mount_factory, server, big_folder):
    name, _ = big_folder
    _, folder = _cold(mount_factory, server, name)
    os.listdir(folder)
    server.reset_counters()
    probes = [
        ".hidden",
        ".Trash-1000",
        ".xdg-volume-info",
        "autorun.inf",
        "desktop.ini",
        ".DS_Store",
        "._f0001.txt",
        ".git",
        ".localized",
    ]
    probes += [f"absent-{i}" for i in range(100 - len(probes))]
    for probe in probes:
        assert not (folder / probe).exists()
    assert server.counters()["total"] == 0


def test_mv_of_a_folder_of_1000_files_is_one_assign(mount_factory, server, session, big_folder):
    name, orion = big_folder
    mounted, folder = _cold(mount_factory, server, name)
    target = mounted.path / f"{name}-moved"
    sh("mv", folder, target)
    counts = _requests(server)
    assert counts.get(ASSIGN) == 1
    assert sum(counts.values()) <= 3, counts  # the assign, plus at most a lookup of the target name
    assert not api_exists(session, orion)
    assert len(api_names(session, f"{my_data(server)}/{name}-moved")) == N
    assert len(os.listdir(target)) == N
