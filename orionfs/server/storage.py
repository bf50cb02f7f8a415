"""Storage layer of the local Orion server: SQLite metadata plus a blob folder. No HTTP here.

Everything a route needs is a method of :class:`Storage`; each takes the calling :class:`User` and
enforces the permission rules of docs/wire.md, raising one of the :class:`StorageError` subclasses
(the app maps them to 400/403/404/409). Results are plain dicts already in the wire shape.

Layout of DATA_DIR::

    orion.sqlite3        metadata (WAL mode, foreign keys on)
    blobs/ab/<id>.<v>    contents; named from ids only, never from user-chosen names
    tmp/                 uploads in progress (renamed into blobs/ only when complete)

Items (folders, files, datasets, shard collections, shards) live in one table with ``parent_id``
pointers, so moving a folder is a single UPDATE whatever its size. Root folders (My Data, Team Data)
have no parent and carry ``root_kind``/``root_project``/``root_user``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

logger = logging.getLogger(__name__)

MAX_ID = 2**63 - 1
MAX_NAME_BYTES = 255
MAX_TAG_CHARS = 128
RESOURCE_TYPES = ("folder", "file", "dataset", "shard_collection", "shard")
TAGGABLE = ("file", "dataset", "shard_collection")
ORDERINGS = {
    "name": "name ASC, id ASC",
    "-name": "name DESC, id DESC",
    "created": "created ASC, id ASC",
    "-created": "created DESC, id DESC",
    "size": "size ASC, id ASC",
    "-size": "size DESC, id DESC",
    "id": "id ASC",
}
_WRITE_CHUNK = 1 << 20
_UPLOAD_QUEUE = 64  # chunks in flight to the writer thread

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


class StorageError(Exception):
    """Base of the storage errors; ``str(exc)`` is the message for the API's ``detail``."""


class BadInput(StorageError):
    """The input is malformed (bad name, bad path, bad value): HTTP 400."""


class Forbidden(StorageError):
    """The caller can see the thing but may not change it: HTTP 403."""


class NotFound(StorageError):
    """No such thing, or the caller may not know it exists: HTTP 404."""


class Conflict(StorageError):
    """The thing exists already, or a folder is not empty: HTTP 409."""


@dataclass(frozen=True)
class User:
    """An authenticated user."""

    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    default_project: int | None
    cost_accounting: bool
    balance: float

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of a User."""
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "default_project": self.default_project,
        }


@dataclass
class _Node:
    """A resolved path: a virtual folder (``row`` is None) or a stored item."""

    path: str
    name: str
    row: sqlite3.Row | None
    project: int | None
    writable: bool


def now_ts() -> str:
    """The current time as ISO 8601 UTC with microseconds and ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_text(value: str, what: str) -> str:
    """Return ``value`` if it is encodable UTF-8 without NUL; raise :class:`BadInput` otherwise."""
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadInput(f"{what} is not valid UTF-8") from exc
    if "\x00" in value:
        raise BadInput(f"{what} contains NUL")
    return value


def check_name(name: str) -> str:
    """Validate an item name (1..255 bytes of UTF-8, not . or .., no NUL, no /); raise BadInput."""
    check_text(name, "name")
    if name in ("", ".", ".."):
        raise BadInput(f"invalid name {name!r}")
    if "/" in name:
        raise BadInput("name contains '/'")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise BadInput(f"name longer than {MAX_NAME_BYTES} bytes")
    return name


def check_tag(tag: str) -> str:
    """Validate a tag (1..128 characters, no newline, no NUL); raise BadInput."""
    check_text(tag, "tag")
    if not 1 <= len(tag) <= MAX_TAG_CHARS or "\n" in tag or "\r" in tag:
        raise BadInput(f"invalid tag {tag!r}")
    return tag


def parse_path(path: str) -> list[str]:
    """Split an absolute Orion path into validated segments; raise BadInput for a malformed one."""
    check_text(path, "path")
    if not path.startswith("/"):
        raise BadInput("path must be absolute")
    if path == "/":
        return []
    if path.endswith("/"):
        raise BadInput("path must not end with '/'")
    segments = path[1:].split("/")
    for segment in segments:
        try:
            check_name(segment)
        except BadInput as exc:
            raise BadInput(f"bad path segment: {exc}") from exc
    return segments


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _icontains(haystack: str, needle: str) -> int:
    return int(needle.casefold() in haystack.casefold())


class Upload:
    """A blob being received: a temp file in DATA_DIR/tmp plus its size, sha256 and lines.

    Write chunks with :meth:`write`, then hand it to a ``commit_*`` method of :class:`Storage`
    (which renames it into place) or :meth:`discard` it. Nobody sees it before the commit.
    Hashing and disk writes happen in a worker thread (both release the GIL), so that the event
    loop parsing the request overlaps with them; :meth:`close` waits for the worker.
    """

    def __init__(self, tmp_dir: Path, count_lines: bool = False) -> None:
        self.path = tmp_dir / f"upload-{uuid.uuid4().hex}.part"
        self._count_lines = count_lines
        self._file: BinaryIO = open(self.path, "xb", buffering=_WRITE_CHUNK)  # noqa: SIM115
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

    def write(self, data: bytes) -> None:
        """Append ``data`` to the upload; raises OSError if the disk write failed."""
        if self._error is not None:
            raise self._error
        if not data:
            return
        if self._closed:
            raise ValueError("write to a closed upload")
        self.size += len(data)
        if self._count_lines:  # only datasets have records
            self._newlines += data.count(b"\n")
            self._last = data[-1:]
        self._queue.put(bytes(data))

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


