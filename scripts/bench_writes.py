#!/usr/bin/env python3
"""The write cases of scripts/bench.py alone, on a rig with only what they need (minutes, not the
full bench's data): sequential write of a big file until stored, against the direct upload, and
create+close of empty files with write-back, against rclone (``rclone serve webdav`` + ``rclone
mount --vfs-cache-mode writes``, which writes back after 5 s by default).

Same rig, cases, latency proxies and table as scripts/bench.py (benchlib); prints the table and,
with ``--json``, writes the figures. Asserts nothing about time.

    .venv/bin/python scripts/bench_writes.py                 # 256 MiB, 1,000 files, 0 and 20 ms
    .venv/bin/python scripts/bench_writes.py --quick --runs 1
    .venv/bin/python scripts/bench_writes.py --only write --runs 7   # the big write alone
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchlib import log
from benchlib.cases import Cases
from benchlib.processes import ORIONFS, rclone_version
from benchlib.report import Report, Results, machine, page_size
from benchlib.sizes import FULL, QUICK, MiB
from benchlib.targets import Rig

#: The rows these cases fill.
ROWS = (
    "write",
    "write_stored",
    "write_direct",
    "write_ratio",
    "create_1",
    "create_wb_1",
    "create_wb_stored",
)


class WriteRig(Rig):
    """The bench rig with only the folders the write cases use, and the big source file."""

    def generate(self, served: Path) -> None:
        with self.big_src.open("wb") as fh:
            for _ in range(self.s.big_mib):
                fh.write(os.urandom(MiB))
        self.small_src.mkdir()
        folders = ["writes", "work"]
        if self.rclone is not None:
            for folder in folders:
                (served / "bench" / folder).mkdir(parents=True, exist_ok=True)
        if self.orion is not None:
            sess = self.orion.session(direct=True)
            sess.create_paths(*[f"{self.orion.orion_base}/{f}" for f in folders], exist_ok=True)


class WriteCases(Cases):
    """Only the write cases; create+close without write-back once, for reference."""

    def groups(self):  # type: ignore[override]
        return [
            ("write", self.case_write, self.s.runs),
            ("create, write-back", self.case_create_write_back, self.s.heavy_runs),
            ("create", self._create_only, self.s.heavy_runs),
        ]

    def _create_only(self, m, rtt: float, run: int) -> None:
        n = self.s.creates
        folder = m.base / "work" / f"c-{m.name}-{rtt:g}-{run}"
        folder.mkdir()
        os.listdir(folder)
        with self.counted(m, ["create_1"], rtt):
            start = time.perf_counter()
            for i in range(n):
                os.close(os.open(folder / f"e{i:05d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            elapsed = time.perf_counter() - start
        self.results.add("create_1", rtt, m.name, n / elapsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 MiB and 100 files")
    parser.add_argument("--runs", type=int, default=None, help="runs per case (default 3 / 1)")
    parser.add_argument("--rtt-ms", default="0,20", help="round trips to add, comma-separated")
    parser.add_argument("--sides", default="orionfs,rclone", help="which mounts to run")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument(
        "--only", default="", help="groups to run, comma-separated: write, create, write-back"
    )
    args = parser.parse_args(argv)
    names = {"write": "write", "create": "create", "write-back": "create, write-back"}
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if only - names.keys():
        parser.error(f"unknown groups: {', '.join(sorted(only - names.keys()))}")
    sizes = QUICK if args.quick else FULL
    if args.runs:
        sizes = replace(sizes, runs=args.runs, heavy_runs=args.runs)
    rtts = [float(x) for x in args.rtt_ms.split(",") if x.strip()]
    sides = [x.strip() for x in args.sides.split(",") if x.strip()]
    signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt()))
    work = Path(tempfile.mkdtemp(prefix="orionfs-bench-writes-"))
    rig = WriteRig(work, sizes, sides, 60.0, ORIONFS)
    results = Results()
    start = time.perf_counter()
    try:
        rig.setup()
        cases = WriteCases(rig, sizes, results, rtts)
        cases.only = {names[x] for x in only}
        cases.run()
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
    finally:
        rig.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    sides_run = [m.name for m in rig.mounts]
    report = Report(sizes, results, rtts, sides_run, rig.rclone_missing, page_size())
    report.rows = [row for row in report.rows if row.key in ROWS]
    print(report.table())
    m = machine()
    print(
        f"\n{m['nproc']} x {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, "
        f"{'rclone: not installed' if rig.rclone_missing else rclone_version()}; "
        f"total {time.perf_counter() - start:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(report.as_json(60.0, rig.setup_seconds, 0, []), indent=2))
    if results.errors:
        print("\nerrors:\n" + "\n".join(f"- {e}" for e in results.errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
