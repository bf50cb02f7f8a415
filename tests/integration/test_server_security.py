"""Server-side security of issue 9: what the answers reveal, who may share, logins, leaving.

- Enumeration: a 404 for something that exists but is not the caller's reads exactly like the 404
  for something that does not exist, for every kind; sharing with an unknown user answers exactly
  like sharing with a real one; the password check takes as long for an unknown user; repeated
  failed logins are answered 429 with ``Retry-After``.
- Sharing: only a member of a project may share with it, and only an item's owner may share it.
- Leaving a project ends the access to one's My Data there; with ``new_owner_id`` it goes to them.

Everything runs against the real server subprocess with plain ``requests`` (tests/server_api.py).
"""

from __future__ import annotations

import itertools
import re
import statistics
import time
from collections.abc import Callable

import pytest
import requests

from tests.support.server import ServerProcess
from tests.support.server_api import Api

TOKEN_PATH = "/api/v1/auth/token/"
NO_SUCH_ID = 987_654_321_987
_names = itertools.count()


def _api(server: ServerProcess) -> Api:
    return Api(server.url, server.token, server.username, server.project_id)


def _new_user(server: ServerProcess, project: int | None = None) -> Api:
    made = server.add_user(f"sec{next(_names)}-{time.monotonic_ns() % 10**6}", project=project)
    return Api(server.url, made["token"], made["user"]["username"], made["project"])


def _user_id(api: Api) -> int:
    return api.get("/api/v1/users/me/").json()["id"]


# --- enumeration: one 404 for "not yours" and "no such thing" ------------------------------------


@pytest.fixture(scope="module")
def owned(server: ServerProcess) -> dict[str, int]:
    """Ids of one thing of every kind that the sample user owns (a fresh folder holds them)."""
    api = _api(server)
    folder = f"{api.my_data}/enumeration"
    assert api.mkdir(folder).status_code == 201
    collection = api.post("/api/v1/storage/collections/", json={"name": "c", "path": folder}).json()
    shard = api.post(
        f"/api/v1/storage/collections/{collection['id']}/shards/",
        data={"name": "s"},
        files={"file": ("s", b"shard")},
    ).json()
    return {
        "file": api.upload_ok(folder, "f.txt", b"file")["id"],
        "dataset": api.upload_ok(folder, "d", b"a\nb\n", kind="dataset")["id"],
        "collection": collection["id"],
        "shard": shard["id"],
        "folder": api.stat(folder).json()["id"],
        "user": _user_id(api),
        "project": api.project,
    }


# (label, URL of the thing with id {id}, kind of id in ``owned``)
BY_ID = [
    ("file", "/api/v3/storage/files/{id}/", "file"),
    ("file download", "/api/v3/storage/files/{id}/download/", "file"),
    ("dataset", "/api/v1/datasets/{id}/", "dataset"),
    ("dataset download", "/api/v1/datasets/{id}/download/", "dataset"),
    ("collection", "/api/v1/storage/collections/{id}/", "collection"),
    ("collection shards", "/api/v1/storage/collections/{id}/shards/", "collection"),
    ("folder", "/api/v1/storage/folders/{id}/", "folder"),
    ("tags", "/api/v1/tags/file/{id}/", "file"),
    ("sharing", "/api/v1/sharing/file/{id}/", "file"),
    ("user", "/api/v1/users/{id}/", "user"),
    ("project", "/api/v1/projects/{id}/", "project"),
]


def _detail(response: requests.Response, item_id: int) -> str:
    assert response.status_code == 404, response.text
    return response.json()["detail"].replace(str(item_id), "<id>")


@pytest.mark.parametrize("label, url, kind", BY_ID, ids=[row[0] for row in BY_ID])
def test_a_404_for_someone_elses_item_reads_like_the_404_for_no_item(
    server: ServerProcess, owned: dict[str, int], label: str, url: str, kind: str
) -> None:
    outsider = _new_user(server)
    theirs = outsider.get(url.format(id=owned[kind]))
    absent = outsider.get(url.format(id=NO_SUCH_ID))
    assert _detail(theirs, owned[kind]) == _detail(absent, NO_SUCH_ID)
    assert theirs.headers.get("content-length") == str(
        len(absent.content) - len(str(NO_SUCH_ID)) + len(str(owned[kind]))
    )


