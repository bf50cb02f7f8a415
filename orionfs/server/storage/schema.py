"""The SQLite side of the storage layer: the schema, timestamps and the connection manager.

Items (folders, files, datasets, shard collections, shards) live in one table with ``parent_id``
pointers, so moving a folder is a single UPDATE whatever its size. Root folders (My Data, Team Data)
have no parent and carry ``root_kind``/``root_project``/``root_user``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL DEFAULT '',
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    pw_salt BLOB NOT NULL,
    pw_hash BLOB NOT NULL,
    cost_accounting INTEGER NOT NULL DEFAULT 1,
    balance REAL NOT NULL DEFAULT 0,
    default_project INTEGER,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    owner INTEGER REFERENCES users(id),
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX IF NOT EXISTS members_user ON members(user_id);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    parent_id INTEGER REFERENCES items(id),
    root_kind TEXT,
    root_project INTEGER REFERENCES projects(id),
    root_user INTEGER REFERENCES users(id),
    owner INTEGER REFERENCES users(id),
    size INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'ready',
    description TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    sha256 TEXT,
    blob TEXT,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    mtime TEXT NOT NULL,
    deleted TEXT
);
CREATE INDEX IF NOT EXISTS items_listing ON items(parent_id, deleted, name, id);
CREATE INDEX IF NOT EXISTS items_kind ON items(kind, id);
CREATE UNIQUE INDEX IF NOT EXISTS items_folder_name
    ON items(parent_id, name) WHERE kind = 'folder' AND deleted IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS items_user_root
    ON items(root_project, root_user) WHERE root_kind = 'user';
CREATE UNIQUE INDEX IF NOT EXISTS items_team_root
    ON items(root_project) WHERE root_kind = 'team';
CREATE TABLE IF NOT EXISTS tags (
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    system INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (item_id, system, tag)
);
CREATE INDEX IF NOT EXISTS tags_tag ON tags(tag, system, item_id);
CREATE TABLE IF NOT EXISTS shares (
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    target INTEGER NOT NULL,
    PRIMARY KEY (item_id, kind, target)
);
CREATE INDEX IF NOT EXISTS shares_target ON shares(kind, target);
"""


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a database made by an older version up to the schema above."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(items)")}
    if "mtime" not in columns:  # before client-set modification times: the server's time
        logger.info("adding the mtime column to the items table")
        conn.executescript(
            "BEGIN IMMEDIATE;"
            " ALTER TABLE items ADD COLUMN mtime TEXT NOT NULL DEFAULT '';"
            " UPDATE items SET mtime = modified;"
            " COMMIT;"
        )


def now_ts() -> str:
    """The current time as ISO 8601 UTC with microseconds and ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def icontains(haystack: str, needle: str) -> int:
    """1 if ``needle`` is in ``haystack`` ignoring case, else 0 (also SQL function ``icontains``)."""
    return int(needle.casefold() in haystack.casefold())


def private_db_files(db_path: Path) -> None:
    """Make the database file and its -wal and -shm files mode 0600 (logged when tightened).

    A missing database is created empty with 0600 first: SQLite gives the -wal and -shm files it
    creates the database file's mode.
    """
    if not db_path.exists():
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
    for path in (
        db_path,
        db_path.with_name(f"{db_path.name}-wal"),
        db_path.with_name(f"{db_path.name}-shm"),
    ):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode != 0o600:
            logger.warning("database file %s was mode %04o; making it 0600", path, mode)
            path.chmod(0o600)


class Database:
    """One SQLite file in WAL mode: a connection per thread and serialised write transactions.

    The file (with its -wal and -shm) is kept mode 0600.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        private_db_files(db_path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._write_lock = threading.Lock()
        conn = self._conn()
        conn.executescript(_SCHEMA)
        _migrate(conn)
        if conn.execute("SELECT value FROM meta WHERE key='created'").fetchone() is None:
            conn.execute("INSERT INTO meta(key, value) VALUES ('created', ?)", (now_ts(),))
        self.created = conn.execute("SELECT value FROM meta WHERE key='created'").fetchone()[0]

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.db_path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.create_function("icontains", 2, icontains, deterministic=True)
            self._local.conn = conn
            with self._conn_lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (serialised by a lock, so writers never hit SQLITE_BUSY)."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection (checkpointing the WAL)."""
        with self._conn_lock:
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.Error:  # pragma: no cover - closing from another thread
                    logger.debug("closing a connection failed", exc_info=True)
            self._connections.clear()
        self._local = threading.local()
