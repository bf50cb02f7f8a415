"""OrionSession path methods against the real local server: ls/stat/create/remove/assign/get paths."""

from __future__ import annotations

import io
import time

import pytest

from orionfs.client import core, wire
from orionfs.client.types import File, Folder, resource_from_entry
from orionfs.exceptions import (
    AuthorizationRequired,
    BadResponse,
    NotFoundResponse,
    ValidationError,
)

LS_KEY = "GET " + wire.LS


def _names(listing) -> list[str]:
    return [e["name"] for e in listing["results"]]


def _upload(session, folder, name, data=b"x"):
    return session.upload_file(folder, name, io.BytesIO(data))


def test_root_and_project_listing_show_the_virtual_namespace(session, server):
    assert _names(session.ls_path("/")) == ["project"]
    assert str(server.project_id) in _names(session.ls_path("/project"))
    assert sorted(_names(session.ls_path(f"/project/{server.project_id}"))) == [
        "shared", "team", "user",
    ]  # fmt: skip


def test_default_output_folder_is_my_data_and_stats_as_a_folder(session, server):
    home = session.get_default_output_folder()
    assert home == f"/project/{server.project_id}/user/{server.username}"
    entry = session.stat_path(home)
    assert entry["resource_type"] == "folder" and entry["path"] == home
    assert isinstance(resource_from_entry(entry), Folder)


def test_create_paths_makes_missing_ancestors_and_is_idempotent(session, session_workdir):
    deep = f"{session_workdir}/a/b/c"
    assert session.create_paths(deep) is None
    session.create_paths(deep)  # exist_ok defaults to True
    assert session.stat_path(f"{session_workdir}/a/b")["resource_type"] == "folder"
    assert _names(session.ls_path(f"{session_workdir}/a/b")) == ["c"]


def test_create_paths_existing_without_exist_ok_is_409(session, session_workdir):
    with pytest.raises(BadResponse) as info:
        session.create_paths(session_workdir, exist_ok=False)
    assert info.value.status_code == 409


def test_create_paths_in_a_virtual_folder_is_authorization_required(session, server):
    with pytest.raises(AuthorizationRequired) as info:
        session.create_paths(f"/project/{server.project_id}/newthing")
    assert info.value.status_code == 403
    assert isinstance(info.value, PermissionError)


def test_remove_paths_refuses_non_empty_folder_unless_recursive(session, session_workdir):
    session.create_paths(f"{session_workdir}/full/sub")
    with pytest.raises(BadResponse) as info:
        session.remove_paths(f"{session_workdir}/full")
    assert info.value.status_code == 409
    assert session.remove_paths(f"{session_workdir}/full", recursive=True) is None
    with pytest.raises(NotFoundResponse):
        session.stat_path(f"{session_workdir}/full")


def test_stat_of_absent_path_is_not_found_and_file_not_found_error(session, session_workdir):
    with pytest.raises(NotFoundResponse) as info:
        session.stat_path(f"{session_workdir}/absent")
    assert info.value.status_code == 404 and isinstance(info.value, FileNotFoundError)
    assert info.value.response is not None


def test_bad_name_is_bad_response_400(session, session_workdir):
    with pytest.raises(BadResponse) as info:
        session.create_paths(f"{session_workdir}/{'x' * 300}")
    assert info.value.status_code == 400


def test_relative_path_is_validation_error_before_any_request(session, server):
    server.reset_counters()
    with pytest.raises(ValidationError):
        session.stat_path("relative/path")
    with pytest.raises(ValidationError):
        session.create_paths("no-slash")
    assert server.counters()["total"] == 0


def test_ls_pages_past_250_entries_with_one_request_per_page(session, session_workdir, server):
    folders = [f"{session_workdir}/big/d{i:04d}" for i in range(600)]
    session.create_paths(*folders)
    server.reset_counters()
    listing = session.ls_path(f"{session_workdir}/big")
    assert listing["count"] == 600 and len(listing["results"]) == 600
    assert _names(listing) == [f"d{i:04d}" for i in range(600)]
    assert server.count(LS_KEY) == 3  # 250 + 250 + 100


