"""The FUSE calls of one mount: which are being served now, and how many of each kind were.

``Calls`` is fed by the boundary of every operation (orionfs.fuse.errors.boundary) and by the calls
the binding answers itself (``tally``: the kernel's ``security.*`` probes): the daemon asks it which
calls wait on the server before it stops them, and the stats interface (orionfs.fuse.stats) reads
the counts by operation (calls, errors, seconds). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallCount:
    """What one kind of FUSE operation did since the mount started."""

    calls: int
    errors: int
    seconds: float


class Calls:
    """The in-flight table and the per-operation counters of one mount."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[int, tuple[str, float]] = {}  # thread id -> (operation, start)
        self._counts: dict[str, list[float]] = {}  # operation -> [calls, errors, seconds]
        self._workers = 0

    def start(self, operation: str) -> bool:
        """A call begins on this thread; False if this thread already serves one (an operation
        calling another: only the outer one counts)."""
        me = threading.get_ident()
        with self._lock:
            if me in self._in_flight:
                return False
            self._in_flight[me] = (operation, time.monotonic())
            return True

    def end(self, failed: bool) -> None:
        """The call of this thread ends (``failed``: it answered an errno)."""
        with self._lock:
            operation, started = self._in_flight.pop(threading.get_ident())
            counts = self._counts.setdefault(operation, [0, 0, 0.0])
            counts[0] += 1
            counts[1] += int(failed)
            counts[2] += time.monotonic() - started

    def tally(self, operation: str, failed: bool = False) -> None:
        """Count a call answered at once, without running an operation (no time spent)."""
        with self._lock:
            counts = self._counts.setdefault(operation, [0, 0, 0.0])
            counts[0] += 1
            counts[1] += int(failed)

    def worker_started(self) -> None:
        """A libfuse worker thread served its first call (orionfs.fuse.binding)."""
        with self._lock:
            self._workers += 1

    def workers(self) -> int:
        """libfuse worker threads that served a call since the mount started."""
        with self._lock:
            return self._workers

    def in_flight(self) -> list[tuple[str, float]]:
        """(operation, seconds running) of every call being served now."""
        now = time.monotonic()
        with self._lock:
            return [(name, now - started) for name, started in self._in_flight.values()]

    def counts(self) -> dict[str, CallCount]:
        """Per operation: calls, errors and seconds spent, since the mount started."""
        with self._lock:
            return {name: CallCount(int(c[0]), int(c[1]), c[2]) for name, c in self._counts.items()}
