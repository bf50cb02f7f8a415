"""The mount's open-file table: every open file, by handle number and by mount path.

Every open file of the mount is a *handle* on a *node* (orionfs.fs.staged.StagedFile); all handles
on one mount path share the node, so that what one descriptor writes, another reads, and ``stat``
shows the staged size. No FUSE imports, no errnos.

Writes (shared/design.md "Write rules"):
- are staged (StagedFile) and uploaded on ``flush`` (every ``close()``), ``fsync`` and, failing
  those, ``release``; an upload error is raised to the caller, so it reaches ``close()``/``fsync()``;
- a new file (``create``) exists only locally until its first upload; renamed before that, it is
  uploaded under its final name (over an existing File, with that File's id: no moment where neither
  exists);
- where the last upload attempt fails at ``release``, the staged data is moved to the recovery folder
  and an ERROR log line names the file there;
- a handle names its node, not a path: the node follows renames (``moved``), and one unlinked or
  renamed over while open is first downloaded (``keep_local``), then moved to libfuse's hidden name
  (``hide``) where its descriptors keep reading and writing it; it is never uploaded again;
- a table told to stop (``stop``: the mount process ends without waiting for a stalled server)
  makes no more requests; unsaved data goes to the recovery folder (``abandon``);
- staged data is journaled in a persistent staging folder (orionfs.fs.journal); what a mount
  that died left there is handled by ``recover_leftovers`` (orionfs.fs.recovery); a file written
  in order from offset 0 streams to Orion while it is written (orionfs.fs.streaming);
- write-back (orionfs.fs.writeback): ``flush`` acknowledges (journals) instead of uploading, the
  last ``release`` queues the upload and the node stays (``stat``, ``open``, reads see it) until
  stored; ``fsync`` uploads at once; ``close`` waits for the queue; after ``stop``, acknowledged
  data stays in the staging folder for the next mount.

Reads of a file not staged go through the mount's read path (orionfs.fs.reads): the data cache, a
per-handle read-ahead on a pool and a memory budget shared by the whole mount, ``keep_cache``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orionfs.exceptions import OrionConnectionError, UnknownHandle
from orionfs.fs.entry import Entry
from orionfs.fs.journal import StagingArea
from orionfs.fs.reads import FETCH_WORKERS, FileReader, ReadPath
from orionfs.fs.recovery import BackgroundRecovery, StoreFor
from orionfs.fs.staged import ContentStore, StagedFile
from orionfs.fs.streaming import STREAM_MIN_SIZE, StreamSlots
from orionfs.fs.writeback import UploadStats, WriteBackOptions, WriteBackQueue

logger = logging.getLogger(__name__)

#: Mode of the staging folder (it holds the user's data while it is written).
STAGING_DIR_MODE: int = 0o700


class StoppedStore:
    """The store of a table told to stop (``OpenFileTable.stop``): every call fails at once, so
    nothing more waits on the server; unsaved data then goes to the recovery folder."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise OrionConnectionError("the mount is stopping: no more requests to the server")

    read = create_file = replace_content = unlink = set_mtime = _refuse
    create_file_stream = replace_content_stream = _refuse


@dataclass
class Handle:
    """One open file description of the mount."""

    node: StagedFile
    flags: int
    writable: bool
    append: bool
    reader: FileReader | None = None
    keep_cache: bool = False  # opened with the kernel's pages of the file kept


