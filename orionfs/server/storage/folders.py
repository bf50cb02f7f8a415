"""Folders and paths: ls, stat, create, remove, move (assign) and paths of items by id."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from orionfs.server.storage.accounts import User
from orionfs.server.storage.errors import BadInput, Conflict, Forbidden, NotFound
from orionfs.server.storage.namespace import RESOURCE_TYPES, Namespace, _Node
from orionfs.server.storage.schema import icontains, now_ts
from orionfs.server.storage.validation import check_name, check_text, parse_path

ORDERINGS = {
    "name": "name ASC, id ASC",
    "-name": "name DESC, id DESC",
    "created": "created ASC, id ASC",
    "-created": "created DESC, id DESC",
    "size": "size ASC, id ASC",
    "-size": "size DESC, id DESC",
    "id": "id ASC",
}


class Folders(Namespace):
    """The path API: listings and entries, folder creation, removal and moves."""

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
                and (name_icontains is None or icontains(e["name"], name_icontains))
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
                            "INSERT INTO items(kind, name, parent_id, owner, created, modified,"
                            " mtime) VALUES ('folder', ?, ?, ?, ?, ?, ?)",
                            (name, node.row["id"], caller.id, ts, ts, ts),
                        ).lastrowid
                        self._touch(conn, node.row["id"], ts)
                        row = conn.execute("SELECT * FROM items WHERE id = ?", (new_id,)).fetchone()
                        created = True
                    node = _Node(f"{node.path}/{name}", row, node.project, True)
                if not created and not exist_ok:
                    raise Conflict(f"path exists: {path}")
                results.append(self._node_entry(conn, node))
        return results

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
                if row is None or row["root_kind"] is not None or not node.writable:
                    raise Forbidden(f"cannot remove {path}")
                if row["kind"] == "folder" and not recursive:
                    if conn.execute(
                        "SELECT 1 FROM items WHERE parent_id = ? AND deleted IS NULL LIMIT 1",
                        (row["id"],),
                    ).fetchone():
                        raise Conflict(f"folder not empty: {path}")
                self._soft_delete_tree(conn, row["id"], ts)
                self._touch(conn, row["parent_id"], ts)

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
                ts = now_ts()
                for folder_id in {row["parent_id"], dest.row["id"]}:
                    self._touch(conn, folder_id, ts)
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
