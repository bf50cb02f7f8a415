"""The data cache's index (``ChunkIndex``): every chunk file's size and last use, in SQLite, for
``du`` and least-recently-used eviction.

The chunk files are the truth about content (orionfs.fs.datacache); the index is bookkeeping.
Readers never wait for it: uses and additions are queued in memory and written by one background
thread in batches (one transaction each), which also evicts the least recently used chunks once
the total exceeds ``max_size`` (down to ``LOW_WATER`` of it), deleting their rows first and their
files after. SQLite in WAL mode with a busy timeout lets two mounts of one account share an index.

Where the index and the files disagree (a mount killed between a rename and the next batch; a
database that had to be rebuilt), ``reconcile`` makes the index match the files again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChunkIndex", "FileRow", "Usage", "read_usage"]

logger = logging.getLogger(__name__)

#: Version of the index's schema (``PRAGMA user_version``); another one is rebuilt.
SCHEMA_VERSION: int = 1
#: Seconds between batches of the background thread.
FLUSH_INTERVAL: float = 1.0
#: Eviction brings the total down to this fraction of the maximum.
LOW_WATER: float = 0.9
#: Seconds SQLite waits for another mount's transaction.
BUSY_TIMEOUT: float = 10.0
#: Rows fetched per eviction query.
EVICT_BATCH: int = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    used REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_use ON chunks(used);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    bytes INTEGER NOT NULL,
    chunks INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS chunks_added AFTER INSERT ON chunks BEGIN
    UPDATE totals SET bytes = bytes + new.size, chunks = chunks + 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS chunks_removed AFTER DELETE ON chunks BEGIN
    UPDATE totals SET bytes = bytes - old.size, chunks = chunks - 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS chunks_resized AFTER UPDATE OF size ON chunks BEGIN
    UPDATE totals SET bytes = bytes - old.size + new.size WHERE id = 0;
END;
"""
_UPSERT = (
    "INSERT INTO chunks(name, size, used) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
    "used = max(used, excluded.used), size = excluded.size"
)


#: A chunk file as ``reconcile`` sees it: name, size, modification time.
FileRow = tuple[str, int, float]


