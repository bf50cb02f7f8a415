"""The local Orion server's REST surface (docs/wire.md), against the real server subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.routing import APIRoute

from orionfs.server.app import create_app
from tests.support.server import ServerProcess
from tests.support.server_api import Api

TOKEN_PATH = "/api/v1/auth/token/"


@pytest.fixture
def api(server: ServerProcess) -> Api:
    """The sample user ``scientist``."""
    return Api(server.url, server.token, server.username, server.project_id)


_user_counter = [0]


def new_user(server: ServerProcess, project: int | None = None, **kw: Any) -> Api:
    """A new user (in ``project``, or in a project of their own) as an :class:`Api`."""
    _user_counter[0] += 1
    made = server.add_user(f"user{_user_counter[0]}-{os.getpid()}", project=project, **kw)
    return Api(server.url, made["token"], made["user"]["username"], made["project"])


@pytest.fixture
def folder(api: Api, request: pytest.FixtureRequest) -> str:
    """A fresh, empty folder in the sample user's My Data, named after the test."""
    _user_counter[0] += 1
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:80]
    path = f"{api.my_data}/{safe}-{_user_counter[0]}"
    response = api.mkdir(path, exist_ok=False)
    assert response.status_code == 201, response.text
    return path


def assert_error(response: requests.Response, status: int) -> None:
    """The response has ``status`` and a JSON ``{"detail": str}`` body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert isinstance(response.json()["detail"], str)


# -- auth ------------------------------------------------------------------------------------


def _api_routes(tmp_path: Path) -> list[tuple[str, str]]:
    app = create_app(tmp_path / "data", test_hooks=True)
    routes = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/"):
            for method in sorted(route.methods):
                routes.append((method, re.sub(r"\{[^}]+\}", "1", route.path)))
    return routes


def test_every_api_route_answers_401_without_or_with_a_wrong_token(
    server: ServerProcess, tmp_path: Path
) -> None:
    routes = _api_routes(tmp_path)
    assert len(routes) > 40
    for method, path in routes:
        for headers in ({}, {"Authorization": "Token 0123456789abcdef"}, {"Authorization": "x"}):
            response = requests.request(method, server.url + path, headers=headers, timeout=10)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["detail"]


def test_token_retrieval_takes_basic_auth_and_the_token_works(server: ServerProcess) -> None:
    password = server.info["password"]
    response = requests.post(server.url + TOKEN_PATH, auth=(server.username, password), timeout=10)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert re.fullmatch(r"[0-9a-f]{40}", token)
    me = Api(server.url, token).get("/api/v1/users/me/")
    assert me.status_code == 200
    assert me.json()["username"] == server.username
    assert_error(
        requests.post(server.url + TOKEN_PATH, auth=(server.username, "wrong"), timeout=10), 401
    )
    assert_error(requests.post(server.url + TOKEN_PATH, timeout=10), 401)
    assert_error(requests.post(server.url + TOKEN_PATH, auth=("nobody", "x"), timeout=10), 401)


def test_versions_and_users_me(api: Api) -> None:
    versions = api.get("/api/versions/").json()["versions"]
    assert versions == {"storage": "v3", "datasets": "v1", "projects": "v1", "users": "v1"}
    me = api.get("/api/v1/users/me/").json()
    assert set(me) == {"id", "username", "email", "first_name", "last_name", "default_project"}
    assert me["default_project"] == api.project


# -- sample data and the virtual namespace ----------------------------------------------------


def test_sample_tree_is_present(api: Api) -> None:
    my = api.my_data
    assert api.project == 1
    assert api.names(my) == ["README.txt", "ligands", "molecules", "results", "trajectories"]
    assert api.names(f"{my}/molecules") == ["aspirin.smi", "caffeine.sdf"]
    scores = api.stat(f"{my}/results/run1/scores.csv").json()
    assert scores["resource_type"] == "file" and set(scores["tags"]) == {"Job 1", "sample"}
    ligands = api.stat(f"{my}/ligands").json()
    assert ligands["resource_type"] == "dataset"
    assert ligands["systemtags"] == ["3D"] and ligands["count"] == 4
    trajectories = api.stat(f"{my}/trajectories").json()
    assert trajectories["resource_type"] == "shard_collection"
    assert trajectories["state"] == "ready"
    assert api.names(f"{my}/trajectories") == ["frame-0.bin", "frame-1.bin", "frame-2.bin"]
    assert api.names(api.team) == ["team-notes.txt"]
    readme = api.stat(f"{my}/README.txt").json()
    assert api.download(readme["id"]).content.startswith(b"Welcome")


def test_virtual_folders_list_the_namespace(api: Api) -> None:
    assert api.names("/") == ["project"]
    assert api.names("/project") == [str(api.project)]
    assert api.names(f"/project/{api.project}") == ["user", "team", "shared"]
    assert api.names(f"/project/{api.project}/user") == [api.username]
    assert api.names(f"/project/{api.project}/shared") == []
    root = api.stat("/project").json()
    assert root["resource_type"] == "folder" and root["id"] is None
    my = api.stat(api.my_data).json()
    assert my["id"] is not None and my["path"] == api.my_data


def test_nothing_can_be_created_in_a_virtual_folder(api: Api) -> None:
    for path in (
        "/x",
        "/project/x",
        f"/project/{api.project}/x",
        f"/project/{api.project}/shared/x",
    ):
        assert_error(api.mkdir(path), 403)
    assert_error(api.upload(f"/project/{api.project}", "f.txt", b"x"), 403)


def test_ls_of_a_file_is_400_and_of_a_missing_path_404(api: Api) -> None:
    assert_error(api.ls(f"{api.my_data}/README.txt"), 400)
    assert_error(api.ls(f"{api.my_data}/nope"), 404)
    assert_error(api.stat(f"{api.my_data}/nope"), 404)
    assert_error(api.ls("/project/999"), 404)


# -- listing ----------------------------------------------------------------------------------


def test_ls_pages_past_250_entries(api: Api, folder: str) -> None:
    paths = [f"{folder}/d{i:03d}" for i in range(300)]
    assert api.mkdir(*paths).status_code == 201
    first = api.ls(folder).json()
    assert first["count"] == 300 and len(first["results"]) == 250
    assert first["next"] and first["previous"] is None
    second = api.ls(folder, offset=250).json()
    assert [e["name"] for e in second["results"]] == [f"d{i:03d}" for i in range(250, 300)]
    assert second["next"] is None and second["previous"]
    following = requests.get(first["next"], headers=api.http.headers, timeout=10).json()
    assert following["results"] == second["results"]
    assert len(api.ls(folder, limit=1000).json()["results"]) == 300
    assert_error(api.ls(folder, limit=1001), 400)
    assert_error(api.ls(folder, limit=0), 400)
    assert_error(api.ls(folder, offset=-1), 400)


def test_ls_filters_and_ordering(api: Api, folder: str) -> None:
    api.upload_ok(folder, "Alpha.txt", b"a" * 30, tags=["red", "big"])
    api.upload_ok(folder, "beta.txt", b"b" * 10, tags=["red"])
    api.upload_ok(folder, "gamma.smi", b"c" * 20, kind="dataset")
    api.mkdir(f"{folder}/sub")
    assert api.names(folder) == ["Alpha.txt", "beta.txt", "gamma.smi", "sub"]
    assert api.names(folder, order_by="-name") == ["sub", "gamma.smi", "beta.txt", "Alpha.txt"]
    assert api.names(folder, order_by="size")[-3:] == ["beta.txt", "gamma.smi", "Alpha.txt"]
    assert api.names(folder, order_by="-size")[0] == "Alpha.txt"
    assert api.names(folder, order_by="created") == ["Alpha.txt", "beta.txt", "gamma.smi", "sub"]
    assert api.names(folder, order_by="-created")[0] == "sub"
    assert api.names(folder, order_by="id") == ["Alpha.txt", "beta.txt", "gamma.smi", "sub"]
    assert api.names(folder, name="beta.txt") == ["beta.txt"]
    assert api.names(folder, name="beta") == []
    assert api.names(folder, name_contains="ta.t") == ["beta.txt"]
    assert api.names(folder, name_contains="alpha") == []
    assert api.names(folder, name_icontains="ALPHA") == ["Alpha.txt"]
    assert api.names(folder, types="dataset") == ["gamma.smi"]
    assert api.names(folder, types="dataset,folder") == ["gamma.smi", "sub"]
    assert api.names(folder, tag_filters="red") == ["Alpha.txt", "beta.txt"]
    assert api.names(folder, tag_filters="red,big") == ["Alpha.txt"]
    assert api.names(folder, list="data") == ["Alpha.txt", "beta.txt", "gamma.smi"]
    assert api.names(folder, list="folders") == ["sub"]
    assert api.names(api.my_data, systag_filters="3D") == ["ligands"]
    assert_error(api.ls(folder, order_by="colour"), 400)
    assert_error(api.ls(folder, types="banana"), 400)
    assert_error(api.ls(folder, list="all"), 400)


def test_entries_have_the_wire_fields(api: Api) -> None:
    entry = api.ls(api.my_data).json()["results"][0]
    assert set(entry) == {
        "resource_type", "id", "name", "path", "size", "created", "modified", "mtime", "owner",
        "project", "state", "tags", "systemtags", "count",
    }  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["created"])


def test_duplicate_file_names_are_allowed_and_stat_names_the_lowest_id(
    api: Api, folder: str
) -> None:
    first = api.upload_ok(folder, "same.txt", b"one")
    second = api.upload_ok(folder, "same.txt", b"two")
    assert api.names(folder) == ["same.txt", "same.txt"]
    assert api.stat(f"{folder}/same.txt").json()["id"] == min(first["id"], second["id"])


# -- paths: create, remove, assign ----------------------------------------------------------------


def test_create_paths_makes_ancestors_and_honours_exist_ok(api: Api, folder: str) -> None:
    response = api.mkdir(f"{folder}/a/b/c")
    assert response.status_code == 201
    assert response.json()["paths"][0]["path"] == f"{folder}/a/b/c"
    assert api.names(f"{folder}/a/b") == ["c"]
    assert api.mkdir(f"{folder}/a/b/c").status_code == 201
    assert_error(api.mkdir(f"{folder}/a/b/c", exist_ok=False), 409)
    api.upload_ok(folder, "file.txt", b"x")
    assert_error(api.mkdir(f"{folder}/file.txt/sub"), 409)


def test_remove_paths_needs_recursive_for_a_full_folder_and_is_all_or_nothing(
    api: Api, folder: str
) -> None:
    api.mkdir(f"{folder}/full/inner")
    api.upload_ok(f"{folder}/full", "f.txt", b"x")
    remove = "/api/v1/storage/paths/remove/"
    assert_error(api.post(remove, json={"paths": [f"{folder}/full"]}), 409)
    assert_error(api.post(remove, json={"paths": [f"{folder}/full/f.txt", f"{folder}/no"]}), 404)
    assert api.names(f"{folder}/full") == ["f.txt", "inner"]
    response = api.post(remove, json={"paths": [f"{folder}/full"], "recursive": True})
    assert response.status_code == 204
    assert api.names(folder) == []
    assert_error(api.post(remove, json={"paths": [api.my_data]}), 403)
    assert_error(api.post(remove, json={"paths": [f"/project/{api.project}/user"]}), 403)


def test_assign_moves_a_folder_with_its_content_in_one_request(
    server: ServerProcess, api: Api, folder: str
) -> None:
    api.mkdir(f"{folder}/src/deep/er", f"{folder}/dst")
    api.upload_ok(f"{folder}/src/deep/er", "leaf.txt", b"leaf")
    src = api.stat(f"{folder}/src").json()
    server.reset_counters()
    response = api.post(
        "/api/v1/storage/paths/assign/",
        json={
            "assignments": [{"resource_type": "folder", "id": src["id"], "path": f"{folder}/dst"}]
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["path"] == f"{folder}/dst/src"
    assert server.counters()["total"] == 1
    assert api.names(f"{folder}/dst/src/deep/er") == ["leaf.txt"]
    assert api.names(folder) == ["dst"]


def test_assign_renames_and_refuses_loops_and_folder_clashes(api: Api, folder: str) -> None:
    api.mkdir(f"{folder}/a/inside", f"{folder}/b/a")
    a = api.stat(f"{folder}/a").json()
    file = api.upload_ok(folder, "f.txt", b"x")
    api.upload_ok(f"{folder}/b", "f.txt", b"y")
    assign = "/api/v1/storage/paths/assign/"

    def move(kind: str, item_id: int, path: str, name: str | None = None) -> requests.Response:
        item = {"resource_type": kind, "id": item_id, "path": path, "name": name}
        return api.post(assign, json={"assignments": [item]})

    assert move("file", file["id"], folder, "g.txt").status_code == 200
    assert api.names(folder) == ["a", "b", "g.txt"]
    assert move("file", file["id"], f"{folder}/b", "f.txt").status_code == 200  # duplicate ok
    assert api.names(f"{folder}/b") == ["a", "f.txt", "f.txt"]
    assert_error(move("folder", a["id"], f"{folder}/a/inside"), 400)
    assert_error(move("folder", a["id"], f"{folder}/a"), 400)
    assert_error(move("folder", a["id"], f"{folder}/b"), 409)
    assert move("folder", a["id"], f"{folder}/b", "a2").status_code == 200
    assert api.names(f"{folder}/b") == ["a", "a2", "f.txt", "f.txt"]


def test_paths_get_and_folder_by_id(api: Api, folder: str) -> None:
    file = api.upload_ok(folder, "f.txt", b"x")
    response = api.post(
        "/api/v1/storage/paths/get/", json={"items": [{"resource_type": "file", "id": file["id"]}]}
    )
    assert response.json()["results"] == [
        {"resource_type": "file", "id": file["id"], "path": f"{folder}/f.txt"}
    ]
    folder_id = api.stat(folder).json()["id"]
    assert api.get(f"/api/v1/storage/folders/{folder_id}/").json()["path"] == folder


# -- files: upload, download, ranges, replace, delete ---------------------------------------------


@pytest.mark.parametrize("size", [0, 1, (1 << 20) + 7])
def test_upload_and_download_are_byte_identical(api: Api, folder: str, size: int) -> None:
    data = os.urandom(size)
    file = api.upload_ok(folder, f"blob{size}", data)
    assert file["size"] == size and file["sha256"] == hashlib.sha256(data).hexdigest()
    response = api.download(file["id"])
    assert response.status_code == 200
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Length"] == str(size)
    assert response.content == data


def test_download_honours_ranges(api: Api, folder: str) -> None:
    data = bytes(range(256)) * 4
    file_id = api.upload_ok(folder, "r.bin", data)["id"]
    for header, first, last in [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1020-5000", 1020, 1023),
    ]:
        response = api.download(file_id, Range=header)
        assert response.status_code == 206, header
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/1024"
        assert response.content == data[first : last + 1]
    response = api.download(file_id, Range="bytes=1024-")
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */1024"
    assert api.download(file_id, Range="lines=1-2").content == data  # ignored: 200
    empty = api.upload_ok(folder, "empty", b"")["id"]
    assert api.download(empty, Range="bytes=0-").status_code == 416


def test_put_content_replaces_the_bytes_under_the_same_id(api: Api, folder: str) -> None:
    file = api.upload_ok(folder, "f.txt", b"old content")
    response = api.request(
        "PUT",
        f"/api/v3/storage/files/{file['id']}/content/",
        data=b"new",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == file["id"] and response.json()["size"] == 3
    assert api.download(file["id"]).content == b"new"
    assert api.stat(f"{folder}/f.txt").json()["size"] == 3


def test_file_patch_renames_and_describes(api: Api, folder: str) -> None:
    file = api.upload_ok(folder, "f.txt", b"x")
    url = f"/api/v3/storage/files/{file['id']}/"
    response = api.request("PATCH", url, json={"name": "g.txt", "description": "hello"})
    assert response.status_code == 200
    assert response.json()["path"] == f"{folder}/g.txt"
    assert api.get(url).json()["description"] == "hello"
    assert_error(api.request("PATCH", url, json={"name": "a/b"}), 400)


def test_upload_lands_in_my_data_by_default_and_keeps_tags(api: Api) -> None:
    file = api.upload_ok(None, "default-place.txt", b"x", tags=["t1", "t2"])
    assert file["path"] == f"{api.my_data}/default-place.txt"
    assert file["tags"] == ["t1", "t2"]
    api.request("DELETE", f"/api/v3/storage/files/{file['id']}/", params={"immediate": "true"})


def test_soft_delete_hides_and_immediate_purges(
    server: ServerProcess, api: Api, folder: str
) -> None:
    soft = api.upload_ok(folder, "soft.txt", b"soft")
    hard = api.upload_ok(folder, "hard.txt", b"hard")
    blobs_before = {p.name for p in (server.data_dir / "blobs").rglob("*") if p.is_file()}
    assert api.request("DELETE", f"/api/v3/storage/files/{soft['id']}/").status_code == 204
    assert api.names(folder) == ["hard.txt"]
    assert_error(api.stat(f"{folder}/soft.txt"), 404)
    assert api.get(f"/api/v3/storage/files/{soft['id']}/").json()["deleted"]
    listed = api.get("/api/v3/storage/files/", params={"deleted": "true", "name": "soft.txt"})
    assert soft["id"] in [f["id"] for f in listed.json()["results"]]
    listed = api.get("/api/v3/storage/files/", params={"name": "soft.txt"})
    assert soft["id"] not in [f["id"] for f in listed.json()["results"]]
    response = api.request(
        "DELETE", f"/api/v3/storage/files/{hard['id']}/", params={"immediate": "true"}
    )
    assert response.status_code == 204
    assert_error(api.get(f"/api/v3/storage/files/{hard['id']}/"), 404)
    blobs_after = {p.name for p in (server.data_dir / "blobs").rglob("*") if p.is_file()}
    assert blobs_before - blobs_after == {f"{hard['id']}.1"}


def test_files_list_filters_by_name_tags_and_project(api: Api, folder: str) -> None:
    tagged = api.upload_ok(folder, "listme-unique.txt", b"x", tags=["listing"])
    found = api.get("/api/v3/storage/files/", params={"name": "listme-uniq"}).json()
    assert [f["id"] for f in found["results"]] == [tagged["id"]]
    found = api.get("/api/v3/storage/files/", params={"tags": "listing"}).json()
    assert [f["id"] for f in found["results"]] == [tagged["id"]]
    found = api.get("/api/v3/storage/files/", params={"project": 999}).json()
    assert found["count"] == 0


# -- datasets, collections, shards --------------------------------------------------------------


def test_datasets_count_records_and_download(api: Api, folder: str) -> None:
    data = b"C\nCC\nCCC"
    dataset = api.upload_ok(folder, "mols", data, kind="dataset")
    assert dataset["count"] == 3 and dataset["size"] == len(data)
    assert api.get(f"/api/v1/datasets/{dataset['id']}/download/").content == data
    ranged = api.get(f"/api/v1/datasets/{dataset['id']}/download/", headers={"Range": "bytes=2-"})
    assert ranged.status_code == 206 and ranged.content == data[2:]
    patched = api.request("PATCH", f"/api/v1/datasets/{dataset['id']}/", json={"name": "mols2"})
    assert patched.json()["name"] == "mols2"
    listed = api.get("/api/v1/datasets/", params={"name": "mols2"}).json()["results"]
    assert [d["id"] for d in listed] == [dataset["id"]]
    assert api.request("DELETE", f"/api/v1/datasets/{dataset['id']}/").status_code == 204
    assert api.names(folder) == []


def test_collections_take_shards_until_ready(api: Api, folder: str) -> None:
    response = api.post(
        "/api/v1/storage/collections/", json={"name": "coll", "path": folder, "metadata": {"k": 1}}
    )
    assert response.status_code == 201, response.text
    coll = response.json()
    assert coll["state"] == "open" and coll["metadata"] == {"k": 1}
    shards_url = f"/api/v1/storage/collections/{coll['id']}/shards/"
    shard_ids = []
    for index in range(2):
        response = api.post(
            shards_url,
            data={"name": f"s{index}", "metadata": json.dumps({"i": index})},
            files={"file": ("s", b"shard-%d" % index)},
        )
        assert response.status_code == 201, response.text
        assert response.json()["collection"] == coll["id"]
        shard_ids.append(response.json()["id"])
    assert [s["name"] for s in api.get(shards_url).json()["results"]] == ["s0", "s1"]
    entries = api.ls(f"{folder}/coll").json()["results"]
    assert [(e["resource_type"], e["name"]) for e in entries] == [("shard", "s0"), ("shard", "s1")]
    download = api.get(f"{shards_url}{shard_ids[1]}/download/", headers={"Range": "bytes=6-"})
    assert download.status_code == 206 and download.content == b"1"
    assert api.get(f"{shards_url}{shard_ids[0]}/").json()["metadata"] == {"i": 0}
    ready = api.request(
        "PATCH", f"/api/v1/storage/collections/{coll['id']}/", json={"state": "ready"}
    )
    assert ready.json()["state"] == "ready"
    late = api.post(shards_url, data={"name": "late"}, files={"file": ("s", b"x")})
    assert_error(late, 409)
    assert api.request("DELETE", f"{shards_url}{shard_ids[0]}/").status_code == 204
    assert [s["id"] for s in api.get(shards_url).json()["results"]] == [shard_ids[1]]
    remove = api.post("/api/v1/storage/paths/remove/", json={"paths": [f"{folder}/coll/s1"]})
    assert_error(remove, 403)  # shards are read-only through paths


# -- tags and sharing ----------------------------------------------------------------------------


def test_tags_add_list_and_remove(api: Api, folder: str) -> None:
    file = api.upload_ok(folder, "t.txt", b"x")
    url = f"/api/v1/tags/file/{file['id']}/"
    assert api.get(url).json() == {"tags": [], "systemtags": []}
    assert api.post(url, json={"tags": ["b", "a"], "project": None}).json()["tags"] == ["a", "b"]
    assert api.post(url, json={"tags": ["c"]}).json()["tags"] == ["a", "b", "c"]
    assert api.post(url + "remove/", json={"tags": ["a", "absent"]}).json()["tags"] == ["b", "c"]
    assert api.names(folder, tag_filters="c") == ["t.txt"]
    assert_error(api.post(url, json={"tags": ["x" * 129]}), 400)
    assert_error(api.post(url, json={"tags": ["two\nlines"]}), 400)
    folder_id = api.stat(folder).json()["id"]
    assert_error(api.get(f"/api/v1/tags/folder/{folder_id}/"), 400)


def test_sharing_grants_read_only_access(server: ServerProcess, api: Api, folder: str) -> None:
    other = new_user(server)
    file = api.upload_ok(folder, "shared.txt", b"for you")
    get_url = f"/api/v3/storage/files/{file['id']}/"
    assert_error(other.get(get_url), 404)
    share_url = f"/api/v1/sharing/file/{file['id']}/"
    user_id = other.get("/api/v1/users/me/").json()["id"]
    status = api.post(share_url, json={"share_with": "users", "ids": [user_id]}).json()
    assert status == {"users": [user_id], "projects": []}
    assert other.get(get_url).status_code == 200
    assert other.download(file["id"]).content == b"for you"
    assert_error(other.request("PATCH", get_url, json={"name": "mine.txt"}), 403)
    assert_error(other.request("DELETE", get_url), 403)
    assert_error(other.post(share_url, json={"share_with": "users", "ids": [1]}), 403)
    api.post(share_url + "remove/", json={"share_with": "users", "ids": [user_id]})
    assert_error(other.get(get_url), 404)
    assert_error(api.post(share_url, json={"share_with": "projects", "ids": [other.project]}), 404)
    member = new_user(server, project=api.project)
    assert_error(member.get(get_url), 404)  # My Data is not the project's
    project_share = {"share_with": "projects", "ids": [api.project]}
    assert api.post(share_url, json=project_share).json()["projects"] == [api.project]
    assert member.get(get_url).status_code == 200
    assert_error(other.get(get_url), 404)
    assert_error(api.post(share_url, json={"share_with": "groups", "ids": [1]}), 400)


# -- users, projects, balance, isolation --------------------------------------------------------------


def test_balance_needs_the_cost_accounting_capability(server: ServerProcess, api: Api) -> None:
    response = api.get("/api/v1/billing/balance/")
    assert response.status_code == 200
    assert response.json()["currency"] == "USD" and isinstance(response.json()["balance"], float)
    poor = new_user(server, cost_accounting=False)
    assert_error(poor.get("/api/v1/billing/balance/"), 400)


def test_users_of_other_projects_are_isolated(server: ServerProcess, api: Api) -> None:
    stranger = new_user(server)
    readme = api.stat(f"{api.my_data}/README.txt").json()
    assert stranger.project != api.project
    assert_error(stranger.ls(f"/project/{api.project}"), 404)
    assert_error(stranger.ls(api.my_data), 404)
    assert_error(stranger.get(f"/api/v3/storage/files/{readme['id']}/"), 404)
    assert_error(stranger.download(readme["id"]), 404)
    assert_error(stranger.get(f"/api/v1/projects/{api.project}/"), 404)
    me_id = api.get("/api/v1/users/me/").json()["id"]
    assert_error(stranger.get(f"/api/v1/users/{me_id}/"), 404)
    assert stranger.names("/project") == [str(stranger.project)]
    listed = stranger.get("/api/v3/storage/files/").json()
    assert readme["id"] not in [f["id"] for f in listed["results"]]


def test_project_members_share_team_data_but_not_my_data(server: ServerProcess, api: Api) -> None:
    member = new_user(server, project=api.project)
    assert member.names(f"/project/{api.project}/user") == [member.username]
    assert_error(member.ls(api.my_data), 404)
    readme = api.stat(f"{api.my_data}/README.txt").json()
    assert_error(member.get(f"/api/v3/storage/files/{readme['id']}/"), 404)
    written = member.upload_ok(api.team, f"from-{member.username}.txt", b"hi team")
    assert api.download(written["id"]).content == b"hi team"
    assert f"from-{member.username}.txt" in api.names(api.team)
    notes = api.stat(f"{api.team}/team-notes.txt").json()
    assert member.download(notes["id"]).content.startswith(b"Notes")
    me_id = api.get("/api/v1/users/me/").json()["id"]
    assert member.get(f"/api/v1/users/{me_id}/").json()["username"] == api.username
    members = api.get(f"/api/v1/projects/{api.project}/").json()["members"]
    assert member.get("/api/v1/users/me/").json()["id"] in members


def test_projects_list_filter_and_leave_rules(server: ServerProcess) -> None:
    owner = new_user(server)
    member = new_user(server, project=owner.project)
    projects = owner.get("/api/v1/projects/").json()
    assert [p["id"] for p in projects["results"]] == [owner.project]
    assert owner.get("/api/v1/projects/", params={"name": "no-such"}).json()["count"] == 0
    leave = f"/api/v1/projects/{owner.project}/leave/"
    assert_error(owner.post(leave, json={"new_owner_id": None}), 400)
    assert_error(owner.post(leave, json={"new_owner_id": 1}), 400)  # not a member
    member_id = member.get("/api/v1/users/me/").json()["id"]
    assert owner.post(leave, json={"new_owner_id": member_id}).status_code == 204
    assert member.get(f"/api/v1/projects/{owner.project}/").json()["owner"] == member_id
    assert_error(owner.get(f"/api/v1/projects/{owner.project}/"), 404)


# -- bad input --------------------------------------------------------------------------------------

BAD_NAMES = ["", ".", "..", "a\x00b", "x" * 256, "é" * 128, "a/b"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_names_are_400(api: Api, folder: str, name: str) -> None:
    assert_error(api.upload(folder, name, b"x"), 400)
    if "/" not in name:  # in a path, "a/b" is two names
        assert_error(api.mkdir(f"{folder}/{name}"), 400)
    response = api.post("/api/v1/storage/collections/", json={"name": name, "path": folder})
    assert_error(response, 400)


CONTROL_NAMES = ["a\x01b", "tab\there", "new\nline", "cr\r", "\x1f", "del\x7f"]


@pytest.mark.parametrize("name", CONTROL_NAMES, ids=repr)
def test_names_with_control_characters_are_400_with_a_clear_detail(
    api: Api, folder: str, name: str
) -> None:
    file = api.upload_ok(folder, "plain.txt", b"x")
    attempts = [
        api.upload(folder, name, b"x"),
        api.mkdir(f"{folder}/{name}"),
        api.post("/api/v1/storage/collections/", json={"name": name, "path": folder}),
        api.request("PATCH", f"/api/v3/storage/files/{file['id']}/", json={"name": name}),
        api.post(
            "/api/v1/storage/paths/assign/",
            json={
                "assignments": [
                    {"resource_type": "file", "id": file["id"], "path": folder, "name": name}
                ]
            },
        ),  # fmt: skip
    ]
    for response in attempts:
        assert_error(response, 400)
        assert "control character" in response.json()["detail"], response.text
    assert api.names(folder) == ["plain.txt"]


def test_a_255_byte_name_is_fine(api: Api, folder: str) -> None:
    name = "é" * 127 + "x"
    assert len(name.encode()) == 255
    assert api.upload(folder, name, b"x").status_code == 201
    assert api.mkdir(f"{folder}/{'y' * 255}").status_code == 201


@pytest.mark.parametrize(
    "path", ["relative", "/project/1/", "//", "/project//1", "/project/1/./team", "/a\x00"]
)
def test_bad_paths_are_400(api: Api, path: str) -> None:
    assert_error(api.ls(path), 400)
    assert_error(api.stat(path), 400)
    assert_error(api.mkdir(path), 400)


@pytest.mark.parametrize(
    "method, url, kwargs, status",
    [
        ("GET", "/api/v3/storage/files/abc/", {}, 400),
        ("GET", "/api/v3/storage/files/0/", {}, 400),
        ("GET", f"/api/v3/storage/files/{2**70}/", {}, 400),
        ("GET", "/api/v3/storage/files/999999999/", {}, 404),
        ("GET", "/api/v1/datasets/999999999/download/", {}, 404),
        ("GET", "/api/v1/storage/collections/-5/shards/", {}, 400),
        ("GET", "/api/v1/storage/ls/", {}, 400),
        ("GET", "/api/v1/storage/ls/", {"params": {"path": "/", "limit": "many"}}, 400),
        ("POST", "/api/v1/storage/paths/", {"json": {}}, 400),
        ("POST", "/api/v1/storage/paths/", {"json": {"paths": "not-a-list"}}, 400),
        ("POST", "/api/v1/storage/paths/", {"json": {"paths": [1, 2]}}, 400),
        ("POST", "/api/v1/storage/paths/", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/api/v1/storage/paths/", {"json": ["a list"]}, 400),
        ("POST", "/api/v1/storage/paths/assign/", {"json": {"assignments": [{"id": 1}]}}, 400),
        ("POST", "/api/v1/storage/paths/assign/", {"json": {"assignments": [{"resource_type": "file", "id": 2**64, "path": "/"}]}}, 400),
        ("POST", "/api/v1/storage/paths/get/", {"json": {"items": [{"resource_type": "file", "id": "x"}]}}, 400),
        ("POST", "/api/v1/storage/collections/", {"json": {"name": 5}}, 400),
        ("POST", "/api/v1/sharing/file/1/", {"json": {"share_with": "users", "ids": ["a"]}}, 400),
        ("POST", "/api/v3/storage/files/", {"data": {"name": "x"}}, 400),
        ("POST", "/api/v3/storage/files/", {"files": {"file": ("f", b"x")}}, 400),
        ("POST", "/api/v3/storage/files/", {"data": {"name": "x", "tags": "[1]"}, "files": {"file": ("f", b"x")}}, 400),
        ("POST", "/api/v1/storage/paths/", {"json": {"paths": ["/x" * 600_000]}}, 413),
        ("POST", "/api/v1/_test/latency/", {"json": {"ms": "slow"}, "hooks": True}, 400),
    ],
)  # fmt: skip
def test_bad_requests_get_4xx_with_detail(
    server: ServerProcess, api: Api, method: str, url: str, kwargs: dict[str, Any], status: int
) -> None:
    kwargs = dict(kwargs)
    if kwargs.pop("hooks", False):
        kwargs["headers"] = server.hooks_headers
    assert_error(api.request(method, url, **kwargs), status)


def test_chunked_json_body_over_the_limit_is_413(api: Api) -> None:
    def body() -> Any:
        yield b'{"paths": ["'
        for _ in range(300):
            yield b"x" * 4096
        yield b'"]}'

    response = api.post(
        "/api/v1/storage/paths/", data=body(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413)


def test_unicode_names_round_trip(api: Api, folder: str) -> None:
    name = "résumé ∕ 名前 🧪.txt"
    api.upload_ok(folder, name, b"x")
    assert api.names(folder) == [name]
    assert api.stat(f"{folder}/{name}").json()["name"] == name


def test_openapi_document_lists_the_routes(server: ServerProcess) -> None:
    document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    assert "/api/v1/storage/ls/" in document["paths"]
    assert "/api/v3/storage/files/{file_id}/download/" in document["paths"]
    responses = document["paths"]["/api/v1/storage/stat/"]["get"]["responses"]
    assert "422" not in responses and "400" in responses


def test_concurrent_writers_all_succeed_and_same_name_folders_are_created_once(
    api: Api, folder: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def work(index: int) -> list[int]:
        client = Api(api.url, api.token)
        statuses = [client.mkdir(f"{folder}/shared-name/sub").status_code]
        for j in range(5):
            data = f"{index}-{j}".encode()
            statuses.append(client.upload(folder, f"f{index}-{j}", data).status_code)
            statuses.append(client.mkdir(f"{folder}/d{index}-{j}").status_code)
        return statuses

    with ThreadPoolExecutor(8) as pool:
        results = [status for statuses in pool.map(work, range(8)) for status in statuses]
    assert set(results) == {201}
    names = api.names(folder, limit=1000)
    assert len(names) == 8 * 10 + 1 and names.count("shared-name") == 1
    assert api.names(f"{folder}/shared-name") == ["sub"]
