"""The server's test hooks: counters, latency, faults and test users (docs/wire.md, "Test hooks")."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest
import requests

from tests.support.server import ServerProcess
from tests.support.server_api import Api


@pytest.fixture
def api(server: ServerProcess) -> Api:
    """The sample user ``scientist``."""
    return Api(server.url, server.token, server.username, server.project_id)


def test_counters_are_keyed_by_method_and_route_template(server: ServerProcess, api: Api) -> None:
    readme = api.stat(f"{api.my_data}/README.txt").json()
    server.reset_counters()
    api.download(readme["id"])
    api.ls(api.my_data)
    api.ls(api.team)
    counters = server.counters()
    assert counters["by_endpoint"] == {
        "GET /api/v3/storage/files/{file_id}/download/": 1,
        "GET /api/v1/storage/ls/": 2,
    }
    assert counters["total"] == 3
    assert server.count("GET /api/v1/storage/ls/") == 2
    assert server.count("GET /api/v1/storage/stat/") == 0


def test_hook_routes_are_never_counted(server: ServerProcess) -> None:
    server.reset_counters()
    server.counters()
    server.set_latency(0)
    server.clear_faults()
    assert server.counters() == {"total": 0, "by_endpoint": {}}


def test_hooks_need_a_token(server: ServerProcess) -> None:
    response = requests.get(f"{server.url}/api/v1/_test/counters/", timeout=10)
    assert response.status_code == 401


def test_status_fault_hits_the_next_count_requests_then_success(
    server: ServerProcess, api: Api
) -> None:
    server.set_faults(status=503, count=2, retry_after=3, path_prefix="/api/v1/storage/")
    assert api.get("/api/versions/").status_code == 200  # outside the prefix: untouched
    for _ in range(2):
        response = api.ls(api.my_data)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "3"
        assert response.json()["detail"]
    assert api.ls(api.my_data).status_code == 200
    assert server.count("GET /api/v1/storage/ls/") == 3  # faulted requests are counted too


def test_rate_limit_fault_answers_429_with_retry_after(server: ServerProcess, api: Api) -> None:
    server.set_faults(status=429, count=1, retry_after=1)
    response = api.get("/api/v1/users/me/")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert api.get("/api/v1/users/me/").status_code == 200


def test_drop_fault_closes_the_connection_without_an_answer(
    server: ServerProcess, api: Api
) -> None:
    server.set_faults(drop=True, count=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(
            f"{server.url}/api/versions/",
            headers={"Authorization": f"Token {server.token}"},
            timeout=10,
        )
    assert api.get("/api/versions/").status_code == 200


def test_fraction_fault_is_reproducible_with_a_seed(server: ServerProcess, api: Api) -> None:
    def pattern() -> list[int]:
        server.clear_faults()
        server.set_faults(status=500, fraction=0.5, seed=42, path_prefix="/api/versions/")
        return [api.get("/api/versions/").status_code for _ in range(30)]

    first = pattern()
    assert first == pattern()
    assert 5 <= first.count(500) <= 25 and set(first) == {200, 500}


def test_stall_fault_delays_the_answer(server: ServerProcess, api: Api) -> None:
    server.set_faults(stall=0.4, count=1)
    started = time.monotonic()
    assert api.get("/api/versions/").status_code == 200
    assert time.monotonic() - started >= 0.4
    server.set_faults(stall=2, count=1)
    with pytest.raises(requests.Timeout):
        api.get("/api/versions/", timeout=0.3)


def test_latency_delays_every_request(server: ServerProcess, api: Api) -> None:
    server.set_latency(150)
    for _ in range(2):
        started = time.monotonic()
        api.get("/api/versions/")
        assert time.monotonic() - started >= 0.15
    server.set_latency(0)
    started = time.monotonic()
    api.get("/api/versions/")
    assert time.monotonic() - started < 0.15


def test_add_user_hook_creates_users_in_new_or_given_projects(server: ServerProcess) -> None:
    alone = server.add_user("hooks-alone")
    assert alone["user"]["username"] == "hooks-alone" and alone["project"] != server.project_id
    joined = server.add_user("hooks-joined", project=server.project_id)
    assert joined["project"] == server.project_id
    me = Api(server.url, joined["token"]).get("/api/v1/users/me/").json()
    assert me["id"] == joined["user"]["id"]
    token = requests.post(
        f"{server.url}/api/v1/auth/token/", auth=("hooks-joined", "pw-hooks-joined"), timeout=10
    )
    assert token.status_code == 200
    with pytest.raises(requests.HTTPError) as caught:
        server.add_user("hooks-alone")
    assert caught.value.response.status_code == 409


def test_hooks_do_not_exist_without_the_flag(
    server_factory: Callable[..., ServerProcess],
) -> None:
    plain = server_factory(test_hooks=False)
    response = requests.get(
        f"{plain.url}/api/v1/_test/counters/",
        headers={"Authorization": f"Token {plain.token}"},
        timeout=10,
    )
    assert response.status_code == 404


def test_keep_alive_requests_take_no_nagle_delay(server: ServerProcess, api: Api) -> None:
    timings = []
    for _ in range(15):
        started = time.monotonic()
        api.stat(api.my_data)
        timings.append(time.monotonic() - started)
    # Without TCP_NODELAY every keep-alive request waits ~40 ms for a delayed ACK.
    assert sorted(timings)[len(timings) // 2] < 0.025


HOOK_CALLS = [
    ("GET", "counters/", None),
    ("POST", "counters/reset/", None),
    ("POST", "latency/", {"ms": 0}),
    ("POST", "faults/", {"status": 500}),
    ("POST", "storage-stall/", {"method": "authenticate", "seconds": 5}),
    ("POST", "users/", {"username": "hook-intruder", "password": "x"}),
]


@pytest.mark.parametrize("secret", [None, "", "wrong-secret"], ids=["none", "empty", "wrong"])
def test_hooks_need_their_own_secret_besides_a_token(
    server: ServerProcess, api: Api, secret: str | None
) -> None:
    headers = {} if secret is None else {"X-Orion-Test-Hooks": secret}
    for method, name, body in HOOK_CALLS:
        response = api.request(method, f"/api/v1/_test/{name}", json=body, headers=headers)
        assert response.status_code == 403, (name, response.text)
        assert "X-Orion-Test-Hooks" in response.json()["detail"]
    # Nothing took effect: no fault, no stall, no user.
    assert api.get("/api/versions/").status_code == 200
    assert server.counters()["by_endpoint"] == {"GET /api/versions/": 1}
    response = requests.post(
        f"{server.url}/api/v1/auth/token/", auth=("hook-intruder", "x"), timeout=10
    )
    assert response.status_code == 401


def test_the_hooks_secret_is_in_the_private_server_json_and_new_at_every_start(
    server_factory: Callable[..., ServerProcess],
) -> None:
    hooked = server_factory()
    info_path = hooked.data_dir / "server.json"
    secret = json.loads(info_path.read_text())["test_hooks_secret"]
    assert re.fullmatch(r"[0-9a-f]{40}", secret) and (info_path.stat().st_mode & 0o077) == 0
    hooked.restart()
    again = json.loads(info_path.read_text())["test_hooks_secret"]
    assert again != secret
    api = Api(hooked.url, hooked.token)
    stale = api.get("/api/v1/_test/counters/", headers={"X-Orion-Test-Hooks": secret})
    assert stale.status_code == 403
    assert api.get("/api/v1/_test/counters/", headers={"X-Orion-Test-Hooks": again}).ok
    plain = server_factory(test_hooks=False)
    assert "test_hooks_secret" not in json.loads((plain.data_dir / "server.json").read_text())
