"""Tags and sharing of files, datasets and shard collections."""

from __future__ import annotations

from collections.abc import Sequence

from orionfs.server.storage.accounts import User
from orionfs.server.storage.errors import BadInput, Forbidden, NotFound
from orionfs.server.storage.namespace import Namespace
from orionfs.server.storage.validation import check_tag, check_text

TAGGABLE = ("file", "dataset", "shard_collection")


class Sharing(Namespace):
    """Tags (user tags and systemtags) and sharing with users and projects."""

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
        """Share with (``add``) or unshare from users or projects; only the owner may.

        A share with a user is recorded for any id, taken or not, so that the answer never tells
        whether a user exists (a share with an id not yet taken is dropped when it is taken). A
        share with a project needs the caller's membership: NotFound (``no project <id>``, as for
        a project that does not exist) otherwise. Unsharing what is not shared does nothing.
        Raises Forbidden for a caller who is not the owner.
        """
        self._check_taggable(kind)
        if share_with not in ("users", "projects"):
            raise BadInput("share_with must be 'users' or 'projects'")
        with self._write() as conn:
            row, _, _ = self._fetch(conn, caller, kind, item_id, write=True)
            if row["owner"] != caller.id:
                raise Forbidden(f"only the owner may share {kind} {item_id}")
            if add and share_with == "projects":
                member_of = self._projects_of(conn, caller.id)
                for target in ids:
                    if target not in member_of:
                        raise NotFound(f"no project {target}")
            sql = (
                "INSERT OR IGNORE INTO shares(item_id, kind, target) VALUES (?, ?, ?)"
                if add
                else "DELETE FROM shares WHERE item_id = ? AND kind = ? AND target = ?"
            )
            conn.executemany(sql, [(item_id, share_with, target) for target in ids])
        return self.get_sharing(caller, kind, item_id)
