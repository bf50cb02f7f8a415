"""Concurrency through the mount (issue 5, "Concurrency").

8 threads do 2,000 mixed operations in total on overlapping folders: they create, overwrite, append,
read, stat, rename, unlink, tag files, make and remove folders, and list the shared folders while
the others change them. Each thread owns its file names (so the expected result of each of its own
operations is known exactly) but shares every folder with the others, and all threads also race to
create the same common folders (EEXIST is the one expected error there).

Rules checked:
- no unexpected error (any errno other than EEXIST on the common folders, any wrong content, size
  or listing);
- no deadlock: every thread finishes within a bound (threads are daemons joined with a timeout);
- the final tree seen through the mount equals the tree seen through the API, names, kinds, sizes
  and bytes, and both equal what the threads' own models say.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import threading
import time
from pathlib import Path

import pytest

from tests.support.reliability import mounted, report

pytestmark = pytest.mark.fuse

LONG = os.environ.get("ORIONFS_LONG") == "1"
THREADS = 8
TOTAL_OPS = 2000 * (5 if LONG else 1)
SHARED = ["s0", "s1", "s2", "s3"]
JOIN_TIMEOUT = 600.0


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Worker:
    """One thread's operations and its model of its own files and folders."""

    def __init__(self, index: int, base: Path, ops: int) -> None:
        self.index = index
        self.base = base
        self.ops = ops
        self.rng = random.Random(1000 + index)
        self.files: dict[str, bytes] = {}  # rel path -> content
        self.dirs: set[str] = set()  # own folders (rel paths)
        self.tags: dict[str, set[str]] = {}
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.slowest = 0.0
        self.serial = 0

    # -- helpers ---------------------------------------------------------------------------------

    def new_name(self) -> str:
        self.serial += 1
        return f"t{self.index}-{self.serial}.dat"

    def folders(self) -> list[str]:
        return SHARED + sorted(self.dirs)

    def data(self) -> bytes:
        size = self.rng.choice([0, 1, 100, 4096, 30_000, 70_000])
        return self.rng.randbytes(size)

    def fail(self, op: str, message: str) -> None:
        self.errors.append(f"thread {self.index} {op}: {message}")

    # -- operations --------------------------------------------------------------------------------

    def op_create(self) -> None:
        rel = f"{self.rng.choice(self.folders())}/{self.new_name()}"
        content = self.data()
        with open(self.base / rel, "wb") as fh:
            fh.write(content)
        self.files[rel] = content

    def op_overwrite(self) -> None:
        if not self.files:
            return self.op_create()
        rel = self.rng.choice(sorted(self.files))
        content = self.data()
        with open(self.base / rel, "wb") as fh:
            fh.write(content)
        self.files[rel] = content

    def op_append(self) -> None:
        if not self.files:
            return self.op_create()
        rel = self.rng.choice(sorted(self.files))
        extra = self.rng.randbytes(self.rng.choice([1, 500, 5000]))
        with open(self.base / rel, "ab") as fh:
            fh.write(extra)
        self.files[rel] += extra

    def op_read(self) -> None:
        if not self.files:
            return
        rel = self.rng.choice(sorted(self.files))
        with open(self.base / rel, "rb") as fh:
            got = fh.read()
        if got != self.files[rel]:
            self.fail("read", f"{rel}: {len(got)} bytes, expected {len(self.files[rel])}")

    def op_stat(self) -> None:
        if not self.files:
            return
        rel = self.rng.choice(sorted(self.files))
        size = os.stat(self.base / rel).st_size
        if size != len(self.files[rel]):
            self.fail("stat", f"{rel}: size {size}, expected {len(self.files[rel])}")

    def op_rename(self) -> None:
        if not self.files:
            return
        rel = self.rng.choice(sorted(self.files))
        dest = f"{self.rng.choice(self.folders())}/{self.new_name()}"
        os.rename(self.base / rel, self.base / dest)
        self.files[dest] = self.files.pop(rel)
        if rel in self.tags:
            self.tags[dest] = self.tags.pop(rel)

    def op_rename_over_own(self) -> None:
        if len(self.files) < 2:
            return self.op_create()
        src, dst = self.rng.sample(sorted(self.files), 2)
        os.rename(self.base / src, self.base / dst)
        self.files[dst] = self.files.pop(src)
        self.tags.pop(dst, None)
        if src in self.tags:
            self.tags[dst] = self.tags.pop(src)

    def op_unlink(self) -> None:
        if not self.files:
            return
        rel = self.rng.choice(sorted(self.files))
        os.unlink(self.base / rel)
        del self.files[rel]
        self.tags.pop(rel, None)

    def op_mkdir(self) -> None:
        rel = f"{self.rng.choice(SHARED)}/t{self.index}-d{self.serial}"
        self.serial += 1
        os.mkdir(self.base / rel)
        self.dirs.add(rel)

    def op_rmdir(self) -> None:
        empty = [d for d in sorted(self.dirs) if not any(f.startswith(d + "/") for f in self.files)]
        if not empty:
            return
        rel = self.rng.choice(empty)
        os.rmdir(self.base / rel)
        self.dirs.discard(rel)

    def op_listdir(self) -> None:
        folder = self.rng.choice(SHARED)
        names = set(os.listdir(self.base / folder))
        mine = {r.split("/", 1)[1] for r in self.files if r.rsplit("/", 1)[0] == folder}
        mine |= {d.split("/", 1)[1] for d in self.dirs if d.rsplit("/", 1)[0] == folder}
        own_listed = {n for n in names if n.startswith(f"t{self.index}-")}
        if own_listed != mine:
            self.fail("listdir", f"{folder}: own entries {sorted(own_listed)} != {sorted(mine)}")

    def op_common_mkdir(self) -> None:
        rel = f"{self.rng.choice(SHARED)}/common"
        try:
            os.mkdir(self.base / rel)
        except FileExistsError:
            pass  # another thread made it first: the one expected error

    def op_tag(self) -> None:
        if not self.files:
            return
        rel = self.rng.choice(sorted(self.files))
        tag = self.rng.choice(["x", "y"])
        os.setxattr(self.base / rel, f"user.orion.tag.{tag}", b"")
        self.tags.setdefault(rel, set()).add(tag)

    OPS = [
        ("create", 6),
        ("overwrite", 3),
        ("append", 3),
        ("read", 5),
        ("stat", 3),
        ("rename", 3),
        ("rename_over_own", 1),
        ("unlink", 3),
        ("mkdir", 1),
        ("rmdir", 1),
        ("listdir", 4),
        ("common_mkdir", 1),
        ("tag", 1),
    ]

    def run(self) -> None:
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        for _ in range(self.ops):
            op = self.rng.choices(names, weights)[0]
            started = time.monotonic()
            try:
                getattr(self, f"op_{op}")()
            except OSError as error:
                self.fail(op, f"{errno.errorcode.get(error.errno, error.errno)} {error}")
            except Exception as error:  # noqa: BLE001 - reported, never hidden
                self.fail(op, repr(error))
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.counts[op] = self.counts.get(op, 0) + 1


