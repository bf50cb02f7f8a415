"""CachedSession against the real local server through a real OrionSession.

Every rule is asserted with the server's own request counters (``server.count(...)``); TTL expiry is
driven by a fake clock, never by sleeping. No HTTP mocks.
"""

from __future__ import annotations

import io
import json
import math
import threading
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from orionfs.client import wire
from orionfs.client.session import OrionSession
from orionfs.exceptions import (
    AlreadyExists,
    AuthorizationRequired,
    FolderNotEmpty,
    IsAFolder,
    NotAFolder,
    NotFoundResponse,
    NotTaggable,
    ValidationError,
)
from orionfs.fs.cache import LS_PAGE_SIZE, CachedSession
from orionfs.fs.entry import Entry

LS = "GET /api/v1/storage/ls/"
STAT = "GET /api/v1/storage/stat/"
ASSIGN = "POST /api/v1/storage/paths/assign/"
CREATE_PATHS = "POST /api/v1/storage/paths/"
REMOVE_PATHS = "POST /api/v1/storage/paths/remove/"
UPLOAD = "POST /api/v3/storage/files/"
DELETE_FILE = "DELETE /api/v3/storage/files/{file_id}/"
PAGE = LS_PAGE_SIZE  # the cache's listing page size (the server's maximum, docs/wire.md)
SERVER_PAGE = 250  # the server's default page size (docs/wire.md)
TTL = 5.0

PROBES = [
    ".hidden", ".Trash", ".Trash-1000", ".xdg-volume-info", "autorun.inf", "desktop.ini",
    ".DS_Store", "._f0001", ".git", ".localized", "x (id 5)", "a∕b", "Thumbs.db", ".directory",
]  # fmt: skip


