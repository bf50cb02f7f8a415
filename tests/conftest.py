"""Test fixtures, one plugin module per layer in tests/support, and the suites by what they need:

- tests/unit: nothing but Python (fake clocks and stores where a real part cannot be had);
- tests/integration: the real local server on a loopback port;
- tests/fuse: real FUSE mounts in temp dirs (always unmounted in teardown);
- tests/system: whole processes: the CLI, mount(8), systemd's protocols, the bench's tools.

Plugins: tests/support/server.py (``server``, ``server_factory``), tests/support/session.py
(OrionSession objects for the server's users), tests/support/mount.py (``mount``, ``mount_factory``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

pytest_plugins = ["tests.support.server", "tests.support.session", "tests.support.mount"]


def pytest_configure(config: Any) -> None:
    """Every mount a test starts keeps its data cache (and its log) in a folder of this run, not
    in ~/.cache: each test server has its own port, so each would leave a cache folder there."""
    folder = tempfile.mkdtemp(prefix="orionfs-test-cache-")
    config.orionfs_cache_home = folder
    os.environ["XDG_CACHE_HOME"] = folder


def pytest_unconfigure(config: Any) -> None:
    folder = getattr(config, "orionfs_cache_home", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
