"""Where items are and who may see them: path resolution, access by id, and the wire shapes.

The namespace (docs/wire.md): ``/``, ``/project`` and ``/project/<pid>[/user|/shared]`` are virtual
folders computed per caller; ``/project/<pid>/user/<username>`` (My Data) and ``/project/<pid>/team``
(Team Data) are root folders stored in the items table, and everything else hangs below them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orionfs.server.storage.accounts import Accounts, User
from orionfs.server.storage.errors import BadInput, Forbidden, NotFound
from orionfs.server.storage.validation import MAX_ID, parse_path

RESOURCE_TYPES = ("folder", "file", "dataset", "shard_collection", "shard")


@dataclass
class _Node:
    """A resolved path: a virtual folder (``row`` is None) or a stored item."""

    path: str
    row: sqlite3.Row | None
    project: int | None
    writable: bool


class Namespace(Accounts):
    """Path resolution, access checks and the wire shape of entries and resources."""

    # -- path resolution -----------------------------------------------------------------------

    @staticmethod
    def _virtual(path: str, project: int | None = None) -> _Node:
        return _Node(path=path, row=None, project=project, writable=False)

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
        return _Node(path=path, row=row, project=project, writable=True)

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
        self, conn: sqlite3.Connection, caller: User, kind: str, item_id: int
    ) -> tuple[sqlite3.Row, str, int, bool]:
        """(row, path, project, writable) of an item the caller may read.

        The caller writes their own My Data and the Team Data of a project they are a member of
        (not a My Data they left behind), and reads what is shared with them. Raises NotFound
        (``no <kind> <id>``, the text of a missing item) otherwise.
        """
        chain, path = self._context(conn, item_id)
        root, row = chain[0], chain[-1]
        project = root["root_project"]
        projects = self._projects_of(conn, caller.id)
        writable = project in projects and (
            root["root_kind"] == "team" or root["root_user"] == caller.id
        )
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
            raise NotFound(f"no {kind} {item_id}")
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
        """(row, path, project) of an item of ``kind`` the caller may read (``write``: change).

        Raises NotFound with one text (``no <kind> <id>``) whether the item is missing, deleted
        (unless ``include_deleted``), of another kind or not the caller's to see, and Forbidden
        for an item the caller sees but may not change.
        """
        row = conn.execute(
            "SELECT id, deleted FROM items WHERE id = ? AND kind = ?", (item_id, kind)
        ).fetchone()
        if row is None or (row["deleted"] and not include_deleted):
            raise NotFound(f"no {kind} {item_id}")
        full, path, project, writable = self._access(conn, caller, kind, item_id)
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
            "mtime": row["mtime"],
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
            "mtime": created,
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
            "mtime": row["mtime"],
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

    # -- changes of the tree -------------------------------------------------------------------

    @staticmethod
    def _touch(conn: sqlite3.Connection, container_id: int, ts: str) -> None:
        """Note a change among a folder's (or collection's) children: its modified and mtime."""
        conn.execute(
            "UPDATE items SET modified = ?, mtime = ? WHERE id = ?", (ts, ts, container_id)
        )

    def _soft_delete_tree(self, conn: sqlite3.Connection, item_id: int, ts: str) -> None:
        conn.execute(
            "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL"
            " SELECT i.id FROM items i JOIN sub s ON i.parent_id = s.id WHERE i.deleted IS NULL)"
            " UPDATE items SET deleted = ? WHERE id IN (SELECT id FROM sub) AND deleted IS NULL",
            (item_id, ts),
        )

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
        project = caller.default_project
        if project is None or project not in self._projects_of(conn, caller.id):
            raise BadInput("no default project: give a path")
        return self._root(conn, caller, project, "user")
