"""OrionSession errors, retries, timeouts and logging against the real server's fault hooks."""

from __future__ import annotations

import io
import logging
import os
import socket
import time

import pytest
import requests

from orionfs.client import wire
from orionfs.client.session import get_session
from orionfs.exceptions import (
    AuthorizationRequired,
    BadResponse,
    InvalidCredentials,
    NotFoundResponse,
    OrionConnectionError,
    OrionError,
    OrionServiceError,
    OrionTimeout,
    RateLimitedResponse,
)

STAT = wire.STAT
STAT_KEY = "GET " + wire.STAT
PATHS_KEY = "POST " + wire.PATHS_CREATE
TAGS_PREFIX = wire.TAGS.split("{", 1)[0]


@pytest.fixture(autouse=True)
def _no_faults(server):
    server.clear_faults()
    yield
    server.clear_faults()


def _timed(fn):
    started = time.monotonic()
    return fn(), time.monotonic() - started


def _failing(cls, fn):
    """(the exception of class ``cls`` that ``fn`` raised, seconds it took)."""
    started = time.monotonic()
    with pytest.raises(cls) as info:
        fn()
    return info.value, time.monotonic() - started


def test_bad_token_is_invalid_credentials_401(session_factory, session_home):
    with pytest.raises(InvalidCredentials) as info:
        session_factory(token="wrong").stat_path(session_home)
    assert info.value.status_code == 401 and info.value.response is not None


def test_missing_token_is_invalid_credentials_without_a_request(session_factory, server):
    server.reset_counters()
    with pytest.raises(InvalidCredentials):
        session_factory(token="").stat_path("/")
    assert server.counters()["total"] == 0


@pytest.mark.parametrize(
    "status, cls", [(403, AuthorizationRequired), (404, NotFoundResponse), (409, BadResponse)]
)
def test_403_404_409_are_mapped_and_not_retried_by_default(
    session, server, session_home, status, cls
):
    server.reset_counters()
    server.set_faults(status=status, count=1, path_prefix=STAT)
    with pytest.raises(cls) as info:
        session.stat_path(session_home)
    assert info.value.status_code == status
    assert server.count(STAT_KEY) == 1


def test_404_is_retried_when_the_caller_opts_in(session_factory, server, session_home):
    session = session_factory(retry_dict={404: 2})
    server.reset_counters()
    server.set_faults(status=404, count=1, path_prefix=STAT)
    assert session.stat_path(session_home)["path"] == session_home
    assert server.count(STAT_KEY) == 2


def test_503_twice_then_200_succeeds_in_exactly_three_requests(session, server, session_home):
    server.reset_counters()
    server.set_faults(status=503, count=2, path_prefix=STAT)
    assert session.stat_path(session_home)["path"] == session_home
    assert server.count(STAT_KEY) == 3


def test_5xx_after_its_retries_is_orion_service_error(session_factory, server, session_home):
    session = session_factory(retry_dict={500: 1})
    server.reset_counters()
    server.set_faults(status=500, count=10, path_prefix=STAT)
    with pytest.raises(OrionServiceError) as info:
        session.stat_path(session_home)
    assert info.value.status_code == 500 and isinstance(info.value, BadResponse)
    assert server.count(STAT_KEY) == 2


def test_429_after_its_retries_is_rate_limited_response(session_factory, server, session_home):
    session = session_factory(retry_dict={429: 2})
    server.reset_counters()
    server.set_faults(status=429, count=10, path_prefix=STAT)
    with pytest.raises(RateLimitedResponse) as info:
        session.stat_path(session_home)
    assert info.value.status_code == 429
    assert server.count(STAT_KEY) == 3


def test_retry_after_is_honoured(session, server, session_home):
    session.stat_path(session_home)  # warm the pool
    server.reset_counters()
    server.set_faults(status=503, count=1, retry_after=1, path_prefix=STAT)
    entry, elapsed = _timed(lambda: session.stat_path(session_home))
    assert entry["path"] == session_home
    assert elapsed >= 1.0
    assert server.count(STAT_KEY) == 2


def test_no_retry_starts_after_the_retry_deadline(session_factory, server, session_home):
    session = session_factory(retry_timeout=1.0)
    server.reset_counters()
    server.set_faults(status=503, count=5, retry_after=5, path_prefix=STAT)
    _, elapsed = _failing(OrionServiceError, lambda: session.stat_path(session_home))
    assert elapsed < 1.0  # a 5 s wait would pass the 1 s deadline: not attempted
    assert server.count(STAT_KEY) == 1


def test_retries_stop_at_the_deadline_with_backoff(session_factory, server, session_home):
    session = session_factory(retry_timeout=1.0, retry_dict={503: 100},
                              backoff_dict={503: (0.2, 0.2)})  # fmt: skip
    server.reset_counters()
    server.set_faults(status=503, count=100, path_prefix=STAT)
    _, elapsed = _failing(OrionServiceError, lambda: session.stat_path(session_home))
    assert elapsed < 2.0
    assert 3 <= server.count(STAT_KEY) <= 7  # about 1 s / 0.2 s, not 100


def test_post_is_not_retried_on_503(session, server, session_workdir):
    server.reset_counters()
    server.set_faults(status=503, count=1, path_prefix=wire.PATHS_CREATE)
    with pytest.raises(OrionServiceError):
        session.create_paths(f"{session_workdir}/once")
    assert server.count(PATHS_KEY) == 1


def test_idempotent_post_tagging_is_retried_on_503(session, server, session_workdir):
    file = session.upload_file(session_workdir, "t.txt", io.BytesIO(b"x"))
    server.reset_counters()
    server.set_faults(status=503, count=1, path_prefix=TAGS_PREFIX)
    assert session.tag_resource(file, "again") == ["again"]
    assert server.count("POST /api/v1/tags/{resource_type}/{resource_id}/") == 2


