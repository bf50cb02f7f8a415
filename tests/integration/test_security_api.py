"""Security of the local server's API (issue 5, "Security").

- Every route the app has (enumerated from the FastAPI app itself, test hooks included) answers 401
  without a token and with a wrong one; the only routes that answer without a token are the API's
  own documentation routes, which the app names itself (``openapi_url``, ``docs_url``...).
- Two users: B cannot list, stat, read, tag, move, rename, overwrite or delete A's My Data (403 or
  404), and A's data is unchanged afterwards; both see their project's Team Data.
- The server binds loopback by default, and refuses a non-loopback ``--host`` without an explicit
  flag.
- Blob paths come from ids, never from user-supplied names.

Everything runs against the real server subprocess on a loopback port; requests are sent with plain
``requests`` so that the status codes are the server's own, not the client's interpretation.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

HTTP_TIMEOUT = 15


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def _url(server, path: str) -> str:
    return server.url.rstrip("/") + path


# --- every route: 401 without a (valid) token ---------------------------------------------------


def _app_routes(tmp_path):
    """(method, path template, route) for every HTTP route of the app, test hooks on."""
    from orionfs.server.app import create_app

    params = inspect.signature(create_app).parameters
    kwargs = {"test_hooks": True} if "test_hooks" in params else {}
    app = create_app(tmp_path / "routes-data", **kwargs)
    docs = {
        u
        for u in (
            getattr(app, "openapi_url", None),
            getattr(app, "docs_url", None),
            getattr(app, "redoc_url", None),
            getattr(app, "swagger_ui_oauth2_redirect_url", None),
        )
        if u
    }
    routes = []
    for route in app.routes:
        methods = getattr(route, "methods", None)
        path = getattr(route, "path", None)
        if not methods or path is None:
            continue  # mounts and websocket routes: none expected
        for method in sorted(methods):
            routes.append((method, path, route))
    return app, routes, docs


def _fill_path(route) -> str:
    """A concrete URL path for a route template: ``resource_type`` as 'file', every other value 1."""

    def value(match: re.Match) -> str:
        return "file" if match.group(1) == "resource_type" else "1"

    return re.sub(r"{([^}:]+)(?::[^}]*)?}", value, route.path)


BAD_AUTH_HEADERS = {
    "no token": {},
    "wrong token": {"Authorization": "Token this-is-not-a-valid-token"},
    "empty token": {"Authorization": "Token "},
    "wrong scheme": {"Authorization": "Bearer this-is-not-a-valid-token"},
    "bad basic": {"Authorization": "Basic bm9ib2R5Om5vcGFzc3dvcmQ="},  # nobody:nopassword
}


def test_every_route_answers_401_without_a_token_and_with_a_wrong_token(server, tmp_path):
    app, routes, docs = _app_routes(tmp_path)
    api_routes = [(m, p, r) for (m, p, r) in routes if p not in docs]
    assert len(api_routes) >= 30, f"only {len(api_routes)} routes found in the app"
    assert any("/_test/" in p for _, p, _ in api_routes), "test-hook routes were not enumerated"
    wrong = []
    checked = 0
    for method, path, route in api_routes:
        url = _url(server, _fill_path(route))
        for label, headers in BAD_AUTH_HEADERS.items():
            response = requests.request(
                method, url, headers=headers, timeout=HTTP_TIMEOUT, allow_redirects=False
            )
            checked += 1
            if response.status_code != 401:
                wrong.append(
                    f"{method} {path} ({label}): {response.status_code} {response.text[:120]}"
                )
    print(
        f"\n[auth] {len(api_routes)} routes x {len(BAD_AUTH_HEADERS)} header variants = {checked} requests"
    )
    assert not wrong, "routes that did not answer 401:\n" + "\n".join(wrong)


def test_documentation_routes_the_app_names_hold_no_user_data(server, tmp_path):
    """The only routes outside the 401 rule (the API docs) answer without any user data."""
    app, routes, docs = _app_routes(tmp_path)
    for method, path, _ in routes:
        if path not in docs:
            continue
        response = requests.request(method, _url(server, path), timeout=HTTP_TIMEOUT)
        assert response.status_code in (200, 401, 404), (path, response.status_code)
        assert server.token not in response.text
        assert server.username not in response.text


def test_a_valid_token_of_another_case_or_with_extra_characters_is_refused(server):
    url = _url(server, "/api/v1/users/me/")
    assert requests.get(url, headers=_auth(server.token), timeout=HTTP_TIMEOUT).status_code == 200
    for bad in (
        server.token + "x",
        server.token[:-1],
        server.token.swapcase(),
        " " + server.token + "x",
    ):
        if bad.strip() == server.token:
            continue
        assert requests.get(url, headers=_auth(bad), timeout=HTTP_TIMEOUT).status_code == 401, bad


@pytest.mark.parametrize("form", ["Token {t}", "Token:{t}", "Token: {t}", "token {t}", "TOKEN:{t}"])
def test_the_token_header_takes_the_space_and_the_colon_forms(server, form):
    """``Token <t>`` and the orionclient docs' ``Token:<t>`` (a space after the colon or not)."""
    headers = {"Authorization": form.format(t=server.token)}
    response = requests.get(
        _url(server, "/api/v1/users/me/"), headers=headers, timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "form",
    ["Token:", "Token: ", "Token::{t}", "Token:  {t}", "Token :{t}", "Token{t}", "Bearer {t}",
     "Bearer:{t}", ":{t}", "{t}", "Token:{t} x", "Token {t}:"],
)  # fmt: skip
def test_every_other_token_header_form_is_401(server, form):
    headers = {"Authorization": form.format(t=server.token)}
    response = requests.get(
        _url(server, "/api/v1/users/me/"), headers=headers, timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 401, (form, response.text)


# --- two users ------------------------------------------------------------------------------------


def _upload(server, token, folder, name, data: bytes, tags=None) -> dict:
    fields = {"name": name, "path": folder}
    if tags is not None:
        fields["tags"] = json.dumps(tags)
    response = requests.post(
        _url(server, "/api/v3/storage/files/"),
        headers=_auth(token),
        data=fields,
        files={"file": (name, data, "application/octet-stream")},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.json()


def _stat(server, token, path):
    return requests.get(
        _url(server, "/api/v1/storage/stat/"),
        params={"path": path},
        headers=_auth(token),
        timeout=HTTP_TIMEOUT,
    )


def _ls_names(server, token, path):
    response = requests.get(
        _url(server, "/api/v1/storage/ls/"),
        params={"path": path, "limit": 1000},
        headers=_auth(token),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return {e["name"] for e in response.json()["results"]}


@pytest.fixture(scope="module")
def two_users(server):
    """A = the server's own user; B = a new member of A's project (so Team Data is shared)."""
    b = server.add_user("mallory", password="mallory-password-1", project=server.project_id)
    pid = server.project_id
    a_home = f"/project/{pid}/user/{server.username}"
    b_home = f"/project/{pid}/user/{b['user']['username']}"
    folder = f"{a_home}/private-{os.getpid()}"
    response = requests.post(
        _url(server, "/api/v1/storage/paths/"),
        json={"paths": [folder]},
        headers=_auth(server.token),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    secret = b"A's secret data\n" * 100
    file = _upload(server, server.token, folder, "secret.txt", secret, tags=["mine"])
    return {
        "pid": pid,
        "a_token": server.token,
        "b_token": b["token"],
        "b": b,
        "a_home": a_home,
        "b_home": b_home,
        "folder": folder,
        "file": file,
        "secret": secret,
    }


def _attempts(u):
    """(label, method, path, kwargs) for every way B could touch A's My Data."""
    f = u["file"]
    fid = f["id"]
    a_file_path = f"{u['folder']}/secret.txt"
    return [
        ("ls A's My Data", "GET", "/api/v1/storage/ls/", {"params": {"path": u["a_home"]}}),
        ("ls A's folder", "GET", "/api/v1/storage/ls/", {"params": {"path": u["folder"]}}),
        ("stat A's My Data", "GET", "/api/v1/storage/stat/", {"params": {"path": u["a_home"]}}),
        ("stat A's file", "GET", "/api/v1/storage/stat/", {"params": {"path": a_file_path}}),
        ("get A's file", "GET", f"/api/v3/storage/files/{fid}/", {}),
        ("download A's file", "GET", f"/api/v3/storage/files/{fid}/download/", {}),
        (
            "ranged download",
            "GET",
            f"/api/v3/storage/files/{fid}/download/",
            {"headers": {"Range": "bytes=0-9"}},
        ),
        ("get A's tags", "GET", f"/api/v1/tags/file/{fid}/", {}),
        ("tag A's file", "POST", f"/api/v1/tags/file/{fid}/", {"json": {"tags": ["pwned"]}}),
        (
            "untag A's file",
            "POST",
            f"/api/v1/tags/file/{fid}/remove/",
            {"json": {"tags": ["mine"]}},
        ),
        (
            "share A's file with B",
            "POST",
            f"/api/v1/sharing/file/{fid}/",
            {"json": {"share_with": "users", "ids": [u["b"]["user"]["id"]]}},
        ),
        ("get A's sharing", "GET", f"/api/v1/sharing/file/{fid}/", {}),
        (
            "move A's file to B",
            "POST",
            "/api/v1/storage/paths/assign/",
            {"json": {"assignments": [{"resource_type": "file", "id": fid, "path": u["b_home"]}]}},
        ),
        (
            "rename A's file in place",
            "POST",
            "/api/v1/storage/paths/assign/",
            {
                "json": {
                    "assignments": [
                        {
                            "resource_type": "file",
                            "id": fid,
                            "path": u["folder"],
                            "name": "renamed.txt",
                        }
                    ]
                }
            },
        ),
        ("patch A's file", "PATCH", f"/api/v3/storage/files/{fid}/", {"json": {"name": "x.txt"}}),
        (
            "overwrite A's file",
            "PUT",
            f"/api/v3/storage/files/{fid}/content/",
            {"data": b"overwritten", "headers": {"Content-Type": "application/octet-stream"}},
        ),
        ("delete A's file", "DELETE", f"/api/v3/storage/files/{fid}/", {}),
        (
            "purge A's file",
            "DELETE",
            f"/api/v3/storage/files/{fid}/",
            {"params": {"immediate": "true"}},
        ),
        (
            "remove A's file by path",
            "POST",
            "/api/v1/storage/paths/remove/",
            {"json": {"paths": [a_file_path]}},
        ),
        (
            "remove A's folder",
            "POST",
            "/api/v1/storage/paths/remove/",
            {"json": {"paths": [u["folder"]], "recursive": True}},
        ),
        (
            "create in A's My Data",
            "POST",
            "/api/v1/storage/paths/",
            {"json": {"paths": [f"{u['a_home']}/planted"]}},
        ),
        (
            "path of A's file by id",
            "POST",
            "/api/v1/storage/paths/get/",
            {"json": {"items": [{"resource_type": "file", "id": fid}]}},
        ),
    ]


def test_user_b_cannot_touch_user_a_my_data_through_the_api(server, two_users):
    u = two_users
    folder_entry = _stat(server, u["a_token"], u["folder"]).json()
    denied = []
    for label, method, path, kwargs in _attempts(u):
        kwargs = dict(kwargs)
        headers = {**_auth(u["b_token"]), **kwargs.pop("headers", {})}
        response = requests.request(
            method, _url(server, path), headers=headers, timeout=HTTP_TIMEOUT, **kwargs
        )
        if response.status_code not in (403, 404):
            denied.append(
                f"{label}: {method} {path} -> {response.status_code} {response.text[:200]}"
            )
        assert u["secret"][:20] not in response.content, f"{label} leaked A's data"
    # The folder by id, and an upload into A's folder.
    response = requests.get(
        _url(server, f"/api/v1/storage/folders/{folder_entry['id']}/"),
        headers=_auth(u["b_token"]),
        timeout=HTTP_TIMEOUT,
    )
    if response.status_code not in (403, 404):
        denied.append(f"A's folder by id -> {response.status_code}")
    response = requests.post(
        _url(server, "/api/v3/storage/files/"),
        headers=_auth(u["b_token"]),
        data={"name": "planted.txt", "path": u["folder"]},
        files={"file": ("planted.txt", b"planted", "application/octet-stream")},
        timeout=HTTP_TIMEOUT,
    )
    if response.status_code not in (403, 404):
        denied.append(f"upload into A's folder -> {response.status_code}")
    # B's listings never show A's My Data.
    assert _ls_names(server, u["b_token"], f"/project/{u['pid']}/user") == {
        u["b"]["user"]["username"]
    }
    assert not denied, "B reached A's My Data:\n" + "\n".join(denied)

    # A's data is exactly as it was.
    a = u["a_token"]
    assert _ls_names(server, a, u["folder"]) == {"secret.txt"}
    response = requests.get(
        _url(server, f"/api/v3/storage/files/{u['file']['id']}/download/"),
        headers=_auth(a),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(u["secret"]).digest()
    tags = requests.get(
        _url(server, f"/api/v1/tags/file/{u['file']['id']}/"),
        headers=_auth(a),
        timeout=HTTP_TIMEOUT,
    ).json()["tags"]
    assert tags == ["mine"]
    assert "planted" not in _ls_names(server, a, u["a_home"])
    sharing = requests.get(
        _url(server, f"/api/v1/sharing/file/{u['file']['id']}/"),
        headers=_auth(a),
        timeout=HTTP_TIMEOUT,
    ).json()
    assert sharing.get("users", []) == []


def test_both_users_see_and_write_their_project_team_data(server, two_users):
    u = two_users
    team = f"/project/{u['pid']}/team"
    name_a = f"from-a-{os.getpid()}.txt"
    name_b = f"from-b-{os.getpid()}.txt"
    _upload(server, u["a_token"], team, name_a, b"a")
    _upload(server, u["b_token"], team, name_b, b"b")
    for token in (u["a_token"], u["b_token"]):
        names = _ls_names(server, token, team)
        assert {name_a, name_b} <= names
        assert _stat(server, token, f"{team}/{name_a}").status_code == 200


def test_a_user_of_another_project_cannot_see_the_project_at_all(server, two_users):
    u = two_users
    outsider = server.add_user("outsider", password="outsider-password-1")  # own new project
    token = outsider["token"]
    assert f"{u['pid']}" not in _ls_names(server, token, "/project")
    for path in (f"/project/{u['pid']}/team", u["a_home"], u["folder"]):
        assert _stat(server, token, path).status_code in (403, 404), path
    response = requests.get(
        _url(server, f"/api/v3/storage/files/{u['file']['id']}/download/"),
        headers=_auth(token),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code in (403, 404)


# --- loopback by default --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a socket in LISTEN state on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, p = fields[1].split(":")
            if int(p, 16) == port and fields[3] == "0A":
                found.add(addr)
    return found


def _serve(args, tmp_path, env_extra=None):
    env = {**os.environ, "ORIONFS_CONFIG_DIR": str(tmp_path / "cfg"), **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "orionfs.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )


def test_server_binds_loopback_by_default(tmp_path):
    port = _free_port()
    proc = _serve(["--data", str(tmp_path / "data"), "--port", str(port)], tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _listening_addresses(port):
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            time.sleep(0.2)
        addresses = _listening_addresses(port)
        assert addresses, "the server never listened"
        # 0100007F = 127.0.0.1; IPv6 ::1 = 00000000000000000000000001000000
        assert addresses <= {"0100007F", "00000000000000000000000001000000"}, addresses
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_server_refuses_a_non_loopback_host_without_an_explicit_flag(tmp_path, host):
    port = _free_port()
    proc = _serve(["--data", str(tmp_path / "data"), "--host", host, "--port", str(port)], tmp_path)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"`orionfs serve --host {host}` started instead of refusing")
    assert proc.returncode != 0
    assert not _listening_addresses(port)
    text = out.decode(errors="replace").lower()
    assert "loopback" in text or "--allow" in text or "public" in text or "host" in text, text


# --- blob paths come from ids ---------------------------------------------------------------------

MARK = "zq9mark"
EVIL_NAMES = [
    f"../../{MARK}-etc-x",
    f"..\\..\\{MARK}-win",
    f"{MARK}-%2e%2e%2f",
    f'{MARK} sp*?"<>|:;$(id)`',
    f"{MARK}-ünïcødé-∕-名前",
    f".{MARK}-hidden",
    f"{MARK}-" + "x" * 240,
    f"-{MARK}-rf",
    f"{MARK}\ttab\rcr",
]


def test_blob_paths_come_from_ids_never_from_user_supplied_names(server):
    folder = f"/project/{server.project_id}/user/{server.username}/blobnames-{os.getpid()}"
    requests.post(
        _url(server, "/api/v1/storage/paths/"),
        json={"paths": [folder]},
        headers=_auth(server.token),
        timeout=HTTP_TIMEOUT,
    ).raise_for_status()
    accepted, refused = [], []
    before_parent = set(os.listdir(Path(server.data_dir).parent))
    for name in EVIL_NAMES:
        response = requests.post(
            _url(server, "/api/v3/storage/files/"),
            headers=_auth(server.token),
            data={"name": name, "path": folder},
            files={"file": (name, MARK.encode() * 10, "application/octet-stream")},
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code < 500, (name, response.status_code, response.text)
        (accepted if response.status_code == 201 else refused).append(name)
    assert len(accepted) >= 5, f"the server refused ordinary odd names: {refused}"
    # Nothing appeared outside the data folder; nothing inside it carries a user-supplied name.
    assert set(os.listdir(Path(server.data_dir).parent)) == before_parent
    assert not Path("/etc", f"{MARK}-etc-x").exists()
    blob_files = 0
    for root, dirs, files in os.walk(server.data_dir):
        for entry in dirs + files:
            assert MARK not in entry, f"a user-supplied name reached the disk: {root}/{entry}"
            assert "名前" not in entry and " " not in entry
        for f in files:
            real = os.path.realpath(os.path.join(root, f))
            assert real.startswith(os.path.realpath(server.data_dir) + os.sep)
            blob_files += 1
    assert blob_files >= len(accepted)
    # And each accepted name round-trips through the API unchanged.
    listed = _ls_names(server, server.token, folder)
    assert set(accepted) <= listed, set(accepted) - listed