def test_ls_path_limit_returns_at_most_that_many_entries_in_one_request(
    session, session_workdir, server
):
    folder = f"{session_workdir}/lim"
    session.create_paths(*[f"{folder}/d{i:04d}" for i in range(1200)])
    server.reset_counters()
    listing = session.ls_path(folder, {"limit": 3})
    assert _names(listing) == ["d0000", "d0001", "d0002"] and listing["count"] == 1200
    assert server.count(LS_KEY) == 1
    server.reset_counters()
    assert len(session.ls_path(folder, {"limit": 1000})["results"]) == 1000
    assert server.count(LS_KEY) == 1  # a whole page of the server's largest size
    server.reset_counters()
    listing = session.ls_path(folder, {"limit": 1100, "offset": 50})
    assert _names(listing) == [f"d{i:04d}" for i in range(50, 1150)]
    assert server.count(LS_KEY) == 2  # 1000 + 100
    assert len(session.ls_path(folder, {"limit": 5000})["results"]) == 1200
    assert len(session.ls_path(folder)["results"]) == 1200  # no limit: the whole folder
    for bad in (0, -1, "3"):
        with pytest.raises(ValidationError):
            session.ls_path(folder, {"limit": bad})


def test_iter_ls_path_parallel_pages_keep_order_and_request_count(session, session_workdir, server):
    session.create_paths(*[f"{session_workdir}/par/d{i:03d}" for i in range(650)])
    server.reset_counters()
    entries = list(session.iter_ls_path(f"{session_workdir}/par", {"limit": 100}, parallel=4))
    assert [e["name"] for e in entries] == [f"d{i:03d}" for i in range(650)]
    assert server.count(LS_KEY) == 7  # ceil(650 / 100)


def test_iter_ls_path_parallel_pages_ahead_of_a_slow_reader_stay_bounded(
    session, session_workdir, server
):
    """A slow reader of a parallel listing (the cache building entries) does not make every page
    wait in memory: at most PAGES_AHEAD x parallel pages are asked for ahead of it."""
    session.create_paths(*[f"{session_workdir}/window/d{i:03d}" for i in range(400)])
    server.reset_counters()
    pages = session.iter_ls_path(f"{session_workdir}/window", {"limit": 10}, parallel=2)
    names = [next(pages)["name"] for _ in range(10)]  # the first page, then the window starts
    time.sleep(0.5)  # the pool could fetch all 40 pages meanwhile
    ahead = core.PAGES_AHEAD * 2
    assert server.count(LS_KEY) <= 1 + ahead + 1
    names += [entry["name"] for entry in pages]
    assert names == [f"d{i:03d}" for i in range(400)]
    assert server.count(LS_KEY) == 40


def test_iter_ls_path_fetches_pages_only_as_consumed(session, session_workdir, server):
    session.create_paths(*[f"{session_workdir}/lazy/d{i:03d}" for i in range(300)])
    server.reset_counters()
    entries = session.iter_ls_path(f"{session_workdir}/lazy", {"limit": 100})
    first = next(entries)
    assert first["name"] == "d000"
    assert server.count(LS_KEY) == 1
    rest = list(entries)
    assert len(rest) == 299 and server.count(LS_KEY) == 3


