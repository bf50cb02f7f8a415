"""pandas and Dask on ``orion://`` URLs, against the real local server (profile ``local``).

pandas: read_csv / to_csv, read_parquet / to_parquet with pyarrow. Dask: ``dd.read_csv`` of a glob,
with the threaded scheduler and on a local ``distributed`` cluster (an in-process worker, and one
worker process, which gets the filesystem pickled).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

pd = pytest.importorskip("pandas")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("pyarrow")
distributed = pytest.importorskip("distributed")

from orionfs.fsspec import OrionFileSystem  # noqa: E402


@pytest.fixture
def fs(server: Any, config_dir: Path) -> Iterator[OrionFileSystem]:
    """The instance pandas and Dask get for ``orion://local@...`` (fsspec caches instances by
    their options, so the cache is cleared first: "local" of another test's server is another
    server)."""
    OrionFileSystem.clear_instance_cache()
    fs = fsspec.filesystem("orion", profile="local")
    yield fs
    OrionFileSystem.clear_instance_cache()
    fs.session.close()


@pytest.fixture
def work(fs: OrionFileSystem, server: Any) -> Iterator[str]:
    """A fresh folder in My Data, as an ``orion://local@...`` URL."""
    path = f"project/{server.project_id}/user/{server.username}/frames-{uuid.uuid4().hex[:8]}"
    fs.mkdir(path)
    yield f"orion://local@{path}"
    fs.rm(path, recursive=True)


def _frame(rows: int, offset: int = 0) -> Any:
    return pd.DataFrame(
        {
            "id": range(offset, offset + rows),
            "name": [f"mol-{i}" for i in range(offset, offset + rows)],
            "score": [i / 7 for i in range(offset, offset + rows)],
        }
    )


def test_pandas_csv_round_trip_through_orion_urls(work: str) -> None:
    frame = _frame(500)
    frame.to_csv(f"{work}/scores.csv", index=False)
    back = pd.read_csv(f"{work}/scores.csv")
    pd.testing.assert_frame_equal(back, frame)


def test_pandas_reads_with_storage_options(server: Any, fs: OrionFileSystem) -> None:
    home = f"project/{server.project_id}/user/{server.username}"
    frame = pd.read_csv(
        f"orion://{home}/results/run1/scores.csv",
        storage_options={"url": server.url, "token": server.token},
    )
    assert list(frame["molecule"]) == ["aspirin", "caffeine", "ibuprofen"]


def test_pandas_parquet_round_trip_with_pyarrow(work: str, fs: OrionFileSystem) -> None:
    frame = _frame(2000)
    frame.to_parquet(f"{work}/scores.parquet", engine="pyarrow", index=False)
    assert fs.info(f"{work}/scores.parquet")["size"] > 0
    back = pd.read_parquet(f"{work}/scores.parquet", engine="pyarrow")
    pd.testing.assert_frame_equal(back, frame)
    columns = pd.read_parquet(f"{work}/scores.parquet", engine="pyarrow", columns=["score"])
    pd.testing.assert_frame_equal(columns, frame[["score"]])


def _csv_parts(fs: OrionFileSystem, work: str, parts: int, rows: int) -> Any:
    frames = [_frame(rows, offset=i * rows) for i in range(parts)]
    for i, frame in enumerate(frames):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        fs.pipe(f"{work}/part-{i}.csv", buffer.getvalue().encode())
    fs.pipe(f"{work}/notes.txt", b"not a csv")
    return pd.concat(frames, ignore_index=True)


def test_dask_read_csv_glob_with_the_threaded_scheduler(work: str, fs: OrionFileSystem) -> None:
    expected = _csv_parts(fs, work, parts=3, rows=400)
    frame = dd.read_csv(f"{work}/*.csv", blocksize=4096)
    assert frame.npartitions > 3  # split within files, by ranged reads
    result = frame.compute(scheduler="threads").reset_index(drop=True)
    pd.testing.assert_frame_equal(result, expected, check_dtype=False)


def _on_cluster(work: str, processes: bool) -> Any:
    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=processes,
        dashboard_address=None,
        memory_limit="512MiB" if processes else None,
    )
    try:
        with distributed.Client(cluster) as client:
            frame = dd.read_csv(f"{work}/*.csv", blocksize=8192)
            return client.compute(frame).result().reset_index(drop=True)
    finally:
        cluster.close()


def test_dask_read_csv_glob_on_a_local_distributed_cluster(work: str, fs: OrionFileSystem) -> None:
    expected = _csv_parts(fs, work, parts=2, rows=300)
    pd.testing.assert_frame_equal(_on_cluster(work, processes=False), expected, check_dtype=False)


def test_dask_read_csv_on_a_worker_process_that_unpickles_the_filesystem(
    work: str, fs: OrionFileSystem
) -> None:
    expected = _csv_parts(fs, work, parts=2, rows=300)
    pd.testing.assert_frame_equal(_on_cluster(work, processes=True), expected, check_dtype=False)