def mount_tree(base: Path) -> dict[str, tuple[str, int, str]]:
    out = {}
    for root, dirs, files in os.walk(base):
        rel_root = os.path.relpath(root, base)
        for d in dirs:
            out[os.path.normpath(os.path.join(rel_root, d))] = ("dir", 0, "")
        for f in files:
            rel = os.path.normpath(os.path.join(rel_root, f))
            content = (Path(root) / f).read_bytes()
            out[rel] = ("file", len(content), sha(content))
    return out


def api_tree(session, folder: str, prefix: str = "") -> dict[str, tuple[str, int, str]]:
    out = {}
    for entry in session.ls_path(folder)["results"]:
        rel = f"{prefix}{entry['name']}"
        if entry["resource_type"] == "folder":
            out[rel] = ("dir", 0, "")
            out.update(api_tree(session, f"{folder}/{entry['name']}", rel + "/"))
        else:
            size = int(entry.get("size") or 0)
            content = session.read_range(entry, 0, size + 1) if size else b""
            out[rel] = ("file", size, sha(content))
    return out


@pytest.mark.timeout(JOIN_TIMEOUT + 300)
def test_8_threads_2000_mixed_ops_no_unexpected_error_no_deadlock_mount_equals_api(
    server, session, tmp_path
):
    name = f"concurrency-{os.getpid()}"
    with mounted(server, tmp_path / "mnt", "--timeout", "20") as mount:
        base = mount.home / name
        base.mkdir()
        for folder in SHARED:
            (base / folder).mkdir()
        workers = [Worker(i, base, TOTAL_OPS // THREADS) for i in range(THREADS)]
        threads = [threading.Thread(target=w.run, daemon=True, name=f"w{w.index}") for w in workers]
        started = time.monotonic()
        for t in threads:
            t.start()
        deadline = started + JOIN_TIMEOUT
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        elapsed = time.monotonic() - started
        hung = [t.name for t in threads if t.is_alive()]
        assert not hung, f"threads still running after {JOIN_TIMEOUT} s (deadlock?): {hung}"

        through_mount = mount_tree(base)
        home_api = f"/project/{server.project_id}/user/{server.username}"
        through_api = api_tree(session, f"{home_api}/{name}")

        expected: dict[str, tuple[str, int, str]] = {f: ("dir", 0, "") for f in SHARED}
        for w in workers:
            for rel, content in w.files.items():
                expected[rel] = ("file", len(content), sha(content))
            for rel in w.dirs:
                expected[rel] = ("dir", 0, "")
        for rel in list(through_api):
            if rel.endswith("/common"):
                expected[rel] = ("dir", 0, "")
        errors = [e for w in workers for e in w.errors]
        counts: dict[str, int] = {}
        for w in workers:
            for op, n in w.counts.items():
                counts[op] = counts.get(op, 0) + n
        report(
            "concurrency",
            {
                "threads": THREADS,
                "operations": sum(counts.values()),
                "by_operation": dict(sorted(counts.items())),
                "unexpected_errors": len(errors),
                "slowest_operation_seconds": round(max(w.slowest for w in workers), 2),
                "seconds": round(elapsed, 1),
                "final_entries": len(through_api),
            },
        )
        assert sum(counts.values()) == TOTAL_OPS
        assert not errors, f"{len(errors)} unexpected errors:\n" + "\n".join(errors[:50])
        assert through_mount == through_api, (
            f"only through the mount: {sorted(set(through_mount.items()) - set(through_api.items()))[:20]}"
            f"\nonly through the API: {sorted(set(through_api.items()) - set(through_mount.items()))[:20]}"
        )
        assert through_api == expected, (
            f"API vs the threads' models: extra {sorted(set(through_api) - set(expected))[:20]}, "
            f"missing {sorted(set(expected) - set(through_api))[:20]}, "
            f"different {[k for k in expected if k in through_api and through_api[k] != expected[k]][:20]}"
        )
        # Tags set by the threads are on the server too.
        for w in workers:
            for rel, tags in w.tags.items():
                listed = os.getxattr(base / rel, "user.orion.tags").decode().split("\n")
                assert tags <= {t for t in listed if t}, rel
