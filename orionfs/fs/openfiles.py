"""The mount's open-file table: staged writes and read-ahead reads (no FUSE imports, no errnos).

Every open file of the mount is a *handle* on a *node*; all handles on one mount path share the
node, so that what one descriptor writes, another reads, and ``stat`` shows the staged size.

Writes (shared/design.md "Write rules"):
- are staged in a local temp file (``StagedFile``); the original content is downloaded into it only
  when a write or a truncate to a non-zero length needs it (``O_TRUNC`` never downloads);
- are uploaded on ``flush`` (every ``close()``), ``fsync`` and, failing those, ``release``; an upload
  error is raised to the caller, so it reaches ``close()``/``fsync()``;
- a new file (``create``) exists only locally until its first upload; renamed before that, it is
  uploaded under its final name (over an existing File, with that File's id: no moment where neither
  exists);
- where the last upload attempt fails at ``release``, the staged data is moved to the recovery folder
  and an ERROR log line names the file there;
- a handle names its node, not a path: the node follows renames (``moved``), and one unlinked or
  renamed over while open is first downloaded (``keep_local``), then moved to libfuse's hidden name
  (``hide``) where its descriptors keep reading and writing it; it is never uploaded again;
- a table told to stop (``stop``: the mount process ends without waiting for a stalled server)
  makes no more requests; unsaved data goes to the recovery folder (``abandon``).

Reads of a file not staged go through ``ReadAhead``: ranged requests whose size doubles (128 KiB, or
the kernel's read if larger, up to 8 MiB) while the reads stay sequential, up to 64 MiB fetched ahead,
in parallel; the first byte waits for one small request only, never for the whole download. Reads are
answered with views of the fetched segments (no copy before the kernel's buffer).

The table talks to the cache through the small ``ContentStore`` protocol (a subset of
``orionfs.fs.cache.CachedSession``).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from orionfs.exceptions import OrionConnectionError, UnknownHandle

logger = logging.getLogger(__name__)

Entry = dict[str, Any]

#: First ranged request of a reader: what the first byte waits for.
MIN_SEGMENT: int = 128 << 10
#: Largest ranged request of a sequential reader (segments double up to it).
MAX_SEGMENT: int = 8 << 20
#: Bytes kept in flight ahead of a sequential reader.
READ_AHEAD_WINDOW: int = 64 << 20
#: Seconds a failed ranged request answers reads of its range with the same error.
FAILURE_MEMORY: float = 1.0
#: Concurrent ranged requests of the whole mount (read-ahead and staging downloads).
FETCH_WORKERS: int = 8
#: Bytes per ranged request when a file is downloaded whole into its staging file.
STAGE_DOWNLOAD_CHUNK: int = 8 << 20


class ContentStore(Protocol):
    """What the open-file table needs from the cache (``orionfs.fs.cache.CachedSession``)."""

    def read(self, entry: Entry, offset: int, length: int) -> bytes: ...

    def create_file(self, path: str, fileobj: BinaryIO, size: int) -> Entry: ...

    def replace_content(self, path: str, fileobj: BinaryIO, size: int) -> Entry: ...

    def unlink(self, path: str) -> None: ...


class StoppedStore:
    """The store of a table told to stop (``OpenFileTable.stop``): every call fails at once, so
    nothing more waits on the server; unsaved data then goes to the recovery folder."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise OrionConnectionError("the mount is stopping: no more requests to the server")

    read = create_file = replace_content = unlink = _refuse


