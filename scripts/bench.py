#!/usr/bin/env python3
"""Benchmarks: the orionfs mount against the direct session API and against rclone, in one run.

What it does, all on loopback, in a fresh temp folder:

1. starts the local Orion server (``orionfs serve --test-hooks``) and, in front of it, a latency
   proxy (scripts/latency_proxy.py); writes a client profile that points at the proxy;
2. starts the peer: ``rclone serve webdav`` over a local folder, behind its own latency proxy;
3. generates the same data on both sides (uploads through the session API, in parallel threads,
   straight to the server; plain files in the rclone folder);
4. mounts both (``orionfs mount --cache-ttl TTL`` and ``rclone mount --vfs-cache-mode writes
   --dir-cache-time TTL``) and runs every case at each round trip of ``--rtt-ms`` (default 0 and 20),
   interleaving the two mounts run by run; a cold case starts on a fresh mount (orionfs: with an
   empty data cache, in the bench's folder; benchlib.datacache_cases has the data path's cases);
5. prints a markdown table (median of the runs, with min-max) and writes the same figures as JSON.

For orionfs every case also reports the requests the server counted (reset before the case, read
after it). ``--check`` (CI, with ``--quick``) fails unless every case ran and every request count is
the exact expected number; it asserts nothing about time.

Everything it starts is stopped, and every mount unmounted, on success, failure or Ctrl-C.

    .venv/bin/python scripts/bench.py --quick --check    # CI smoke run, about two minutes
    .venv/bin/python scripts/bench.py --json bench.json  # full size, about 25 minutes on 2 cores
    .venv/bin/python scripts/bench.py --only "re-read,sniff,grep small files"   # some groups
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchlib.cases import Cases
from benchlib.processes import ORIONFS, rclone_version
from benchlib.report import Report, Results, machine, page_size
from benchlib.sizes import FULL, QUICK, Sizes
from benchlib.targets import Rig


def _print_log_tails(work: Path, lines: int = 20) -> None:
    """The end of every helper's log, for a failed run whose temp folder is about to go."""
    for log in sorted(work.glob("*.log")):
        with contextlib.suppress(OSError):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            if tail:
                print(f"--- {log.name} (last {len(tail)} lines)", file=sys.stderr)
                print("\n".join(tail), file=sys.stderr)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about two minutes)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit non-zero unless every case ran with the expected request counts",
    )
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--rtt-ms", default="0,20", help="round trips to add, comma-separated")
    parser.add_argument(
        "--runs",
        type=int,
        help="runs of every case (default: 3, but once for the per-file cases of 1,000 "
        "operations and the RSS case; --quick: 2, and 1 for those)",
    )
    parser.add_argument(
        "--ttl",
        type=float,
        default=120.0,
        help="cache TTL in seconds, for both mounts (default 120: longer than any one case, so "
        "that a case never sees its own listing expire)",
    )
    parser.add_argument("--workdir", type=Path, help="parent of the temp folder (default: $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, data)")
    parser.add_argument(
        "--server-cmd",
        metavar="CMD",
        help="command that runs the orionfs CLI for the server (default: this "
        "Python with orionfs.cli), e.g. to benchmark a patched server",
    )
    parser.add_argument(
        "--sides", default="orionfs,rclone", help="which mounts to run (default: orionfs,rclone)"
    )
    parser.add_argument(
        "--only",
        default="",
        metavar="GROUPS",
        help="run only these groups of cases, comma-separated (e.g. 're-read,grep small files'); "
        "not with --check",
    )
    args = parser.parse_args(argv)
    args.rtts = [float(x) for x in args.rtt_ms.split(",") if x.strip()]
    args.sides = [x.strip() for x in args.sides.split(",") if x.strip()]
    args.only = {x.strip() for x in args.only.split(",") if x.strip()}
    if args.only and args.check:
        parser.error("--only leaves cases out: --check would fail them")
    return args


def sizes_for(args: argparse.Namespace) -> Sizes:
    """The sizes of ``--quick`` or the full run, with ``--runs`` for every case if given."""
    sizes = QUICK if args.quick else FULL
    if args.runs:
        runs = {"runs": args.runs, "heavy_runs": args.runs, "rss_runs": args.runs}
        sizes = Sizes(**{**asdict(sizes), **runs})
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sizes_for(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where started with it ignored
    work = Path(tempfile.mkdtemp(prefix="orionfs-bench-", dir=args.workdir))
    start = time.perf_counter()
    server_cmd = args.server_cmd.split() if args.server_cmd else ORIONFS
    rig = Rig(work, sizes, args.sides, args.ttl, server_cmd)
    results = Results()
    interrupted = False
    try:
        if rig.rclone_missing:
            print("rclone: not installed (its column is left empty)", file=sys.stderr)
        rig.setup()
        cases = Cases(rig, sizes, results, args.rtts)
        cases.only = args.only
        cases.run()
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: cleaning up", file=sys.stderr)
    except Exception as exc:
        results.errors.append(f"setup or run: {type(exc).__name__}: {exc}")
        print(f"error: {exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        rig.cleanup()
        if results.errors and not args.keep:
            _print_log_tails(work)
        mounted = [m for m in rig.mounts if os.path.ismount(m.mnt)]
        if args.keep or mounted:
            print(f"kept {work}" + (" (still mounted!)" if mounted else ""), file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if interrupted:
        return 130
    elapsed = time.perf_counter() - start
    page = page_size()
    sides = [m.name for m in rig.mounts]
    report = Report(sizes, results, args.rtts, sides, rig.rclone_missing, page)
    failures = report.check() if rig.mounts else list(results.errors)
    print(report.table())
    m = machine()
    print(
        f"\n{m['nproc']} x {m['cpu']}, {m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, "
        f"{'rclone: not installed' if rig.rclone_missing else rclone_version()}; "
        f"TTL {args.ttl:g} s, page {page}; setup {rig.setup_seconds:.0f} s, "
        f"total {elapsed:.0f} s"
    )
    if args.json:
        report_json = report.as_json(args.ttl, rig.setup_seconds, elapsed, failures)
        args.json.write_text(json.dumps(report_json, indent=2))
    if results.errors:
        print("\nerrors:\n" + "\n".join(f"- {e}" for e in results.errors), file=sys.stderr)
    if args.check:
        if failures:
            print("\ncheck FAILED:\n" + "\n".join(f"- {f}" for f in failures), file=sys.stderr)
            return 1
        print("\ncheck: every case ran; request counts as expected", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