def test_a_404_for_a_shard_of_someone_elses_collection_reads_like_no_shard(
    server: ServerProcess, owned: dict[str, int]
) -> None:
    outsider = _new_user(server)
    own = outsider.post("/api/v1/storage/collections/", json={"name": "mine"}).json()["id"]
    url = "/api/v1/storage/collections/{c}/shards/{s}/"
    theirs = outsider.get(url.format(c=owned["collection"], s=owned["shard"]))
    absent = outsider.get(url.format(c=NO_SUCH_ID, s=owned["shard"]))
    assert _detail(theirs, owned["collection"]) == _detail(absent, NO_SUCH_ID)
    in_own = outsider.get(url.format(c=own, s=owned["shard"]))
    none_in_own = outsider.get(url.format(c=own, s=NO_SUCH_ID))
    assert _detail(in_own, owned["shard"]) == _detail(none_in_own, NO_SUCH_ID)


def test_a_404_for_someone_elses_path_reads_like_the_404_for_no_path(server: ServerProcess) -> None:
    outsider = _new_user(server)
    api = _api(server)
    for real, absent in [
        (f"{api.my_data}/README.txt", f"{api.my_data}/no-such-file.txt"),
        (f"/project/{api.project}/team", "/project/987654321/team"),
    ]:
        theirs, nothing = outsider.stat(real), outsider.stat(absent)
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.json()["detail"].replace(real, "<path>") == nothing.json()["detail"].replace(
            absent, "<path>"
        )


def test_sharing_with_an_unknown_user_answers_like_sharing_with_a_real_one(
    server: ServerProcess,
) -> None:
    api = _api(server)
    real = _user_id(_new_user(server))  # in a project of their own: no fellow member
    answers = []
    for target in (real, NO_SUCH_ID):
        file = api.upload_ok(api.my_data, f"share-{target}.txt", b"x")
        url = f"/api/v1/sharing/file/{file['id']}/"
        shared = api.post(url, json={"share_with": "users", "ids": [target]})
        unshared = api.post(url + "remove/", json={"share_with": "users", "ids": [target]})
        answers.append(
            (
                shared.status_code,
                shared.text.replace(str(target), "<id>"),
                unshared.status_code,
                unshared.text,
            )
        )
    expected = (200, '{"users":[<id>],"projects":[]}', 200, '{"users":[],"projects":[]}')
    assert answers == [expected, expected]


def test_a_share_with_a_user_id_not_yet_taken_gives_its_later_owner_nothing(
    server: ServerProcess,
) -> None:
    api = _api(server)
    file = api.upload_ok(api.my_data, "for-a-future-user.txt", b"not for you")
    next_id = _user_id(_new_user(server)) + 1
    url = f"/api/v1/sharing/file/{file['id']}/"
    assert api.post(url, json={"share_with": "users", "ids": [next_id]}).status_code == 200
    later = _new_user(server)
    assert _user_id(later) == next_id
    assert later.get(f"/api/v3/storage/files/{file['id']}/").status_code == 404
    assert api.get(url).json()["users"] == []


def _login_seconds(server: ServerProcess, username: str, password: str) -> float:
    started = time.perf_counter()
    response = requests.post(server.url + TOKEN_PATH, auth=(username, password), timeout=30)
    elapsed = time.perf_counter() - started
    assert response.status_code == 401, response.text
    return elapsed


