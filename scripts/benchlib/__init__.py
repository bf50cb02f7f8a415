"""The benchmark behind scripts/bench.py, one concern a module.

- ``sizes``: how much data and how many runs (``--quick`` or full).
- ``processes``: the helpers it starts and stops (the local server, latency proxies, rclone, the
  mounts), built on orionfs.daemon's own process and unmount functions.
- ``targets``: the two mounts compared (orionfs, rclone), their direct access, and the rig that
  sets them up with the same data.
- ``cases``: the measured cases and the run loop.
- ``report``: the figures, the expected request counts (``--check``), the table and the JSON.
"""

from __future__ import annotations

import sys
import time


def log(message: str) -> None:
    """A progress line on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
