"""Streamed upload and download through the session API keep loopback speed (256 MiB, > 200 MB/s).

The machine is shared with other test runs, so each direction gets up to three attempts and the
best one must pass the bar: the rule is that the client *can* sustain the rate, not that no other
process ever takes the CPU.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest

SIZE = 256 << 20
MIN_MB_PER_S = 200.0
ATTEMPTS = 3


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.bin"
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        for i in range(SIZE >> 20):
            chunk = block[i:] + block[:i]
            fh.write(chunk)
            digest.update(chunk)
    return path, digest.hexdigest()


def _best_rate(action) -> tuple[float, list[float]]:
    """Run ``action`` up to ATTEMPTS times (stopping once past the bar); (best MB/s, all)."""
    rates = []
    for _ in range(ATTEMPTS):
        started = time.perf_counter()
        action()
        rates.append(SIZE / (time.perf_counter() - started) / 1e6)
        if rates[-1] > MIN_MB_PER_S:
            break
    return max(rates), rates


def test_upload_download_and_replace_of_256_mib_exceed_200_mb_per_s(
    session, session_workdir, big_file, tmp_path
):
    path, sha = big_file
    uploaded = []

    def upload():
        with path.open("rb") as fh:
            uploaded.append(session.upload_file(session_workdir, f"big{len(uploaded)}.bin", fh))

    up, up_all = _best_rate(upload)
    file = uploaded[-1]
    assert file.size == SIZE and file.sha256 == sha
    for extra in uploaded[:-1]:
        session.delete_resource(extra, immediate=True)

    out = tmp_path / "down.bin"

    def download():
        with out.open("wb") as fh:
            assert session.download_file(file, fh) == SIZE

    down, down_all = _best_rate(download)

    def replace():
        with path.open("rb") as fh:
            assert session.replace_file_content(file, fh).size == SIZE

    put, put_all = _best_rate(replace)
    print(f"\nMB/s upload {up_all}, download {down_all}, replace {put_all}")
    out.unlink()
    session.delete_resource(file, immediate=True)
    assert up > MIN_MB_PER_S, f"upload {up_all} MB/s"
    assert down > MIN_MB_PER_S, f"download {down_all} MB/s"
    assert put > MIN_MB_PER_S, f"replace {put_all} MB/s"