class FakeClock:
    """A timer for the caches that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def total(server: Any) -> int:
    return server.counters()["total"]


def upload(session: OrionSession, folder: str, name: str, data: bytes = b"x") -> Any:
    return session.upload_file(folder, name, io.BytesIO(data), size=len(data))


def make_files(session: OrionSession, folder: str, count: int, prefix: str = "f") -> list[str]:
    """``count`` small files in ``folder`` (uploads in parallel: each is one round trip)."""
    names = [f"{prefix}{i:04d}" for i in range(count)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda name: upload(session, folder, name), names))
    return names


def make_folders(session: OrionSession, folder: str, count: int, prefix: str = "d") -> list[str]:
    """``count`` empty folders in ``folder`` with one ``create_paths`` request."""
    names = [f"{prefix}{i:04d}" for i in range(count)]
    session.create_paths(*[f"{folder}/{name}" for name in names])
    return names


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(session: OrionSession, session_workdir: str, clock: FakeClock) -> CachedSession:
    """A cache whose mount root is a fresh, empty work folder."""
    return CachedSession(session, root=session_workdir, ttl=TTL, timer=clock)


@pytest.fixture
def latency(server: Any) -> Iterator[Any]:
    """Set server latency for one test; always cleared after it."""
    yield server.set_latency
    server.set_latency(0)


# --- listings and lookups --------------------------------------------------------------------------


def test_listing_1000_entries_costs_ceil_n_over_page_requests_then_no_request_per_entry(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    names = make_folders(session, session_workdir, 1000)
    server.reset_counters()
    listed = cache.listdir("/")
    assert sorted(listed) == names
    assert server.count(LS) == math.ceil(1000 / PAGE)
    assert total(server) == math.ceil(1000 / PAGE)
    for name in names:
        entry = cache.lookup(f"/{name}")
        assert entry.name == name and entry.kind == "folder"
        assert entry.tags == ()
    assert total(server) == math.ceil(1000 / PAGE)  # zero per-entry requests


def test_repeat_listing_within_ttl_costs_nothing_and_after_ttl_costs_one_listing_again(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession, clock: FakeClock
) -> None:
    make_folders(session, session_workdir, 1000)
    cache.listdir("/")
    server.reset_counters()
    clock.advance(TTL - 0.5)
    assert len(cache.listdir("/")) == 1000
    assert total(server) == 0
    clock.advance(1.0)
    assert len(cache.listdir("/")) == 1000
    assert server.count(LS) == math.ceil(1000 / PAGE) and total(server) == math.ceil(1000 / PAGE)


def test_100_absent_name_probes_in_a_listed_folder_cost_no_request(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    make_folders(session, session_workdir, 10)
    cache.listdir("/")
    server.reset_counters()
    probes = [PROBES[i % len(PROBES)] + ("" if i < len(PROBES) else f"-{i}") for i in range(100)]
    for name in probes:
        with pytest.raises(NotFoundResponse):
            cache.lookup(f"/{name}")
    assert total(server) == 0


def test_known_absent_is_true_only_for_names_the_caches_know_are_absent_and_asks_nothing(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession, clock: FakeClock
) -> None:
    upload(session, session_workdir, "a.txt", b"hello")
    server.reset_counters()
    assert not cache.known_absent("/b.txt")  # nothing known yet: lookup decides
    assert total(server) == 0
    cache.listdir("/")
    server.reset_counters()
    assert cache.known_absent("/b.txt") and cache.known_absent("//b.txt/")
    assert not cache.known_absent("/a.txt")
    assert not cache.known_absent("/")
    with pytest.raises(NotFoundResponse):
        cache.lookup("/b.txt")
    assert total(server) == 0
    clock.advance(TTL + 0.1)  # the listing expired: not known any more
    assert not cache.known_absent("/b.txt")
    assert total(server) == 0


def test_plain_name_lookup_without_listing_is_one_stat_and_a_miss_lists_the_folder_once(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession, clock: FakeClock
) -> None:
    upload(session, session_workdir, "a.txt", b"hello")
    server.reset_counters()
    assert cache.lookup("/a.txt").size == 5
    assert server.count(STAT) == 1 and total(server) == 1
    with pytest.raises(NotFoundResponse):
        cache.lookup("/missing")
    assert server.count(STAT) == 2 and server.count(LS) == 1  # the miss listed the folder
    # Within the TTL neither the entry nor any other name of the folder costs a request.
    cache.lookup("/a.txt")
    for probe in ("/missing", ".hidden", "/desktop.ini", "/.Trash-1000"):
        with pytest.raises(NotFoundResponse):
            cache.lookup(probe if probe.startswith("/") else "/" + probe)
    assert total(server) == 3
    clock.advance(TTL + 0.1)
    with pytest.raises(NotFoundResponse):
        cache.lookup("/missing")
    assert server.count(STAT) == 3 and server.count(LS) == 2


def test_desktop_probes_in_two_unlisted_folders_cost_at_most_four_requests(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/one", f"{session_workdir}/two")
    upload(session, f"{session_workdir}/one", "data.csv")
    probes = [".hidden", ".directory", "autorun.inf", ".Trash", ".Trash-1000",
              ".xdg-volume-info", "desktop.ini", ".DS_Store", "._data.csv", ".git"]  # fmt: skip
    server.reset_counters()
    for folder in ("/one", "/two"):
        for probe in probes:
            with pytest.raises(NotFoundResponse):
                cache.lookup(f"{folder}/{probe}")
    assert total(server) <= 4  # a stat and a listing per folder
    assert server.count(STAT) <= 4 and server.count(LS) == 2


def test_a_miss_in_a_folder_larger_than_a_page_keeps_one_stat_per_name(
    server: Any, session: OrionSession, session_workdir: str, clock: FakeClock
) -> None:
    for i in range(6):
        upload(session, session_workdir, f"f{i}")
    small_pages = CachedSession(session, root=session_workdir, ttl=TTL, timer=clock, page_size=5)
    server.reset_counters()
    for probe in ("/a", "/b", "/c"):
        with pytest.raises(NotFoundResponse):
            small_pages.lookup(probe)
    assert server.count(LS) == 1  # one page, then the folder is known to be large
    assert server.count(STAT) == 3
    assert small_pages.stats()["listings"] == 0


def test_non_plain_name_lookup_lists_the_parent_once(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    first = upload(session, session_workdir, "x")
    second = upload(session, session_workdir, "x")
    server.reset_counters()
    assert cache.lookup(f"/x (id {second.id})").id == second.id
    assert server.count(LS) == 1 and server.count(STAT) == 0
    assert cache.lookup("/x").id == first.id  # the lowest id keeps the plain name
    with pytest.raises(NotFoundResponse):
        cache.lookup(f"/x (id {first.id})")
    assert total(server) == 1


def test_name_with_division_slash_is_resolved_through_the_listing(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    literal = upload(session, session_workdir, "a∕b")  # U+2215 in the Orion name itself
    server.reset_counters()
    assert cache.lookup("/a∕b").id == literal.id
    assert server.count(LS) == 1 and server.count(STAT) == 0
    session.create_paths(f"{session_workdir}/other")
    cache.invalidate()
    moved = cache.rename("/a∕b", "/other/a∕b")
    assert moved.name == "a∕b"  # an existing entry keeps its own Orion name


def test_new_name_with_division_slash_is_created_as_typed_and_round_trips(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    entry = cache.create_file("/a∕b.txt", io.BytesIO(b"slash"), 5)
    folder = cache.mkdir("/c∕d")
    assert (entry.name, folder.name) == ("a∕b.txt", "c∕d")
    cache.invalidate()
    assert sorted(cache.listdir("/")) == ["a∕b.txt", "c∕d"]
    assert cache.read(cache.lookup("/a∕b.txt"), 0, 5) == b"slash"
    assert sorted(e["name"] for e in session.ls_path(session_workdir)["results"]) == [
        "a∕b.txt",
        "c∕d",
    ]


def test_names_orion_cannot_hold_are_refused_before_any_request(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    upload(session, session_workdir, "f.txt")
    cache.listdir("/")
    server.reset_counters()
    bad = "bad-\udcff\udcfe.txt"  # what the kernel hands over for bytes that are not UTF-8
    with pytest.raises(ValidationError):
        cache.create_file(f"/{bad}", io.BytesIO(b"x"), 1)
    with pytest.raises(ValidationError):
        cache.mkdir(f"/{bad}")
    with pytest.raises(ValidationError):
        cache.rename("/f.txt", f"/{bad}")
    cache.invalidate()
    server.reset_counters()
    with pytest.raises(NotFoundResponse):
        cache.lookup(f"/{bad}")  # no such entry can exist: not even a stat
    assert total(server) == 0


def test_deep_plain_path_lookup_is_one_stat(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/a/b/c")
    upload(session, f"{session_workdir}/a/b/c", "leaf")
    server.reset_counters()
    assert cache.lookup("/a/b/c/leaf").path == f"{session_workdir}/a/b/c/leaf"
    assert total(server) == 1


def test_root_lookup_stats_the_root_orion_path(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession, clock: FakeClock
) -> None:
    server.reset_counters()
    assert cache.lookup("/").path == session_workdir
    assert cache.lookup("/").path == session_workdir  # known: no second stat
    whole = CachedSession(session, ttl=TTL, timer=clock)
    root = whole.lookup("/")
    assert root.id is None and root.kind == "folder"  # virtual
    assert "project" in whole.listdir("/")
    assert server.count(STAT) == 2 and total(server) == 3


def test_concurrent_identical_misses_make_one_request(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession, latency: Any
) -> None:
    upload(session, session_workdir, "shared.bin")
    make_folders(session, session_workdir, 300)
    server.reset_counters()
    latency(200)  # every thread asks while the first request is still in flight
    barrier = threading.Barrier(8)

    def lookup_and_list(_: int) -> tuple[int, int]:
        barrier.wait()
        entry = cache.lookup("/shared.bin")
        barrier.wait()
        return entry.id, len(cache.listdir("/"))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lookup_and_list, range(8)))
    assert len(set(results)) == 1 and results[0][1] == 301
    assert server.count(STAT) == 1
    assert server.count(LS) == math.ceil(301 / PAGE)
    assert total(server) == 1 + math.ceil(301 / PAGE)


def test_external_changes_show_after_the_ttl(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession, clock: FakeClock
) -> None:
    assert cache.listdir("/") == {}
    upload(session, session_workdir, "late")  # another client, behind the cache's back
    with pytest.raises(NotFoundResponse):
        cache.lookup("/late")  # the fresh listing says no
    clock.advance(TTL + 0.1)
    assert "late" in cache.listdir("/")


def test_invalidate_drops_a_path_and_what_is_below_it(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/d")
    cache.listdir("/")
    cache.listdir("/d")
    upload(session, f"{session_workdir}/d", "new")
    with pytest.raises(NotFoundResponse):
        cache.lookup("/d/new")
    server.reset_counters()
    cache.invalidate("/d")
    assert "new" in cache.listdir("/d")
    assert server.count(LS) == 1
    cache.invalidate()
    cache.listdir("/")
    assert server.count(LS) == 2


def test_listing_of_a_file_raises_not_a_folder(
    session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    upload(session, session_workdir, "plain")
    cache.lookup("/plain")
    with pytest.raises(NotAFolder):
        cache.listdir("/plain")
    with pytest.raises(NotAFolder):
        cache.lookup("/plain/child")


def test_page_size_option_sets_the_listing_limit(
    server: Any, session: OrionSession, session_workdir: str, clock: FakeClock
) -> None:
    make_folders(session, session_workdir, 1000)
    cache = CachedSession(session, root=session_workdir, ttl=TTL, timer=clock, page_size=1000)
    server.reset_counters()
    assert len(cache.listdir("/")) == 1000
    assert server.count(LS) == 1


def test_listing_pages_are_fetched_in_parallel_in_order(
    server: Any, session: OrionSession, session_workdir: str, clock: FakeClock
) -> None:
    names = make_folders(session, session_workdir, 1000)
    cache = CachedSession(
        session, root=session_workdir, ttl=TTL, timer=clock, page_size=SERVER_PAGE, ls_parallel=4
    )
    server.reset_counters()
    assert list(cache.listdir("/")) == names
    assert server.count(LS) == math.ceil(1000 / SERVER_PAGE)
    assert total(server) == math.ceil(1000 / SERVER_PAGE)


def test_shard_collection_lists_its_shards_and_they_read_by_range(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    collection = session.create_resource(
        "shard_collection", {"name": "traj", "path": session_workdir}
    )
    payload = b"frame 0\n" * 4
    session.create_resource(
        "shard",
        {"collection": collection.id, "name": "s0.bin"},
        {"file": ("s0.bin", io.BytesIO(payload), len(payload))},
    )
    cache.listdir("/")
    server.reset_counters()
    shards = cache.listdir("/traj")
    assert list(shards) == ["s0.bin"] and shards["s0.bin"].kind == "shard"
    assert cache.read(shards["s0.bin"], 6, 4) == b"0\nfr"
    assert server.count(LS) == 1 and total(server) == 2
    with pytest.raises(NotTaggable):
        cache.add_tag("/traj/s0.bin", "x")


class _GatedSession:
    """The real session, except that a listing, once fetched, waits to be released: it stands
    for a slow answer that a mutation overtakes."""

    def __init__(self, inner: OrionSession) -> None:
        self.inner = inner
        self.fetched = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def iter_ls_path(
        self, path: str, query_params: Any = None, *, parallel: int = 1
    ) -> Iterator[dict[str, Any]]:
        entries = list(self.inner.iter_ls_path(path, query_params, parallel=parallel))
        self.fetched.set()
        self.release.wait(10)
        yield from entries


def test_listing_fetched_before_a_mutation_never_overwrites_it(
    session: OrionSession, session_workdir: str, clock: FakeClock
) -> None:
    gated = _GatedSession(session)
    cache = CachedSession(gated, root=session_workdir, ttl=TTL, timer=clock)
    with ThreadPoolExecutor(1) as pool:
        early = pool.submit(cache.listdir, "/")
        assert gated.fetched.wait(10)  # the listing is fetched, without "new", and held back
        cache.mkdir("/new")
        gated.release.set()
        assert "new" not in early.result()  # its callers get what they asked for...
    assert cache.lookup("/new").name == "new"  # ...but it was not stored over the mkdir
    assert "new" in cache.listdir("/")


# --- mutations: own changes visible at once --------------------------------------------------------


def test_mkdir_is_one_create_request_visible_at_once_and_the_new_folder_is_known_empty(
    server: Any, cache: CachedSession, session_workdir: str
) -> None:
    cache.listdir("/")
    server.reset_counters()
    entry = cache.mkdir("/new")
    assert entry.kind == "folder" and entry.path == f"{session_workdir}/new"
    requests = total(server)
    # One create_paths, whose answer is the Entry: no stat read-back.
    assert server.count(CREATE_PATHS) == 1 and server.count(STAT) == 0 and requests == 1
    assert cache.listdir("/")["new"].id == entry.id
    assert cache.lookup("/new") is cache.listdir("/")["new"]
    assert cache.listdir("/new") == {}
    with pytest.raises(NotFoundResponse):
        cache.lookup("/new/.hidden")
    assert total(server) == requests
    with pytest.raises(AlreadyExists):
        cache.mkdir("/new")
    assert total(server) == requests


def test_create_file_is_visible_at_once_with_its_entry(
    server: Any, session: OrionSession, cache: CachedSession
) -> None:
    cache.listdir("/")
    server.reset_counters()
    entry = cache.create_file("/data.bin", io.BytesIO(b"0123456789"), 10)
    assert entry.size == 10 and entry.kind == "file"
    assert server.count(UPLOAD) == 1 and total(server) == 1
    assert cache.lookup("/data.bin").id == entry.id
    assert cache.listdir("/")["data.bin"].size == 10
    assert cache.read(entry, 2, 3) == b"234"
    assert total(server) == 2  # the upload and the ranged read, nothing else


def test_create_file_without_listing_is_visible_after_a_negative_lookup(
    server: Any, cache: CachedSession
) -> None:
    with pytest.raises(NotFoundResponse):
        cache.lookup("/n.txt")  # what the kernel does before create()
    server.reset_counters()
    entry = cache.create_file("/n.txt", io.BytesIO(b"abc"), 3)
    assert cache.lookup("/n.txt").id == entry.id
    assert total(server) == 1


def test_create_file_over_an_existing_file_replaces_it(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    old = upload(session, session_workdir, "f", b"old")
    cache.listdir("/")
    new = cache.create_file("/f", io.BytesIO(b"newer"), 5)
    assert new.id != old.id
    assert list(cache.listdir("/")) == ["f"]
    cache.invalidate()
    assert [e.id for e in cache.listdir("/").values()] == [new.id]


def test_replace_content_keeps_the_id_and_shows_the_new_size(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    old = upload(session, session_workdir, "f", b"old")
    cache.listdir("/")
    server.reset_counters()
    entry = cache.replace_content("/f", io.BytesIO(b"much longer"), 11)
    assert entry.id == old.id and entry.size == 11
    assert cache.lookup("/f").size == 11 and cache.listdir("/")["f"].size == 11
    assert total(server) == 1


def test_unlink_deletes_by_id_so_duplicates_are_exact(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    first = upload(session, session_workdir, "dup", b"1")
    second = upload(session, session_workdir, "dup", b"22")
    assert sorted(cache.listdir("/")) == ["dup", f"dup (id {second.id})"]
    server.reset_counters()
    cache.unlink("/dup")  # the lowest id, exactly
    assert server.count(DELETE_FILE) == 1 and total(server) == 1
    # The survivor now shows under the plain name, at once and on the server.
    assert cache.listdir("/") == {"dup": cache.lookup("/dup")}
    assert cache.lookup("/dup").id == second.id
    assert [e["id"] for e in session.ls_path(session_workdir)["results"]] == [second.id]
    assert first.id != second.id
    cache.mkdir("/dir")
    with pytest.raises(IsAFolder):
        cache.unlink("/dir")


def test_rmdir_of_a_non_empty_folder_raises_folder_not_empty(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/full/sub")
    # Listings cached: refused with no request.
    cache.listdir("/")
    cache.listdir("/full")
    server.reset_counters()
    with pytest.raises(FolderNotEmpty):
        cache.rmdir("/full")
    assert total(server) == 0
    # Listing not cached: the server's 409 says so.
    cache.invalidate()
    with pytest.raises(FolderNotEmpty):
        cache.rmdir("/full")
    assert session.stat_path(f"{session_workdir}/full/sub")["name"] == "sub"


def test_rmdir_of_an_empty_folder_is_visible_at_once(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    cache.listdir("/")
    cache.mkdir("/empty")
    server.reset_counters()
    cache.rmdir("/empty")
    assert server.count(REMOVE_PATHS) == 1 and total(server) == 1
    assert "empty" not in cache.listdir("/")
    with pytest.raises(NotFoundResponse):
        cache.lookup("/empty")
    assert total(server) == 1
    upload(session, session_workdir, "file")
    cache.invalidate()
    with pytest.raises(NotAFolder):
        cache.rmdir("/file")


def test_rename_is_one_assign_request_and_visible_at_once(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/dst")
    upload(session, session_workdir, "a.txt", b"abc")
    cache.listdir("/")
    cache.listdir("/dst")
    server.reset_counters()
    moved = cache.rename("/a.txt", "/dst/b.txt")
    assert server.count(ASSIGN) == 1 and total(server) == 1
    assert moved.name == "b.txt" and moved.path == f"{session_workdir}/dst/b.txt"
    assert "a.txt" not in cache.listdir("/") and cache.listdir("/dst")["b.txt"].size == 3
    with pytest.raises(NotFoundResponse):
        cache.lookup("/a.txt")
    assert total(server) == 1
    assert session.stat_path(f"{session_workdir}/dst/b.txt")["id"] == moved.id


def test_moving_a_folder_of_1000_files_is_one_assign_request(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/big", f"{session_workdir}/into")
    names = make_files(session, f"{session_workdir}/big", 1000)
    cache.listdir("/")
    cache.listdir("/into")
    assert len(cache.listdir("/big")) == 1000
    server.reset_counters()
    cache.rename("/big", "/into/moved")
    assert server.count(ASSIGN) == 1 and total(server) == 1
    assert "big" not in cache.listdir("/") and "moved" in cache.listdir("/into")
    with pytest.raises(NotFoundResponse):
        cache.lookup("/big/f0000")
    assert total(server) == 1
    # The subtree was dropped, not guessed: its entries now carry their new paths.
    assert sorted(cache.listdir("/into/moved")) == names
    entry = cache.lookup("/into/moved/f0999")
    assert entry.path == f"{session_workdir}/into/moved/f0999"


def test_rename_over_an_existing_file_replaces_it_and_deletes_the_old_target_after(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    src = upload(session, session_workdir, "tmp123", b"new content")
    target = upload(session, session_workdir, "doc.txt", b"old")
    cache.listdir("/")
    server.reset_counters()
    moved = cache.rename("/tmp123", "/doc.txt")
    assert server.count(ASSIGN) == 1 and server.count(DELETE_FILE) == 1 and total(server) == 2
    assert moved.id == src.id
    assert cache.listdir("/") == {"doc.txt": cache.lookup("/doc.txt")}
    assert cache.lookup("/doc.txt").id == src.id and cache.lookup("/doc.txt").size == 11
    on_server = session.ls_path(session_workdir)["results"]
    assert [(e["name"], e["id"]) for e in on_server] == [("doc.txt", src.id)]
    assert target.id != src.id


def test_rename_over_an_existing_file_keeps_both_when_the_delete_fails(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    src = upload(session, session_workdir, "tmp", b"new")
    target = upload(session, session_workdir, "doc", b"old")
    cache.listdir("/")
    # The delete fails: the assign came first, so both exist and nothing was lost.
    server.set_faults(status=403, path_prefix="/api/v3/storage/files/", count=100)
    try:
        with pytest.raises(AuthorizationRequired):  # the failure is reported, not swallowed
            cache.rename("/tmp", "/doc")
    finally:
        server.clear_faults()
    ids = sorted(e["id"] for e in session.ls_path(session_workdir)["results"])
    assert ids == sorted([src.id, target.id])
    assert sorted(e.id for e in cache.listdir("/").values()) == ids


def test_rename_folder_over_an_empty_folder_replaces_it(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/src/inner", f"{session_workdir}/empty")
    src_id = cache.lookup("/src").id
    cache.listdir("/")
    cache.listdir("/empty")
    server.reset_counters()
    cache.rename("/src", "/empty")
    assert server.count(REMOVE_PATHS) == 1 and server.count(ASSIGN) == 1
    assert cache.lookup("/empty").id == src_id and sorted(cache.listdir("/")) == ["empty"]
    assert "inner" in cache.listdir("/empty")


def test_rename_folder_over_a_non_empty_folder_raises_folder_not_empty(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/src", f"{session_workdir}/full/x")
    for listed in (True, False):
        cache.invalidate()
        if listed:
            cache.listdir("/full")
        server.reset_counters()
        with pytest.raises(FolderNotEmpty):
            cache.rename("/src", "/full")
        assert server.count(ASSIGN) == 0
    assert session.stat_path(f"{session_workdir}/full/x")["name"] == "x"


def test_rename_kinds_must_match(
    session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/dir")
    upload(session, session_workdir, "file")
    with pytest.raises(IsAFolder):
        cache.rename("/file", "/dir")
    with pytest.raises(NotAFolder):
        cache.rename("/dir", "/file")


def test_rename_to_a_duplicate_display_name_becomes_a_literal_name(
    session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    upload(session, session_workdir, "x")
    second = upload(session, session_workdir, "x")
    session.create_paths(f"{session_workdir}/other")
    shown = f"x (id {second.id})"
    moved = cache.rename(f"/{shown}", f"/other/{shown}")
    assert moved.name == shown  # shows in the new folder as the user typed it
    assert list(cache.listdir("/other")) == [shown]


# --- tags ------------------------------------------------------------------------------------------


def test_tags_cost_no_request_after_a_listing_and_changes_are_visible_at_once(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    file = upload(session, session_workdir, "t.txt")
    session.tag_resource(file, "alpha")
    cache.listdir("/")
    server.reset_counters()
    assert cache.lookup("/t.txt").tags == ("alpha",)
    assert cache.lookup("/t.txt").systemtags == ()
    assert total(server) == 0
    assert sorted(cache.set_tags("/t.txt", ["beta", "gamma"])) == ["beta", "gamma"]
    assert total(server) == 2  # one add, one remove
    assert sorted(cache.lookup("/t.txt").tags) == ["beta", "gamma"]
    cache.add_tag("/t.txt", "delta")
    cache.remove_tag("/t.txt", "beta")
    cache.add_tag("/t.txt", "delta")  # present: no request
    cache.remove_tag("/t.txt", "absent")  # absent: no request
    assert total(server) == 4
    assert sorted(cache.lookup("/t.txt").tags) == ["delta", "gamma"]
    assert sorted(cache.listdir("/")["t.txt"].tags) == ["delta", "gamma"]
    assert sorted(t["name"] for t in session.list_tags(file)) == ["delta", "gamma"]


def test_tag_changes_on_folders_raise_not_taggable(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    session.create_paths(f"{session_workdir}/dir")
    server.reset_counters()
    assert cache.lookup("/dir").tags == ()
    for change in (
        lambda: cache.set_tags("/dir", ["a"]),
        lambda: cache.add_tag("/dir", "a"),
        lambda: cache.remove_tag("/dir", "a"),
    ):
        with pytest.raises(NotTaggable):
            change()
    assert total(server) == 1  # the one stat of /dir


def test_link_and_ref_cost_no_request(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    file = upload(session, session_workdir, "l.txt")
    cache.listdir("/")
    server.reset_counters()
    entry = cache.lookup("/l.txt")
    assert cache.link(entry) == {"resource_type": "file", "id": file.id}
    ref = entry.ref  # the typed reference the session takes (what resource() was for)
    assert ref.resource_type == "file" and ref.id == file.id
    assert total(server) == 0


# --- bounds, counters, memory ----------------------------------------------------------------------


def test_stats_count_hits_misses_and_requests_by_kind(
    server: Any, session: OrionSession, session_workdir: str, cache: CachedSession
) -> None:
    make_folders(session, session_workdir, 3)
    cache.lookup("/d0000")  # miss: a stat
    cache.listdir("/")  # miss: a listing
    cache.lookup("/d0001")  # hit
    with pytest.raises(NotFoundResponse):
        cache.lookup("/nope")  # hit (negative, from the listing)
    stats = cache.stats()
    assert (stats["hits"], stats["misses"]) == (2, 2)
    assert stats["requests"] == {"stat_path": 1, "iter_ls_path": 1}
    assert stats["listings"] == 1 and stats["listed_entries"] == 3


def test_caches_are_bounded(session: OrionSession, session_workdir: str, clock: FakeClock) -> None:
    make_folders(session, session_workdir, 30)
    small = CachedSession(
        session, root=session_workdir, ttl=TTL, timer=clock, max_entries=10, max_listings=2
    )
    for i in range(30):
        small.lookup(f"/d{i:04d}")
        small.listdir(f"/d{i:04d}")
    stats = small.stats()
    assert stats["stat_entries"] <= 10 and stats["listings"] <= 2
    assert len(small.listdir("/")) == 30  # one folder above the bound is still cached, alone
    assert small.stats()["listings"] == 1


class _ListingOnlySession:
    """Serves one synthetic 100,000-entry folder through the session API's ``iter_ls_path``.

    Not an HTTP mock: it stands for a folder far larger than the test server can fill in seconds,
    to measure what the cache itself keeps.
    """

    def __init__(self, count: int) -> None:
        self.count = count

    def iter_ls_path(
        self, path: str, query_params: Any = None, *, parallel: int = 1
    ) -> Iterator[dict[str, Any]]:
        for start in range(0, self.count, PAGE):
            page = [
                {
                    "resource_type": "file", "id": i + 1, "name": f"file-{i:06d}.dat",
                    "path": f"{path}/file-{i:06d}.dat", "size": i,
                    "created": "2026-01-01T00:00:00.000000Z",
                    "modified": "2026-01-01T00:00:00.000000Z", "owner": 1001, "project": 1002,
                    "state": "ready", "tags": [], "systemtags": [], "count": 0,
                }
                for i in range(start, min(start + PAGE, self.count))
            ]  # fmt: skip
            # Parsed like the session parses a page: every value its own object.
            yield from json.loads(json.dumps(page))


def test_100k_entry_folder_is_cached_once_and_looked_up_without_copies(clock: FakeClock) -> None:
    cache = CachedSession(_ListingOnlySession(100_000), root="/big", ttl=TTL, timer=clock)
    listed = cache.listdir("/")
    assert len(listed) == 100_000
    for name, entry in listed.items():
        assert cache.lookup(f"/{name}") is entry  # the cached object, never a copy
    for i in range(100):
        with pytest.raises(NotFoundResponse):
            cache.lookup(f"/.hidden-{i}")
    stats = cache.stats()
    assert stats["stat_entries"] == 0  # no second copy per entry in the stat cache
    assert stats["requests"] == {"iter_ls_path": 1}


def test_listed_entries_are_kept_compactly(clock: FakeClock) -> None:
    count = 20_000
    cache = CachedSession(_ListingOnlySession(count), root="/big", ttl=TTL, timer=clock)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        listed = cache.listdir("/")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    per_entry = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / count
    # Slotted Entries (no per-entry __dict__, one shared string per kind, none of the wire dict's
    # other fields kept) plus the display-name index.
    assert per_entry < 1_000, per_entry
    for entry in listed.values():
        assert type(entry) is Entry and not hasattr(entry, "__dict__")
        assert entry.kind is wire.FILE
