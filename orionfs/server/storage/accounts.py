"""Users, passwords, tokens, projects and project membership.

Passwords are stored as scrypt hashes with a per-user salt, tokens as their sha256 only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from orionfs.server.storage.errors import BadInput, Conflict, NotFound
from orionfs.server.storage.schema import Database, now_ts
from orionfs.server.storage.validation import check_name, check_text


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


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)


# The salt and hash an unknown username is checked against (no password matches the hash).
_NOBODY = (b"\x00" * 16, b"")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Accounts(Database):
    """Users, tokens and projects; of the items, only the root folders (My Data, Team Data)."""

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
        # An unknown user costs one hash too, so that the answer's time does not tell them apart.
        salt, expected = (row["pw_salt"], row["pw_hash"]) if row else _NOBODY
        if not hmac.compare_digest(_hash_password(password, salt), expected) or row is None:
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
            # Shares made with this id before it was taken are not for this user.
            conn.execute("DELETE FROM shares WHERE kind = 'users' AND target = ?", (user_id,))
            row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        return self._user(row), project

    def _create_project(self, conn: sqlite3.Connection, name: str, owner: int) -> int:
        ts = now_ts()
        pid = conn.execute(
            "INSERT INTO projects(name, owner, created) VALUES (?, ?, ?)", (name, owner, ts)
        ).lastrowid
        conn.execute(
            "INSERT INTO items(kind, name, root_kind, root_project, owner, created, modified, mtime)"
            " VALUES ('folder', 'team', 'team', ?, ?, ?, ?, ?)",
            (pid, owner, ts, ts, ts),
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
                " modified, mtime) VALUES ('folder', ?, 'user', ?, ?, ?, ?, ?, ?)",
                (username, project, user_id, user_id, ts, ts, ts),
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
        """Leave a project; its owner must hand it to another member.

        Leaving ends the caller's access to their My Data there (it stays, for a return). With
        ``new_owner_id`` (a fellow member), that My Data moves into theirs as a folder named after
        the caller, and they become the owner of it and of the caller's items in Team Data; a
        leaving project owner also hands them the project.

        Raises NotFound (not a member) and BadInput (no or a bad new owner).
        """
        with self._write() as conn:
            if project_id not in self._projects_of(conn, caller.id):
                raise NotFound(f"no project {project_id}")
            owner = conn.execute(
                "SELECT owner FROM projects WHERE id = ?", (project_id,)
            ).fetchone()[0]
            if owner == caller.id and new_owner_id is None:
                raise BadInput("the owner must name a new owner to leave a project")
            if new_owner_id is not None:
                if (
                    new_owner_id == caller.id
                    or not conn.execute(
                        "SELECT 1 FROM members WHERE project_id = ? AND user_id = ?",
                        (project_id, new_owner_id),
                    ).fetchone()
                ):
                    raise BadInput("the new owner must be another member of the project")
                if owner == caller.id:
                    conn.execute(
                        "UPDATE projects SET owner = ? WHERE id = ?", (new_owner_id, project_id)
                    )
                self._hand_over_my_data(conn, project_id, caller.id, new_owner_id)
            conn.execute(
                "DELETE FROM members WHERE project_id = ? AND user_id = ?", (project_id, caller.id)
            )
            conn.execute(
                "UPDATE users SET default_project ="
                " (SELECT min(project_id) FROM members WHERE user_id = ?)"
                " WHERE id = ? AND default_project = ?",
                (caller.id, caller.id, project_id),
            )

    @staticmethod
    def _hand_over_my_data(conn: sqlite3.Connection, project: int, leaver: int, heir: int) -> None:
        """Move ``leaver``'s My Data in ``project`` into ``heir``'s, owned by ``heir``.

        It becomes a folder named after the leaver (``<name> (<id>)`` where that name is taken);
        the leaver's items in Team Data change owner too.
        """
        roots = {
            row["root_user"]: row
            for row in conn.execute(
                "SELECT id, name, root_user FROM items WHERE root_kind = 'user'"
                " AND root_project = ? AND root_user IN (?, ?)",
                (project, leaver, heir),
            )
        }
        mine, theirs = roots[leaver], roots[heir]
        subtree = (
            "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL"
            " SELECT i.id FROM items i JOIN sub ON i.parent_id = sub.id)"
        )
        conn.execute(
            f"{subtree} UPDATE items SET owner = ? WHERE id IN (SELECT id FROM sub)",
            (mine["id"], heir),
        )
        conn.execute(
            f"{subtree} UPDATE items SET owner = ? WHERE owner = ? AND id IN (SELECT id FROM sub)",
            (
                conn.execute(
                    "SELECT id FROM items WHERE root_kind = 'team' AND root_project = ?", (project,)
                ).fetchone()[0],
                heir,
                leaver,
            ),
        )
        name = mine["name"]
        if conn.execute(
            "SELECT 1 FROM items WHERE parent_id = ? AND name = ? AND kind = 'folder'"
            " AND deleted IS NULL",
            (theirs["id"], name),
        ).fetchone():
            name = f"{name} ({mine['id']})"
        ts = now_ts()
        conn.execute(
            "UPDATE items SET root_kind = NULL, root_project = NULL, root_user = NULL,"
            " parent_id = ?, name = ?, modified = ? WHERE id = ?",
            (theirs["id"], name, ts, mine["id"]),
        )
        conn.execute(
            "UPDATE items SET modified = ?, mtime = ? WHERE id = ?", (ts, ts, theirs["id"])
        )

    def balance(self, caller: User) -> float:
        """The caller's balance; BadInput without the cost-accounting capability."""
        if not caller.cost_accounting:
            raise BadInput("your organisation lacks the cost-accounting capability")
        return float(caller.balance)
