"""Large bodies stream through the server intact, and forms too big to hold are refused.

Throughput figures: scripts/bench.py.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.server import ServerProcess
from tests.support.server_api import Api

BOUNDARY = "orionfs-throughput-boundary"


def _multipart(name: str, chunk: bytes, count: int) -> Iterator[bytes]:
    """A chunked multipart body (no Content-Length), as a streaming client sends it."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for _ in range(count):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _round_trip(api: Api, folder: str, chunk: bytes, count: int) -> tuple[float, float]:
    """Upload ``chunk * count`` streamed, download it streamed; returns (upload, download) MB/s."""
    size = len(chunk) * count
    expected = hashlib.sha256(chunk * count).hexdigest()
    started = time.perf_counter()
    response = api.post(
        "/api/v3/storage/files/",
        data=_multipart("big.bin", chunk, count),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=120,
    )
    upload_seconds = time.perf_counter() - started
    assert response.status_code == 201, response.text
    file = response.json()
    assert file["size"] == size and file["sha256"] == expected
    digest = hashlib.sha256()
    started = time.perf_counter()
    with api.get(f"/api/v3/storage/files/{file['id']}/download/", stream=True) as download:
        for part in download.iter_content(1 << 20):
            digest.update(part)
    download_seconds = time.perf_counter() - started
    assert digest.hexdigest() == expected
    middle = size // 2
    ranged = api.download(file["id"], Range=f"bytes={middle}-{middle + 99}")
    assert ranged.status_code == 206
    assert ranged.content == (chunk * 2)[middle % len(chunk) :][:100]
    return size / upload_seconds / 1e6, size / download_seconds / 1e6


def test_a_streamed_24_mib_upload_and_download_are_byte_identical(server: ServerProcess) -> None:
    api = Api(server.url, server.token, server.username, server.project_id)
    _round_trip(api, api.my_data, os.urandom(65536 + 13), 384)


def _peak_rss_bytes(pid: int) -> int:
    """Peak resident set size of a process so far (VmHWM in /proc/PID/status).

    The peak, not the current size (VmRSS): memory held only while a request is parsed may be
    given back before the answer arrives.
    """
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _many_fields(count: int, size: int) -> bytes:
    value = b"x" * size
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="field{index}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
        for index in range(count)
    ]
    return b"".join(parts) + _file_part()


def _huge_header(size: int) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\nX-Pad: '.encode()
        + b"p" * size
        + b"\r\n\r\nhuge.txt\r\n"
        + _file_part()
    )


def _file_part() -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
        f"data\r\n--{BOUNDARY}--\r\n"
    ).encode()


BODIES = {
    "10,000 fields of 10 KiB": lambda: _many_fields(10_000, 10 * 1024),
    "a 60 MiB part header": lambda: _huge_header(60 << 20),
}


@pytest.mark.parametrize("label", sorted(BODIES))
def test_an_upload_form_too_big_to_hold_is_refused_without_holding_it(
    server_factory: Callable[..., ServerProcess], label: str
) -> None:
    server = server_factory()
    api = Api(server.url, server.token, server.username, server.project_id)
    body = BODIES[label]()
    for _ in range(3):  # warm up the server's allocator with ordinary uploads
        api.upload_ok(api.my_data, "warm.txt", os.urandom(1 << 20))
    before = _peak_rss_bytes(server.pid)
    response = api.post(
        "/api/v3/storage/files/",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=120,
    )
    grown = _peak_rss_bytes(server.pid) - before
    print(f"\n[{label}] {response.status_code}, peak RSS +{grown / 2**20:.1f} MiB")
    assert response.status_code in (400, 413), response.text
    assert response.json()["detail"]
    assert grown < 50 * 2**20
    assert "huge.txt" not in api.names(api.my_data)
