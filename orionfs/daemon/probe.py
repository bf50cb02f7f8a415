"""What the mount process knows about itself, gathered in one place for ``orionfs status`` (through
the status file) and the metrics endpoint.

``MountProbe.snapshot()`` reads, without a request to the server and without a FUSE call:
- the FUSE calls by operation and the metadata cache's counters (``OrionFS.stats()``,
  orionfs.fuse.stats.MountStats: what ``getfattr -n user.orion.stats`` shows);
- the uploads (``OpenFileTable.upload_stats()``, orionfs.fs.writeback.UploadStats: queued,
  uploading, retrying, failed, streaming, leftovers), where the table has them;
- the data cache's size (its index, orionfs.fs.cacheindex), where the mount has one;
- the files in the recovery folder (data whose upload finally failed, kept there);
- the log records by level since the start (orionfs.daemon.logs.LogCounts).
A source that is not there gives None, never a made-up number.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The mount process's numbers at one moment (None: no source for it in this mount)."""

    taken: float
    uptime: float
    #: FUSE operation -> (calls, errors, seconds).
    operations: Mapping[str, tuple[int, int, float]] = field(default_factory=dict)
    in_flight: int = 0
    #: libfuse worker threads that served a call (each keeps a Python thread state).
    workers: int = 0
    cache: Mapping[str, Any] = field(default_factory=dict)
    uploads: Mapping[str, int] | None = None
    data_cache_bytes: int | None = None
    recovery_files: int | None = None
    log_counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Log records at ERROR or above since the start."""
        return int(self.log_counts.get("ERROR", 0)) + int(self.log_counts.get("CRITICAL", 0))

    @property
    def pending_uploads(self) -> int | None:
        """Files written and closed (or being written as a stream) whose upload has not finished
        (None: this mount has no upload queue to ask)."""
        if self.uploads is None:
            return None
        return int(self.uploads.get("queued", 0)) + int(self.uploads.get("streaming", 0))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the status file)."""
        data = asdict(self)
        data["operations"] = {k: list(v) for k, v in self.operations.items()}
        data["errors"] = self.errors
        data["pending_uploads"] = self.pending_uploads
        return data


class MountProbe:
    """Reads the numbers of one mount process (thread-safe: every source locks itself)."""

    def __init__(
        self,
        operations: Any,
        recovery_dir: Path | None = None,
        data_cache_index: Path | None = None,
        log_counts: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.operations = operations
        self.recovery_dir = recovery_dir
        self.data_cache_index = data_cache_index
        self._log_counts = log_counts or dict
        self._started = time.monotonic()

    def snapshot(self) -> Snapshot:
        """The numbers now."""
        stats = self.operations.stats()
        return Snapshot(
            taken=time.time(),
            uptime=time.monotonic() - self._started,
            operations={
                name: (count.calls, count.errors, count.seconds)
                for name, count in stats.operations.items()
            },
            in_flight=stats.in_flight,
            workers=stats.workers,
            cache=asdict(stats.cache),
            uploads=self._uploads(),
            data_cache_bytes=self._data_cache_bytes(),
            recovery_files=self._recovery_files(),
            log_counts=dict(self._log_counts()),
        )

    def _uploads(self) -> dict[str, int] | None:
        upload_stats = getattr(self.operations.files, "upload_stats", None)
        if upload_stats is None:
            return None
        return {key: int(value) for key, value in upload_stats().to_dict().items()}

    def _data_cache_bytes(self) -> int | None:
        if self.data_cache_index is None or not self.data_cache_index.exists():
            return None
        from orionfs.fs.cacheindex import read_usage

        try:
            return read_usage(self.data_cache_index).bytes
        except Exception as error:  # noqa: BLE001 - sqlite3 or OS errors: no number this time
            logger.debug("data cache size unknown: %s", error)
            return None

    def _recovery_files(self) -> int | None:
        folder = self.recovery_dir or getattr(self.operations.files, "recovery_dir", None)
        if folder is None:
            return None
        count = 0
        with contextlib.suppress(FileNotFoundError):
            for _dirpath, _dirs, files in os.walk(folder):
                count += len(files)
        return count
