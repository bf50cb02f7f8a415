"""Failed-login throttling: too many failures for one key within a window are answered 429.

The token route keys each attempt by username and by client address; a key with ``limit``
failures within the last ``window`` seconds is refused (even the right password) until the oldest
of them is ``window`` seconds old. A success forgets the username's failures, not the address's.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable

DEFAULT_LIMIT = 10
DEFAULT_WINDOW = 300.0
_PRUNE_AT = 10_000  # keys held before expired ones are dropped


class LoginThrottle:
    """Failures per key in a sliding window; thread-safe, with an injectable clock."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[Hashable, deque[float]] = {}

    def _recent(self, key: Hashable, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, keys: Iterable[Hashable]) -> int | None:
        """Whole seconds until the keys may try again, or None if they may now."""
        with self._lock:
            now = self._clock()
            waits = [
                times[-self.limit] + self.window - now
                for times in (self._recent(key, now) for key in keys)
                if len(times) >= self.limit
            ]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, keys: Iterable[Hashable]) -> None:
        """Record one failed attempt for each key."""
        with self._lock:
            now = self._clock()
            if len(self._failures) >= _PRUNE_AT:
                for key in list(self._failures):
                    self._recent(key, now)
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, key: Hashable) -> None:
        """Forget the failures of ``key``."""
        with self._lock:
            self._failures.pop(key, None)