class ReadAhead:
    """Sequential-read accelerator over ranged requests of one remote file.

    The file is fetched in *segments*. The first read fetches one small segment (``min_segment``)
    holding it, so the first byte waits for that much only. While reads stay sequential, segments
    are scheduled back to back ahead of the reader, each twice the size of the one before (up to
    ``max_segment``), until ``window`` bytes beyond the read are in flight; they are fetched in
    parallel by the shared pool. A read elsewhere (a seek) starts over with a small segment there.
    Segments behind the reader are dropped, so memory stays within about ``window`` bytes.

    Thread-safe; the kernel may have several reads of one file in flight (libfuse is
    multi-threaded and reads ahead asynchronously), so "sequential" tolerates small disorder.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        pool: ThreadPoolExecutor,
        min_segment: int = MIN_SEGMENT,
        max_segment: int = MAX_SEGMENT,
        window: int = READ_AHEAD_WINDOW,
    ) -> None:
        self._fetch = fetch
        self.size = size
        self._pool = pool
        self._min = min_segment
        self._max = max_segment
        self._window = window
        self._lock = threading.Lock()
        self._segments: dict[int, tuple[int, Future[bytes]]] = {}  # start -> (length, data)
        self._starts: list[int] = []  # sorted
        self._next = 0  # end of the sequential run scheduled so far
        self._segment = min_segment  # size of the next segment of the run
        self._reads = 0
        # The last failed fetch: (start, end, when, error). The kernel retries a failed read-ahead
        # at once with a smaller read; answering that from here keeps a dead server's cost to one
        # deadline per read() instead of two.
        self._failure: tuple[int, int, float, BaseException] | None = None

    def _add(self, start: int, length: int) -> None:
        length = min(length, self.size - start)
        if length <= 0 or start in self._segments:
            return
        self._segments[start] = (length, self._pool.submit(self._fetch, start, length))
        bisect.insort(self._starts, start)

    def _covering(self, offset: int) -> int | None:
        index = bisect.bisect_right(self._starts, offset) - 1
        if index >= 0:
            start = self._starts[index]
            if offset < start + self._segments[start][0]:
                return start
        return None

    def _drop_before(self, offset: int) -> None:
        while self._starts:
            start = self._starts[0]
            length, future = self._segments[start]
            if start + length > offset:
                break
            future.cancel()
            del self._segments[start]
            self._starts.pop(0)

    def _reset(self, offset: int) -> None:
        for _, future in self._segments.values():
            future.cancel()
        self._segments.clear()
        self._starts.clear()
        self._next = offset
        self._segment = self._min

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` (fewer at the end of the file).

        Raises whatever the fetch raised (the failed segment is forgotten, so a retry refetches it).
        """
        if offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        end = offset + length
        with self._lock:
            failure = self._failure
            if failure is not None:
                f_start, f_end, when, error = failure
                if time.monotonic() - when < FAILURE_MEMORY and f_start <= offset < f_end:
                    raise error
                self._failure = None
            self._reads += 1
            covered = self._covering(offset) is not None
            # sequential: inside what is scheduled, or just past it (reads may come out of order)
            in_run = covered or self._next <= offset <= self._next + self._max
            if not in_run:
                self._reset(offset)
            # the segments holding this read
            while self._next < end:
                self._add(self._next, max(self._segment, end - self._next))
                self._next = min(self.size, self._next + max(self._segment, end - self._next))
                if self._reads > 1:
                    self._segment = min(self._segment * 2, self._max)
            # read ahead of a sequential reader (not on a first, possibly lone, read)
            if self._reads > 1 and in_run:
                while self._next < min(self.size, end + self._window):
                    self._add(self._next, self._segment)
                    self._next = min(self.size, self._next + self._segment)
                    self._segment = min(self._segment * 2, self._max)
            self._drop_before(offset - self._max)
            needed: list[tuple[int, int, Future[bytes]]] = []
            position = offset
            while position < end:
                start = self._covering(position)
                if start is None:  # a segment was cut short by a failure: fetch the gap
                    self._add(position, end - position)
                    start = position
                seg_length, future = self._segments[start]
                needed.append((start, seg_length, future))
                position = start + seg_length
        parts: list[bytes] = []
        for start, _, future in needed:
            try:
                data = future.result()
            except BaseException as error:
                with self._lock:
                    if start in self._segments and self._segments[start][1] is future:
                        seg_length = self._segments[start][0]
                        del self._segments[start]
                        self._starts.remove(start)
                        self._next = min(self._next, start)
                        self._failure = (start, start + seg_length, time.monotonic(), error)
                raise
            lo = max(offset, start) - start
            hi = min(end, start + len(data)) - start
            # a view, not a copy: the kernel's buffer is filled straight from the segment
            parts.append(memoryview(data)[lo:hi] if (lo, hi) != (0, len(data)) else data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Cancel what is still queued and drop the buffered segments."""
        with self._lock:
            self._reset(0)


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
        self.size = int(entry.get("size") or 0) if entry else 0
        self.mtime_ns = time.time_ns()
        self.last_error: BaseException | None = None
        self._staging_dir = staging_dir
        self._fd: int | None = None
        self._tmp_path: Path | None = None

    @property
    def pending(self) -> bool:
        """True for a new file never uploaded (it exists only in this mount)."""
        return self.entry is None

    def _temp_fd(self) -> int:
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
        """Bytes from the temp file (only valid once ``loaded``)."""
        if offset >= self.size:
            return b""
        return os.pread(self._temp_fd(), min(length, self.size - offset), offset)

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
                    if self.entry is None or self.entry.get("resource_type") != "file":
                        entry = store.create_file(self.path, fileobj, self.size)
                    else:
                        entry = store.replace_content(self.path, fileobj, self.size)
            except BaseException as exc:
                self.last_error = exc
                raise
            self.entry = entry
            self.dirty = False
            self.last_error = None

    def keep_for_recovery(self, recovery_dir: Path) -> Path | None:
        """Move the staged data to the recovery folder; returns where it went."""
        with self.lock:
            if self._tmp_path is None:
                fd = self._temp_fd()  # a new empty file: keep an empty one, for the record
                os.ftruncate(fd, 0)
            assert self._tmp_path is not None
            dest = self._recovery_path(recovery_dir)
            shutil.move(str(self._tmp_path), dest)
            self._tmp_path = None
            self.dirty = False
            return dest

    def copy_for_recovery(self, recovery_dir: Path) -> Path:
        """Copy the staged data to the recovery folder without taking ``lock`` (an upload in
        flight may hold it for a whole request timeout): for a process about to end at once."""
        dest = self._recovery_path(recovery_dir)
        tmp = self._tmp_path
        if tmp is None:
            dest.write_bytes(b"")
        else:
            shutil.copyfile(tmp, dest)
            with open(dest, "r+b") as fileobj:  # the staged size, not what the temp file holds
                fileobj.truncate(self.size)
        return dest

    def _recovery_path(self, recovery_dir: Path) -> Path:
        recovery_dir.mkdir(parents=True, exist_ok=True)
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


@dataclass
class Handle:
    """One open file description of the mount."""

    node: StagedFile
    flags: int
    writable: bool
    append: bool
    reader: ReadAhead | None = None


class OpenFileTable:
    """Every open file of the mount, keyed by handle number and by mount path. Thread-safe."""

    def __init__(
        self,
        store: ContentStore,
        staging_dir: Path | None = None,
        recovery_dir: Path | None = None,
        fetch_workers: int = FETCH_WORKERS,
    ) -> None:
        self._store = store
        self._owned_staging = staging_dir is None
        self.staging_dir = Path(staging_dir or tempfile.mkdtemp(prefix="orionfs-staging-"))
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.recovery_dir = Path(recovery_dir or default_recovery_dir())
        self._lock = threading.Lock()
        self._handles: dict[int, Handle] = {}
        self._nodes: dict[str, StagedFile] = {}
        self._next_fh = 1
        self._pool = ThreadPoolExecutor(
            max_workers=fetch_workers, thread_name_prefix="orionfs-read"
        )

    # -- lookup ------------------------------------------------------------------------------------

    def node_at(self, path: str) -> StagedFile | None:
        """The open node of a mount path, if any."""
        with self._lock:
            return self._nodes.get(path)

    def handle(self, fh: int) -> Handle:
        """The handle ``fh``; raises UnknownHandle."""
        with self._lock:
            try:
                return self._handles[fh]
            except KeyError:
                raise UnknownHandle(fh) from None

    def pending_children(self, folder: str) -> dict[str, StagedFile]:
        """New, never-uploaded files directly in ``folder``: name -> node."""
        prefix = folder.rstrip("/") + "/"
        with self._lock:
            return {
                path[len(prefix) :]: node
                for path, node in self._nodes.items()
                if node.pending
                and not node.detached
                and path.startswith(prefix)
                and "/" not in path[len(prefix) :]
            }

    def has_nodes_below(self, folder: str) -> bool:
        """True if a new, never-uploaded file lives somewhere below ``folder``."""
        prefix = folder.rstrip("/") + "/"
        with self._lock:
            return any(
                p.startswith(prefix) and n.pending and not n.detached
                for p, n in self._nodes.items()
            )

    # -- open / create / release -------------------------------------------------------------------

    def _attach(self, node: StagedFile, flags: int, writable: bool, append: bool) -> int:
        with self._lock:
            fh = self._next_fh
            self._next_fh += 1
            node.refs += 1
            self._handles[fh] = Handle(node=node, flags=flags, writable=writable, append=append)
            return fh

    def open(self, path: str, entry: Entry, flags: int, writable: bool, truncate: bool) -> int:
        """Open an existing remote file (or join its open node); returns the handle number."""
        with self._lock:
            node = self._nodes.get(path)
            if node is None:
                node = StagedFile(path, entry, self.staging_dir)
                self._nodes[path] = node
        fh = self._attach(node, flags, writable, bool(flags & os.O_APPEND))
        if truncate:
            try:
                node.truncate(self._store, 0)
            except BaseException:
                self.release(fh)
                raise
        return fh

    def create(self, path: str, flags: int) -> int:
        """Create a new local-only file at ``path`` (uploaded on flush); returns the handle."""
        with self._lock:
            old = self._nodes.get(path)
            if old is not None:
                old.detached = True
            node = StagedFile(path, None, self.staging_dir)
            self._nodes[path] = node
        return self._attach(node, flags, True, bool(flags & os.O_APPEND))

    def release(self, fh: int) -> None:
        """Close a handle. The last handle of a node uploads what is still unsaved; where that
        fails, the data goes to the recovery folder (logged) and the error is raised."""
        with self._lock:
            handle = self._handles.pop(fh, None)
            if handle is None:
                raise UnknownHandle(fh)
            node = handle.node
            node.refs -= 1
            last = node.refs == 0
            if last and self._nodes.get(node.path) is node:
                del self._nodes[node.path]
        if handle.reader is not None:
            handle.reader.close()
        if not last:
            return
        try:
            if node.dirty and not node.detached:
                error = node.last_error
                if error is None:
                    try:
                        node.upload(self._store)
                    except BaseException as exc:  # noqa: BLE001 - reported below, then re-raised
                        error = exc
                if error is not None:
                    dest = node.keep_for_recovery(self.recovery_dir)
                    logger.error(
                        "upload of %s failed (%s); its data is kept in %s", node.path, error, dest
                    )
                    raise error
        finally:
            node.discard()

    # -- data --------------------------------------------------------------------------------------

    def read(self, fh: int, size: int, offset: int) -> bytes:
        """Read through a handle: the staged copy where there is one, else ranged requests."""
        handle = self.handle(fh)
        node = handle.node
        with node.lock:
            if node.loaded:
                return node.read(offset, size)
            entry = node.entry
        assert entry is not None
        if handle.reader is None:
            handle.reader = ReadAhead(
                lambda off, n: self._store.read(entry, off, n),
                int(entry.get("size") or 0),
                self._pool,
            )
        return handle.reader.read(offset, size)

    def write(self, fh: int, data: bytes, offset: int) -> int:
        """Write through a handle (at the end of the file for ``O_APPEND``)."""
        handle = self.handle(fh)
        node = handle.node
        with node.lock:
            if handle.append:
                node.ensure_loaded(self._store)
                offset = node.size
            return node.write(self._store, data, offset)

    def truncate_handle(self, fh: int, length: int) -> None:
        """``ftruncate``: cut or extend the node of an open handle, wherever its name went (renamed,
        unlinked): the handle, not the path, names the file."""
        self.handle(fh).node.truncate(self._store, length)

    def truncate(self, path: str, length: int, entry: Entry | None) -> None:
        """Truncate an open node, or (not open) a remote file: staged, cut, uploaded at once."""
        node = self.node_at(path)
        if node is not None:
            node.truncate(self._store, length)
            return
        if entry is None:
            raise UnknownHandle(path)
        temp = StagedFile(path, entry, self.staging_dir)
        try:
            temp.truncate(self._store, length)
            temp.upload(self._store)
        finally:
            temp.discard()

    def flush(self, fh: int) -> None:
        """Upload the handle's node if it changed; raises the upload error."""
        handle = self.handle(fh)
        if handle.writable or handle.node.dirty:
            handle.node.upload(self._store)

    # -- namespace changes -------------------------------------------------------------------------

    def detach(self, path: str) -> StagedFile | None:
        """Forget the node at ``path`` (unlinked, or replaced by a rename): its handles stay usable
        but it is never uploaded again. Returns the node.

        The caller makes sure the node no longer needs its remote content (``keep_local``) before
        the remote file goes away: the open descriptors still read and write it (POSIX).
        """
        with self._lock:
            node = self._nodes.pop(path, None)
        if node is not None:
            with node.lock:
                node.detached = True
        return node

    def keep_local(self, path: str) -> StagedFile | None:
        """Before the remote file behind the open node at ``path`` is deleted or replaced: download
        its content into the staging file, so that descriptors still open on it keep reading and
        writing it locally. Raises the download error (then nothing must be deleted)."""
        node = self.node_at(path)
        if node is not None and not node.pending:
            with node.lock:
                node.ensure_loaded(self._store)
        return node

    def hide(self, path: str, hidden: str) -> StagedFile | None:
        """libfuse's answer to the unlink of an open file: the node moves to a hidden name that only
        this table knows (reads, writes, fstat and ftruncate on its descriptors keep working); it is
        never uploaded again and goes away with its last handle. Call ``keep_local`` first."""
        with self._lock:
            node = self._nodes.pop(path, None)
            if node is None:
                return None
            node.path = hidden
            self._nodes[hidden] = node
        with node.lock:
            node.detached = True
        return node

    def moved(self, old: str, new: str) -> None:
        """Follow a rename of a file or folder: nodes at ``old`` (or below it) move to ``new``."""
        prefix = old.rstrip("/") + "/"
        with self._lock:
            for path in list(self._nodes):
                if path == old or path.startswith(prefix):
                    node = self._nodes.pop(path)
                    node.path = new + path[len(old) :]
                    self._nodes[node.path] = node

    def rename_pending(self, old: str, new: str, target: Entry | None) -> None:
        """Rename a never-uploaded file locally: it will be uploaded under ``new`` (replacing the
        File ``target`` there with the same id, if given)."""
        self.detach(new)
        with self._lock:
            node = self._nodes.pop(old)
            node.path = new
            self._nodes[new] = node
        with node.lock:
            if target is not None and target.get("resource_type") == "file":
                node.entry = target
                node.loaded = True
                node.dirty = True

    def stop(self) -> None:
        """No more requests to the server from the table (reads, downloads, uploads fail at once
        with OrionConnectionError): the mount process is ending without waiting for the server.
        Files still open are then kept in the recovery folder on their last close."""
        self._store = StoppedStore()

    def abandon(self, lock_wait: float = 0.5) -> list[tuple[str, Path]]:
        """The mount process must end now (``orionfs unmount`` while calls wait on a stalled
        server): keep every unsaved staged file in the recovery folder, without uploading and
        without waiting for calls in flight (at most ``lock_wait`` seconds per file). Returns
        (mount path, recovery file) pairs; each is also logged."""
        with self._lock:
            nodes = [n for n in self._nodes.values() if n.dirty and not n.detached]
        kept = []
        for node in nodes:
            locked = node.lock.acquire(timeout=lock_wait)
            try:
                if locked:
                    if not node.dirty or node.detached:
                        continue
                    dest = node.keep_for_recovery(self.recovery_dir)
                else:
                    dest = node.copy_for_recovery(self.recovery_dir)
                    node.detached = True  # kept: not uploaded by close() either
            except OSError as error:
                logger.error("cannot keep the staged data of %s: %s", node.path, error)
                continue
            finally:
                if locked:
                    node.lock.release()
            logger.error("mount stopped with %s unsaved; its data is kept in %s", node.path, dest)
            kept.append((node.path, dest))
        return kept

    def close(self) -> None:
        """Save what is still unsaved (upload, else the recovery folder), stop the fetch workers,
        and remove the staging folder if this table made it.

        Called when the filesystem ends with files still open (e.g. the mount process was told
        to stop): their data must not vanish with the staging folder.
        """
        with self._lock:
            nodes = list(self._nodes.values())
            self._nodes.clear()
            self._handles.clear()
        for node in nodes:
            if node.dirty and not node.detached:
                try:
                    node.upload(self._store)
                except Exception as error:  # noqa: BLE001 - kept and logged, nothing to raise to
                    dest = node.keep_for_recovery(self.recovery_dir)
                    logger.error(
                        "upload of %s failed at unmount (%s); its data is kept in %s",
                        node.path,
                        error,
                        dest,
                    )
            node.discard()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._owned_staging:
            shutil.rmtree(self.staging_dir, ignore_errors=True)


def default_recovery_dir() -> Path:
    """Where staged data whose upload finally failed is kept: ``$XDG_DATA_HOME/orionfs/recovery``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "orionfs" / "recovery"
