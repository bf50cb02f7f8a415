"""Inode numbers from Orion's identity, the same on every mount and every machine (``use_ino``).

An item's inode is derived from its kind and id, so backup tools (restic, borg,
``tar --listed-incremental``) and git see the same file after a remount. Items with no id (the
virtual folders ``/project``..., a new file not uploaded yet) get a stable hash of their Orion path,
in the upper half of the number space, where no id-derived inode falls.
"""

from __future__ import annotations

import hashlib

from orionfs.client import wire
from orionfs.fs.entry import Entry

#: The mount root's inode.
ROOT_INODE = 1
_KIND_CODES = {
    wire.FOLDER: 1,
    wire.SHARD_COLLECTION: 2,
    wire.FILE: 3,
    wire.DATASET: 4,
    wire.SHARD: 5,
}
_HASHED = 1 << 63


def inode_of(entry: Entry) -> int:
    """The inode number the mount shows for ``entry``."""
    if entry.id is not None and entry.id >= 0 and entry.id < (1 << 59):
        return ((entry.id + 1) << 3) | _KIND_CODES.get(entry.kind, 7)
    name = f"{entry.kind}:{entry.path}".encode(
        "utf-8", "surrogateescape"
    )  # names as the kernel gave them
    digest = hashlib.blake2b(name, digest_size=8).digest()
    return _HASHED | (int.from_bytes(digest, "big") >> 1)
