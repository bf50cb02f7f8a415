"""What a mount did, as one snapshot: FUSE calls by operation and the cache's requests and sizes.

``MountStats`` is what the bench, the tests and (later) a metrics exporter read. From outside the
mount process it is the JSON value of the read-only xattr ``user.orion.stats`` of the mount root
(orionfs.fuse.binding; docs/mount.md)::

    getfattr -n user.orion.stats --only-values MOUNTPOINT

Reading it is not counted among the calls. ``MountStats.since`` gives the counts between two
snapshots (the gauges, such as cache sizes, are the later snapshot's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from orionfs.fuse.calls import CallCount

#: Version of the JSON layout; bumped when a field changes meaning or goes away.
STATS_VERSION: int = 1


@dataclass(frozen=True, slots=True)
class CacheCounts:
    """The cache's counters (orionfs.fs.cache.CachedSession.stats) at one moment."""

    hits: int = 0
    misses: int = 0
    #: Requests by session method (a listing of any number of pages counts once).
    requests: Mapping[str, int] = field(default_factory=dict)
    requests_total: int = 0
    stat_entries: int = 0
    listings: int = 0
    listed_entries: int = 0

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> CacheCounts:
        """From the mapping ``CachedSession.stats()`` answers."""
        return cls(
            hits=int(raw.get("hits", 0)),
            misses=int(raw.get("misses", 0)),
            requests={str(k): int(v) for k, v in dict(raw.get("requests", {})).items()},
            requests_total=int(raw.get("requests_total", 0)),
            stat_entries=int(raw.get("stat_entries", 0)),
            listings=int(raw.get("listings", 0)),
            listed_entries=int(raw.get("listed_entries", 0)),
        )


@dataclass(frozen=True, slots=True)
class MountStats:
    """One mount's FUSE calls and cache counters since it started (or between two snapshots)."""

    #: Seconds since the mount started (for a difference: between the two snapshots).
    uptime: float
    #: FUSE operation -> calls, errors (calls answered with an errno), seconds spent.
    operations: Mapping[str, CallCount]
    #: FUSE calls being served when the snapshot was taken.
    in_flight: int
    cache: CacheCounts
    #: libfuse worker threads that served a call (each keeps one Python thread state).
    workers: int = 0

    @property
    def upcalls(self) -> int:
        """FUSE calls of every kind."""
        return sum(count.calls for count in self.operations.values())

    def calls(self, operation: str) -> int:
        """Calls of one operation (0 if none)."""
        count = self.operations.get(operation)
        return 0 if count is None else count.calls

    def since(self, earlier: MountStats) -> MountStats:
        """The counts between ``earlier`` and this snapshot (gauges: this snapshot's)."""
        operations = {}
        for name, now in self.operations.items():
            then = earlier.operations.get(name, CallCount(0, 0, 0.0))
            if now.calls != then.calls:
                operations[name] = CallCount(
                    now.calls - then.calls, now.errors - then.errors, now.seconds - then.seconds
                )
        old, new = earlier.cache, self.cache
        requests = {
            kind: n - old.requests.get(kind, 0)
            for kind, n in new.requests.items()
            if n != old.requests.get(kind, 0)
        }
        cache = CacheCounts(
            hits=new.hits - old.hits,
            misses=new.misses - old.misses,
            requests=requests,
            requests_total=new.requests_total - old.requests_total,
            stat_entries=new.stat_entries,
            listings=new.listings,
            listed_entries=new.listed_entries,
        )
        return MountStats(
            self.uptime - earlier.uptime, operations, self.in_flight, cache, self.workers
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: ``{"version", "uptime", "upcalls", "in_flight", "workers", "operations":
        {name: {"calls", "errors", "seconds"}}, "cache": {...}}``."""
        return {
            "version": STATS_VERSION,
            "uptime": round(self.uptime, 6),
            "upcalls": self.upcalls,
            "in_flight": self.in_flight,
            "workers": self.workers,
            "operations": {
                name: {"calls": c.calls, "errors": c.errors, "seconds": round(c.seconds, 6)}
                for name, c in sorted(self.operations.items())
            },
            "cache": {**asdict(self.cache), "requests": dict(sorted(self.cache.requests.items()))},
        }

    def to_json(self) -> str:
        """The JSON the stats xattr answers (compact, keys sorted)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> MountStats:
        """Read back what ``to_json`` wrote (ValueError if it is not such a document)."""
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("version") != STATS_VERSION:
            raise ValueError(f"not mount stats of version {STATS_VERSION}")
        operations = {
            str(name): CallCount(int(c["calls"]), int(c["errors"]), float(c["seconds"]))
            for name, c in raw["operations"].items()
        }
        return cls(
            uptime=float(raw["uptime"]),
            operations=operations,
            in_flight=int(raw["in_flight"]),
            cache=CacheCounts.of(raw["cache"]),
            workers=int(raw.get("workers", 0)),
        )
