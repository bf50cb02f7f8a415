"""Test fixtures, one plugin module per layer in tests/support, and the suites by what they need:

- tests/unit: nothing but Python (fake clocks and stores where a real part cannot be had);
- tests/integration: the real local server on a loopback port;
- tests/fuse: real FUSE mounts in temp dirs (always unmounted in teardown);
- tests/system: whole processes: the CLI, mount(8), systemd's protocols, the bench's tools.

Plugins: tests/support/server.py (``server``, ``server_factory``), tests/support/session.py
(OrionSession objects for the server's users), tests/support/mount.py (``mount``, ``mount_factory``).
"""

pytest_plugins = ["tests.support.server", "tests.support.session", "tests.support.mount"]
