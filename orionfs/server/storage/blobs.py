"""Contents on disk: uploads in progress (DATA_DIR/tmp) and complete blobs (DATA_DIR/blobs).

Blob files are named from item ids and a version only (``blobs/ab/<id>.<v>``), never from
user-chosen names. An upload becomes a blob by one ``os.replace`` once it is complete, so nobody
ever reads half a blob.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import stat
import threading
import uuid
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

_WRITE_CHUNK = 1 << 20
_UPLOAD_QUEUE = 64  # chunks in flight to the writer thread


def private_folder(path: Path) -> None:
    """Create ``path`` (and parents) mode 0700, or tighten an existing one to 0700 (logged)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != 0o700:
        logger.warning("folder %s was mode %04o; making it 0700", path, mode)
        path.chmod(0o700)


class Upload:
    """A blob being received: a temp file in DATA_DIR/tmp plus its size, sha256 and lines.

    Write chunks with :meth:`write` (or :meth:`write_nowait` from an event loop), then hand it to a
    ``commit_*`` method of the storage (which renames it into place) or :meth:`discard` it. Nobody
    sees it before the commit. Hashing and disk writes happen in a worker thread (both release the
    GIL), so that the caller receiving the body overlaps with them; :meth:`close` waits for the
    worker.
    """

    def __init__(self, tmp_dir: Path, count_lines: bool = False) -> None:
        self.path = tmp_dir / f"upload-{uuid.uuid4().hex}.part"
        self._count_lines = count_lines
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: BinaryIO = os.fdopen(fd, "wb", buffering=_WRITE_CHUNK)
        self._sha = hashlib.sha256()
        self.size = 0
        self._newlines = 0
        self._last = b""
        self._error: BaseException | None = None
        self._closed = False
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_UPLOAD_QUEUE)
        self._worker = threading.Thread(target=self._drain, name="upload-writer", daemon=True)
        self._worker.start()

    def _drain(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so that write() never blocks forever
            try:
                self._file.write(data)
                self._sha.update(data)
            except BaseException as exc:  # reported by write() or close()
                self._error = exc
        try:
            self._file.close()
        except BaseException as exc:
            self._error = self._error or exc

    def _enqueue(self, data: bytes, block: bool) -> bool:
        if self._error is not None:
            raise self._error
        if not data:
            return True
        if self._closed:
            raise ValueError("write to a closed upload")
        try:
            self._queue.put(bytes(data), block=block)
        except queue.Full:
            return False
        self.size += len(data)
        if self._count_lines:  # only datasets have records
            self._newlines += data.count(b"\n")
            self._last = data[-1:]
        return True

    def write(self, data: bytes) -> None:
        """Append ``data``, waiting while the writer is behind; raises OSError if a write failed."""
        self._enqueue(data, block=True)

    def write_nowait(self, data: bytes) -> bool:
        """Append ``data`` if the writer has room (True), else append nothing (False).

        Never waits, so an event loop may call it; raises like :meth:`write`.
        """
        return self._enqueue(data, block=False)

    @property
    def sha256(self) -> str:
        """Hex sha256 of everything written (closes the upload)."""
        self.close()
        return self._sha.hexdigest()

    @property
    def records(self) -> int:
        """Number of lines (a last line without newline counts); 0 unless ``count_lines``."""
        return self._newlines + (1 if self._last not in (b"", b"\n") else 0)

    def close(self) -> None:
        """Flush and close the temp file (kept on disk); raises the worker's error, if any."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._worker.join()
        if self._error is not None:
            raise self._error

    def discard(self) -> None:
        """Close and remove the temp file."""
        try:
            self.close()
        except Exception:
            logger.debug("discarding a failed upload", exc_info=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class BlobStore:
    """The blob and temp folders of a data dir (0700, blobs 0600); a crash's uploads are removed."""

    def __init__(self, data_dir: Path) -> None:
        self.blob_dir = data_dir / "blobs"
        self.tmp_dir = data_dir / "tmp"
        for folder in (self.blob_dir, self.tmp_dir):
            private_folder(folder)
        for stale in self.tmp_dir.glob("upload-*.part"):
            stale.unlink(missing_ok=True)  # interrupted uploads never became visible

    def new_upload(self, count_lines: bool = False) -> Upload:
        """Start receiving a blob into a temp file (``count_lines`` for a dataset's records)."""
        return Upload(self.tmp_dir, count_lines)

    def place(self, upload: Upload, item_id: int, version: int) -> str:
        """Close ``upload`` and move it into place as version ``version`` of item ``item_id``.

        Returns the blob's path relative to the blob folder (what the items table stores).
        """
        upload.close()
        rel = f"{item_id % 256:02x}/{item_id}.{version}"
        target = self.blob_dir / rel
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(upload.path, target)
        return rel

    def unlink(self, rel: str | None) -> None:
        """Remove a blob (nothing for None; a warning if it was already gone)."""
        if rel:
            try:
                os.unlink(self.blob_dir / rel)
            except FileNotFoundError:
                logger.warning("blob %s was already gone", rel)

    def open(self, rel: str) -> tuple[BinaryIO, int]:
        """Open a blob for reading: (binary file the caller closes, size)."""
        handle = open(self.blob_dir / rel, "rb")  # noqa: SIM115 - the caller closes it
        return handle, os.fstat(handle.fileno()).st_size
