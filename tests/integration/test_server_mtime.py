"""Modification times (docs/wire.md, "Modification times").

- ``mtime`` is the time of a file's or dataset's content: the client sets it (upload form field,
  ``mtime`` query parameter of a content replacement, PATCH), or the server does when the content
  is written; renames leave it alone. Every answer that describes the item carries it.
- ``modified`` stays the server's time of the item's last change; a folder's moves (with its
  ``mtime``) when something is created, removed, renamed or moved in it.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from orionfs.server.storage import Storage
from tests.support.server import ServerProcess
from tests.support.server_api import Api

WHEN = "2001-02-03T04:05:06.123456Z"
_folders = itertools.count()


@pytest.fixture
def api(server: ServerProcess) -> Api:
    return Api(server.url, server.token, server.username, server.project_id)


@pytest.fixture
def folder(api: Api) -> str:
    path = f"{api.my_data}/mtime-{next(_folders)}-{time.monotonic_ns()}"
    assert api.mkdir(path).status_code == 201
    return path


def _upload(api: Api, folder: str, name: str, kind: str = "file", **fields: str) -> Any:
    endpoint = "/api/v3/storage/files/" if kind == "file" else "/api/v1/datasets/"
    return api.post(
        endpoint, data={"name": name, "path": folder, **fields}, files={"file": ("b", b"a\nb\n")}
    )


def _every_view(api: Api, folder: str, name: str, kind: str, item_id: int) -> list[dict]:
    """The item as stat, ls, its resource and its page of the resource list show it."""
    resource = "/api/v3/storage/files/" if kind == "file" else "/api/v1/datasets/"
    listed = [e for e in api.ls(folder).json()["results"] if e["id"] == item_id]
    paged = api.get(resource, params={"name": name, "limit": 1000}).json()["results"]
    return [
        api.stat(f"{folder}/{name}").json(),
        *listed,
        api.get(f"{resource}{item_id}/").json(),
        *[r for r in paged if r["id"] == item_id],
    ]


@pytest.mark.parametrize("kind", ["file", "dataset"])
def test_an_upload_sets_mtime_and_every_view_shows_it(api: Api, folder: str, kind: str) -> None:
    response = _upload(api, folder, "dated", kind, mtime=WHEN)
    assert response.status_code == 201, response.text
    item = response.json()
    assert item["mtime"] == WHEN and item["modified"] != WHEN
    views = _every_view(api, folder, "dated", kind, item["id"])
    assert len(views) == 4 and {view["mtime"] for view in views} == {WHEN}


@pytest.mark.parametrize("kind", ["file", "dataset"])
def test_without_a_given_mtime_it_is_the_creation_time(api: Api, folder: str, kind: str) -> None:
    item = _upload(api, folder, "undated", kind).json()
    assert item["mtime"] == item["created"]


@pytest.mark.parametrize(
    "given, stored",
    [
        ("2001-02-03T05:05:06+01:00", "2001-02-03T04:05:06.000000Z"),
        ("2001-02-03T04:05:06.123456789Z", "2001-02-03T04:05:06.123456Z"),
        ("1969-07-20T20:17:40Z", "1969-07-20T20:17:40.000000Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
    ],
)
def test_a_given_mtime_is_stored_in_utc_with_microseconds(
    api: Api, folder: str, given: str, stored: str
) -> None:
    assert _upload(api, folder, "normalised", mtime=given).json()["mtime"] == stored


BAD_TIMES = ["yesterday", "2001-02-03T04:05:06", "2001-02-03", "", "2001-13-01T00:00:00Z",
             "0001-01-01T00:00:00+01:00", "2001-02-03T04:05:06Z\x00"]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_TIMES, ids=repr)
def test_a_bad_mtime_is_400_everywhere(api: Api, folder: str, bad: str) -> None:
    response = _upload(api, folder, "bad", mtime=bad)
    assert response.status_code == 400 and "mtime" in response.json()["detail"], response.text
    file = _upload(api, folder, "good").json()
    url = f"/api/v3/storage/files/{file['id']}/"
    response = api.request("PATCH", url, json={"mtime": bad})
    assert response.status_code == 400 and "mtime" in response.json()["detail"], response.text
    response = api.request("PUT", url + "content/", params={"mtime": bad}, data=b"new")
    assert response.status_code == 400 and "mtime" in response.json()["detail"], response.text
    assert api.download(file["id"]).content == b"a\nb\n"
    assert "bad" not in api.names(folder)
    assert api.request("PATCH", url, json={"mtime": 5}).status_code == 400


def test_a_content_replacement_takes_mtime_from_the_query_or_the_clock(
    api: Api, folder: str
) -> None:
    file = _upload(api, folder, "replaced", mtime=WHEN).json()
    content = f"/api/v3/storage/files/{file['id']}/content/"
    given = api.request("PUT", content, params={"mtime": "2010-01-01T00:00:00Z"}, data=b"v2")
    assert given.status_code == 200 and given.json()["mtime"] == "2010-01-01T00:00:00.000000Z"
    now = api.request("PUT", content, data=b"v3").json()
    assert now["mtime"] == now["modified"] > given.json()["modified"]


@pytest.mark.parametrize("kind", ["file", "dataset"])
def test_patch_sets_mtime_and_a_rename_keeps_it(api: Api, folder: str, kind: str) -> None:
    item = _upload(api, folder, "patched", kind).json()
    url = ("/api/v3/storage/files/" if kind == "file" else "/api/v1/datasets/") + f"{item['id']}/"
    set_ = api.request("PATCH", url, json={"mtime": WHEN})
    assert set_.status_code == 200 and set_.json()["mtime"] == WHEN
    assert set_.json()["modified"] > item["modified"]
    renamed = api.request("PATCH", url, json={"name": "renamed"}).json()
    assert renamed["mtime"] == WHEN and renamed["modified"] > set_.json()["modified"]
    assert api.stat(f"{folder}/renamed").json()["mtime"] == WHEN


def test_folder_entries_carry_mtime_equal_to_modified(api: Api, folder: str) -> None:
    for path in (folder, api.my_data, f"/project/{api.project}"):
        entry = api.stat(path).json()
        assert entry["mtime"] == entry["modified"], path


def _folder_times(api: Api, path: str) -> tuple[str, str]:
    entry = api.stat(path).json()
    assert entry["mtime"] == entry["modified"]
    return entry["modified"], entry["created"]


def test_a_folders_modified_moves_when_its_children_change(api: Api, folder: str) -> None:
    other = f"{folder}-other"
    api.mkdir(other)
    steps = [
        ("upload", lambda: _upload(api, folder, "child.txt")),
        ("mkdir", lambda: api.mkdir(f"{folder}/sub")),
        (
            "collection",
            lambda: api.post("/api/v1/storage/collections/", json={"path": folder, "name": "c"}),
        ),
    ]
    last, created = _folder_times(api, folder)
    assert last == created
    for label, step in steps:
        assert step().status_code == 201, label
        now, _ = _folder_times(api, folder)
        assert now > last, label
        last = now
    child = api.stat(f"{folder}/child.txt").json()
    url = f"/api/v3/storage/files/{child['id']}/"
    assert api.request("PATCH", url, json={"name": "renamed.txt"}).status_code == 200
    now, _ = _folder_times(api, folder)
    assert now > last
    last, other_last = now, _folder_times(api, other)[0]
    moved = api.post(
        "/api/v1/storage/paths/assign/",
        json={"assignments": [{"resource_type": "file", "id": child["id"], "path": other}]},
    )
    assert moved.status_code == 200
    now, _ = _folder_times(api, folder)
    assert now > last and _folder_times(api, other)[0] > other_last
    last = now
    assert api.post("/api/v1/storage/paths/remove/", json={"paths": [f"{folder}/sub"]}).ok
    now, _ = _folder_times(api, folder)
    assert now > last
    last = now
    collection = api.stat(f"{folder}/c").json()
    assert api.request("DELETE", f"/api/v1/storage/collections/{collection['id']}/").ok
    assert _folder_times(api, folder)[0] > last


def test_a_data_dir_from_before_mtime_gets_it_from_modified(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    user, project = storage.create_user("old", "pw")
    folder = storage.create_paths(user, [f"/project/{project}/user/old/f"])[0]
    storage.close()
    with sqlite3.connect(tmp_path / "orion.sqlite3") as db:
        db.execute("ALTER TABLE items DROP COLUMN mtime")
    storage = Storage(tmp_path)
    try:
        entry = storage.stat(user, folder["path"])
        assert entry["mtime"] == entry["modified"] == folder["modified"]
    finally:
        storage.close()
