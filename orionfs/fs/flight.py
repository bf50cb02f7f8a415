"""Single-flight: concurrent identical misses make one request.

A ``Flights`` table is used under its owner's lock: ``join`` (lock held) says whether the caller
leads the fetch or waits for another thread's; the leader fetches outside the lock and ``land``s
the result (lock held). A mutation that touches a key marks its flight stale (``forget``), so the
result is returned to its callers but not stored, and can never overwrite newer state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any


class Flight:
    """One request in flight, shared by every thread that misses on the same key."""

    __slots__ = ("done", "error", "result", "stale")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.stale = False


class Flights:
    """The flights of one cache, keyed by what they fetch. Not locked itself: the owner's lock
    guards every method but ``run``."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._flights: dict[Hashable, Flight] = {}

    def run(self, key: Hashable, fetch: Callable[[], Any], store: Callable[[Any], None]) -> Any:
        """``fetch()`` once for every thread asking for ``key`` meanwhile, outside the lock; then
        ``store(result)`` under the lock unless the key was forgotten meanwhile. Raises what the
        fetch raised, in every waiting thread."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result
        try:
            result = fetch()
        except BaseException as exc:
            flight.error = exc
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.done.set()
            raise
        flight.result = result
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if not flight.stale:
                store(result)
        flight.done.set()
        return result

    def forget(self, key: Hashable) -> None:
        """A mutation touched ``key``: its fetch in flight is neither stored nor joined. Lock held."""
        flight = self._flights.pop(key, None)
        if flight is not None:
            flight.stale = True

    def forget_where(self, predicate: Callable[[Hashable], bool]) -> None:
        """``forget`` every key for which ``predicate`` is true. Lock held."""
        for key in [k for k in self._flights if predicate(k)]:
            self.forget(key)

    def forget_all(self) -> None:
        """``forget`` everything. Lock held."""
        self.forget_where(lambda key: True)

    def keys(self) -> Iterable[Hashable]:
        return list(self._flights)