def test_ls_query_params_filter_and_order(session, session_workdir):
    session.create_paths(f"{session_workdir}/q/sub")
    q = f"{session_workdir}/q"
    a = _upload(session, q, "Alpha.txt", b"1")
    _upload(session, q, "beta.txt", b"22")
    session.tag_resource(a, "keep")
    assert _names(session.ls_path(q, {"name": "beta.txt"})) == ["beta.txt"]
    assert _names(session.ls_path(q, {"name_contains": "eta"})) == ["beta.txt"]
    assert _names(session.ls_path(q, {"name_icontains": "ALPHA"})) == ["Alpha.txt"]
    assert _names(session.ls_path(q, {"list": "folders"})) == ["sub"]
    assert sorted(_names(session.ls_path(q, {"list": "data"}))) == ["Alpha.txt", "beta.txt"]
    assert _names(session.ls_path(q, {"types": ["folder"]})) == ["sub"]
    assert _names(session.ls_path(q, {"tag_filters": ["keep"]})) == ["Alpha.txt"]
    by_size = _names(session.ls_path(q, {"order_by": "-size", "list": "data"}))
    assert by_size == ["beta.txt", "Alpha.txt"]


def test_ls_unknown_query_param_is_validation_error(session, session_workdir):
    with pytest.raises(ValidationError):
        session.ls_path(session_workdir, {"colour": "red"})


def test_ls_of_a_file_is_400_and_of_absent_folder_404(session, session_workdir):
    _upload(session, session_workdir, "f.txt")
    with pytest.raises(BadResponse) as info:
        session.ls_path(f"{session_workdir}/f.txt")
    assert info.value.status_code == 400
    with pytest.raises(NotFoundResponse):
        session.ls_path(f"{session_workdir}/nope")


def test_assign_paths_moves_and_renames_in_one_request(session, session_workdir, server):
    session.create_paths(f"{session_workdir}/src/inner", f"{session_workdir}/dst")
    file = _upload(session, f"{session_workdir}/src", "f.txt", b"data")
    folder = session.stat_path(f"{session_workdir}/src")
    server.reset_counters()
    result = session.assign_paths(
        {"resource_type": "folder", "id": folder["id"], "path": f"{session_workdir}/dst"},
    )
    assert result is None
    assert server.count("POST " + wire.PATHS_ASSIGN) == 1
    moved = session.stat_path(f"{session_workdir}/dst/src/f.txt")
    assert moved["id"] == file.id
    session.assign_paths(
        {"resource_type": File, "id": file.id, "path": session_workdir, "name": "renamed.txt"}
    )
    assert session.stat_path(f"{session_workdir}/renamed.txt")["id"] == file.id


def test_assign_folder_into_itself_is_400(session, session_workdir):
    session.create_paths(f"{session_workdir}/loop/child")
    folder = session.stat_path(f"{session_workdir}/loop")
    with pytest.raises(BadResponse) as info:
        session.assign_paths(
            {"resource_type": "folder", "id": folder["id"], "path": f"{session_workdir}/loop/child"}
        )
    assert info.value.status_code == 400


def test_assign_paths_without_required_keys_is_validation_error(session):
    with pytest.raises(ValidationError):
        session.assign_paths({"resource_type": "file", "id": 1})
    with pytest.raises(ValidationError):
        session.assign_paths({"resource_type": "file", "id": "1", "path": "/x"})


def test_get_paths_returns_one_dict_with_typed_entries(session, session_workdir):
    file = _upload(session, session_workdir, "p.txt")
    answer = session.get_paths(file, {"resource_type": "file", "id": file.id})
    assert (
        answer["results"]
        == [{"resource_type": "file", "id": file.id, "path": f"{session_workdir}/p.txt"}] * 2
    )


def test_shard_collection_path_lists_its_shards(session, session_workdir):
    from orionfs.client.types import Shard, ShardCollection

    coll = session.create_resource(ShardCollection, {"name": "coll", "path": session_workdir})
    shard = session.create_resource(Shard, {"collection": coll.id, "name": "s0"}, {"file": b"abc"})
    listing = session.ls_path(f"{session_workdir}/coll")
    assert [(e["resource_type"], e["id"]) for e in listing["results"]] == [("shard", shard.id)]
    entry_shard = resource_from_entry(listing["results"][0], session, collection=coll.id)
    assert session.read_range(entry_shard, 0, 10) == b"abc"
