"""Files and datasets: uploads, and the resources by id (get, list, update, delete, content)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, BinaryIO

from orionfs.server.storage.accounts import User
from orionfs.server.storage.blobs import BlobStore, Upload
from orionfs.server.storage.errors import BadInput, NotFound
from orionfs.server.storage.namespace import Namespace
from orionfs.server.storage.schema import now_ts
from orionfs.server.storage.validation import (
    check_name,
    check_tag,
    check_text,
    parse_path,
    parse_timestamp,
)


class Resources(Namespace):
    """Items by id, and the uploads that create or replace files and datasets."""

    blobs: BlobStore

    # -- uploads ------------------------------------------------------------------------------

    def new_upload(self, count_lines: bool = False) -> Upload:
        """Start receiving a blob into a temp file (``count_lines`` for a dataset's records)."""
        return self.blobs.new_upload(count_lines)

    def commit_upload(
        self,
        caller: User,
        upload: Upload,
        kind: str,
        name: str,
        path: str | None = None,
        description: str = "",
        tags: Sequence[str] = (),
        mtime: str | None = None,
    ) -> dict[str, Any]:
        """Turn a finished upload into a new file or dataset in folder ``path`` (default My Data).

        ``mtime`` (ISO 8601 with a zone) is the content's modification time; the creation time
        if None. The row becomes visible only once the blob is in place. On any error the upload
        is discarded and the error raised (BadInput, NotFound, Forbidden).
        """
        try:
            check_name(name)
            check_text(description, "description")
            tags = [check_tag(tag) for tag in tags]
            if path is not None:
                parse_path(path)
            if mtime is not None:
                mtime = parse_timestamp(mtime, "mtime")
            with self._write() as conn:
                folder = self._creation_folder(conn, caller, path)
                ts = now_ts()
                item_id = conn.execute(
                    "INSERT INTO items(kind, name, parent_id, owner, size, count, description,"
                    " sha256, created, modified, mtime) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        mtime or ts,
                    ),
                ).lastrowid
                self._touch(conn, folder.row["id"], ts)
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
        rel = self.blobs.place(upload, item_id, 1)
        try:
            conn.execute("UPDATE items SET blob = ? WHERE id = ?", (rel, item_id))
            row = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
            return self._resource(conn, row, path, project)
        except BaseException:
            self.blobs.unlink(rel)
            raise

    def replace_content(
        self, caller: User, file_id: int, upload: Upload, mtime: str | None = None
    ) -> dict[str, Any]:
        """Replace a file's content atomically (same id, new size/modified/sha256).

        Its ``mtime`` becomes ``mtime`` (ISO 8601 with a zone), or the time of the change if None.
        """
        try:
            if mtime is not None:
                mtime = parse_timestamp(mtime, "mtime")
            with self._write() as conn:
                row, path, project = self._fetch(conn, caller, "file", file_id, write=True)
                old = row["blob"]
                version = int(old.rsplit(".", 1)[1]) + 1 if old else 1
                rel = self.blobs.place(upload, file_id, version)
                try:
                    ts = now_ts()
                    conn.execute(
                        "UPDATE items SET blob = ?, size = ?, sha256 = ?, modified = ?, mtime = ?"
                        " WHERE id = ?",
                        (rel, upload.size, upload.sha256, ts, mtime or ts, file_id),
                    )
                    new = conn.execute("SELECT * FROM items WHERE id = ?", (file_id,)).fetchone()
                    result = self._resource(conn, new, path, project)
                except BaseException:
                    self.blobs.unlink(rel)
                    raise
            # Readers that opened the old blob keep their inode; new readers see the new one.
            self.blobs.unlink(old)
            return result
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
        member_of = sorted(self._projects_of(conn, caller.id))
        if project is not None and project not in member_of:
            return 0, []
        projects = member_of if project is None else [project]
        for text in (name, *tags):
            if text is not None:
                check_text(text, "filter")
        pm = ",".join("?" * len(projects)) or "NULL"
        roots_sql = (
            f"SELECT id FROM items WHERE (root_kind = 'team' AND root_project IN ({pm}))"
            f" OR (root_kind = 'user' AND root_user = ? AND root_project IN ({pm}))"
        )
        am = ",".join("?" * len(member_of)) or "NULL"
        where = [
            "items.kind = ?",
            "(items.parent_id IN (SELECT id FROM tree) OR items.id IN (SELECT item_id FROM shares"
            f" WHERE (kind = 'users' AND target = ?) OR (kind = 'projects' AND target IN ({am}))))",
        ]
        params: list[Any] = [kind, caller.id, *member_of]
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
            row, path, proj, _ = self._access(conn, caller, kind, item_id)
            results.append(self._resource(conn, row, path, proj))
        return total, results

    def update_resource(
        self, caller: User, kind: str, item_id: int, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change ``name``/``description``/``mtime`` (and for collections ``state``/``metadata``).

        Files and datasets take ``mtime`` (ISO 8601 with a zone); a rename notes a change in the
        parent folder.
        """
        with self._write() as conn:
            row, path, project = self._fetch(conn, caller, kind, item_id, write=True)
            sets: dict[str, Any] = {}
            if changes.get("name") is not None:
                sets["name"] = check_name(changes["name"])
            if kind in ("file", "dataset"):
                if changes.get("description") is not None:
                    sets["description"] = check_text(changes["description"], "description")
                if changes.get("mtime") is not None:
                    sets["mtime"] = parse_timestamp(changes["mtime"], "mtime")
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
                    self._touch(conn, row["parent_id"], sets["modified"])
            new = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
            return self._resource(conn, new, path, project)

    def delete_resource(self, caller: User, kind: str, item_id: int, immediate: bool) -> None:
        """Soft-delete (``deleted`` timestamp) or, with ``immediate``, purge rows and blobs."""
        blobs: list[str] = []
        with self._write() as conn:
            row, _, _ = self._fetch(
                conn, caller, kind, item_id, write=True, include_deleted=immediate
            )
            ts = now_ts()
            if row["deleted"] is None:
                self._touch(conn, row["parent_id"], ts)
            if not immediate:
                self._soft_delete_tree(conn, item_id, ts)
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
            self.blobs.unlink(rel)

    def open_content(self, caller: User, kind: str, item_id: int) -> tuple[BinaryIO, int, str]:
        """Open the content of a file, dataset or shard: (open binary file, size, name)."""
        conn = self._conn()
        row, _, _ = self._fetch(conn, caller, kind, item_id)
        if not row["blob"]:
            raise NotFound(f"{kind} {item_id} has no content")
        handle, size = self.blobs.open(row["blob"])
        return handle, size, row["name"]
