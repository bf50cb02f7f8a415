"""``orionfs stats MOUNTPOINT``: a mount's live counters.

They are the mount's own stats (orionfs.fuse.stats.MountStats, the JSON of the read-only xattr
``user.orion.stats`` of the mount root): FUSE calls by operation (calls, errors, time), calls in
flight, the metadata cache's hits, misses and requests. The mount process's status file adds the
uploads, the data cache's size and the errors logged (orionfs.daemon.probe).

``--watch [INTERVAL]`` (default 2s) prints what changed in each interval until interrupted;
``--json`` prints the snapshot (or, watching, one line of JSON per interval). A mount that does not
answer within STATS_TIMEOUT is an error, not a hang.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

from orionfs.daemon import MountError
from orionfs.daemon.options import format_duration, parse_duration
from orionfs.daemon.state import mount_at, read_json, status_path

#: The xattr of the mount root that holds the stats (orionfs.fuse.xattrs).
STATS_XATTR = "user.orion.stats"
#: Seconds a stats read may take before the mount counts as not answering.
STATS_TIMEOUT: float = 5.0
DEFAULT_WATCH_INTERVAL: float = 2.0


def register(subparsers: Any) -> None:
    """Add ``stats`` to the ``orionfs`` command."""
    parser = subparsers.add_parser("stats", help="print a mount's live counters")
    parser.add_argument("mountpoint", metavar="MOUNTPOINT")
    parser.add_argument(
        "--watch",
        nargs="?",
        type=parse_duration,
        const=DEFAULT_WATCH_INTERVAL,
        default=None,
        metavar="INTERVAL",
        help=f"print what changed every INTERVAL (default {DEFAULT_WATCH_INTERVAL:g}s) "
        "until interrupted",
    )
    parser.add_argument("--count", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=cmd_stats)


def read_stats(mountpoint: str, timeout: float = STATS_TIMEOUT) -> Any:
    """The MountStats of the orionfs mount at ``mountpoint``; MountError if it is not one, or
    does not answer within ``timeout`` seconds."""
    from orionfs.fuse.stats import MountStats

    entry = mount_at(mountpoint)
    if entry is None or not entry.is_orionfs:
        raise MountError(f"{mountpoint} is not an orionfs mount")
    answer: dict[str, Any] = {}

    def read() -> None:
        try:
            answer["value"] = os.getxattr(mountpoint, STATS_XATTR)
        except OSError as error:
            answer["error"] = error

    reader = threading.Thread(target=read, name="orionfs-stats", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        raise MountError(f"{mountpoint} does not answer (no stats within {timeout:g} s)")
    if "error" in answer:
        raise MountError(f"cannot read the stats of {mountpoint}: {answer['error'].strerror}")
    try:
        return MountStats.from_json(answer["value"])
    except (ValueError, KeyError, TypeError) as error:
        raise MountError(f"{mountpoint}: unreadable stats ({error})") from error


def _status(mountpoint: str) -> dict[str, Any]:
    try:
        path = status_path(mountpoint, create=False)
    except MountError:
        return {}
    return (read_json(path) if path is not None else None) or {}


def render(mountpoint: str, stats: Any, status: dict[str, Any], title: str) -> str:
    """The text of one snapshot (or of one interval's changes)."""
    lines = [
        f"{mountpoint}: {title} {format_duration(stats.uptime)}, {stats.upcalls} FUSE calls, "
        f"{stats.in_flight} in flight"
    ]
    if stats.operations:
        lines.append(f"  {'operation':<14}{'calls':>10}{'errors':>10}{'avg ms':>10}")
        busiest = sorted(stats.operations.items(), key=lambda item: -item[1].calls)
        for name, count in busiest:
            average = 1000 * count.seconds / count.calls if count.calls else 0.0
            lines.append(f"  {name:<14}{count.calls:>10}{count.errors:>10}{average:>10.2f}")
    cache = stats.cache
    requests = ", ".join(f"{k} {v}" for k, v in sorted(cache.requests.items())) or "none"
    lines.append(
        f"  cache: {cache.hits} hits, {cache.misses} misses, {cache.stat_entries} entries; "
        f"requests: {requests}"
    )
    if status:
        uploads = status.get("uploads") or {}
        parts = [f"errors logged {status.get('errors', 0)}"]
        if status.get("pending_uploads") is not None:
            parts.append(
                f"uploads pending {status['pending_uploads']}, failed {uploads.get('failed', 0)}"
            )
        if status.get("data_cache_bytes") is not None:
            parts.append(f"data cache {status['data_cache_bytes']} bytes")
        if status.get("recovery_files") is not None:
            parts.append(f"recovery files {status['recovery_files']}")
        lines.append("  " + "; ".join(parts))
    return "\n".join(lines)


def cmd_stats(args: argparse.Namespace) -> int:
    """``orionfs stats``: returns the exit status."""
    mountpoint = os.path.abspath(args.mountpoint)
    try:
        before = read_stats(mountpoint)
        if args.watch is None:
            if args.json:
                print(json.dumps({**before.to_dict(), "status": _status(mountpoint)}, indent=2))
            else:
                print(render(mountpoint, before, _status(mountpoint), "up"))
            return 0
        shown = 0
        while args.count is None or shown < args.count:
            time.sleep(args.watch)
            now = read_stats(mountpoint)
            change = now.since(before)
            if args.json:
                print(json.dumps(change.to_dict()), flush=True)
            else:
                print(render(mountpoint, change, _status(mountpoint), "in the last"), flush=True)
            before = now
            shown += 1
    except MountError as error:
        print(f"orionfs: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
