"""Large bodies stream through the server intact (throughput figures: scripts/bench.py)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator

from tests.plugin_server import ServerProcess
from tests.server_api import Api

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
