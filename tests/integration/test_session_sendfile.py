"""Chunked bodies and orionfs.client.sendfile, against the local server: FileSpans over plain HTTP
go out with sendfile(2) on a kept connection; a span the file cannot fill, or pieces that raise,
cut the request (nothing is committed); a proxied URL takes requests' path, which reads the spans.
"""

from __future__ import annotations

import os
import uuid

import pytest
import requests

from orionfs.client.bodies import SPAN_READ_BLOCK, ChunkedBody, FileSpan
from orionfs.client.sendfile import SendfileAdapter
from orionfs.exceptions import NotFoundResponse, OrionConnectionError
from tests.support.mount import api_bytes, my_data

MiB = 1 << 20


@pytest.fixture
def source(tmp_path):
    """(descriptor, bytes) of a local file of 3 MiB and a few bytes."""
    data = os.urandom(3 * MiB + 5)
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd, data
    finally:
        os.close(fd)


def _adapter(session) -> SendfileAdapter:
    adapter = session._http_once.get_adapter(session.config.url + "/")
    assert isinstance(adapter, SendfileAdapter)
    return adapter


def test_file_spans_over_plain_http_go_out_with_sendfile_on_one_kept_connection(
    server, session, source
):
    fd, data = source
    adapter = _adapter(session)
    sent_before = adapter.sendfile_bodies
    folder = my_data(server)
    name = f"spans-{uuid.uuid4().hex[:8]}.bin"
    pieces = [
        FileSpan(fd, 0, MiB),
        b"-between-",
        memoryview(b"view"),
        FileSpan(fd, MiB, 2 * MiB + 5),
    ]
    created = session.upload_file_stream(folder, name, pieces)
    expected = data[:MiB] + b"-between-view" + data[MiB:]
    assert created.size == len(expected)
    assert api_bytes(session, f"{folder}/{name}") == expected

    replaced = session.replace_file_content_stream(created, [FileSpan(fd, 5, 2 * MiB)])
    assert replaced.id == created.id
    assert api_bytes(session, f"{folder}/{name}") == data[5 : 5 + 2 * MiB]
    assert adapter.sendfile_bodies == sent_before + 2
    assert adapter.idle_connections() == 1  # the second request went out on the first's connection


def test_a_span_longer_than_its_file_cuts_the_request_and_commits_nothing(server, session, source):
    fd, data = source
    folder = my_data(server)
    name = f"short-{uuid.uuid4().hex[:8]}.bin"
    with pytest.raises(OrionConnectionError):
        session.upload_file_stream(folder, name, [FileSpan(fd, 0, len(data) + 100)])
    with pytest.raises(NotFoundResponse):
        session.stat_path(f"{folder}/{name}")
    assert _adapter(session).idle_connections() == 0  # the cut connection was not kept
    stored = session.upload_file_stream(folder, name, [FileSpan(fd, 0, 10)])
    assert api_bytes(session, f"{folder}/{name}") == data[:10] and stored.size == 10


def test_requests_path_reads_the_spans_in_blocks_and_a_body_goes_out_once(source):
    fd, data = source
    body = ChunkedBody([b"head", FileSpan(fd, 7, MiB), memoryview(b"tail")], "x/y")
    blocks = list(body)
    assert all(isinstance(b, bytes) and len(b) <= SPAN_READ_BLOCK for b in blocks)
    assert b"".join(blocks) == b"head" + data[7 : 7 + MiB] + b"tail"
    with pytest.raises(OSError):
        iter(body)
    with pytest.raises(OSError):
        body.pieces()
    with pytest.raises(OSError):
        list(FileSpan(fd, len(data) - 3, 10).blocks())


def test_a_proxied_url_takes_requests_path_not_sendfile(server, session, source):
    fd, _ = source
    adapter = _adapter(session)
    sent_before = adapter.sendfile_bodies
    request = requests.Request(
        "PUT", session.config.url + "/nowhere", data=ChunkedBody([FileSpan(fd, 0, 10)], "x/y")
    ).prepare()
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        adapter.send(request, timeout=5, proxies={"http": "http://127.0.0.1:9"})
    assert isinstance(raised.value, requests.exceptions.ProxyError)  # urllib3 went to the proxy
    assert adapter.sendfile_bodies == sent_before
