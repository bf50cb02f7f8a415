"""Test fixtures, one plugin module per layer so that each layer's fixtures live with their owner.

- tests/plugin_server.py: the real local server on a loopback port (``server``, ``server_factory``).
- tests/plugin_session.py: OrionSession objects for the server's users (``session``, ...).
- tests/plugin_mount.py: real FUSE mounts in temp dirs (``mount``, ``mount_factory``).
"""

pytest_plugins = ["tests.plugin_server", "tests.plugin_session", "tests.plugin_mount"]
