"""Shard collections and their shards."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, BinaryIO

from orionfs.server.storage.accounts import User
from orionfs.server.storage.blobs import Upload
from orionfs.server.storage.errors import Conflict, NotFound
from orionfs.server.storage.resources import Resources
from orionfs.server.storage.schema import now_ts
from orionfs.server.storage.validation import check_name, parse_path


class Collections(Resources):
    """Shard collections (open until closed with ``state: ready``) and their read-only shards."""

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
                "INSERT INTO items(kind, name, parent_id, owner, state, metadata, created, modified,"
                " mtime) VALUES ('shard_collection', ?, ?, ?, 'open', ?, ?, ?, ?)",
                (name, folder.row["id"], caller.id, meta, ts, ts, ts),
            ).lastrowid
            self._touch(conn, folder.row["id"], ts)
            row = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
            return self._resource(conn, row, f"{folder.path}/{name}", folder.project)

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
                    " created, modified, mtime) VALUES ('shard', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, collection_id, caller.id, upload.size, meta, upload.sha256, ts, ts, ts),
                ).lastrowid
                self._touch(conn, collection_id, ts)
                return self._attach_new_blob(conn, upload, item_id, f"{path}/{name}", project)
        finally:
            upload.discard()

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
            self._touch(conn, collection_id, now_ts())
        self.blobs.unlink(row["blob"])

    def open_shard(
        self, caller: User, collection_id: int, shard_id: int
    ) -> tuple[BinaryIO, int, str]:
        """Open a shard's content: (open binary file, size, name)."""
        conn = self._conn()
        self._shard(conn, caller, collection_id, shard_id)
        return self.open_content(caller, "shard", shard_id)
