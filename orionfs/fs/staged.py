"""One open file's staged state (``StagedFile``): its remote Entry and its local copy.

Writes are staged in a local temp file; the original content is downloaded into it only when a
write or a truncate to a non-zero length needs it (``O_TRUNC`` never downloads). ``upload`` creates
the file (a new one) or replaces its content (same id). Where an upload finally fails, the staged
data goes to the recovery folder (``keep_for_recovery``): from then on the node holds no data, and
every read or write of it fails with DataKeptForRecovery, so nothing more is written where the
user does not look.

Locking: ``lock`` serializes changes of the staged copy (write, truncate, download, upload). Reads
of a loaded copy take no lock (``os.pread`` on the temp file), so a reader on another descriptor
never waits for an upload or a download of the same file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO, Protocol

from orionfs.exceptions import DataKeptForRecovery
from orionfs.fs.entry import Entry

#: Bytes per ranged request when a file is downloaded whole into its staging file.
STAGE_DOWNLOAD_CHUNK: int = 8 << 20
#: Modes of the recovery folder and of the files kept there (they hold the user's data).
RECOVERY_DIR_MODE: int = 0o700
RECOVERY_FILE_MODE: int = 0o600


class ContentStore(Protocol):
    """What staged files need from the cache (``orionfs.fs.cache.CachedSession``)."""

    def read(self, entry: Entry, offset: int, length: int) -> bytes: ...

    def create_file(self, path: str, fileobj: BinaryIO, size: int) -> Entry: ...

    def replace_content(self, path: str, fileobj: BinaryIO, size: int) -> Entry: ...

    def unlink(self, path: str) -> None: ...


class StagedFile:
    """One open mount path: its remote entry (None until a new file's first upload) and, once
    anything is written, the local temp file holding its full new content."""

    def __init__(self, path: str, entry: Entry | None, staging_dir: Path) -> None:
        self.path = path
        self.entry = entry
        self.lock = threading.RLock()
        self.refs = 0
        self.detached = False  # unlinked or replaced while open: never uploaded again
        self.dirty = entry is None  # a new file must be created even if nothing is written
        self.loaded = entry is None  # the temp file holds the full content
        self.size = entry.size if entry else 0
        self.mtime_ns = time.time_ns()
        self.last_error: BaseException | None = None
        self.kept: Path | None = None  # where the data went to the recovery folder
        self._staging_dir = staging_dir
        self._fd: int | None = None
        self._tmp_path: Path | None = None

    @property
    def pending(self) -> bool:
        """True for a new file never uploaded (it exists only in this mount)."""
        return self.entry is None

    def _temp_fd(self) -> int:
        if self.kept is not None:
            raise DataKeptForRecovery(
                f"{self.path}: its staged data was moved to {self.kept} (the upload failed)"
            )
        if self._fd is None:
            fd, name = tempfile.mkstemp(prefix="staged-", dir=self._staging_dir)
            self._fd, self._tmp_path = fd, Path(name)
        return self._fd

    def ensure_loaded(self, store: ContentStore, limit: int | None = None) -> None:
        """Download the remote content into the temp file (only the first ``limit`` bytes if
        given, the rest being cut anyway). Caller holds ``lock``."""
        if self.loaded:
            return
        fd = self._temp_fd()
        total = self.size if limit is None else min(self.size, limit)
        offset = 0
        assert self.entry is not None
        while offset < total:
            data = store.read(self.entry, offset, min(STAGE_DOWNLOAD_CHUNK, total - offset))
            if not data:
                break
            os.pwrite(fd, data, offset)
            offset += len(data)
        os.ftruncate(fd, offset)
        self.size = offset
        self.loaded = True

    def read(self, offset: int, length: int) -> bytes:
        """Bytes from the temp file (only valid once ``loaded``). Takes no lock: a read does not
        wait for an upload or a download of the same file."""
        fd, size = self._temp_fd(), self.size
        if offset >= size:
            return b""
        return os.pread(fd, min(length, size - offset), offset)

    def write(self, store: ContentStore, data: bytes, offset: int) -> int:
        """Write into the staged copy; returns the bytes written."""
        with self.lock:
            self.ensure_loaded(store)
            written = os.pwrite(self._temp_fd(), data, offset)
            self.size = max(self.size, offset + written)
            self.dirty = True
            self.mtime_ns = time.time_ns()
            return written

    def truncate(self, store: ContentStore, length: int) -> None:
        """Cut or extend the staged copy to ``length`` bytes."""
        with self.lock:
            self._temp_fd()
            if length == 0:
                self.loaded = True  # nothing of the old content survives: no download
            else:
                self.ensure_loaded(store, limit=length)
            os.ftruncate(self._temp_fd(), length)
            self.size = length
            self.dirty = True
            self.mtime_ns = time.time_ns()

    def upload(self, store: ContentStore) -> None:
        """Upload the staged content if it changed (create, or replace with the same id).

        Raises the cache's exception on failure and keeps the data staged (``dirty``).
        """
        with self.lock:
            if not self.dirty or self.detached:
                return
            self._temp_fd()
            assert self._tmp_path is not None
            try:
                # A reader of its own (own file offset), so concurrent preads are unaffected.
                with open(self._tmp_path, "rb") as fileobj:
                    if self.entry is None or not self.entry.is_file:
                        entry = store.create_file(self.path, fileobj, self.size)
                    else:
                        entry = store.replace_content(self.path, fileobj, self.size)
            except BaseException as exc:
                self.last_error = exc
                raise
            self.entry = entry
            self.dirty = False
            self.last_error = None

    def keep_for_recovery(self, recovery_dir: Path) -> Path:
        """Move the staged data to the recovery folder; returns where it went. The node keeps no
        data afterwards: its descriptors' reads and writes fail (DataKeptForRecovery)."""
        with self.lock:
            if self.kept is not None:
                return self.kept
            if self._tmp_path is None:
                fd = self._temp_fd()  # a new empty file: keep an empty one, for the record
                os.ftruncate(fd, 0)
            assert self._tmp_path is not None and self._fd is not None
            os.ftruncate(self._fd, self.size)
            dest = self._recovery_path(recovery_dir)
            shutil.move(str(self._tmp_path), dest)
            os.chmod(dest, RECOVERY_FILE_MODE)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd, self._tmp_path = None, None
            self.dirty = False
            self.loaded = False
            self.kept = dest
            return dest

    def copy_for_recovery(self, recovery_dir: Path) -> Path:
        """Copy the staged data to the recovery folder without taking ``lock`` (an upload in
        flight may hold it for a whole request timeout): for a process about to end at once."""
        dest = self._recovery_path(recovery_dir)
        tmp = self._tmp_path
        if tmp is not None:
            shutil.copyfile(tmp, dest)
        with open(dest, "ab") as fileobj:  # the staged size, not what the temp file holds
            fileobj.truncate(self.size)
        os.chmod(dest, RECOVERY_FILE_MODE)
        return dest

    def _recovery_path(self, recovery_dir: Path) -> Path:
        recovery_dir.mkdir(parents=True, exist_ok=True, mode=RECOVERY_DIR_MODE)
        os.chmod(recovery_dir, RECOVERY_DIR_MODE)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        safe = self.path.strip("/").replace("/", "__") or "root"
        dest = recovery_dir / f"{stamp}-{os.getpid()}-{safe}"
        counter = 1
        while dest.exists():
            counter += 1
            dest = recovery_dir / f"{stamp}-{os.getpid()}-{safe}.{counter}"
        return dest

    def discard(self) -> None:
        """Close and delete the temp file."""
        with self.lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
            if self._tmp_path is not None:
                with contextlib.suppress(OSError):
                    self._tmp_path.unlink()
                self._tmp_path = None