def test_the_password_check_takes_as_long_for_an_unknown_user(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()  # its own failed-login budget
    known, unknown = [], []
    for index in range(4):
        known.append(_login_seconds(server, server.username, f"wrong-{index}"))
        unknown.append(_login_seconds(server, f"nobody-{index}", f"wrong-{index}"))
    ratio = statistics.median(unknown) / statistics.median(known)
    print(f"\n[login timing] known {statistics.median(known) * 1000:.1f} ms, ratio {ratio:.2f}")
    assert ratio >= 0.5, (known, unknown)


def test_repeated_failed_logins_are_429_with_retry_after(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()
    password = server.info["password"]
    for index in range(10):
        _login_seconds(server, server.username, f"guess-{index}")
    for auth in [(server.username, "guess-10"), (server.username, password)]:
        response = requests.post(server.url + TOKEN_PATH, auth=auth, timeout=30)
        assert response.status_code == 429, response.text
        assert 1 <= int(response.headers["Retry-After"]) <= 300
        assert response.json()["detail"]
    # The client address has used up its failures too: other usernames are refused as well.
    response = requests.post(server.url + TOKEN_PATH, auth=("someone-else", "x"), timeout=30)
    assert response.status_code == 429
    assert re.fullmatch(r"\d+", response.headers["Retry-After"])


# --- who may share --------------------------------------------------------------------------


def test_only_members_of_a_project_may_share_with_it(server: ServerProcess) -> None:
    api = _api(server)
    outsider = _new_user(server)
    file = outsider.upload_ok(outsider.my_data, "outsider.txt", b"from outside")
    url = f"/api/v1/sharing/file/{file['id']}/"
    for project in (api.project, NO_SUCH_ID):
        response = outsider.post(url, json={"share_with": "projects", "ids": [project]})
        assert _detail(response, project) == "no project <id>"
    assert outsider.get(url).json()["projects"] == []
    assert api.get(f"/api/v3/storage/files/{file['id']}/").status_code == 404
    own = outsider.post(url, json={"share_with": "projects", "ids": [outsider.project]})
    assert own.status_code == 200 and own.json()["projects"] == [outsider.project]


def test_only_the_owner_may_share_an_item(server: ServerProcess) -> None:
    api = _api(server)
    member = _new_user(server, project=api.project)
    notes = api.stat(f"{api.team}/team-notes.txt").json()  # the sample user's, in Team Data
    url = f"/api/v1/sharing/file/{notes['id']}/"
    stranger = _user_id(_new_user(server))
    response = member.post(url, json={"share_with": "users", "ids": [stranger]})
    assert response.status_code == 403 and response.json()["detail"]
    response = member.post(url + "remove/", json={"share_with": "users", "ids": [stranger]})
    assert response.status_code == 403
    assert api.get(url).json()["users"] == []
    assert api.post(url, json={"share_with": "users", "ids": [stranger]}).status_code == 200
    api.post(url + "remove/", json={"share_with": "users", "ids": [stranger]})


# --- leaving a project ----------------------------------------------------------------------


def test_leaving_a_project_ends_access_to_ones_my_data_there(server: ServerProcess) -> None:
    owner = _new_user(server)
    leaver = _new_user(server, project=owner.project)
    kept = leaver.upload_ok(leaver.my_data, "mine.txt", b"left behind")
    folder = leaver.mkdir(f"{leaver.my_data}/sub").json()["paths"][0]
    leave = f"/api/v1/projects/{owner.project}/leave/"
    assert leaver.post(leave, json={"new_owner_id": None}).status_code == 204
    for url in (
        f"/api/v3/storage/files/{kept['id']}/",
        f"/api/v3/storage/files/{kept['id']}/download/",
        f"/api/v1/storage/folders/{folder['id']}/",
    ):
        assert leaver.get(url).status_code == 404, url
    response = leaver.request(
        "PUT", f"/api/v3/storage/files/{kept['id']}/content/", data=b"changed"
    )
    assert response.status_code == 404
    assert kept["id"] not in [
        f["id"] for f in leaver.get("/api/v3/storage/files/").json()["results"]
    ]
    # Their default project is gone: an upload without a path names no folder of theirs.
    assert leaver.upload(None, "where.txt", b"?").status_code in (400, 404)
    assert leaver.get("/api/v1/users/me/").json()["default_project"] != owner.project


def test_leaving_with_a_new_owner_hands_ones_my_data_to_them(server: ServerProcess) -> None:
    owner = _new_user(server)
    leaver = _new_user(server, project=owner.project)
    kept = leaver.upload_ok(leaver.my_data, "handed.txt", b"yours now")
    leaver.mkdir(f"{leaver.my_data}/deep/er")
    team = leaver.upload_ok(leaver.team, f"team-{leaver.username}.txt", b"team file")
    owner_id = _user_id(owner)
    leave = f"/api/v1/projects/{owner.project}/leave/"
    assert leaver.post(leave, json={"new_owner_id": owner_id}).status_code == 204
    assert leaver.get(f"/api/v3/storage/files/{kept['id']}/").status_code == 404
    handed = owner.get(f"/api/v3/storage/files/{kept['id']}/").json()
    assert handed["owner"] == owner_id
    assert handed["path"] == f"{owner.my_data}/{leaver.username}/handed.txt"
    assert owner.names(f"{owner.my_data}/{leaver.username}") == ["deep", "handed.txt"]
    assert owner.download(kept["id"]).content == b"yours now"
    assert owner.get(f"/api/v3/storage/files/{team['id']}/").json()["owner"] == owner_id
    # The new owner may change what they were given.
    renamed = owner.request(
        "PATCH", f"/api/v3/storage/files/{kept['id']}/", json={"name": "mine-now.txt"}
    )
    assert renamed.status_code == 200, renamed.text


def test_leaving_with_a_new_owner_who_is_not_a_member_is_400(server: ServerProcess) -> None:
    owner = _new_user(server)
    leaver = _new_user(server, project=owner.project)
    stranger = _user_id(_new_user(server))
    leave = f"/api/v1/projects/{owner.project}/leave/"
    response = leaver.post(leave, json={"new_owner_id": stranger})
    assert response.status_code == 400
    assert leaver.names(leaver.my_data) == []  # still a member
