"""The desktop trash at the mount root: there is none, and the mount says so.

Deleting through the mount is already Orion's own soft delete (orion-api.md: a deleted item keeps a
``deleted`` timestamp and leaves the listings), and the API has no trash to list or restore from, so
a desktop trash would only copy data into Orion under ``.Trash-<uid>/files`` and ``info``. GIO (so
Nautilus and ``gio trash``) uses ``MOUNT/.Trash-<uid>`` when it is a directory of the user's, or when
the mount root is writable and it can make one (glib's ``_g_local_file_has_trash_dir``). So at the
mount root (and only there):

- ``.Trash-<digits>`` is a *marker*: an empty read-only regular file, never listed, never stored in
  Orion. GIO then reports ``access::can-trash`` FALSE and offers a plain delete, and ``gio trash``
  fails at once ("Unable to find or create trash directory") without creating anything.
- ``.Trash`` (the shared trash) does not exist and cannot be made.
- Nothing else can be done to those names: create, mkdir, rename to or from, open, unlink,
  truncate, xattr changes are refused (the errnos are orionfs.fuse.operations's).

No FUSE imports and no errnos: the FUSE layer maps these answers to errnos.
"""

from __future__ import annotations

import re

#: The shared trash folder of the XDG trash specification, at a mount's top folder.
SHARED_TRASH = ".Trash"
_MARKER = re.compile(r"\A/\.Trash-\d+\Z")


def is_trash_marker(path: str | None) -> bool:
    """Whether ``path`` (a mount path) is a per-user trash name at the mount root."""
    return path is not None and _MARKER.match(path) is not None


def is_trash_name(path: str | None) -> bool:
    """Whether ``path`` is a trash name at the mount root (a marker, or ``/.Trash``)."""
    return path == "/" + SHARED_TRASH or is_trash_marker(path)