def test_429_on_post_is_retried_and_applied_once(session, server, session_workdir):
    folder = f"{session_workdir}/after429"
    server.reset_counters()
    server.set_faults(status=429, count=1, path_prefix=wire.PATHS_CREATE)
    session.create_paths(folder, exist_ok=False)
    assert server.count(PATHS_KEY) == 2
    assert session.stat_path(folder)["resource_type"] == "folder"


def test_streamed_put_is_rewound_and_resent_after_503(session, server, session_workdir):
    file = session.upload_file(session_workdir, "put.bin", io.BytesIO(b"old"))
    data = os.urandom(2 << 20)
    server.set_faults(status=503, count=1, path_prefix=wire.collection_path(wire.FILE))
    session.replace_file_content(file, io.BytesIO(data))
    assert session.read_range(file, 0, len(data) + 1) == data


def test_dropped_connection_on_get_is_retried(session, server, session_home):
    server.reset_counters()
    server.set_faults(drop=True, count=1, path_prefix=STAT)
    assert session.stat_path(session_home)["path"] == session_home


def test_dropped_connection_on_post_is_connection_error(session, server, session_workdir):
    server.set_faults(drop=True, count=1, path_prefix=wire.PATHS_CREATE)
    with pytest.raises(OrionConnectionError) as info:
        session.create_paths(f"{session_workdir}/dropped")
    assert isinstance(info.value, ConnectionError)


def test_stalled_server_is_orion_timeout_within_a_bounded_time(
    session_factory, server, session_home
):
    session = session_factory(request_timeout=0.5, retry_timeout=1.0)
    server.set_faults(stall=5, count=10, path_prefix=STAT)
    error, elapsed = _failing(OrionTimeout, lambda: session.stat_path(session_home))
    assert isinstance(error, TimeoutError)
    assert elapsed < 3.5


def test_closed_port_is_orion_connection_error(session_factory):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session = session_factory(url=f"http://127.0.0.1:{port}", retry_timeout=2)
    error, elapsed = _failing(OrionConnectionError, lambda: session.stat_path("/"))
    assert isinstance(error, ConnectionError) and isinstance(error, OrionError)
    assert elapsed < 5


def test_no_token_in_logs_at_debug_even_for_failures(session_factory, server, session_home,
                                                     caplog):  # fmt: skip
    caplog.set_level(logging.DEBUG)
    session = session_factory(log_failed_headers=True)
    session.stat_path(session_home)
    with pytest.raises(NotFoundResponse):
        session.stat_path(f"{session_home}/absent")
    server.set_faults(status=503, count=1, path_prefix=STAT)
    session.stat_path(session_home)
    name = f"logged{time.monotonic_ns() % 10**9}"
    server.add_user(name, password="pw-in-clear", project=server.project_id)
    token = session_factory(token="", username="").retrieve_token(name, "pw-in-clear")
    assert "<redacted>" in caplog.text  # the failed request's headers were logged...
    assert server.token not in caplog.text  # ...without the token
    assert token not in caplog.text
    assert "pw-in-clear" not in caplog.text


def test_exception_keeps_response_and_message_names_the_detail(session, session_home):
    with pytest.raises(NotFoundResponse) as info:
        session.stat_path(f"{session_home}/nothing-here")
    assert info.value.response.status_code == 404
    assert "404" in str(info.value)


# --- get_session: a plain requests.Session with the same retry policy ---------------------------
VERSIONS_KEY = "GET " + wire.VERSIONS


def _auth(server) -> dict[str, str]:
    return {"Authorization": f"Token {server.token}"}


def test_get_session_retries_503_twice_then_gets_200_in_three_requests(server):
    http = get_session({503: 3}, request_timeout=10, retry_timeout=600,
                       backoff_dict={503: (0.01, 0.05)})  # fmt: skip
    server.reset_counters()
    server.set_faults(status=503, count=2, path_prefix=wire.VERSIONS)
    with http:
        response = http.get(server.url + wire.VERSIONS, headers=_auth(server))
    assert response.status_code == 200
    assert server.count(VERSIONS_KEY) == 3


def test_get_session_returns_the_last_answer_when_its_retries_run_out(server):
    http = get_session({503: 1}, request_timeout=10, backoff_dict={503: (0.01, 0.05)})
    server.reset_counters()
    server.set_faults(status=503, count=5, path_prefix=wire.VERSIONS)
    with http:
        assert http.get(server.url + wire.VERSIONS, headers=_auth(server)).status_code == 503
    assert server.count(VERSIONS_KEY) == 2


def test_get_session_gives_every_request_without_a_timeout_request_timeout(server):
    http = get_session(request_timeout=0.5, retry_timeout=30)
    server.set_faults(stall=5, count=1, path_prefix=wire.VERSIONS)
    server.reset_counters()
    with http:
        response, elapsed = _timed(lambda: http.get(server.url + wire.VERSIONS,
                                                    headers=_auth(server)))  # fmt: skip
    assert response.status_code == 200  # the stalled first try timed out after 0.5 s, then a retry
    assert 0.5 <= elapsed < 4.0
    assert server.count(VERSIONS_KEY) == 2


def test_get_session_timeout_of_a_post_is_read_timeout(server):
    http = get_session(request_timeout=0.5)
    server.set_faults(stall=5, count=1, path_prefix=wire.PATHS_GET)
    with http, pytest.raises(requests.exceptions.ReadTimeout):
        http.post(server.url + wire.PATHS_GET, json={"items": []}, headers=_auth(server))
