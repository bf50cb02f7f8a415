"""``orionfs status``: the active mounts of this user, from their state files and the kernel's list.

One line per mount: source (``orion:PROFILE:PATH``), profile, mount point, pid, uptime, state,
pending uploads, cache size, errors (log records at ERROR since the start). The numbers come from
the status file the mount process rewrites every few seconds (orionfs.daemon.service), so a hung
mount never hangs ``status``. States:

- ``mounted``: the process runs and the kernel lists the mount;
- ``starting``: the process runs, the mount is not there yet;
- ``stopping``: the process was told to stop and is uploading;
- ``dead``: the kernel lists the mount but its process is gone (``orionfs unmount`` clears it);
- ``unknown``: an orionfs mount with no state file of ours (for root, another user's; or one whose
  state was lost); its source is what the kernel says. Other users' mounts are listed for root only.

``--json`` prints the same as a list of objects.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from orionfs.cli.cache import format_size
from orionfs.daemon import MountError
from orionfs.daemon.options import format_duration
from orionfs.daemon.process import process_alive
from orionfs.daemon.state import (
    all_states,
    is_dead_mount,
    is_mount_process,
    iter_orionfs_mounts,
    mount_at,
)

#: Columns of the table.
COLUMNS: tuple[str, ...] = (
    "SOURCE", "PROFILE", "MOUNTPOINT", "PID", "UPTIME", "STATE", "PENDING", "CACHE", "ERRORS",
)  # fmt: skip


def register(subparsers: Any) -> None:
    """Add ``status`` to the ``orionfs`` command."""
    parser = subparsers.add_parser("status", help="list the active orionfs mounts")
    parser.add_argument("--json", action="store_true", help="print them as JSON")
    parser.set_defaults(func=cmd_status)


def collect() -> list[dict[str, Any]]:
    """Every mount: its state merged with what the kernel and /proc say. MountError if the state
    folder cannot be trusted."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for state in all_states():
        mountpoint = state["mountpoint"]
        pid = int(state.get("pid") or 0)
        running = pid > 0 and process_alive(pid) and is_mount_process(pid, mountpoint)
        mounted = mount_at(mountpoint)
        listed = mounted is not None and mounted.is_orionfs
        if not running and not listed:
            continue  # a stale file of a mount that ended: nothing active
        status = state.get("status") or {}
        if not running:
            condition = "dead"
        elif not listed:
            condition = "starting"
        elif status.get("stopping"):
            condition = "stopping"
        else:
            condition = "mounted"
        started = state.get("started")
        rows.append(
            {
                "source": state.get("source") or (mounted.source if mounted else ""),
                "profile": state.get("profile"),
                "mountpoint": mountpoint,
                "pid": pid if running else None,
                "uptime": time.time() - started if running and started else None,
                "state": condition,
                "pending_uploads": status.get("pending_uploads") if running else None,
                "data_cache_bytes": status.get("data_cache_bytes") if running else None,
                "cache_entries": (status.get("cache") or {}).get("stat_entries")
                if running
                else None,
                "errors": status.get("errors") if running else None,
                "metrics": state.get("metrics") if running else None,
                "log_file": state.get("log_file"),
                "url": state.get("url"),
            }
        )
        seen.add(mountpoint)
    for entry in iter_orionfs_mounts():
        if entry.mountpoint in seen:
            continue
        seen.add(entry.mountpoint)
        parts = entry.source.split(":", 2)
        rows.append(
            {
                "source": entry.source,
                "profile": parts[1] if len(parts) == 3 and parts[0] == "orion" else None,
                "mountpoint": entry.mountpoint,
                "pid": None,
                "uptime": None,
                "state": "dead" if is_dead_mount(entry.mountpoint) else "unknown",
                "pending_uploads": None,
                "data_cache_bytes": None,
                "cache_entries": None,
                "errors": None,
                "metrics": None,
                "log_file": None,
                "url": None,
            }
        )
    return rows


def _cell(value: Any, fmt: Any = str) -> str:
    return "-" if value is None else fmt(value)


def _cache(row: dict[str, Any]) -> str:
    if row["data_cache_bytes"] is not None:
        return format_size(int(row["data_cache_bytes"]))
    if row["cache_entries"] is not None:
        return f"{row['cache_entries']} entries"
    return "-"


def cmd_status(args: argparse.Namespace) -> int:
    """``orionfs status``: returns the exit status (0, also with no mounts)."""
    try:
        rows = collect()
    except MountError as error:
        print(f"orionfs: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print("no orionfs mounts")
        return 0
    table = [COLUMNS]
    for row in rows:
        table.append(
            (
                row["source"],
                _cell(row["profile"]),
                row["mountpoint"],
                _cell(row["pid"]),
                _cell(row["uptime"], format_duration),
                row["state"],
                _cell(row["pending_uploads"]),
                _cache(row),
                _cell(row["errors"]),
            )
        )
    widths = [max(len(str(line[i])) for line in table) for i in range(len(COLUMNS))]
    for line in table:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )
    dead = [row["mountpoint"] for row in rows if row["state"] == "dead"]
    for mountpoint in dead:
        print(f"{mountpoint}: dead (its process is gone): run 'orionfs unmount {mountpoint}'",
              file=sys.stderr)  # fmt: skip
    return 0
