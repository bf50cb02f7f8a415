"""The figures of a run: what was measured (``Results``), the request counts each orionfs case must
cost (``--check``), the markdown table and the JSON.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchlib import affinity
from benchlib.processes import REPO, rclone_version
from benchlib.sizes import Sizes

Check = Callable[[dict[str, int]], tuple[bool, str]]


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: str


def rows_for(s: Sizes) -> list[Row]:
    n1, n2 = f"{s.ls_small:,}", f"{s.ls_large:,}"
    tree = f"{s.tree_folders} folders x {s.tree_files} files"
    big = f"{s.big_mib} MiB"
    meta = "ahead of rclone at 20 ms"
    listing = f"ceil(N/page) requests; {meta}"
    per_folder = f"1 listing per folder; {meta}"
    # Pinned probes need two CPUs (benchlib.affinity); on one CPU the rows are left out.
    pinned = (
        []
        if affinity.two_cpus() is None
        else [
            Row(
                "probes_one_cpu",
                f"{s.probes} absent-name probes, caller and mount pinned to one CPU",
                "ms",
                False,
                "0 requests; baseline",
            ),
            Row(
                "probes_two_cpus",
                f"{s.probes} absent-name probes, caller on one CPU, mount on the other",
                "ms",
                False,
                "0 requests; baseline",
            ),
        ]
    )
    return [
        Row("ls_small_cold", f"`ls -l` {n1} entries, cold", "s", False, listing),
        Row("ls_small_warm", f"`ls -l` {n1} entries, warm", "s", False, f"0 requests; {meta}"),
        Row("ls_large_cold", f"`ls -l` {n2} entries, cold", "s", False, listing),
        Row("ls_large_warm", f"`ls -l` {n2} entries, warm", "s", False, f"0 requests; {meta}"),
        Row("find", f"`find`, {tree}, cold", "s", False, per_folder),
        Row("stat", f"`stat` of every file, {tree}, cold", "s", False, per_folder),
        Row("du", f"`du -s`, {tree}, cold", "s", False, per_folder),
        Row(
            "probes",
            f"{s.probes} absent-name probes in a listed folder",
            "ms",
            False,
            f"0 requests; {meta}",
        ),
        *pinned,
        Row("create_1", f"create+close {s.creates:,} empty files, 1 writer", "files/s", True, meta),
        Row(
            "create_8", f"create+close {s.creates:,} empty files, 8 writers", "files/s", True, meta
        ),
        Row(
            "create_wb_1",
            f"create+close {s.creates:,} empty files, 1 writer, write-back (orionfs "
            "`--write-back 5`; rclone's default)",
            "files/s",
            True,
            "not behind rclone",
        ),
        Row("create_wb_stored", "create, write-back: until all stored", "s", False, "baseline"),
        Row("unlink", f"unlink {s.creates:,} files", "files/s", True, meta),
        Row("read", f"sequential read {big}", "MB/s", True, ">= 80% of direct; not behind rclone"),
        Row("read_ttfb", "read: time to first byte", "ms", False, "<= 1 RTT + 5 ms"),
        Row("read_direct", "read: direct download (API / HTTP GET)", "MB/s", True, "baseline"),
        Row("read_direct_ttfb", "read: direct first byte (4 KiB range)", "ms", False, "baseline"),
        Row("read_ratio", "read: mount / direct", "%", True, ">= 80%"),
        Row(
            "write",
            f"sequential write {big} (`cp`, incl. close)",
            "MB/s",
            True,
            ">= 80% of direct; not behind rclone",
        ),
        Row("write_stored", "write: until stored on the server", "MB/s", True, "not behind rclone"),
        Row("write_direct", "write: direct upload (API / HTTP PUT)", "MB/s", True, "baseline"),
        Row("write_ratio", "write (stored): mount / direct", "%", True, ">= 80%"),
        Row("copy_in", f"`cp -r` {s.small_files:,} x 4 KiB in (until stored)", "s", False, meta),
        Row("copy_out", f"`cp -r` {s.small_files:,} x 4 KiB out, cold", "s", False, meta),
        Row(
            "rss",
            f"peak RSS of the mount, `ls -l` of {s.rss_entries:,} entries",
            "MB",
            False,
            "< 200 MB",
        ),
        *data_path_rows(s),
    ]


def data_path_rows(s: Sizes) -> list[Row]:
    """The rows of benchlib.datacache_cases."""
    big, reader = f"{s.big_mib} MiB", f"{s.reader_mib} MiB"
    n = f"{s.small_files:,}"
    return [
        Row("reread_cold", f"read {big}, cold (empty data cache)", "MB/s", True, "baseline"),
        Row("reread_warm", f"read {big} again, same mount", "MB/s", True, "0 requests"),
        Row("reread_speedup", "re-read: warm / cold", "x", True, ">= 2x"),
        Row("reread_remount", f"read {big} after a remount", "MB/s", True, "0 downloads"),
        Row(
            "sniff_cold",
            f"`file` over {s.sniff_files} extension-less files, cold",
            "s",
            False,
            "1 download per file",
        ),
        Row("sniff_warm", "`file` over them again", "s", False, "0 downloads"),
        Row("grep_cold", f"`grep -r` over {n} x 4 KiB, cold", "s", False, "<= 0.3x rclone"),
        Row("read_one", f"one sequential reader of {reader}, cold", "MB/s", True, "baseline"),
        Row(
            "readers_mbs",
            f"{s.readers} sequential readers of {reader} at once, cold",
            "MB/s",
            True,
            "baseline",
        ),
        Row("readers_rss", f"peak RSS of the mount, {s.readers} readers", "MB", False, "< 350 MB"),
        Row(
            "rss_full_cache",
            f"peak RSS, `ls -l` of {s.rss_entries:,} entries, data cache of {s.full_cache_gib} GiB",
            "MB",
            False,
            "< 200 MB",
        ),
    ]


#: Rows measured at the first round trip only (memory does not depend on latency).
FIRST_RTT_ONLY = ("rss", "read_one", "readers_mbs", "readers_rss", "rss_full_cache")
#: Rows of the orionfs mount alone.
ORIONFS_ONLY = ("rss_full_cache",)
#: Limits of the memory rows, MB.
MEMORY_LIMITS = {"rss": 200, "readers_rss": 350, "rss_full_cache": 200}


def classify(by_endpoint: dict[str, int]) -> dict[str, int]:
    """Counted requests by kind: ls, stat, upload, download, delete, mkdir, other, total."""
    kinds = dict.fromkeys(("ls", "stat", "upload", "download", "delete", "mkdir", "other"), 0)
    for key, n in by_endpoint.items():
        method, _, route = key.partition(" ")
        if route.endswith("/storage/ls/"):
            kinds["ls"] += n
        elif route.endswith("/storage/stat/"):
            kinds["stat"] += n
        elif route.endswith("/download/"):
            kinds["download"] += n
        elif (method == "POST" and route.endswith("/storage/files/")) or (
            method == "PUT" and route.endswith("/content/")
        ):
            kinds["upload"] += n
        elif method == "DELETE" or route.endswith("/storage/paths/remove/"):
            kinds["delete"] += n
        elif method == "POST" and route.endswith("/storage/paths/"):
            kinds["mkdir"] += n
        else:
            kinds["other"] += n
    kinds["total"] = sum(by_endpoint.values())
    return kinds


class Results:
    def __init__(self) -> None:
        # values[row][rtt][side] -> list of per-run values
        self.values: dict[str, dict[str, dict[str, list[float]]]] = {}
        # requests[row][rtt] -> list of per-run {"by_endpoint":..., "kinds":...}
        self.requests: dict[str, dict[str, list[dict]]] = {}
        # connections[row][rtt][side] -> new TCP connections through the proxy, per run
        self.connections: dict[str, dict[str, dict[str, list[int]]]] = {}
        self.errors: list[str] = []
        self.notes: list[str] = []

    def add(self, row: str, rtt: float, side: str, value: float) -> None:
        self.values.setdefault(row, {}).setdefault(f"{rtt:g}", {}).setdefault(side, []).append(
            value
        )

    def add_requests(self, row: str, rtt: float, by_endpoint: dict[str, int]) -> None:
        self.requests.setdefault(row, {}).setdefault(f"{rtt:g}", []).append(
            {"by_endpoint": by_endpoint, "kinds": classify(by_endpoint)}
        )

    def add_connections(self, row: str, rtt: float, side: str, n: int) -> None:
        self.connections.setdefault(row, {}).setdefault(f"{rtt:g}", {}).setdefault(side, []).append(
            n
        )

    def summary(self, row: str, rtt: float, side: str) -> dict | None:
        runs = self.values.get(row, {}).get(f"{rtt:g}", {}).get(side)
        if not runs:
            return None
        return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs}

    def median(self, key: str, rtt: float, side: str) -> float | None:
        sm = self.summary(key, rtt, side)
        return sm["median"] if sm else None


def page_size() -> int:
    """The ls page size the client asks for (ceil(N / page) listing requests per folder)."""
    from orionfs.client import wire

    for module in ("orionfs.fuse", "orionfs.fs.cache", "orionfs.client.session"):
        with contextlib.suppress(ImportError):
            mod = importlib.import_module(module)
            for name in ("LS_PAGE_SIZE", "PAGE_SIZE", "LS_PAGE_LIMIT", "DEFAULT_PAGE_SIZE"):
                if isinstance(getattr(mod, name, None), int):
                    return getattr(mod, name)
    return wire.PAGE_LIMIT_DEFAULT


def expected_requests(s: Sizes, p: int) -> dict[str, Check]:
    """What each orionfs case must cost, by kind of request (``--check``), at page size ``p``."""

    def exact(**want: int) -> Check:
        def check(k: dict[str, int]) -> tuple[bool, str]:
            ok = all(k.get(kind, 0) == n for kind, n in want.items())
            return ok, ", ".join(f"{kind}={n}" for kind, n in want.items())

        return check

    def at_most(base: Check, **limits: int) -> Check:
        def check(k: dict[str, int]) -> tuple[bool, str]:
            ok, want = base(k)
            ok = ok and all(k.get(kind, 0) <= n for kind, n in limits.items())
            return ok, want + ", " + ", ".join(f"{kind}<={n}" for kind, n in limits.items())

        return check

    def read(k: dict[str, int]) -> tuple[bool, str]:
        return (k["download"] >= 1 and k["total"] == k["download"]), "download>=1, total=download"

    tree_ls = math.ceil(s.tree_folders / p) + s.tree_folders * math.ceil(s.tree_files / p)
    return {
        "ls_small_cold": exact(ls=math.ceil(s.ls_small / p), total=math.ceil(s.ls_small / p)),
        "ls_small_warm": exact(total=0),
        "ls_large_cold": exact(ls=math.ceil(s.ls_large / p), total=math.ceil(s.ls_large / p)),
        "ls_large_warm": exact(total=0),
        "find": exact(ls=tree_ls, total=tree_ls),
        "stat": exact(ls=tree_ls, total=tree_ls),
        "du": exact(ls=tree_ls, total=tree_ls),
        "probes": exact(total=0),
        "probes_one_cpu": exact(total=0),
        "probes_two_cpus": exact(total=0),
        "create_1": exact(upload=s.creates, total=s.creates),
        "create_8": exact(upload=s.creates, total=s.creates),
        "create_wb_1": exact(upload=s.creates),
        "unlink": exact(delete=s.creates, total=s.creates),
        "write": exact(upload=1, total=1),
        # mkdir may read the new folder back once (one stat); no per-file lookups.
        "copy_in": at_most(exact(mkdir=1, upload=s.small_files), stat=1, total=s.small_files + 2),
        "copy_out": exact(
            ls=math.ceil(s.small_files / p),
            download=s.small_files,
            total=math.ceil(s.small_files / p) + s.small_files,
        ),
        "rss": exact(ls=math.ceil(s.rss_entries / p), total=math.ceil(s.rss_entries / p)),
        "read": read,
        "reread_cold": read,
        "reread_warm": exact(total=0),
        "reread_remount": exact(download=0),
        "sniff_cold": exact(download=s.sniff_files, total=s.sniff_files),
        "sniff_warm": exact(download=0),
        "grep_cold": exact(
            ls=math.ceil(s.small_files / p),
            download=s.small_files,
            total=math.ceil(s.small_files / p) + s.small_files,
        ),
        "read_one": read,
        "readers_rss": read,
        "rss_full_cache": exact(
            ls=math.ceil(s.rss_entries / p), total=math.ceil(s.rss_entries / p)
        ),
    }


def fmt_number(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _span(values: list) -> str:
    """``a`` or ``a–b`` for sorted values."""
    return f"{values[0]}" + (f"–{values[-1]}" if len(values) > 1 else "")


class Report:
    """The checks, table and JSON of one run's ``results``."""

    def __init__(
        self,
        sizes: Sizes,
        results: Results,
        rtts: list[float],
        sides: list[str],
        rclone_missing: bool,
        page: int,
    ) -> None:
        self.s = sizes
        self.results = results
        self.rtts = rtts
        self.sides = sides  # the mounts that ran
        self.rclone_missing = rclone_missing
        self.page = page
        self.rows = rows_for(sizes)
        self.checks = expected_requests(sizes, page)

    def check(self) -> list[str]:
        """Every error, every case that did not run, every request count not as expected."""
        failures = list(self.results.errors)
        for row in self.rows:
            for ri, rtt in enumerate(self.rtts):
                if row.key in FIRST_RTT_ONLY and ri > 0:
                    continue
                for side in self.sides:
                    if row.key in ORIONFS_ONLY and side != "orionfs":
                        continue
                    if not self.results.summary(row.key, rtt, side):
                        failures.append(f"{row.key} at {rtt:g} ms on {side}: did not run")
        for key, fn in self.checks.items():
            for rtt, runs in self.results.requests.get(key, {}).items():
                for i, run in enumerate(runs):
                    ok, want = fn(run["kinds"])
                    if not ok:
                        failures.append(
                            f"{key} at {rtt} ms run {i + 1}: requests {run['by_endpoint']} "
                            f"(expected {want})"
                        )
            if key not in self.results.requests and "orionfs" in self.sides:
                failures.append(f"{key}: no request counts recorded")
        return failures

    def cell(self, row: Row, rtt: float, side: str) -> str:
        if side == "rclone" and self.rclone_missing:
            return "rclone: not installed"
        sm = self.results.summary(row.key, rtt, side)
        if sm is None:
            if row.key in FIRST_RTT_ONLY and rtt != self.rtts[0]:
                return f"n/a (see {self.rtts[0]:g} ms)"
            return "—"
        text = f"{fmt_number(sm['median'])} {row.unit}"
        if len(sm["runs"]) > 1:
            text += f" ({fmt_number(sm['min'])}–{fmt_number(sm['max'])})"
        return text

    def requests_cell(self, row: Row) -> str:
        per_rtt = self.results.requests.get(row.key)
        if not per_rtt:
            return ""
        totals = sorted({r["kinds"]["total"] for runs in per_rtt.values() for r in runs})
        kinds: dict[str, set[int]] = {}
        for runs in per_rtt.values():
            for r in runs:
                for kind, n in r["kinds"].items():
                    if kind != "total" and n:
                        kinds.setdefault(kind, set()).add(n)
        parts = [f"{kind} {_span(sorted(v))}" for kind, v in kinds.items()]
        conns = sorted(
            {
                n
                for sides in self.results.connections.get(row.key, {}).values()
                for n in sides.get("orionfs", [])
            }
        )
        if conns and conns[-1]:
            parts.append(f"new conn {_span(conns)}")
        return _span(totals) + (f" ({', '.join(parts)})" if parts else "")

    def target_cell(self, row: Row) -> str:
        """The row's target, each part marked met (yes) or missed (NO) from this run's figures."""
        median = self.results.median
        marks: list[str] = []
        top = max(self.rtts)
        if row.key in self.checks:
            runs = [r for rs in self.results.requests.get(row.key, {}).values() for r in rs]
            if runs:
                ok = all(self.checks[row.key](r["kinds"])[0] for r in runs)
                marks.append(f"requests {'yes' if ok else 'NO'}")
        if "ahead of rclone" in row.target or "behind rclone" in row.target:
            o, r = median(row.key, top, "orionfs"), median(row.key, top, "rclone")
            if o is not None and r is not None:
                if "ahead" in row.target:
                    ok = o > r if row.higher_is_better else o < r
                    marks.append(f"ahead at {top:g} ms {'yes' if ok else 'NO'}")
                else:
                    ok = o >= r if row.higher_is_better else o <= r
                    marks.append(f"not behind at {top:g} ms {'yes' if ok else 'NO'}")
        ratio_key = {
            "read": "read_ratio",
            "write": "write_ratio",
            "read_ratio": "read_ratio",
            "write_ratio": "write_ratio",
        }.get(row.key)
        if ratio_key:
            vals = [median(ratio_key, rtt, "orionfs") for rtt in self.rtts]
            if all(v is not None for v in vals):
                marks.append(f">= 80% {'yes' if all(v >= 80 for v in vals) else 'NO'}")
        if row.key == "read_ttfb":
            vals = [(rtt, median("read_ttfb", rtt, "orionfs")) for rtt in self.rtts]
            if all(v is not None for _, v in vals):
                ok = all(v <= rtt + 5 for rtt, v in vals)
                marks.append("yes" if ok else "NO")
        if row.key in MEMORY_LIMITS:
            v = median(row.key, self.rtts[0], "orionfs")
            if v is not None:
                marks.append("yes" if v < MEMORY_LIMITS[row.key] else "NO")
        if row.key in ("copy_out", "grep_cold"):
            o, r = median(row.key, top, "orionfs"), median(row.key, top, "rclone")
            if o is not None and r:
                marks.append(f"{o / r:.2f}x rclone at {top:g} ms")
        if row.key == "reread_speedup":
            v = median(row.key, top, "orionfs")
            if v is not None:
                marks.append("yes" if v >= 2 else "NO")
        return row.target + (f" — {', '.join(marks)}" if marks else "")

    def table(self) -> str:
        sides = ["orionfs", "rclone"]
        head = ["case"]
        for rtt in self.rtts:
            head += [f"{side} {rtt:g} ms" for side in sides]
        head += ["orionfs requests", "target"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.rows:
            cells = [row.label]
            for rtt in self.rtts:
                cells += [self.cell(row, rtt, side) for side in sides]
            cells += [self.requests_cell(row), self.target_cell(row)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def as_json(
        self, ttl: float, setup_seconds: float, elapsed: float, failures: list[str]
    ) -> dict:
        return {
            "machine": machine(),
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "sizes": asdict(self.s),
            "rtt_ms": self.rtts,
            "ttl_s": ttl,
            "page_size": self.page,
            "seconds": {"setup": round(setup_seconds, 1), "total": round(elapsed, 1)},
            "rows": [
                {
                    **asdict(row),
                    "results": {
                        f"{rtt:g}": {
                            side: self.results.summary(row.key, rtt, side)
                            for side in ("orionfs", "rclone")
                        }
                        for rtt in self.rtts
                    },
                    "orionfs_requests": self.results.requests.get(row.key, {}),
                    "new_connections": self.results.connections.get(row.key, {}),
                }
                for row in self.rows
            ],
            "rclone": "not installed" if self.rclone_missing else rclone_version(),
            "errors": self.results.errors,
            "check_failures": failures,
            "notes": self.results.notes,
        }


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
                break
    rev = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "orionfs_commit": rev,
    }