class Storage:
    """Metadata and contents of the local Orion; safe to use from many threads."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.blob_dir = self.data_dir / "blobs"
        self.tmp_dir = self.data_dir / "tmp"
        for folder in (self.data_dir, self.blob_dir, self.tmp_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in self.tmp_dir.glob("upload-*.part"):
            stale.unlink(missing_ok=True)  # interrupted uploads never became visible
        self.db_path = self.data_dir / "orion.sqlite3"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._write_lock = threading.Lock()
        conn = self._conn()
        conn.executescript(_SCHEMA)
        if conn.execute("SELECT value FROM meta WHERE key='created'").fetchone() is None:
            conn.execute("INSERT INTO meta(key, value) VALUES ('created', ?)", (now_ts(),))
        self.created = conn.execute("SELECT value FROM meta WHERE key='created'").fetchone()[0]

    # -- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.db_path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.create_function("icontains", 2, _icontains, deterministic=True)
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

    # -- users, tokens, projects ---------------------------------------------------------------

    @staticmethod
    def _user(row: sqlite3.Row) -> User:
        return User(
            id=row["id"],
            username=row["username"],
            email=row["email"],
            first_name=row["first_name"],
            last_name=row["last_name"],
            default_project=row["default_project"],
            cost_accounting=bool(row["cost_accounting"]),
            balance=row["balance"],
        )

    def has_users(self) -> bool:
        """Whether any user exists (False in a fresh data dir)."""
        return self._conn().execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def authenticate(self, token: str) -> User | None:
        """The user owning ``token``, or None."""
        row = (
            self._conn()
            .execute(
                "SELECT u.* FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
                (_hash_token(token),),
            )
            .fetchone()
        )
        return self._user(row) if row else None

    def check_password(self, username: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None."""
        try:
            check_text(username, "username")
            check_text(password, "password")
        except BadInput:
            return None
        row = self._conn().execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        if row is None:
            return None
        if not hmac.compare_digest(_hash_password(password, row["pw_salt"]), row["pw_hash"]):
            return None
        return self._user(row)

    def issue_token(self, user_id: int) -> str:
        """Create and return a new token (40 hex) for the user; only its hash is stored."""
        token = secrets.token_hex(20)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO tokens(token_hash, user_id, created) VALUES (?, ?, ?)",
                (_hash_token(token), user_id, now_ts()),
            )
        return token

    def get_user_by_name(self, username: str) -> User | None:
        """The user called ``username``, or None."""
        row = self._conn().execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        return self._user(row) if row else None

    def create_user(
        self,
        username: str,
        password: str,
        project: int | None = None,
        cost_accounting: bool = True,
        balance: float = 100.0,
        project_name: str | None = None,
    ) -> tuple[User, int]:
        """Create a user in ``project`` (a new project of their own if None); returns (user, pid).

        The new project is called ``project_name`` (default "<username>'s project").

        Raises BadInput for a bad username, Conflict if taken, NotFound for an unknown project.
        """
        check_name(username)
        check_text(password, "password")
        salt = secrets.token_bytes(16)
        pw_hash = _hash_password(password, salt)
        ts = now_ts()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise Conflict(f"user {username!r} exists")
            if (
                project is not None
                and not conn.execute("SELECT 1 FROM projects WHERE id = ?", (project,)).fetchone()
            ):
                raise NotFound(f"no project {project}")
            user_id = conn.execute(
                "INSERT INTO users(username, email, pw_salt, pw_hash, cost_accounting, balance,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    username,
                    f"{username}@localhost",
                    salt,
                    pw_hash,
                    int(cost_accounting),
                    balance,
                    ts,
                ),
            ).lastrowid
            if project is None:
                name = project_name or f"{username}'s project"
                project = self._create_project(conn, check_text(name, "project name"), user_id)
            else:
                self._add_member(conn, project, user_id)
            conn.execute("UPDATE users SET default_project = ? WHERE id = ?", (project, user_id))
            row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        return self._user(row), project

    def _create_project(self, conn: sqlite3.Connection, name: str, owner: int) -> int:
        ts = now_ts()
        pid = conn.execute(
            "INSERT INTO projects(name, owner, created) VALUES (?, ?, ?)", (name, owner, ts)
        ).lastrowid
        conn.execute(
            "INSERT INTO items(kind, name, root_kind, root_project, owner, created, modified)"
            " VALUES ('folder', 'team', 'team', ?, ?, ?, ?)",
            (pid, owner, ts, ts),
        )
        self._add_member(conn, pid, owner)
        return pid

    def _add_member(self, conn: sqlite3.Connection, project: int, user_id: int) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO members(project_id, user_id) VALUES (?, ?)", (project, user_id)
        )
        username = conn.execute("SELECT username FROM users WHERE id = ?", (user_id,)).fetchone()[0]
        if not conn.execute(
            "SELECT 1 FROM items WHERE root_kind = 'user' AND root_project = ? AND root_user = ?",
            (project, user_id),
        ).fetchone():
            ts = now_ts()
            conn.execute(
                "INSERT INTO items(kind, name, root_kind, root_project, root_user, owner, created,"
                " modified) VALUES ('folder', ?, 'user', ?, ?, ?, ?, ?)",
                (username, project, user_id, user_id, ts, ts),
            )

    def _projects_of(self, conn: sqlite3.Connection, user_id: int) -> set[int]:
        rows = conn.execute("SELECT project_id FROM members WHERE user_id = ?", (user_id,))
        return {row[0] for row in rows}

    def get_user(self, caller: User, user_id: int) -> dict[str, Any]:
        """A user the caller may see (self or a fellow project member); NotFound otherwise."""
        conn = self._conn()
        if (
            user_id != caller.id
            and not conn.execute(
                "SELECT 1 FROM members a JOIN members b ON a.project_id = b.project_id"
                " WHERE a.user_id = ? AND b.user_id = ?",
                (caller.id, user_id),
            ).fetchone()
        ):
            raise NotFound(f"no user {user_id}")
        row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            raise NotFound(f"no user {user_id}")
        return self._user(row).to_dict()

    def _project_dict(self, conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
        members = [
            r[0]
            for r in conn.execute(
                "SELECT user_id FROM members WHERE project_id = ? ORDER BY user_id", (row["id"],)
            )
        ]
        return {
            "id": row["id"],
            "name": row["name"],
            "owner": row["owner"],
            "members": members,
            "created": row["created"],
        }

    def list_projects(
        self, caller: User, name: str | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """Page of the caller's projects, optionally filtered by a name substring."""
        conn = self._conn()
        where = "id IN (SELECT project_id FROM members WHERE user_id = ?)"
        params: list[Any] = [caller.id]
        if name:
            where += " AND instr(name, ?) > 0"
            params.append(check_text(name, "name"))
        total = conn.execute(f"SELECT count(*) FROM projects WHERE {where}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT * FROM projects WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return total, [self._project_dict(conn, row) for row in rows]

    def get_project(self, caller: User, project_id: int) -> dict[str, Any]:
        """A project the caller is a member of; NotFound otherwise."""
        conn = self._conn()
        if project_id not in self._projects_of(conn, caller.id):
            raise NotFound(f"no project {project_id}")
        row = conn.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
        return self._project_dict(conn, row)

    def leave_project(self, caller: User, project_id: int, new_owner_id: int | None) -> None:
        """Leave a project; its owner must hand it to another member (BadInput otherwise)."""
        with self._write() as conn:
            if project_id not in self._projects_of(conn, caller.id):
                raise NotFound(f"no project {project_id}")
            owner = conn.execute(
                "SELECT owner FROM projects WHERE id = ?", (project_id,)
            ).fetchone()[0]
            if owner == caller.id:
                if new_owner_id is None or new_owner_id == caller.id:
                    raise BadInput("the owner must name a new owner to leave a project")
                if not conn.execute(
                    "SELECT 1 FROM members WHERE project_id = ? AND user_id = ?",
                    (project_id, new_owner_id),
                ).fetchone():
                    raise BadInput("the new owner must be a member of the project")
                conn.execute(
                    "UPDATE projects SET owner = ? WHERE id = ?", (new_owner_id, project_id)
                )
            conn.execute(
                "DELETE FROM members WHERE project_id = ? AND user_id = ?", (project_id, caller.id)
            )

    def balance(self, caller: User) -> float:
        """The caller's balance; BadInput without the cost-accounting capability."""
        row = (
            self._conn()
            .execute("SELECT cost_accounting, balance FROM users WHERE id = ?", (caller.id,))
            .fetchone()
        )
        if not row["cost_accounting"]:
            raise BadInput("your organisation lacks the cost-accounting capability")
        return float(row["balance"])

    # -- path resolution -----------------------------------------------------------------------

    def _virtual(self, path: str, project: int | None = None) -> _Node:
        name = path.rsplit("/", 1)[-1] if path != "/" else "/"
        return _Node(path=path, name=name, row=None, project=project, writable=False)

    def _root(self, conn: sqlite3.Connection, caller: User, project: int, kind: str) -> _Node:
        if kind == "user":
            row = conn.execute(
                "SELECT * FROM items WHERE root_kind = 'user' AND root_project = ? AND root_user = ?",
                (project, caller.id),
            ).fetchone()
            path = f"/project/{project}/user/{caller.username}"
        else:
            row = conn.execute(
                "SELECT * FROM items WHERE root_kind = 'team' AND root_project = ?", (project,)
            ).fetchone()
            path = f"/project/{project}/team"
        if row is None:
            raise NotFound(f"no such path: {path}")
        return _Node(path=path, name=row["name"], row=row, project=project, writable=True)

    def _locate(
        self, conn: sqlite3.Connection, caller: User, segments: Sequence[str]
    ) -> tuple[_Node, list[str]]:
        """Resolve the virtual part of a path: (virtual node or real root, segments below it)."""
        path = "/" + "/".join(segments)
        if not segments:
            return self._virtual("/"), []
        if segments[0] != "project":
            raise NotFound(f"no such path: {path}")
        if len(segments) == 1:
            return self._virtual("/project"), []
        pid_text = segments[1]
        if not (pid_text.isascii() and pid_text.isdigit()) or int(pid_text) > MAX_ID:
            raise NotFound(f"no such path: {path}")
        pid = int(pid_text)
        if pid_text != str(pid) or pid not in self._projects_of(conn, caller.id):
            raise NotFound(f"no such path: {path}")
        if len(segments) == 2:
            return self._virtual(f"/project/{pid}", pid), []
        area = segments[2]
        if area == "user":
            if len(segments) == 3:
                return self._virtual(f"/project/{pid}/user", pid), []
            if segments[3] != caller.username:
                raise NotFound(f"no such path: {path}")
            return self._root(conn, caller, pid, "user"), list(segments[4:])
        if area == "team":
            return self._root(conn, caller, pid, "team"), list(segments[3:])
        if area == "shared" and len(segments) == 3:
            return self._virtual(f"/project/{pid}/shared", pid), []
        raise NotFound(f"no such path: {path}")

    @staticmethod
    def _child(
        conn: sqlite3.Connection, parent_id: int, name: str, prefer_container: bool
    ) -> sqlite3.Row | None:
        order = "(kind IN ('folder', 'shard_collection')) DESC, id" if prefer_container else "id"
        return conn.execute(
            f"SELECT * FROM items WHERE parent_id = ? AND name = ? AND deleted IS NULL"
            f" ORDER BY {order} LIMIT 1",
            (parent_id, name),
        ).fetchone()

    def _resolve(self, conn: sqlite3.Connection, caller: User, path: str) -> _Node:
        """Resolve a full path to a node; BadInput for a malformed path, NotFound if absent."""
        segments = parse_path(path)
        node, rest = self._locate(conn, caller, segments)
        for index, name in enumerate(rest):
            assert node.row is not None
            if node.row["kind"] not in ("folder", "shard_collection"):
                raise NotFound(f"no such path: {path}")
            last = index == len(rest) - 1
            row = self._child(conn, node.row["id"], name, prefer_container=not last)
            if row is None:
                raise NotFound(f"no such path: {path}")
            node = _Node(
                path=f"{node.path}/{name}",
                name=name,
                row=row,
                project=node.project,
                writable=node.writable and row["kind"] != "shard",
            )
        return node

    def _context(self, conn: sqlite3.Connection, item_id: int) -> tuple[list[sqlite3.Row], str]:
        """The chain root..item of an item and its full path."""
        chain = conn.execute(
            "WITH RECURSIVE anc(id, depth) AS (SELECT ?, 0 UNION ALL"
            " SELECT i.parent_id, a.depth + 1 FROM items i JOIN anc a ON i.id = a.id"
            " WHERE i.parent_id IS NOT NULL)"
            " SELECT items.* FROM anc JOIN items ON items.id = anc.id ORDER BY anc.depth DESC",
            (item_id,),
        ).fetchall()
        root = chain[0]
        if root["root_kind"] == "user":
            base = f"/project/{root['root_project']}/user/{root['name']}"
        else:
            base = f"/project/{root['root_project']}/team"
        names = [row["name"] for row in chain[1:]]
        return chain, "/".join([base, *names])

    def _access(
        self, conn: sqlite3.Connection, caller: User, item_id: int
    ) -> tuple[sqlite3.Row, str, int, bool]:
        """(row, path, project, writable) of an item the caller may read; NotFound otherwise."""
        chain, path = self._context(conn, item_id)
        root, row = chain[0], chain[-1]
        project = root["root_project"]
        projects = self._projects_of(conn, caller.id)
        if root["root_kind"] == "user":
            writable = root["root_user"] == caller.id
        else:
            writable = project in projects
        if writable:
            return row, path, project, row["kind"] != "shard"
        shared_ids = [row["id"]]
        if row["kind"] == "shard":
            shared_ids.append(row["parent_id"])
        marks = ",".join("?" * len(shared_ids))
        proj_marks = ",".join("?" * len(projects)) or "NULL"
        shared = conn.execute(
            f"SELECT 1 FROM shares WHERE item_id IN ({marks}) AND ((kind = 'users' AND target = ?)"
            f" OR (kind = 'projects' AND target IN ({proj_marks}))) LIMIT 1",
            [*shared_ids, caller.id, *projects],
        ).fetchone()
        if shared is None:
            raise NotFound(f"no such item {item_id}")
        return row, path, project, False

    def _fetch(
        self,
        conn: sqlite3.Connection,
        caller: User,
        kind: str,
        item_id: int,
        write: bool = False,
        include_deleted: bool = False,
    ) -> tuple[sqlite3.Row, str, int]:
        row = conn.execute(
            "SELECT id, deleted FROM items WHERE id = ? AND kind = ?", (item_id, kind)
        ).fetchone()
        if row is None or (row["deleted"] and not include_deleted):
            raise NotFound(f"no {kind} {item_id}")
        full, path, project, writable = self._access(conn, caller, item_id)
        if write and not writable:
            raise Forbidden(f"you may not change {kind} {item_id}")
        return full, path, project

    # -- entries -------------------------------------------------------------------------------

    @staticmethod
    def _tags(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple[list, list]]:
        result: dict[int, tuple[list, list]] = {i: ([], []) for i in ids}
        if not ids:
            return result
        marks = ",".join("?" * len(ids))
        for row in conn.execute(
            f"SELECT item_id, system, tag FROM tags WHERE item_id IN ({marks})"
            " ORDER BY item_id, system, tag",
            list(ids),
        ):
            result[row[0]][1 if row[1] else 0].append(row[2])
        return result

    @staticmethod
    def _entry(
        row: sqlite3.Row, path: str, project: int | None, tags: tuple[list, list]
    ) -> dict[str, Any]:
        kind = row["kind"]
        return {
            "resource_type": kind,
            "id": row["id"],
            "name": row["name"],
            "path": path,
            "size": row["size"] if kind in ("file", "dataset", "shard") else 0,
            "created": row["created"],
            "modified": row["modified"],
            "owner": row["owner"],
            "project": project,
            "state": row["state"],
            "tags": tags[0],
            "systemtags": tags[1],
            "count": row["count"] if kind == "dataset" else 0,
        }

    def _virtual_entry(self, path: str, project: int | None, created: str) -> dict[str, Any]:
        return {
            "resource_type": "folder",
            "id": None,
            "name": path.rsplit("/", 1)[-1] if path != "/" else "/",
            "path": path,
            "size": 0,
            "created": created,
            "modified": created,
            "owner": None,
            "project": project,
            "state": "ready",
            "tags": [],
            "systemtags": [],
            "count": 0,
        }

    def _node_entry(self, conn: sqlite3.Connection, node: _Node) -> dict[str, Any]:
        if node.row is None:
            created = self.created
            if node.project is not None:
                created = conn.execute(
                    "SELECT created FROM projects WHERE id = ?", (node.project,)
                ).fetchone()[0]
            return self._virtual_entry(node.path, node.project, created)
        tags = self._tags(conn, [node.row["id"]])[node.row["id"]]
        return self._entry(node.row, node.path, node.project, tags)

    def _resource(
        self, conn: sqlite3.Connection, row: sqlite3.Row, path: str, project: int
    ) -> dict[str, Any]:
        """The wire shape of a file, dataset, shard collection, shard or folder."""
        kind = row["kind"]
        if kind == "folder":
            return self._entry(row, path, project, self._tags(conn, [row["id"]])[row["id"]])
        if kind == "shard":
            return {
                "id": row["id"],
                "collection": row["parent_id"],
                "name": row["name"],
                "state": row["state"],
                "size": row["size"],
                "metadata": json.loads(row["metadata"]),
                "created": row["created"],
                "modified": row["modified"],
            }
        tags, systemtags = self._tags(conn, [row["id"]])[row["id"]]
        common = {
            "id": row["id"],
            "name": row["name"],
            "path": path,
            "created": row["created"],
            "modified": row["modified"],
            "owner": row["owner"],
            "project": project,
            "state": row["state"],
            "tags": tags,
            "systemtags": systemtags,
            "deleted": row["deleted"],
        }
        if kind == "file":
            common.update(size=row["size"], description=row["description"], sha256=row["sha256"])
        elif kind == "dataset":
            common.update(size=row["size"], description=row["description"], count=row["count"])
        else:
            common.update(metadata=json.loads(row["metadata"]))
        return common

    # -- ls / stat -------------------------------------------------------------------------------

    def _virtual_children(self, conn: sqlite3.Connection, caller: User, node: _Node) -> list[_Node]:
        path = node.path
        if path == "/":
            return [self._virtual("/project")]
        if path == "/project":
            return [
                self._virtual(f"/project/{pid}", pid)
                for pid in sorted(self._projects_of(conn, caller.id))
            ]
        pid = node.project
        assert pid is not None
        if path == f"/project/{pid}":
            return [
                self._virtual(f"/project/{pid}/user", pid),
                self._root(conn, caller, pid, "team"),
                self._virtual(f"/project/{pid}/shared", pid),
            ]
        if path == f"/project/{pid}/user":
            return [self._root(conn, caller, pid, "user")]
        return []  # /project/<pid>/shared: no shared spaces here

    def ls(
        self,
        caller: User,
        path: str,
        *,
        name: str | None = None,
        name_contains: str | None = None,
        name_icontains: str | None = None,
        order_by: str = "name",
        types: Sequence[str] = (),
        tag_filters: Sequence[str] = (),
        systag_filters: Sequence[str] = (),
        list_kind: str | None = None,
        limit: int = 250,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """One page of a folder-like path's entries: (total count, entries).

        Raises BadInput (bad path or filter, or a path that is not folder-like) and NotFound.
        """
        if order_by not in ORDERINGS:
            raise BadInput(f"order_by must be one of {', '.join(ORDERINGS)}")
        for kind in types:
            if kind not in RESOURCE_TYPES:
                raise BadInput(f"unknown resource type {kind!r}")
        if list_kind not in (None, "data", "folders"):
            raise BadInput("list must be 'data' or 'folders'")
        for text in (name, name_contains, name_icontains, *tag_filters, *systag_filters):
            if text is not None:
                check_text(text, "filter")
        conn = self._conn()
        node = self._resolve(conn, caller, path)
        if node.row is None:
            entries = [
                self._node_entry(conn, child)
                for child in self._virtual_children(conn, caller, node)
            ]
            entries = [
                e
                for e in entries
                if (name is None or e["name"] == name)
                and (name_contains is None or name_contains in e["name"])
                and (name_icontains is None or _icontains(e["name"], name_icontains))
                and (not types or e["resource_type"] in types)
                and list_kind != "data"
                and not tag_filters
                and not systag_filters
            ]
            return len(entries), entries[offset : offset + limit]
        if node.row["kind"] not in ("folder", "shard_collection"):
            raise BadInput(f"not a folder: {path}")
        where = ["parent_id = ?", "deleted IS NULL"]
        params: list[Any] = [node.row["id"]]
        if name is not None:
            where.append("name = ?")
            params.append(name)
        if name_contains is not None:
            where.append("instr(name, ?) > 0")
            params.append(name_contains)
        if name_icontains is not None:
            where.append("icontains(name, ?)")
            params.append(name_icontains)
        if types:
            where.append(f"kind IN ({','.join('?' * len(types))})")
            params.extend(types)
        if list_kind == "data":
            where.append("kind != 'folder'")
        elif list_kind == "folders":
            where.append("kind = 'folder'")
        for system, tags in ((0, tag_filters), (1, systag_filters)):
            for tag in tags:
                where.append(
                    "EXISTS (SELECT 1 FROM tags t WHERE t.item_id = items.id"
                    " AND t.system = ? AND t.tag = ?)"
                )
                params.extend([system, tag])
        clause = " AND ".join(where)
        total = conn.execute(f"SELECT count(*) FROM items WHERE {clause}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT * FROM items WHERE {clause} ORDER BY {ORDERINGS[order_by]} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        tags_by_id = self._tags(conn, [row["id"] for row in rows])
        return total, [
            self._entry(row, f"{node.path}/{row['name']}", node.project, tags_by_id[row["id"]])
            for row in rows
        ]

    def stat(self, caller: User, path: str) -> dict[str, Any]:
        """The entry at ``path``; BadInput for a malformed path, NotFound if absent."""
        conn = self._conn()
        return self._node_entry(conn, self._resolve(conn, caller, path))

    def get_folder(self, caller: User, folder_id: int) -> dict[str, Any]:
        """A folder's entry by id."""
        conn = self._conn()
        row, path, project = self._fetch(conn, caller, "folder", folder_id)
        return self._resource(conn, row, path, project)

    # -- paths: create, remove, assign, get ----------------------------------------------------

    def _writable_parent(self, conn: sqlite3.Connection, caller: User, segments: list[str]) -> None:
        """Raise Forbidden when the parent of ``segments`` is a virtual folder (creation refused)."""
        try:
            node, rest = self._locate(conn, caller, segments[:-1])
        except NotFound:
            return
        if node.row is None and not rest:
            raise Forbidden("nothing can be created in a virtual folder")

    def create_paths(
        self, caller: User, paths: Sequence[str], exist_ok: bool = True
    ) -> list[dict[str, Any]]:
        """Create folders (and missing ancestors); all-or-nothing. Returns their entries.

        Raises BadInput, NotFound, Forbidden (in a virtual folder), Conflict (exists and not
        ``exist_ok``, or a segment is not a folder).
        """
        parsed = [(path, parse_path(path)) for path in paths]
        results = []
        with self._write() as conn:
            for path, segments in parsed:
                try:
                    node, rest = self._locate(conn, caller, segments)
                except NotFound:
                    if segments:
                        self._writable_parent(conn, caller, segments)
                    raise
                if not rest:
                    if not exist_ok:
                        raise Conflict(f"path exists: {path}")
                    results.append(self._node_entry(conn, node))
                    continue
                created = False
                for name in rest:
                    assert node.row is not None
                    row = self._child(conn, node.row["id"], name, prefer_container=True)
                    if row is not None and row["kind"] != "folder":
                        raise Conflict(f"not a folder: {node.path}/{name}")
                    if row is None:
                        ts = now_ts()
                        new_id = conn.execute(
                            "INSERT INTO items(kind, name, parent_id, owner, created, modified)"
                            " VALUES ('folder', ?, ?, ?, ?, ?)",
                            (name, node.row["id"], caller.id, ts, ts),
                        ).lastrowid
                        row = conn.execute("SELECT * FROM items WHERE id = ?", (new_id,)).fetchone()
                        created = True
                    node = _Node(f"{node.path}/{name}", name, row, node.project, True)
                if not created and not exist_ok:
                    raise Conflict(f"path exists: {path}")
                results.append(self._node_entry(conn, node))
        return results

    def _soft_delete_tree(self, conn: sqlite3.Connection, item_id: int, ts: str) -> None:
        conn.execute(
            "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL"
            " SELECT i.id FROM items i JOIN sub s ON i.parent_id = s.id WHERE i.deleted IS NULL)"
            " UPDATE items SET deleted = ? WHERE id IN (SELECT id FROM sub) AND deleted IS NULL",
            (item_id, ts),
        )

    def remove_paths(self, caller: User, paths: Sequence[str], recursive: bool = False) -> None:
        """Soft-delete the items at ``paths``; all-or-nothing.

        Raises BadInput, NotFound, Forbidden (virtual folders, roots, shards, read-only items) and
        Conflict (a non-empty folder without ``recursive``).
        """
        for path in paths:
            parse_path(path)
        with self._write() as conn:
            ts = now_ts()
            for path in paths:
                node = self._resolve(conn, caller, path)
                row = node.row
                if row is None or row["root_kind"] is not None:
                    raise Forbidden(f"cannot remove {path}")
                if not node.writable:
                    raise Forbidden(f"cannot remove {path}")
                if row["kind"] == "folder" and not recursive:
                    if conn.execute(
                        "SELECT 1 FROM items WHERE parent_id = ? AND deleted IS NULL LIMIT 1",
                        (row["id"],),
                    ).fetchone():
                        raise Conflict(f"folder not empty: {path}")
                self._soft_delete_tree(conn, row["id"], ts)

    def assign(self, caller: User, assignments: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Move (and optionally rename) items into folders; all-or-nothing. Returns new entries.

        Each assignment has ``resource_type``, ``id``, ``path`` (destination folder) and optional
        ``name``. A folder moves with its whole subtree in one UPDATE.
        """
        for item in assignments:
            if item["resource_type"] not in ("folder", "file", "dataset", "shard_collection"):
                raise BadInput(f"cannot assign a {item['resource_type']!r}")
            parse_path(item["path"])
            if item.get("name") is not None:
                check_name(item["name"])
        results = []
        with self._write() as conn:
            for item in assignments:
                kind, item_id = item["resource_type"], item["id"]
                row, _, _ = self._fetch(conn, caller, kind, item_id, write=True)
                if row["root_kind"] is not None:
                    raise Forbidden("a root folder cannot be moved")
                dest = self._resolve(conn, caller, item["path"])
                if dest.row is None or not dest.writable:
                    raise Forbidden(f"cannot move into {item['path']}")
                if dest.row["kind"] != "folder":
                    raise BadInput(f"not a folder: {item['path']}")
                name = item.get("name") or row["name"]
                if kind == "folder":
                    chain, _ = self._context(conn, dest.row["id"])
                    if any(link["id"] == item_id for link in chain):
                        raise BadInput("a folder cannot be moved into itself")
                    clash = conn.execute(
                        "SELECT 1 FROM items WHERE parent_id = ? AND name = ? AND kind = 'folder'"
                        " AND deleted IS NULL AND id != ?",
                        (dest.row["id"], name, item_id),
                    ).fetchone()
                    if clash:
                        raise Conflict(f"a folder named {name!r} exists in {item['path']}")
                conn.execute(
                    "UPDATE items SET parent_id = ?, name = ? WHERE id = ?",
                    (dest.row["id"], name, item_id),
                )
                new = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
                tags = self._tags(conn, [item_id])[item_id]
                results.append(self._entry(new, f"{dest.path}/{name}", dest.project, tags))
        return results

    def get_paths(self, caller: User, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Paths of items given as ``{"resource_type", "id"}``."""
        conn = self._conn()
        results = []
        for item in items:
            kind = item["resource_type"]
            if kind not in RESOURCE_TYPES:
                raise BadInput(f"unknown resource type {kind!r}")
            _, path, _ = self._fetch(conn, caller, kind, item["id"])
            results.append({"resource_type": kind, "id": item["id"], "path": path})
        return results

    # -- uploads ------------------------------------------------------------------------------

    def new_upload(self, count_lines: bool = False) -> Upload:
        """Start receiving a blob into a temp file (``count_lines`` for a dataset's records)."""
        return Upload(self.tmp_dir, count_lines)

    def _blob_path(self, item_id: int, version: int) -> str:
        return f"{item_id % 256:02x}/{item_id}.{version}"

    def _place_blob(self, upload: Upload, item_id: int, version: int) -> str:
        upload.close()
        rel = self._blob_path(item_id, version)
        target = self.blob_dir / rel
        target.parent.mkdir(exist_ok=True)
        os.replace(upload.path, target)
        return rel

    def _unlink_blob(self, rel: str | None) -> None:
        if rel:
            try:
                os.unlink(self.blob_dir / rel)
            except FileNotFoundError:
                logger.warning("blob %s was already gone", rel)

    def _creation_folder(self, conn: sqlite3.Connection, caller: User, path: str | None) -> _Node:
        """The folder a new item goes into: ``path``, or the caller's My Data when None.

        Raises Forbidden for a folder the caller cannot write (or a virtual one), BadInput for a
        path that names something other than a folder, NotFound for no such path.
        """
        folder = (
            self._default_folder(conn, caller)
            if path is None
            else self._resolve(conn, caller, path)
        )
        if folder.row is None or not folder.writable:
            raise Forbidden(f"cannot create in {folder.path}")
        if folder.row["kind"] != "folder":
            raise BadInput(f"not a folder: {folder.path}")
        return folder

    def _default_folder(self, conn: sqlite3.Connection, caller: User) -> _Node:
        if caller.default_project is None:
            raise BadInput("no default project: give a path")
        return self._root(conn, caller, caller.default_project, "user")

    def commit_upload(
        self,
        caller: User,
        upload: Upload,
        kind: str,
        name: str,
        path: str | None = None,
        description: str = "",
        tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Turn a finished upload into a new file or dataset in folder ``path`` (default My Data).

        The row becomes visible only once the blob is in place. On any error the upload is
        discarded and the error raised (BadInput, NotFound, Forbidden).
        """
        try:
            check_name(name)
            check_text(description, "description")
            tags = [check_tag(tag) for tag in tags]
            if path is not None:
                parse_path(path)
            with self._write() as conn:
                folder = self._creation_folder(conn, caller, path)
                ts = now_ts()
                item_id = conn.execute(
                    "INSERT INTO items(kind, name, parent_id, owner, size, count, description,"
                    " sha256, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        kind,
                        name,
                        folder.row["id"],
                        caller.id,
                        upload.size,
                        upload.records if kind == "dataset" else 0,
                        description,
                        upload.sha256,
                        ts,
                        ts,
                    ),
                ).lastrowid
                conn.executemany(
                    "INSERT OR IGNORE INTO tags(item_id, system, tag) VALUES (?, 0, ?)",
                    [(item_id, tag) for tag in tags],
                )
                return self._attach_new_blob(
                    conn, upload, item_id, f"{folder.path}/{name}", folder.project
                )
        finally:
            upload.discard()

    def _attach_new_blob(
        self, conn: sqlite3.Connection, upload: Upload, item_id: int, path: str, project: int | None
    ) -> dict[str, Any]:
        """Move a complete upload into place as new item ``item_id``'s first blob; its resource.

        Runs inside the write transaction that inserted the row, so a failure here rolls the row
        back, and the blob is removed again: nothing half-made stays visible.
        """
        rel = self._place_blob(upload, item_id, 1)
        try:
            conn.execute("UPDATE items SET blob = ? WHERE id = ?", (rel, item_id))
            row = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
            return self._resource(conn, row, path, project)
        except BaseException:
            self._unlink_blob(rel)
            raise

    def replace_content(self, caller: User, file_id: int, upload: Upload) -> dict[str, Any]:
        """Replace a file's content atomically (same id, new size/modified/sha256)."""
        try:
            with self._write() as conn:
                row, path, project = self._fetch(conn, caller, "file", file_id, write=True)
                old = row["blob"]
                version = int(old.rsplit(".", 1)[1]) + 1 if old else 1
                rel = self._place_blob(upload, file_id, version)
                try:
                    conn.execute(
                        "UPDATE items SET blob = ?, size = ?, sha256 = ?, modified = ? WHERE id = ?",
                        (rel, upload.size, upload.sha256, now_ts(), file_id),
                    )
                    new = conn.execute("SELECT * FROM items WHERE id = ?", (file_id,)).fetchone()
                    result = self._resource(conn, new, path, project)
                except BaseException:
                    self._unlink_blob(rel)
                    raise
            # Readers that opened the old blob keep their inode; new readers see the new one.
            self._unlink_blob(old)
            return result
        finally:
            upload.discard()

    def commit_shard(
        self,
        caller: User,
        collection_id: int,
        upload: Upload,
        name: str,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add a shard to an open collection (Conflict if it is ``ready``)."""
        try:
            check_name(name)
            meta = json.dumps(metadata or {})
            with self._write() as conn:
                coll, path, project = self._fetch(
                    conn, caller, "shard_collection", collection_id, write=True
                )
                if coll["state"] == "ready":
                    raise Conflict(f"shard collection {collection_id} is ready (closed)")
                ts = now_ts()
                item_id = conn.execute(
                    "INSERT INTO items(kind, name, parent_id, owner, size, metadata, sha256,"
                    " created, modified) VALUES ('shard', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, collection_id, caller.id, upload.size, meta, upload.sha256, ts, ts),
                ).lastrowid
                return self._attach_new_blob(conn, upload, item_id, f"{path}/{name}", project)
        finally:
            upload.discard()

    # -- resources by id -----------------------------------------------------------------------

    def get_resource(self, caller: User, kind: str, item_id: int) -> dict[str, Any]:
        """A file, dataset, collection or folder by id (soft-deleted ones too, with ``deleted``)."""
        conn = self._conn()
        row, path, project = self._fetch(conn, caller, kind, item_id, include_deleted=True)
        return self._resource(conn, row, path, project)

    def list_resources(
        self,
        caller: User,
        kind: str,
        *,
        name: str | None = None,
        project: int | None = None,
        tags: Sequence[str] = (),
        deleted: bool = False,
        limit: int = 250,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Page of the resources of one kind the caller can read (own, team or shared)."""
        conn = self._conn()
        projects = sorted(self._projects_of(conn, caller.id))
        if project is not None:
            if project not in projects:
                return 0, []
            projects = [project]
        for text in (name, *tags):
            if text is not None:
                check_text(text, "filter")
        pm = ",".join("?" * len(projects)) or "NULL"
        roots_sql = (
            f"SELECT id FROM items WHERE (root_kind = 'team' AND root_project IN ({pm}))"
            f" OR (root_kind = 'user' AND root_user = ? AND root_project IN ({pm}))"
        )
        all_projects = sorted(self._projects_of(conn, caller.id))
        am = ",".join("?" * len(all_projects)) or "NULL"
        where = [
            "items.kind = ?",
            "(items.parent_id IN (SELECT id FROM tree) OR items.id IN (SELECT item_id FROM shares"
            f" WHERE (kind = 'users' AND target = ?) OR (kind = 'projects' AND target IN ({am}))))",
        ]
        params: list[Any] = [kind, caller.id, *all_projects]
        if not deleted:
            where.append("items.deleted IS NULL")
        if name:
            where.append("instr(items.name, ?) > 0")
            params.append(name)
        for tag in tags:
            where.append(
                "EXISTS (SELECT 1 FROM tags t WHERE t.item_id = items.id AND t.system = 0"
                " AND t.tag = ?)"
            )
            params.append(tag)
        cte = (
            f"WITH RECURSIVE tree(id) AS ({roots_sql} UNION ALL SELECT i.id FROM items i"
            " JOIN tree ON i.parent_id = tree.id WHERE i.kind = 'folder')"
        )
        cte_params = [*projects, caller.id, *projects]
        clause = " AND ".join(where)
        total = conn.execute(
            f"{cte} SELECT count(*) FROM items WHERE {clause}", [*cte_params, *params]
        ).fetchone()[0]
        ids = [
            r[0]
            for r in conn.execute(
                f"{cte} SELECT items.id FROM items WHERE {clause} ORDER BY items.id LIMIT ? OFFSET ?",
                [*cte_params, *params, limit, offset],
            )
        ]
        results = []
        for item_id in ids:
            row, path, proj, _ = self._access(conn, caller, item_id)
            results.append(self._resource(conn, row, path, proj))
        return total, results

    def update_resource(
        self, caller: User, kind: str, item_id: int, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change ``name``/``description`` (and for collections ``state``/``metadata``)."""
        with self._write() as conn:
            row, path, project = self._fetch(conn, caller, kind, item_id, write=True)
            sets: dict[str, Any] = {}
            if changes.get("name") is not None:
                sets["name"] = check_name(changes["name"])
            if changes.get("description") is not None and kind in ("file", "dataset"):
                sets["description"] = check_text(changes["description"], "description")
            if kind == "shard_collection":
                state = changes.get("state")
                if state is not None:
                    if state != "ready":
                        raise BadInput("a collection's state can only be set to 'ready'")
                    sets["state"] = "ready"
                if changes.get("metadata") is not None:
                    sets["metadata"] = json.dumps(changes["metadata"])
            if sets:
                sets["modified"] = now_ts()
                assignments = ", ".join(f"{key} = ?" for key in sets)
                conn.execute(
                    f"UPDATE items SET {assignments} WHERE id = ?", [*sets.values(), item_id]
                )
                if "name" in sets:
                    path = f"{path.rsplit('/', 1)[0]}/{sets['name']}"
            new = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
            return self._resource(conn, new, path, project)

    def delete_resource(self, caller: User, kind: str, item_id: int, immediate: bool) -> None:
        """Soft-delete (``deleted`` timestamp) or, with ``immediate``, purge rows and blobs."""
        blobs: list[str] = []
        with self._write() as conn:
            self._fetch(conn, caller, kind, item_id, write=True, include_deleted=immediate)
            if not immediate:
                self._soft_delete_tree(conn, item_id, now_ts())
                return
            rows = conn.execute(
                "WITH RECURSIVE sub(id, depth) AS (SELECT ?, 0 UNION ALL"
                " SELECT i.id, s.depth + 1 FROM items i JOIN sub s ON i.parent_id = s.id)"
                " SELECT items.id, items.blob FROM sub JOIN items ON items.id = sub.id"
                " ORDER BY sub.depth DESC",
                (item_id,),
            ).fetchall()
            for row in rows:
                conn.execute("DELETE FROM items WHERE id = ?", (row["id"],))
                if row["blob"]:
                    blobs.append(row["blob"])
        for rel in blobs:
            self._unlink_blob(rel)

    def open_content(self, caller: User, kind: str, item_id: int) -> tuple[BinaryIO, int, str]:
        """Open the content of a file, dataset or shard: (open binary file, size, name)."""
        conn = self._conn()
        row, _, _ = self._fetch(conn, caller, kind, item_id)
        if not row["blob"]:
            raise NotFound(f"{kind} {item_id} has no content")
        handle = open(self.blob_dir / row["blob"], "rb")  # noqa: SIM115 - the caller closes it
        return handle, os.fstat(handle.fileno()).st_size, row["name"]

    # -- collections and shards -----------------------------------------------------------------

    def create_collection(
        self,
        caller: User,
        name: str,
        path: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create an open shard collection in folder ``path`` (default My Data)."""
        check_name(name)
        if path is not None:
            parse_path(path)
        meta = json.dumps(metadata or {})
        with self._write() as conn:
            folder = self._creation_folder(conn, caller, path)
            ts = now_ts()
            item_id = conn.execute(
                "INSERT INTO items(kind, name, parent_id, owner, state, metadata, created, modified)"
                " VALUES ('shard_collection', ?, ?, ?, 'open', ?, ?, ?)",
                (name, folder.row["id"], caller.id, meta, ts, ts),
            ).lastrowid
            row = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
            return self._resource(conn, row, f"{folder.path}/{name}", folder.project)

    def _shard(
        self, conn: sqlite3.Connection, caller: User, collection_id: int, shard_id: int
    ) -> sqlite3.Row:
        self._fetch(conn, caller, "shard_collection", collection_id)
        row = conn.execute(
            "SELECT * FROM items WHERE id = ? AND kind = 'shard' AND parent_id = ?"
            " AND deleted IS NULL",
            (shard_id, collection_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"no shard {shard_id} in collection {collection_id}")
        return row

    def list_shards(
        self, caller: User, collection_id: int, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """Page of a collection's shards, by id."""
        conn = self._conn()
        _, path, project = self._fetch(conn, caller, "shard_collection", collection_id)
        where = "parent_id = ? AND kind = 'shard' AND deleted IS NULL"
        total = conn.execute(
            f"SELECT count(*) FROM items WHERE {where}", (collection_id,)
        ).fetchone()[0]
        rows = conn.execute(
            f"SELECT * FROM items WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
            (collection_id, limit, offset),
        ).fetchall()
        return total, [self._resource(conn, row, f"{path}/{row['name']}", project) for row in rows]

    def get_shard(self, caller: User, collection_id: int, shard_id: int) -> dict[str, Any]:
        """One shard of a collection."""
        conn = self._conn()
        row = self._shard(conn, caller, collection_id, shard_id)
        return self._resource(conn, row, "", 0)

    def delete_shard(self, caller: User, collection_id: int, shard_id: int) -> None:
        """Remove a shard (row and blob) from a collection the caller may change."""
        with self._write() as conn:
            self._fetch(conn, caller, "shard_collection", collection_id, write=True)
            row = self._shard(conn, caller, collection_id, shard_id)
            conn.execute("DELETE FROM items WHERE id = ?", (shard_id,))
        self._unlink_blob(row["blob"])

    def open_shard(
        self, caller: User, collection_id: int, shard_id: int
    ) -> tuple[BinaryIO, int, str]:
        """Open a shard's content: (open binary file, size, name)."""
        conn = self._conn()
        self._shard(conn, caller, collection_id, shard_id)
        return self.open_content(caller, "shard", shard_id)

    # -- tags and sharing -----------------------------------------------------------------------

    @staticmethod
    def _check_taggable(kind: str) -> None:
        if kind not in TAGGABLE:
            raise BadInput(f"{kind!r} is not taggable or shareable")

    def get_tags(self, caller: User, kind: str, item_id: int) -> dict[str, list[str]]:
        """``{"tags", "systemtags"}`` of a resource."""
        self._check_taggable(kind)
        conn = self._conn()
        self._fetch(conn, caller, kind, item_id)
        tags, systemtags = self._tags(conn, [item_id])[item_id]
        return {"tags": tags, "systemtags": systemtags}

    def add_tags(
        self, caller: User, kind: str, item_id: int, tags: Sequence[str], system: bool = False
    ) -> dict[str, list[str]]:
        """Add tags (or, for the server itself, systemtags); existing ones stay."""
        self._check_taggable(kind)
        tags = [check_tag(tag) for tag in tags]
        with self._write() as conn:
            self._fetch(conn, caller, kind, item_id, write=True)
            conn.executemany(
                "INSERT OR IGNORE INTO tags(item_id, system, tag) VALUES (?, ?, ?)",
                [(item_id, int(system), tag) for tag in tags],
            )
        return self.get_tags(caller, kind, item_id)

    def remove_tags(
        self, caller: User, kind: str, item_id: int, tags: Sequence[str]
    ) -> dict[str, list[str]]:
        """Remove tags; absent ones are ignored."""
        self._check_taggable(kind)
        for tag in tags:
            check_text(tag, "tag")
        with self._write() as conn:
            self._fetch(conn, caller, kind, item_id, write=True)
            conn.executemany(
                "DELETE FROM tags WHERE item_id = ? AND system = 0 AND tag = ?",
                [(item_id, tag) for tag in tags],
            )
        return self.get_tags(caller, kind, item_id)

    def get_sharing(self, caller: User, kind: str, item_id: int) -> dict[str, list[int]]:
        """``{"users": [...], "projects": [...]}`` a resource is shared with."""
        self._check_taggable(kind)
        conn = self._conn()
        self._fetch(conn, caller, kind, item_id)
        status: dict[str, list[int]] = {"users": [], "projects": []}
        for row in conn.execute(
            "SELECT kind, target FROM shares WHERE item_id = ? ORDER BY kind, target", (item_id,)
        ):
            status[row[0]].append(row[1])
        return status

    def set_sharing(
        self, caller: User, kind: str, item_id: int, share_with: str, ids: Sequence[int], add: bool
    ) -> dict[str, list[int]]:
        """Share with (``add``) or unshare from users or projects; NotFound for unknown ids."""
        self._check_taggable(kind)
        if share_with not in ("users", "projects"):
            raise BadInput("share_with must be 'users' or 'projects'")
        table = "users" if share_with == "users" else "projects"
        with self._write() as conn:
            self._fetch(conn, caller, kind, item_id, write=True)
            for target in ids:
                if add:
                    if not conn.execute(
                        f"SELECT 1 FROM {table} WHERE id = ?", (target,)
                    ).fetchone():
                        raise NotFound(f"no {share_with[:-1]} {target}")
                    conn.execute(
                        "INSERT OR IGNORE INTO shares(item_id, kind, target) VALUES (?, ?, ?)",
                        (item_id, share_with, target),
                    )
                else:
                    conn.execute(
                        "DELETE FROM shares WHERE item_id = ? AND kind = ? AND target = ?",
                        (item_id, share_with, target),
                    )
        return self.get_sharing(caller, kind, item_id)