class OpenFileTable:
    """Every open file of the mount, keyed by handle number and by mount path. Thread-safe."""

    def __init__(
        self,
        store: ContentStore,
        staging_dir: Path | None = None,
        recovery_dir: Path | None = None,
        fetch_workers: int = FETCH_WORKERS,
        reads: ReadPath | None = None,
        *,
        root: str = "/",
        write_back: WriteBackOptions | None = None,
        streaming: bool = True,
    ) -> None:
        self._store = store
        # ``staging_dir``: the account's persistent staging folder (the mount's own folder is made
        # in it); None: a private temp folder, removed at close.
        self.staging = StagingArea(Path(staging_dir) if staging_dir else None, root=root)
        self.staging_dir = self.staging.dir
        self.recovery_dir = Path(recovery_dir or default_recovery_dir())
        self._streams = (
            StreamSlots() if streaming and hasattr(store, "create_file_stream") else None
        )
        self._queue: WriteBackQueue[StagedFile] | None = None
        if write_back is not None:
            self._queue = WriteBackQueue(
                upload=lambda node: node.upload(self._store),
                done=self._uploaded,
                give_up=self._upload_failed,
                size=lambda node: node.size,
                delay=write_back.delay,
                workers=write_back.workers,
                deadline=write_back.deadline,
            )
        self._stopped = False
        self._recovery: BackgroundRecovery | None = None
        #: Called with the upload stats while ``close`` waits for the write-back queue.
        self.progress: Callable[[UploadStats], None] | None = None
        self._lock = threading.Lock()
        self._handles: dict[int, Handle] = {}
        self._nodes: dict[str, StagedFile] = {}
        self._next_fh = 1
        self._reads = reads or ReadPath(store, fetch_workers=fetch_workers)

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

    def node_of(self, fh: int) -> StagedFile | None:
        """The node of handle ``fh``; None for no such handle (e.g. a folder's)."""
        with self._lock:
            handle = self._handles.get(fh)
        return None if handle is None else handle.node

    def pending_children(self, folder: str) -> dict[str, StagedFile]:
        """New, never-uploaded files directly in ``folder``: name -> node."""
        return {name: node for name, node in self.children(folder).items() if node.pending}

    def children(self, folder: str) -> dict[str, StagedFile]:
        """Open files directly in ``folder`` (new or not; not the unlinked ones): name -> node."""
        prefix = folder.rstrip("/") + "/"
        with self._lock:
            return {
                path[len(prefix) :]: node
                for path, node in self._nodes.items()
                if not node.detached and path.startswith(prefix) and "/" not in path[len(prefix) :]
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

    def open(
        self, path: str, entry: Entry | None, flags: int, writable: bool, truncate: bool
    ) -> int:
        """Open an existing remote file (or join its open node); returns the handle number."""
        with self._lock:
            node = self._nodes.get(path)
            if node is None:
                node = StagedFile(path, entry, self.staging)
                self._nodes[path] = node
        fh = self._attach(node, flags, writable, bool(flags & os.O_APPEND))
        if not node.pending and not node.dirty:
            self.handle(fh).keep_cache = self._reads.opened(path, node.entry, truncate)
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
            node = StagedFile(path, None, self.staging)
            self._nodes[path] = node
        return self._attach(node, flags, True, bool(flags & os.O_APPEND))

    def release(self, fh: int) -> None:
        """Close a handle. The last handle of a node uploads what is still unsaved; where that
        fails, the data goes to the recovery folder (logged) and the error is raised. With
        write-back the upload is queued instead, and the node stays until it is stored."""
        with self._lock:
            handle = self._handles.pop(fh, None)
            if handle is None:
                raise UnknownHandle(fh)
            node = handle.node
            node.refs -= 1
            last = node.refs == 0
            queued = last and self._queue is not None and node.dirty and not node.detached
            queued = queued and node.kept is None and self._nodes.get(node.path) is node
            if last and not queued and self._nodes.get(node.path) is node:
                del self._nodes[node.path]
        if not handle.writable:
            self._reads.closed(node.path, node.entry, handle.reader, handle.keep_cache)
        elif handle.reader is not None:
            handle.reader.close()
        if not last:
            return
        if queued:
            self._enqueue(node)
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
        """Read through a handle: the staged copy where there is one, else ranged requests.

        Takes no lock of the node: a read never waits for a write's download or an upload of the
        same file (the remote content is what the staged copy started from until a write lands,
        and a write lands only once the copy is loaded).
        """
        handle = self.handle(fh)
        node = handle.node
        if node.loaded or node.kept is not None:
            return node.read(offset, size)
        return self._reader(handle).read(offset, size)

    def _reader(self, handle: Handle) -> FileReader:
        """The handle's reader, made once even when reads of the handle race."""
        with self._lock:
            if handle.reader is None:
                entry = handle.node.entry
                assert entry is not None
                handle.reader = self._reads.reader(entry)
            return handle.reader

    def keeps_cache(self, fh: int) -> bool:
        """Whether handle ``fh`` was opened with the kernel's pages of its file kept."""
        return self.handle(fh).keep_cache

    def write(self, fh: int, data: bytes | memoryview, offset: int) -> int:
        """Write through a handle (at the end of the file for ``O_APPEND``). A file written in
        order from offset 0 starts streaming to Orion once it is large enough."""
        handle = self.handle(fh)
        node = handle.node
        with node.lock:
            if handle.append:
                node.ensure_loaded(self._store)
                offset = node.size
            written = node.write(self._store, data, offset)
            streams = self._streams
            if streams is not None and node.stream is None and node.size >= STREAM_MIN_SIZE:
                if not self._stopped:
                    node.start_stream(self._store, streams.start)  # type: ignore[arg-type]
            return written

    def truncate_handle(self, fh: int, length: int) -> None:
        """``ftruncate``: cut or extend the node of an open handle, wherever its name went (renamed,
        unlinked): the handle, not the path, names the file."""
        self.handle(fh).node.truncate(self._store, length)

    def truncate(self, path: str, length: int, entry: Entry | None) -> None:
        """Truncate an open node, or (not open) a remote file: staged, cut, uploaded at once."""
        node = self.node_at(path)
        if node is not None:
            node.truncate(self._store, length)
            if self._queue is not None and node.refs == 0:
                self._enqueue(node)  # closed, waiting for its upload: it waits anew
            return
        if entry is None:
            raise UnknownHandle(path)
        temp = StagedFile(path, entry, self.staging)
        try:
            temp.truncate(self._store, length)
            temp.upload(self._store)
        finally:
            temp.discard()

    def flush(self, fh: int) -> None:
        """Every ``close()``: upload the handle's node if it changed; raises the upload error.
        With write-back: acknowledge it instead (journaled; uploaded after the last close)."""
        handle = self.handle(fh)
        if not (handle.writable or handle.node.dirty):
            return
        if self._queue is not None and handle.node.dirty:
            handle.node.acknowledge()
            return
        handle.node.upload(self._store)

    def fsync(self, fh: int) -> None:
        """Upload the handle's node now if it changed (write-back too: returns once stored);
        raises the upload error."""
        node = self.handle(fh).node
        node.upload(self._store)
        if self._queue is not None and not node.dirty:
            self._queue.cancel(node)

    # -- write-back --------------------------------------------------------------------------------

    def _enqueue(self, node: StagedFile) -> None:
        """Queue the upload of a node whose last handle closed (a node already streaming goes
        at once: its request is open)."""
        assert self._queue is not None
        try:
            node.acknowledge()
        except OSError as error:
            logger.error("cannot journal %s before its upload: %s", node.path, error)
        node.park()
        self._queue.submit(node, delay=0.0 if node.stream is not None else None)

    def _uploaded(self, node: StagedFile) -> None:
        """A queued upload is done: the node goes unless it was opened or written again."""
        with self._lock:
            gone = node.refs == 0 and not node.dirty
            if gone and self._nodes.get(node.path) is node:
                del self._nodes[node.path]
            again = node.refs == 0 and node.dirty and not node.detached
        if gone:
            node.discard()
        elif again and self._queue is not None:  # changed during its upload, no handle open
            self._enqueue(node)

    def _upload_failed(self, node: StagedFile, error: BaseException) -> None:
        """A queued upload finally failed: keep the data in the recovery folder (logged); after
        ``stop``, leave it journaled in the staging folder for the next mount instead."""
        if self._stopped:
            logger.warning(
                "%s: not uploaded, the mount is stopping (the next mount uploads it)", node.path
            )
            return
        dest = node.keep_for_recovery(self.recovery_dir)
        logger.error("upload of %s failed (%s); its data is kept in %s", node.path, error, dest)
        with self._lock:
            gone = node.refs == 0
            if gone and self._nodes.get(node.path) is node:
                del self._nodes[node.path]
        if gone:
            node.discard()

    def upload_stats(self) -> UploadStats:
        """Pending and failed uploads now (write-back queue, streams, leftovers to recover)."""
        stats = self._queue.stats() if self._queue is not None else UploadStats()
        streaming = self._streams.running if self._streams is not None else 0
        leftovers = self._recovery.pending if self._recovery is not None else 0
        return dataclasses.replace(stats, streaming=streaming, leftovers=leftovers)

    def recover_leftovers(self, store_for: StoreFor | None = None) -> threading.Thread | None:
        """Handle, in a background thread, what mounts of this account that died left staged
        (orionfs.fs.recovery): acknowledged files are uploaded through ``store_for(root)``
        (default: this table's store for its own root), the others go to the recovery folder.
        Logged; counted in ``upload_stats().leftovers`` until done. Returns the thread (None if
        there was nothing to do)."""
        claim = self.staging.claim_leftovers()
        if not claim.leftovers:
            claim.release()
            return None
        root, store = self.staging.root, self._store

        def own_root(wanted: str) -> Any:
            return store if wanted == root else None

        self._recovery = BackgroundRecovery(claim, store_for or own_root, self.recovery_dir)
        return self._recovery.thread

    def materialize(self, path: str) -> Entry | None:
        """Upload a new file not uploaded yet (a tag write needs an Orion item to tag); returns
        the node's Entry (None: no open node at ``path``). Raises the upload error."""
        node = self.node_at(path)
        if node is None:
            return None
        if node.pending:
            node.upload(self._store)
        return node.entry

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
            node.abort_stream()
            with node.lock:
                node.detached = True
                node.journal()  # an unlinked file's data is nobody's
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
        node.abort_stream()
        with node.lock:
            node.detached = True
            node.journal()
        return node

    def moved(self, old: str, new: str) -> None:
        """Follow a rename of a file or folder: nodes at ``old`` (or below it) move to ``new``."""
        prefix = old.rstrip("/") + "/"
        moved = []
        with self._lock:
            for path in list(self._nodes):
                if path == old or path.startswith(prefix):
                    node = self._nodes.pop(path)
                    node.path = new + path[len(old) :]
                    self._nodes[node.path] = node
                    moved.append(node)
        for node in moved:
            node.abort_stream()
            with node.lock:
                node.journal()

    def rename_pending(self, old: str, new: str, target: Entry | None) -> None:
        """Rename a never-uploaded file locally: it will be uploaded under ``new`` (replacing the
        File ``target`` there with the same id, if given)."""
        self.detach(new)
        with self._lock:
            node = self._nodes.pop(old)
            node.path = new
            self._nodes[new] = node
        node.abort_stream()
        with node.lock:
            if target is not None and target.is_file:
                node.entry = target
                node.loaded = True
                node.dirty = True
            node.journal()

    def save_open(self) -> int:
        """Upload every open file that holds unsaved data now (the mount process was told to
        stop while files are open: what was written so far must not wait for their close).
        Returns how many could not be uploaded; each failure is logged, none is raised."""
        with self._lock:
            nodes = [n for n in self._nodes.values() if n.dirty and not n.detached]
        failed = 0
        for node in nodes:
            try:
                node.upload(self._store)
            except Exception as error:
                failed += 1
                logger.error("stopping: upload of open file %s failed: %s", node.path, error)
        return failed

    def stop(self) -> None:
        """No more requests to the server from the table (reads, downloads, uploads fail at once
        with OrionConnectionError): the mount process is ending without waiting for the server.
        Files still open are then kept in the recovery folder on their last close; acknowledged
        ones (write-back) stay journaled in the staging folder, for the next mount."""
        self._stopped = True
        self._store = StoppedStore()
        self._reads.stop()
        if self._queue is not None:
            self._queue.stop()

    def abandon(self, lock_wait: float = 0.5) -> list[tuple[str, Path]]:
        """The mount process must end now (``orionfs unmount`` while calls wait on a stalled
        server): keep every unsaved staged file in the recovery folder, without uploading and
        without waiting for calls in flight (at most ``lock_wait`` seconds per file). Returns
        (mount path, recovery file) pairs; each is also logged. Acknowledged files (write-back)
        stay journaled in the staging folder instead: the next mount uploads them."""
        with self._lock:
            nodes = [n for n in self._nodes.values() if n.dirty and not n.detached]
        left = [n.path for n in nodes if n.acked]
        if left:
            logger.warning(
                "mount stopped with %d acknowledged files not uploaded (%s): they stay in %s, "
                "for the next mount", len(left), ", ".join(left[:5]), self.staging_dir,
            )  # fmt: skip
        nodes = [n for n in nodes if not n.acked]
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
                    node.unjournal()  # nor by the next mount
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
        to stop): their data must not vanish with the staging folder. With write-back, it first
        waits for the queue (``progress`` is told how it goes); after ``stop`` it does not, and
        acknowledged files stay journaled in the staging folder, for the next mount.
        """
        self._drain()
        with self._lock:
            nodes = list(self._nodes.values())
            self._nodes.clear()
            self._handles.clear()
        for node in nodes:
            if node.acked and self._stopped and node.dirty and not node.detached:
                continue  # journaled: the next mount uploads it
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
        self._reads.close()
        left = self.staging.close()
        if left:
            logger.warning(
                "%d acknowledged files are not uploaded; they stay in %s and the next mount of "
                "this account (or `orionfs recover`) uploads them", len(left), self.staging_dir,
            )  # fmt: skip

    def _drain(self) -> None:
        """Unmount with write-back: upload everything queued now and wait (``progress`` told)."""
        if self._queue is not None:
            if not self._stopped:
                self._queue.drain(progress=self.progress)
            self._queue.stop()


def default_recovery_dir() -> Path:
    """Where staged data whose upload finally failed is kept: ``$XDG_DATA_HOME/orionfs/recovery``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "orionfs" / "recovery"
