"""orionfs.client.bodies and .transport without the Orion server: streamed bodies, the Retry policy,
the adapter; the session's cookie and credential rules against a stdlib stub on loopback."""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import io
import json
import os
import threading

import pytest
from urllib3.exceptions import MaxRetryError
from urllib3.response import HTTPResponse

from orionfs.client.bodies import SEND_BLOCK_SIZE, multipart_body, raw_body
from orionfs.client.config import SessionConfig
from orionfs.client.session import OrionSession
from orionfs.client.transport import MIN_POOL_SIZE, OrionHTTPAdapter, build_retry
from orionfs.exceptions import ValidationError


class CountingReader(io.BytesIO):
    """A BytesIO that records the largest single read."""

    largest = 0

    def read(self, size=-1):  # type: ignore[override]
        data = super().read(size)
        self.largest = max(self.largest, len(data))
        return data


def _drain(body) -> bytes:
    out = bytearray()
    while chunk := body.read(SEND_BLOCK_SIZE):
        out += chunk
    return bytes(out)


def test_multipart_body_length_matches_bytes_and_parses_as_form_data():
    payload = os.urandom(3 * SEND_BLOCK_SIZE + 17)
    body = multipart_body(
        {"name": "f.bin", "path": "/p", "tags": ["a", "b"], "skipped": None},
        {"file": ("f.bin", io.BytesIO(payload))},
    )
    raw = _drain(body)
    assert len(raw) == len(body)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {body.content_type}\r\n\r\n".encode() + raw
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert sorted(parts) == ["file", "name", "path", "tags"]
    assert parts["tags"].get_payload(decode=True) == b'["a", "b"]'
    assert parts["file"].get_payload(decode=True) == payload


def test_multipart_body_reads_the_source_in_blocks_never_whole():
    source = CountingReader(b"z" * (8 * SEND_BLOCK_SIZE))
    body = multipart_body({"name": "big"}, {"file": ("big", source)})
    assert len(_drain(body)) == len(body)
    assert 0 < source.largest <= SEND_BLOCK_SIZE


def test_streaming_body_rewinds_to_identical_bytes():
    payload = os.urandom(2 * SEND_BLOCK_SIZE + 5)
    body = multipart_body({"name": "x"}, {"file": ("x", io.BytesIO(payload))})
    first = _drain(body)
    assert body.tell() == len(body)
    assert body.seek(0) == 0
    assert _drain(body) == first


def test_raw_body_sends_exactly_size_bytes_from_the_current_position():
    source = io.BytesIO(b"0123456789")
    source.seek(2)
    body = raw_body(source, size=5)
    assert len(body) == 5 and _drain(body) == b"23456"
    body.seek(0)
    assert _drain(body) == b"23456"


def test_raw_body_of_short_source_is_validation_error():
    body = raw_body(io.BytesIO(b"abc"), size=10)
    with pytest.raises(ValidationError):
        _drain(body)


def test_non_seekable_source_needs_a_size():
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    with os.fdopen(read_fd, "rb", buffering=0) as pipe, pytest.raises(ValidationError):
        raw_body(pipe)


def _response(status: int, retry_after: str | None = None) -> HTTPResponse:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return HTTPResponse(body=b"", status=status, headers=headers, preload_content=False)


def test_retry_counts_are_per_status():
    retry = build_retry({503: 2, 429: 1}, {503: (0, 0), 429: (0, 0)}, retry_timeout=None)
    assert retry.is_retry("GET", 503) and retry.is_retry("GET", 429)
    assert not retry.is_retry("GET", 404) and not retry.is_retry("GET", 500)
    retry = retry.increment("GET", "/x", response=_response(503))
    retry = retry.increment("GET", "/x", response=_response(429))
    assert retry.is_retry("GET", 503) and not retry.is_retry("GET", 429)
    retry = retry.increment("GET", "/x", response=_response(503))
    assert not retry.is_retry("GET", 503)
    with pytest.raises(MaxRetryError):
        retry.increment("GET", "/x", response=_response(503))


def test_only_idempotent_methods_are_retried_on_5xx_but_any_on_429():
    retry = build_retry({503: 3, 429: 3}, None, None)
    assert retry.is_retry("PUT", 503) and retry.is_retry("DELETE", 503)
    assert not retry.is_retry("POST", 503) and not retry.is_retry("PATCH", 503)
    assert retry.is_retry("POST", 429)
    assert build_retry({503: 3}, None, None, allow_post=True).is_retry("POST", 503)


def test_backoff_is_decorrelated_jitter_within_base_and_cap():
    retry = build_retry({503: 50}, {503: (0.01, 0.2)}, retry_timeout=None)
    waits = []
    for _ in range(40):
        retry = retry.increment("GET", "/x", response=_response(503))
        waits.append(retry.planned_sleep)
    assert all(0.01 <= w <= 0.2 for w in waits)
    assert len(set(waits)) > 10  # jittered, not a fixed schedule


def test_retry_after_replaces_the_backoff():
    retry = build_retry({429: 3}, {429: (0.01, 0.02)}, retry_timeout=None)
    retry = retry.increment("GET", "/x", response=_response(429, "3"))
    assert retry.planned_sleep == 3


def test_no_retry_whose_wait_ends_past_the_deadline():
    retry = build_retry({429: 3}, None, retry_timeout=2.0)
    with pytest.raises(MaxRetryError):
        retry.increment("GET", "/x", response=_response(429, "5"))
    ok = build_retry({429: 3}, None, retry_timeout=10.0).increment(
        "GET", "/x", response=_response(429, "5")
    )
    assert ok.planned_sleep == 5


def test_adapter_pool_holds_at_least_16_connections():
    adapter = OrionHTTPAdapter(build_retry({}, None, None), pool_size=4)
    assert adapter._pool_maxsize >= MIN_POOL_SIZE == 16


class _StubHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a JSON entry and a Set-Cookie; records the Authorization headers."""

    seen: list[str | None] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = json.dumps({"resource_type": "folder", "id": 1, "path": "/"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "AWSALB=sticky; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_url():
    _StubHandler.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_session_keeps_no_cookies_so_its_jar_is_only_ever_read(stub_url):
    with OrionSession(config=SessionConfig(url=stub_url, token="tok", request_timeout=5)) as s:
        s.stat_path("/")
        s.stat_path("/")
        assert len(s._http.cookies) == 0


def test_netrc_credentials_never_replace_the_token(stub_url, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with OrionSession(config=SessionConfig(url=stub_url, token="tok", request_timeout=5)) as s:
        s.stat_path("/")
    assert _StubHandler.seen == ["Token tok"]
