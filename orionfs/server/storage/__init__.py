"""Storage layer of the local Orion server: SQLite metadata plus a blob folder. No HTTP here.

Everything a route needs is a method of :class:`Storage`; each takes the calling :class:`User` and
enforces the permission rules of docs/wire.md, raising one of the :class:`StorageError` subclasses
(the app maps them to 400/403/404/409). Results are plain dicts already in the wire shape.

Layout of DATA_DIR (0700, tightened at start if it is more open; files 0600)::

    orion.sqlite3        metadata (WAL mode, foreign keys on); -wal and -shm beside it
    blobs/ab/<id>.<v>    contents; named from ids only, never from user-chosen names
    tmp/                 uploads in progress (renamed into blobs/ only when complete)

The storage is built in layers, each a class over the one before, all sharing one connection
manager:

    schema.Database          connections, write transactions, the DDL
    accounts.Accounts        users, tokens, projects, membership
    namespace.Namespace      path resolution, access checks, wire shapes
    folders.Folders          ls, stat, create/remove/assign paths
    resources.Resources      uploads, files and datasets by id
    collections.Collections  shard collections and shards
    sharing.Sharing          tags and sharing

with validation (names, tags, paths), errors and blobs (uploads, blob files) beside them.
"""

from __future__ import annotations

import os
from pathlib import Path

from orionfs.server.storage.accounts import User
from orionfs.server.storage.blobs import BlobStore, Upload, private_folder
from orionfs.server.storage.collections import Collections
from orionfs.server.storage.errors import (
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    StorageError,
    TooLarge,
)
from orionfs.server.storage.folders import ORDERINGS, Folders
from orionfs.server.storage.namespace import RESOURCE_TYPES
from orionfs.server.storage.schema import now_ts
from orionfs.server.storage.sharing import TAGGABLE, Sharing
from orionfs.server.storage.validation import (
    MAX_ID,
    MAX_NAME_BYTES,
    MAX_TAG_CHARS,
    check_name,
    check_tag,
    check_text,
    parse_path,
)

__all__ = [
    "MAX_ID",
    "MAX_NAME_BYTES",
    "MAX_TAG_CHARS",
    "ORDERINGS",
    "RESOURCE_TYPES",
    "TAGGABLE",
    "BadInput",
    "Conflict",
    "Forbidden",
    "NotFound",
    "Storage",
    "StorageError",
    "TooLarge",
    "Upload",
    "User",
    "check_name",
    "check_tag",
    "check_text",
    "now_ts",
    "parse_path",
]

DB_NAME = "orion.sqlite3"


class Storage(Sharing, Collections, Folders):
    """Metadata and contents of the local Orion; safe to use from many threads."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        private_folder(self.data_dir)
        self.blobs = BlobStore(self.data_dir)
        super().__init__(self.data_dir / DB_NAME)
