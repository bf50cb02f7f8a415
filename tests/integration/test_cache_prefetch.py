"""Traversal prefetch (orionfs.fs.prefetch) through a real CachedSession and the real server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from orionfs.fs.cache import CachedSession

LS = "GET /api/v1/storage/ls/"
STAT = "GET /api/v1/storage/stat/"


@pytest.fixture
def tree(session: Any, session_workdir: str) -> str:
    """A folder of 10 subfolders, each holding one file."""
    session.create_paths(*(f"{session_workdir}/d{i}" for i in range(10)))
    for i in range(10):
        session.upload_file(f"{session_workdir}/d{i}", "f.txt", b"x")
    return session_workdir


def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_walk_lists_every_folder_once_and_the_siblings_ahead(
    server: Any, session: Any, tree: str
) -> None:
    cache = CachedSession(session, root=tree)
    try:
        server.reset_counters()
        cache.listdir("/")
        cache.listdir("/d0")
        cache.listdir("/d1")  # the second subfolder: a walk
        _wait_for(lambda: cache.stats()["listings"] == 11)
        assert cache.stats()["listings"] == 11  # the other 8 were listed ahead
        for i in range(2, 10):
            assert "f.txt" in cache.listdir(f"/d{i}")
        assert server.count(LS) == 11  # still one listing per folder
        assert server.count(STAT) == 0
    finally:
        cache.close()


def test_browsing_one_folder_and_one_subfolder_lists_nothing_ahead(
    server: Any, session: Any, tree: str
) -> None:
    cache = CachedSession(session, root=tree)
    try:
        server.reset_counters()
        cache.listdir("/")
        cache.lookup("/d3")
        cache.listdir("/d0")
        time.sleep(0.3)
        assert server.count(LS) == 2
        assert cache.stats()["listings"] == 2
    finally:
        cache.close()


def test_without_prefetch_a_walk_lists_only_what_it_visits(
    server: Any, session: Any, tree: str
) -> None:
    cache = CachedSession(session, root=tree, prefetch=False)
    server.reset_counters()
    for path in ("/", "/d0", "/d1"):
        cache.listdir(path)
    time.sleep(0.3)
    assert server.count(LS) == 3