@dataclass(frozen=True)
class Usage:
    """What a data cache holds: bytes and chunk files (as its index counts them)."""

    bytes: int
    chunks: int


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the index at ``path`` (created 0600 with its schema if absent).

    Raises sqlite3.DatabaseError for a file that is not a usable index.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            conn.executescript(
                "DROP TABLE IF EXISTS chunks; DROP TABLE IF EXISTS totals;"
                "DROP TRIGGER IF EXISTS chunks_added; DROP TRIGGER IF EXISTS chunks_removed;"
                "DROP TRIGGER IF EXISTS chunks_resized;"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


def read_usage(path: Path) -> Usage:
    """The usage an index file records (no background thread; for ``orionfs cache du``)."""
    conn = connect(path)
    try:
        size, count = conn.execute("SELECT bytes, chunks FROM totals WHERE id = 0").fetchone()
    finally:
        conn.close()
    return Usage(int(size), int(count))


class ChunkIndex:
    """The index of one data cache, with its background writer and evicter.

    ``evict(names)`` deletes chunk files by name (their rows are already gone). ``max_size`` is
    the bound on the total; ``clock`` gives the use times (seconds; persisted, so wall-clock).
    """

    def __init__(
        self,
        path: Path,
        max_size: int,
        evict: Callable[[list[str]], None],
        clock: Callable[[], float] = time.time,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.path = path
        self.max_size = max_size
        self._evict_files = evict
        self._clock = clock
        self._interval = flush_interval
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, float]] = {}  # name -> (size, used)
        self._gone: set[str] = set()
        self._requests: queue.SimpleQueue[Callable[[sqlite3.Connection], None]] = (
            queue.SimpleQueue()
        )
        self._wake = threading.Event()
        self._stopping = False
        self.rebuilt = False
        try:
            self._conn = connect(path)
        except sqlite3.DatabaseError as error:
            logger.warning("data cache index %s unusable (%s): rebuilt from the files", path, error)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{suffix}")
            self._conn = connect(path)
            self.rebuilt = True
        self._thread = threading.Thread(target=self._run, name="orionfs-cache-index", daemon=True)
        self._thread.start()

    # -- what readers and writers report (never blocks on SQLite) ----------------------------------

    def used(self, name: str, size: int) -> None:
        """A chunk was read or written now."""
        now = self._clock()
        with self._lock:
            self._pending[name] = (size, now)
            self._gone.discard(name)

    added = used

    def forget(self, name: str) -> None:
        """A chunk file was removed (found corrupt)."""
        with self._lock:
            self._pending.pop(name, None)
            self._gone.add(name)

    # -- synchronous calls (run by the background thread, waited for) ------------------------------

    def _call(self, work: Callable[[sqlite3.Connection], None], timeout: float = 60.0) -> None:
        done = threading.Event()
        errors: list[BaseException] = []

        def run(conn: sqlite3.Connection) -> None:
            try:
                work(conn)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                errors.append(error)
            finally:
                done.set()

        self._requests.put(run)
        self._wake.set()
        if not done.wait(timeout):
            raise TimeoutError("the data cache index did not answer")
        if errors:
            raise errors[0]

    def flush(self) -> None:
        """Write what is queued and evict as needed, now (waits for it)."""
        self._call(lambda conn: None)

    def usage(self) -> Usage:
        """Bytes and chunks the index counts (after writing what is queued)."""
        result: list[Usage] = []

        def read(conn: sqlite3.Connection) -> None:
            size, count = conn.execute("SELECT bytes, chunks FROM totals WHERE id = 0").fetchone()
            result.append(Usage(int(size), int(count)))

        self._call(read)
        return result[0]

    def clear(self) -> list[str]:
        """Forget every chunk; returns their names (the caller deletes the files)."""
        names: list[str] = []

        def drop(conn: sqlite3.Connection) -> None:
            with self._lock:
                self._pending.clear()
            conn.execute("BEGIN IMMEDIATE")
            try:
                names.extend(row[0] for row in conn.execute("SELECT name FROM chunks"))
                conn.execute("DELETE FROM chunks")
                conn.execute("UPDATE totals SET bytes = 0, chunks = 0 WHERE id = 0")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        self._call(drop)
        return names

    def reconcile(self, shards: Iterable[str], files: Callable[[str], Iterator[FileRow]]) -> None:
        """Make the index match the chunk files, shard by shard, in the background: rows for
        files it lacks, no rows for files that are gone. ``files(shard)`` yields (name, size,
        mtime) of the chunk files of one shard (names start with ``shard + "/"``)."""

        def run(conn: sqlite3.Connection) -> None:
            added = forgotten = 0
            for shard in shards:
                on_disk = {name: (size, mtime) for name, size, mtime in files(shard)}
                known = dict(
                    conn.execute(
                        "SELECT name, size FROM chunks WHERE name >= ? AND name < ?",
                        (shard + "/", shard + "0"),  # "0" sorts right after "/"
                    )
                )
                missing = [(n, s, t) for n, (s, t) in on_disk.items() if known.get(n) != s]
                stale = [(n,) for n in known if n not in on_disk]
                if not missing and not stale:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_UPSERT, missing)
                    conn.executemany("DELETE FROM chunks WHERE name = ?", stale)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                added, forgotten = added + len(missing), forgotten + len(stale)
            if added or forgotten:
                logger.info(
                    "data cache index reconciled: %d chunk(s) added, %d forgotten", added, forgotten
                )

        self._requests.put(run)
        self._wake.set()

    def drop_versions(self, prefix: str, keep: str) -> None:
        """Forget, in the background, every chunk whose name starts with ``prefix`` but not with
        ``keep`` (the other versions of an item), and delete their files."""

        def run(conn: sqlite3.Connection) -> None:
            rows = conn.execute(
                "SELECT name FROM chunks WHERE name >= ? AND name < ?", (prefix, prefix + "\uffff")
            ).fetchall()
            names = [row[0] for row in rows if not row[0].startswith(keep)]
            if not names:
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM chunks WHERE name = ?", [(n,) for n in names])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._evict_files(names)

        self._requests.put(run)
        self._wake.set()

    # -- the background thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            stopping = self._stopping
            try:
                self._write_pending()
                self._evict()
            except sqlite3.Error as error:
                logger.warning("data cache index: %s", error)
            while True:
                try:
                    request = self._requests.get_nowait()
                except queue.Empty:
                    break
                try:
                    self._write_pending()
                    request(self._conn)
                    self._evict()
                except sqlite3.Error as error:
                    logger.warning("data cache index: %s", error)
            if stopping:
                return

    def _write_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            gone, self._gone = self._gone, set()
        if not pending and not gone:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_UPSERT, [(n, s, t) for n, (s, t) in pending.items()])
            conn.executemany("DELETE FROM chunks WHERE name = ?", [(n,) for n in gone])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            with self._lock:  # try again next time
                for name, value in pending.items():
                    self._pending.setdefault(name, value)
                self._gone |= gone - set(self._pending)
            raise

    def _evict(self) -> None:
        conn = self._conn
        total = conn.execute("SELECT bytes FROM totals WHERE id = 0").fetchone()[0]
        if total <= self.max_size:
            return
        target = int(self.max_size * LOW_WATER)
        evicted: list[str] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            while total > target:
                rows = conn.execute(
                    "SELECT name, size FROM chunks ORDER BY used LIMIT ?", (EVICT_BATCH,)
                ).fetchall()
                if not rows:
                    break
                batch: list[str] = []
                for name, size in rows:
                    if total <= target:
                        break
                    batch.append(name)
                    total -= size
                conn.executemany("DELETE FROM chunks WHERE name = ?", [(n,) for n in batch])
                evicted.extend(batch)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        logger.debug("data cache: %d chunk(s) evicted", len(evicted))
        self._evict_files(evicted)

    def close(self) -> None:
        """Write what is queued, then stop the thread and close the database."""
        self._stopping = True
        self._wake.set()
        self._thread.join(30)
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
