"""The persistent data cache (``DataCache``): file content in chunks on disk, one cache per server
and user, shared by their mounts and kept across remounts.

Where: ``$XDG_CACHE_HOME/orionfs/data/<host>-<user>-<hash>/`` (default ``~/.cache/orionfs``),
folders 0700 and files 0600:

- ``chunks/<xx>/<key>.<n>``: chunk ``n`` (``CHUNK_SIZE`` bytes, the last one shorter) of one
  version of one item. The key is the item's identity and version, ``<kind>-<id>-<size>-<ctime>``
  (orionfs.fs.entry.Entry), so a file whose content changed has another key: a changed file is
  never served from an older copy, and an unchanged one costs no request, after a remount too.
  ``xx`` spreads the items over 256 folders.
- ``chunks/<xx>/<key>.all``: the whole content of one version, where the mount adopted a file it
  uploaded (``adopt`` with ``take``: the staged file itself, linked, not copied); chunk ``n`` is
  at ``n * CHUNK_SIZE`` in it. A chunk file, where both exist, is read first (the same bytes).
- ``index.db``: sizes and last uses, for ``du`` and eviction (orionfs.fs.cacheindex).
- ``owner``: the server and user, for ``orionfs cache du``.
- ``sessions/<pid>``: one per mount using the cache; one left by a process that died means the
  index may miss chunks it wrote, so it is reconciled with the files.

Sparse: only the chunks read are fetched. Crash safety: a chunk is written to a temporary name and
renamed, so a chunk file is complete or absent; a chunk whose size is not the expected one (a
crash of the machine before the data reached the disk) is deleted and fetched again. Two mounts of
one account write identical chunks under identical names (the rename is atomic), and share the
index through SQLite's locking.

No FUSE imports. Every disk error is logged and turns into a miss: the cache never fails a read.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import stat
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orionfs.client import wire
from orionfs.fs.cacheindex import ChunkIndex, FileRow, Usage

__all__ = [
    "CHUNK_SIZE",
    "DataCache",
    "cache_dir",
    "default_max_size",
    "default_root",
    "version_key",
]

logger = logging.getLogger(__name__)

#: Bytes per chunk: what a random small read fetches, and the unit of eviction.
CHUNK_SIZE: int = 1 << 20
DIR_MODE: int = 0o700
FILE_MODE: int = 0o600
#: The default maximum size: this fraction of the free disk space ...
DEFAULT_FREE_FRACTION: float = 0.1
#: ... at most this much ...
DEFAULT_MAX_CAP: int = 10 << 30
#: ... and at least this much (where the disk has twice that free).
DEFAULT_MAX_FLOOR: int = 256 << 20
#: A file larger than this fraction of the maximum is not cached (it would evict everything).
CACHEABLE_FRACTION: float = 0.5
#: The name suffix of a version's content kept whole (``adopt`` of a file given up).
WHOLE: str = "all"

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TMP = re.compile(r"\A\..*\.(\d+)\.\d+\.tmp\Z")


def default_root() -> Path:
    """``$XDG_CACHE_HOME/orionfs/data`` (default ``~/.cache/orionfs/data``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orionfs" / "data"


def cache_dir(root: Path, url: str, username: str) -> Path:
    """The cache folder of one server and user under ``root``: a readable name and a hash."""
    host = url.split("://", 1)[-1].strip("/")
    digest = hashlib.sha256(f"{url.rstrip('/')}\0{username}".encode()).hexdigest()[:12]
    readable = _SAFE.sub("_", f"{host}-{username}")[:80]
    return root / f"{readable}-{digest}"


def default_max_size(directory: Path) -> int:
    """A tenth of the free space of the disk holding ``directory``, within 256 MiB .. 10 GiB (and
    never more than half of what is free)."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return DEFAULT_MAX_FLOOR
    size = min(DEFAULT_MAX_CAP, max(DEFAULT_MAX_FLOOR, int(free * DEFAULT_FREE_FRACTION)))
    return max(1 << 20, min(size, free // 2))


def version_key(entry: Any) -> str | None:
    """The cache key of one version of an item's content; None where the content cannot be keyed
    safely (no id, no modification time, a kind without content)."""
    if entry.id is None or entry.ctime_ns <= 0 or entry.kind not in wire.DOWNLOADABLE_TYPES:
        return None
    kind, ident, size, changed = entry.version
    return f"{kind}-{ident}-{size}-{changed}"


def _temporary_name(final: Path) -> Path:
    """Where ``final`` is written before its rename: hidden, and naming this process and thread
    (``_TMP``: the next mount deletes those of a process that died)."""
    return final.with_name(f".{final.name}.{os.getpid()}.{threading.get_native_id()}.tmp")


def _size_of(key: str) -> int:
    """The content size a version key names (``<kind>-<id>-<size>-<ctime>``)."""
    return int(key.rsplit("-", 2)[1])


def _item_prefix(key: str) -> str:
    kind, ident = key.split("-", 2)[:2]
    return f"{kind}-{ident}-"


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DataCache:
    """The chunk store of one cache folder. Thread-safe.

    ``max_size``: bytes kept at most (least recently used chunks go first). ``clock``: the
    wall-clock time of uses (persisted). ``owner``: a line naming the server and user.
    """

    def __init__(
        self,
        directory: Path,
        max_size: int,
        chunk_size: int = CHUNK_SIZE,
        clock: Callable[[], float] = time.time,
        owner: str = "",
        flush_interval: float | None = None,
    ) -> None:
        if max_size <= 0:
            raise ValueError(f"the cache size must be positive, not {max_size}")
        self.directory = Path(directory)
        self.max_size = max_size
        self.chunk_size = chunk_size
        self._chunks = self.directory / "chunks"
        self._sessions = self.directory / "sessions"
        for folder in (self.directory, self._chunks, self._sessions):
            _private_dir(folder)
        if owner:
            self._write_owner(owner)
        unclean = self._take_over_sessions()
        extra = {} if flush_interval is None else {"flush_interval": flush_interval}
        self.index = ChunkIndex(
            self.directory / "index.db", max_size, self._delete_files, clock, **extra
        )
        self._lock = threading.Lock()
        self.hits = self.misses = self.writes = 0
        self._warned = False
        if unclean or self.index.rebuilt:
            self.index.reconcile(self._shards(), self._files_of)

    # -- keys and sizes ----------------------------------------------------------------------------

    key = staticmethod(version_key)

    def cacheable(self, entry: Any) -> bool:
        """Whether the content of ``entry`` is kept here (keyed, not empty, not too large)."""
        return (
            version_key(entry) is not None and 0 < entry.size <= self.max_size * CACHEABLE_FRACTION
        )

    def chunk_length(self, size: int, index: int) -> int:
        """The length of chunk ``index`` of a file of ``size`` bytes."""
        return max(0, min(self.chunk_size, size - index * self.chunk_size))

    def name(self, key: str, index: int | str) -> str:
        """The chunk's name in the index: ``<xx>/<key>.<index>`` (``<key>.all``: the whole)."""
        shard = zlib.crc32(_item_prefix(key).encode()) & 0xFF
        return f"{shard:02x}/{key}.{index}"

    # -- chunks ------------------------------------------------------------------------------------

    def read(
        self, key: str, index: int, expected: int, offset: int = 0, length: int = -1
    ) -> bytes | None:
        """Bytes ``[offset, offset + length)`` of a chunk of ``expected`` bytes (to its end for
        ``length < 0``); None if it is not here (or was damaged: then it is deleted)."""
        name = self.name(key, index)
        path = self._chunks / name
        size, at = expected, offset  # of the file opened, and where the bytes are in it
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            name = self.name(key, WHOLE)
            path = self._chunks / name
            size, at = _size_of(key), index * self.chunk_size + offset
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                with self._lock:
                    self.misses += 1
                return None
        try:
            if os.fstat(fd).st_size != size:
                self._discard(name, "its size is wrong")
                return None
            n = expected - offset if length < 0 else min(length, expected - offset)
            data = os.pread(fd, n, at) if n > 0 else b""
        except OSError as error:
            self._warn("cannot read %s: %s", path, error)
            return None
        finally:
            os.close(fd)
        if len(data) != n:
            self._discard(name, "it is shorter than its size")
            return None
        self.index.used(name, size)
        with self._lock:
            self.hits += 1
        return data

    def has(self, key: str, index: int, expected: int) -> bool:
        """Whether the chunk is here with its expected size (no read)."""
        try:
            return os.stat(self._chunks / self.name(key, index)).st_size == expected
        except OSError:
            pass
        try:
            return os.stat(self._chunks / self.name(key, WHOLE)).st_size == _size_of(key)
        except OSError:
            return False

    def write(self, key: str, index: int, data: Any) -> bool:
        """Store a chunk (a bytes-like object, complete); False if it could not be stored."""
        name = self.name(key, index)

        def fill(fd: int) -> None:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view) :]

        return self._store(name, len(memoryview(data).cast("B")), fill)

    def _store(self, name: str, size: int, fill: Callable[[int], None]) -> bool:
        final = self._chunks / name
        tmp = _temporary_name(final)
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
            except FileNotFoundError:
                _private_dir(final.parent)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
            try:
                fill(fd)
            finally:
                os.close(fd)
            os.rename(tmp, final)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self._warn("cannot store a chunk in %s: %s", self.directory, error)
            return False
        self.index.added(name, size)
        with self._lock:
            self.writes += 1
        return True

    def adopt(self, entry: Any, source: Any, size: int | None = None, take: bool = False) -> bool:
        """Make ``source`` (a path, a file descriptor, or a file object with one) the cached copy
        of ``entry``'s content: what the mount just uploaded is then read back with no request.
        Called after a successful upload; other versions of the item are dropped. Returns whether
        it was adopted (False for content not cacheable here or a source that is not a regular
        file of the entry's size).

        ``take``: the caller gives the file up (it never changes it again): a path of exactly the
        entry's size on the cache's disk becomes the whole cached copy by a hard link (no byte
        copied, nothing more written to disk); otherwise, or where linking fails, it is copied
        chunk by chunk."""
        key = version_key(entry)
        if key is None or not self.cacheable(entry) or (size is not None and size != entry.size):
            return False
        if take and isinstance(source, str | os.PathLike) and self._link_whole(key, source, entry):
            self._drop_other_versions(key)
            return True
        opened = None
        try:
            if isinstance(source, int):
                fd = source
            elif isinstance(source, str | os.PathLike):
                fd = opened = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            else:
                fd = source.fileno()
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size < entry.size:
                return False
            for index in range(-(-entry.size // self.chunk_size)):
                length = self.chunk_length(entry.size, index)
                offset = index * self.chunk_size
                stored = self._store(
                    self.name(key, index),
                    length,
                    lambda out, at=offset, n=length: _copy(fd, out, at, n),
                )
                if not stored:
                    return False
        except (OSError, AttributeError, ValueError) as error:
            logger.debug("not adopted into the data cache: %s", error)
            return False
        finally:
            if opened is not None:
                os.close(opened)
        self._drop_other_versions(key)
        return True

    def _link_whole(self, key: str, source: str | os.PathLike[str], entry: Any) -> bool:
        """Hard-link ``source`` (exactly the entry's size) as ``<key>.all``; False if it cannot
        be (another disk, another size, a link refused): the caller copies instead."""
        name = self.name(key, WHOLE)
        final = self._chunks / name
        tmp = _temporary_name(final)
        try:
            info = os.stat(source)
            if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
                return False
            _private_dir(final.parent)
            os.link(source, tmp)
            os.chmod(tmp, FILE_MODE)
            os.rename(tmp, final)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            logger.debug("adopted by copy, not by link (%s): %s", source, error)
            return False
        self.index.added(name, entry.size)
        with self._lock:
            self.writes += 1
        return True

    def _drop_other_versions(self, key: str) -> None:
        shard = self.name(key, 0).split("/")[0]
        self.index.drop_versions(f"{shard}/{_item_prefix(key)}", f"{shard}/{key}.")

    def rekey(self, old: Any, new: Any) -> bool:
        """The item's content did not change, only its version (a time or a name this mount set,
        which moves the server's change time): its cached chunks become the new version's
        (renamed, not copied). Returns whether anything was moved."""
        before, after = version_key(old), version_key(new)
        if before is None or after is None or before == after or old.size != new.size:
            return False
        moved = False
        indexes: list[int | str] = [WHOLE, *range(-(-new.size // self.chunk_size))]
        for index in indexes:
            source, target = self.name(before, index), self.name(after, index)
            try:
                os.rename(self._chunks / source, self._chunks / target)
            except FileNotFoundError:
                continue  # a chunk never read: sparse
            except OSError as error:
                self._warn("cannot move a chunk in %s: %s", self.directory, error)
                continue
            self.index.forget(source)
            length = new.size if index == WHOLE else self.chunk_length(new.size, int(index))
            self.index.added(target, length)
            moved = True
        return moved

    def _discard(self, name: str, why: str) -> None:
        logger.warning("data cache: chunk %s dropped (%s)", name, why)
        with contextlib.suppress(OSError):
            os.unlink(self._chunks / name)
        self.index.forget(name)

    def _delete_files(self, names: list[str]) -> None:
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(self._chunks / name)

    def _warn(self, message: str, *args: Any) -> None:
        """A disk problem: logged once as a warning, then at debug level."""
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        logger.log(level, message, *args)

    # -- the whole cache ---------------------------------------------------------------------------

    def usage(self) -> Usage:
        """Bytes and chunks held (as the index counts them)."""
        return self.index.usage()

    def clear(self) -> None:
        """Delete every chunk (mounts using the cache just miss, then fetch again)."""
        self._delete_files(self.index.clear())
        for shard in self._shards():
            for name, _, _ in self._files_of(shard):
                with contextlib.suppress(OSError):
                    os.unlink(self._chunks / name)

    def flush(self) -> None:
        """Write the index's queued updates and evict as needed, now (for tests and ``du``)."""
        self.index.flush()

    def close(self) -> None:
        """Write the index and stop its thread; this mount no longer uses the cache."""
        self.index.close()
        with contextlib.suppress(OSError):
            os.unlink(self._sessions / str(os.getpid()))

    # -- internals ---------------------------------------------------------------------------------

    def _write_owner(self, owner: str) -> None:
        path = self.directory / "owner"
        with contextlib.suppress(OSError):
            if path.exists() and path.read_text(encoding="utf-8").strip() == owner:
                return
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(owner + "\n")

    def _take_over_sessions(self) -> bool:
        """Mark this process as a user of the cache; True if a user died without closing it."""
        unclean = False
        for marker in self._sessions.iterdir():
            try:
                pid = int(marker.name)
            except ValueError:
                continue
            if pid != os.getpid() and not _pid_alive(pid):
                unclean = True
                with contextlib.suppress(OSError):
                    marker.unlink()
        fd = os.open(
            self._sessions / str(os.getpid()), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
        )
        os.close(fd)
        return unclean

    def _shards(self) -> list[str]:
        try:
            return sorted(p.name for p in self._chunks.iterdir() if p.is_dir())
        except OSError:
            return []

    def _files_of(self, shard: str) -> Iterator[FileRow]:
        """The chunk files of a shard; temporary files of dead processes are deleted."""
        try:
            entries = list(os.scandir(self._chunks / shard))
        except OSError:
            return
        for item in entries:
            if item.name.startswith("."):
                match = _TMP.match(item.name)
                if match and not _pid_alive(int(match.group(1))):
                    with contextlib.suppress(OSError):
                        os.unlink(item.path)
                continue
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                yield f"{shard}/{item.name}", info.st_size, info.st_mtime


def _copy(source: int, target: int, offset: int, length: int) -> None:
    """``length`` bytes of ``source`` from ``offset`` to the start of ``target`` (in the kernel
    where it can)."""
    done = 0
    try:
        while done < length:
            n = os.copy_file_range(source, target, length - done, offset + done, done)
            if n <= 0:
                break
            done += n
    except OSError:
        pass
    while done < length:
        data = os.pread(source, min(length - done, 1 << 20), offset + done)
        if not data:
            raise OSError(f"the source ended after {offset + done} bytes")
        os.pwrite(target, data, done)
        done += len(data)
