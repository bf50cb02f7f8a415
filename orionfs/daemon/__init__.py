"""The mount process and what runs around it, one concern a module.

- ``checks``: what ``orionfs mount`` verifies before it starts anything (mount point, /dev/fuse,
  libfuse, the profile, the credentials with one request).
- ``process``: the detached mount process (spawn, readiness, state files, exit), and unmounting.
- ``local_server``: ``--local DATA_DIR``, the local Orion server run by the mount process.
- ``stop``: the stop signal ``orionfs unmount`` sends a mount process that calls in flight keep.
- ``run``: the mount process itself (``orionfs mount --foreground``).

The command line (``orionfs mount`` / ``orionfs unmount``) is ``orionfs.cli.mount``.
"""

from __future__ import annotations


class MountError(Exception):
    """A failure to report as one line (``orionfs: error: <message>``)."""
