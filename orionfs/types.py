"""``orionfs.types``: the orionclient-compatible import path (``orionclient.types``).

The implementation lives in :mod:`orionfs.client.types`; this module names its public API.
"""

from orionfs.client.types import (
    Dataset,
    File,
    Folder,
    Link,
    OrionResource,
    Project,
    Shard,
    ShardCollection,
    User,
)

__all__ = [
    "Dataset",
    "File",
    "Folder",
    "Link",
    "OrionResource",
    "Project",
    "Shard",
    "ShardCollection",
    "User",
]
