"""Faults while the mount does real work (issue 5, "Faults").

- 10% of requests answered 503 plus randomly dropped connections while 200 files of mixed sizes are
  written through the mount: every file is byte-identical on the server, or its writer saw an error
  from write/close/fsync (zero silent losses); a file that is not on the server is in the recovery
  folder.
- The server stopped, and separately stalled: every system call that needs the server returns within
  the configured deadline with EIO or ETIMEDOUT; cached listings still answer; ``orionfs unmount``
  finishes within 5 s; when the server is back, the same mount works again.
- The server SIGKILLed in the middle of an upload, then restarted: no partial file is visible, the
  SQLite database passes ``PRAGMA integrity_check``, the writer got an error, and the recovery folder
  holds its data.

Real server subprocess on loopback, real mounts, real syscalls; faults come from the server's fault
hook. Sizes are scaled for CI; ``ORIONFS_LONG=1`` runs the full sizes (files up to 8 MiB).
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.reliability import mounted, orionfs_cmd, report

pytestmark = pytest.mark.fuse

LONG = os.environ.get("ORIONFS_LONG") == "1"
MiB = 1 << 20

#: The mount's request timeout and retry deadline in these tests (``--timeout``/``--retry-deadline``).
REQUEST_TIMEOUT = 2.0
RETRY_DEADLINE = 2.0
#: What one system call may take when the server is down or stalled. A call makes at most a few
#: requests in sequence, each bounded by the timeout plus the retry deadline; the slack covers the
#: kernel round trip and a loaded 2-core machine.
SYSCALL_BOUND = REQUEST_TIMEOUT + RETRY_DEADLINE + 3.0
HANG_CAP = 90.0  # past this a call is reported as hung (the test fails)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def timed(fn: Callable[[], Any], cap: float = HANG_CAP) -> dict[str, Any]:
    """Run ``fn`` in a thread: {"value"| "errno"| "exception", "elapsed"} or {"hung": True}."""
    result: dict[str, Any] = {}

    def target() -> None:
        started = time.monotonic()
        try:
            result["value"] = fn()
        except OSError as error:
            result["errno"] = error.errno
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            result["exception"] = repr(error)
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(cap)
    if thread.is_alive():
        return {"hung": True, "elapsed": cap}
    return result


def write_file(path: Path, data: bytes, fsync: bool = False, chunk: int = 256 * 1024) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for start in range(0, len(data), chunk):
            os.write(fd, data[start : start + chunk])
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def api_files(session, folder: str) -> dict[str, list[dict]]:
    """name -> entries (several if Orion holds duplicates) of a folder, through the API."""
    out: dict[str, list[dict]] = {}
    for entry in session.ls_path(folder)["results"]:
        out.setdefault(entry["name"], []).append(entry)
    return out


def api_content(session, entry: dict) -> bytes:
    size = int(entry.get("size") or 0)
    return session.read_range(entry, 0, size + 1) if size else b""


def recovery_copies(recovery_dir: Path) -> dict[str, str]:
    """file name in the recovery folder -> sha256 of its content."""
    if not recovery_dir.exists():
        return {}
    return {p.name: sha(p.read_bytes()) for p in recovery_dir.iterdir() if p.is_file()}


@pytest.fixture(autouse=True)
def _no_faults_left(server):
    server.clear_faults()
    server.set_latency(0)
    yield
    server.clear_faults()
    server.set_latency(0)


# --- 503s and dropped connections while writing 200 files -----------------------------------------


def _sizes(count: int, largest: int, rng: random.Random) -> list[int]:
    sizes = []
    for i in range(count):
        bucket = i % 10
        if bucket == 0:
            sizes.append(0)
        elif bucket == 1:
            sizes.append(1)
        elif bucket in (2, 3, 4):
            sizes.append(rng.randint(2, 64 * 1024))
        elif bucket in (5, 6, 7):
            sizes.append(rng.randint(64 * 1024, MiB))
        else:
            sizes.append(rng.randint(MiB, largest))
    return sizes


@pytest.mark.timeout(1800 if LONG else 300)
def test_503_and_dropped_connections_during_200_writes_lose_no_file_silently(
    server, session, tmp_path
):
    """Round 1 creates 200 files; round 2 rewrites each (O_TRUNC), appends to it, or edits it in
    place (O_RDWR), all under 10% 503s and 3% dropped connections. A file's acceptable server
    states are the last content whose writer saw no error, plus every later attempted content
    whose writer saw one (an upload that failed may or may not have landed, but never partly)."""
    files = 200
    largest = 8 * MiB if LONG else 4 * MiB
    rng = random.Random(5)
    sizes = _sizes(files, largest, rng)
    folder_name = f"faults-{os.getpid()}"
    home_api = f"/project/{server.project_id}/user/{server.username}"
    session.create_paths(f"{home_api}/{folder_name}")
    names = [f"f{i:03d}.bin" for i in range(files)]
    contents: dict[str, bytes] = {}  # what each writer meant the file to hold after its last write
    acceptable: dict[str, set[str | None]] = {n: {None} for n in names}  # None: absent
    writes = {"attempted": 0, "with_error": 0, "errors_by_errno": {}}
    lock = threading.Lock()

    def record(name: str, data: bytes, error: OSError | None) -> None:
        with lock:
            writes["attempted"] += 1
            if error is None:
                acceptable[name] = {sha(data)}
            else:
                writes["with_error"] += 1
                key = errno.errorcode.get(error.errno, str(error.errno))
                writes["errors_by_errno"][key] = writes["errors_by_errno"].get(key, 0) + 1
                acceptable[name].add(sha(data))
            contents[name] = data

    with mounted(server, tmp_path / "mnt", "--timeout", "10", "--retry-deadline", "10") as mount:
        folder = mount.home / folder_name
        os.listdir(folder)

        def create(i: int) -> None:
            data = random.Random(i).randbytes(sizes[i])
            try:
                write_file(folder / names[i], data, fsync=(i % 3 == 0))
                record(names[i], data, None)
            except OSError as error:
                record(names[i], data, error)

        def rewrite(i: int) -> None:
            name = names[i]
            path = folder / name
            local = random.Random(10_000 + i)
            mode = i % 3
            data: bytes | None = None
            try:
                if mode == 0:  # rewrite with O_TRUNC
                    data = local.randbytes(local.randint(0, sizes[i] + 1000))
                    write_file(path, data, fsync=True)
                    record(name, data, None)
                    return
                base = contents[name] if sha(contents[name]) in acceptable[name] else None
                if base is None or len(acceptable[name]) > 1:
                    base = path.read_bytes()  # what the server has now
                extra = local.randbytes(local.randint(1, 100_000))
                if mode == 1:  # append
                    data = base + extra
                    with open(path, "ab") as fh:
                        fh.write(extra)
                else:  # edit in place (O_RDWR), inside or past the end
                    offset = local.randint(0, len(base))
                    data = base[:offset] + extra + base[offset + len(extra) :]
                    fd = os.open(path, os.O_RDWR)
                    try:
                        os.pwrite(fd, extra, offset)
                    finally:
                        os.close(fd)
                record(name, data, None)
            except FileNotFoundError:
                pass  # round 1 never stored it (its writer saw the error): nothing to rewrite
            except OSError as error:
                if data is not None:  # else reading the current content failed: nothing written
                    record(name, data, error)

        server.reset_counters()
        server.set_faults(status=503, fraction=0.10)
        server.set_faults(drop=True, fraction=0.03)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(create, range(files)))
            list(pool.map(rewrite, range(files)))
        elapsed = time.monotonic() - started
        counted = server.counters()
        server.clear_faults()

        on_server = api_files(session, f"{home_api}/{folder_name}")
        silent_losses, duplicates, stored, absent = [], [], 0, 0
        for name in names:
            entries = on_server.get(name, [])
            if len(entries) > 1:
                duplicates.append(name)
            state = sha(api_content(session, entries[0])) if entries else None
            if state not in acceptable[name]:
                silent_losses.append(
                    (name, "absent" if state is None else "content the writer never saw succeed")
                )
            if state is None:
                absent += 1
            else:
                stored += 1
        # Data whose final upload failed is in the recovery folder.
        copies = set(recovery_copies(mount.recovery_dir).values())
        failed_last = [
            n
            for n in names
            if len(acceptable[n]) > 1
            and sha(contents[n]) not in copies
            and (sha(api_content(session, on_server[n][0])) if on_server.get(n) else None)
            != sha(contents[n])
        ]

    report(
        "faults_503_drops",
        {
            "files": files,
            "largest_file_bytes": largest,
            "bytes_of_first_round": sum(sizes),
            "writes_attempted": writes["attempted"],
            "writes_with_writer_error": writes["with_error"],
            "writer_errors_by_errno": writes["errors_by_errno"],
            "files_on_server": stored,
            "files_absent_after_writer_error": absent,
            "silent_losses": len(silent_losses),
            "duplicates_on_server": len(duplicates),
            "failed_writes_not_in_recovery_folder": len(failed_last),
            "requests_counted_by_server": counted["total"],
            "seconds": round(elapsed, 1),
        },
    )
    assert writes["attempted"] >= files
    assert not silent_losses, f"silent losses: {silent_losses}"
    assert not duplicates, f"files stored twice: {duplicates}"
    assert not failed_last, f"failed uploads not kept in the recovery folder: {failed_last}"


# --- server stopped / stalled -----------------------------------------------------------------------


def _outage_setup(session, server, name: str) -> dict[str, Any]:
    """A folder with a file (never read through the mount) and a subfolder (never listed)."""
    home_api = f"/project/{server.project_id}/user/{server.username}"
    folder = f"{home_api}/{name}"
    session.create_paths(f"{folder}/unlisted/deeper")
    import io

    content = os.urandom(200_000)
    session.upload_file(folder, "a.bin", io.BytesIO(content), size=len(content))
    session.upload_file(folder, "b.bin", io.BytesIO(b"b" * 10), size=10)
    return {"api_folder": folder, "content": content}


def _calls_needing_the_server(folder: Path) -> dict[str, Callable[[], Any]]:
    def read_a():
        with open(folder / "a.bin", "rb") as fh:
            return len(fh.read())

    return {
        "read of a file never read": read_a,
        "listdir of a folder never listed": lambda: os.listdir(folder / "unlisted"),
        "mkdir": lambda: os.mkdir(folder / "newdir"),
        "create+write+close": lambda: write_file(folder / "new.bin", b"x" * 1000),
        "unlink": lambda: os.unlink(folder / "b.bin"),
        "rename": lambda: os.rename(folder / "b.bin", folder / "b2.bin"),
        "set a tag": lambda: os.setxattr(folder / "b.bin", "user.orion.tag.outage", b""),
    }


def _check_outage(folder: Path, expected_names: set[str], allowed: set[int]) -> dict[str, Any]:
    """Cached listings answer; every call needing the server fails fast with an allowed errno."""
    problems, timings = [], {}
    for label, fn in [
        ("cached listdir", lambda: set(os.listdir(folder))),
        ("cached stat", lambda: os.stat(folder / "a.bin").st_size),
    ]:
        result = timed(fn, cap=SYSCALL_BOUND + 30)
        timings[label] = round(result["elapsed"], 2)
        if "value" not in result:
            problems.append(f"{label}: {result}")
        elif label == "cached listdir" and result["value"] != expected_names:
            problems.append(f"{label}: {result['value']} != {expected_names}")
        elif result["elapsed"] > 1.0:
            problems.append(f"{label} took {result['elapsed']:.2f} s (not from the cache)")
    for label, fn in _calls_needing_the_server(folder).items():
        result = timed(fn)
        timings[label] = round(result["elapsed"], 2)
        if result.get("hung"):
            problems.append(f"{label}: hung for more than {HANG_CAP} s")
        elif result.get("errno") not in allowed:
            got = errno.errorcode.get(result.get("errno"), result)
            problems.append(
                f"{label}: {got} (expected one of {[errno.errorcode[e] for e in allowed]})"
            )
        elif result["elapsed"] > SYSCALL_BOUND:
            problems.append(f"{label}: took {result['elapsed']:.1f} s > {SYSCALL_BOUND} s")
    return {"problems": problems, "timings": timings}


def _check_works_again(folder: Path, session, api_folder: str, content: bytes, tag: str) -> None:
    assert read_file(folder / "a.bin") == content
    os.mkdir(folder / f"after-{tag}")
    data = os.urandom(50_000)
    write_file(folder / f"after-{tag}.bin", data)
    assert read_file(folder / f"after-{tag}.bin") == data
    names = {e["name"] for e in session.ls_path(api_folder)["results"]}
    assert {f"after-{tag}", f"after-{tag}.bin"} <= names
    assert "unlisted" in os.listdir(folder)
    assert os.listdir(folder / "unlisted") == ["deeper"]


def _mount_args() -> list[str]:
    return [
        "--cache-ttl",
        "300",
        "--timeout",
        str(REQUEST_TIMEOUT),
        "--retry-deadline",
        str(RETRY_DEADLINE),
    ]


def _wait_for_server(session, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            session.get_user_profile()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_server_stopped_calls_fail_fast_cache_answers_and_mount_recovers(server, session, tmp_path):
    setup = _outage_setup(session, server, f"stopped-{os.getpid()}")
    name = setup["api_folder"].rsplit("/", 1)[1]
    with mounted(server, tmp_path / "mnt", *_mount_args()) as mount:
        folder = mount.home / name
        expected = set(os.listdir(folder))
        os.stat(folder / "a.bin")
        server.stop()
        try:
            outcome = _check_outage(folder, expected, {errno.EIO, errno.ETIMEDOUT})
        finally:
            server.start()
        _wait_for_server(session)
        report("outage_stopped", outcome["timings"])
        assert not outcome["problems"], "\n".join(outcome["problems"])
        _check_works_again(folder, session, setup["api_folder"], setup["content"], "stop")


def test_server_stalled_calls_fail_within_deadline_cache_answers_and_mount_recovers(
    server, session, tmp_path
):
    setup = _outage_setup(session, server, f"stalled-{os.getpid()}")
    name = setup["api_folder"].rsplit("/", 1)[1]
    with mounted(server, tmp_path / "mnt", *_mount_args()) as mount:
        folder = mount.home / name
        expected = set(os.listdir(folder))
        os.stat(folder / "a.bin")
        server.set_faults(stall=60.0)
        try:
            outcome = _check_outage(folder, expected, {errno.EIO, errno.ETIMEDOUT})
        finally:
            server.clear_faults()
        report("outage_stalled", outcome["timings"])
        assert not outcome["problems"], "\n".join(outcome["problems"])
        _check_works_again(folder, session, setup["api_folder"], setup["content"], "stall")


@pytest.mark.parametrize("outage", ["stopped", "stalled"])
def test_orionfs_unmount_finishes_within_5_seconds_while_the_server_is_out(
    server, session, tmp_path, outage
):
    setup = _outage_setup(session, server, f"unmount-{outage}-{os.getpid()}")
    name = setup["api_folder"].rsplit("/", 1)[1]
    with mounted(server, tmp_path / "mnt", *_mount_args()) as mount:
        folder = mount.home / name
        os.listdir(folder)
        if outage == "stopped":
            server.stop()
        else:
            server.set_faults(stall=60.0)
        try:
            # A call that needs the server has just failed (or is failing) when the user unmounts.
            timed(lambda: read_file(folder / "a.bin"), cap=SYSCALL_BOUND + 30)
            started = time.monotonic()
            result = mount.unmount(timeout=60)
            elapsed = time.monotonic() - started
            gone = not os.path.ismount(mount.path)
            try:
                mount.proc.wait(timeout=10)
            except Exception:
                pass
        finally:
            if outage == "stopped":
                server.start()
            else:
                server.clear_faults()
        _wait_for_server(session)
        report(f"unmount_while_{outage}", {"seconds": round(elapsed, 2), "exit": result.returncode})
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert gone
        assert elapsed < 5.0, f"orionfs unmount took {elapsed:.1f} s"
        assert mount.proc.poll() is not None, "the mount process is still running"


@pytest.mark.parametrize("timeouts", ["short", "default"])
def test_orionfs_unmount_with_a_call_in_flight_on_a_stalled_server_finishes_within_5_seconds(
    server, session, tmp_path, timeouts
):
    """A lookup is waiting on the stalled server when the user unmounts: ``orionfs unmount`` either
    unmounts or says at once that the mount is busy (and ``--lazy`` then detaches it), never
    taking more than 5 s; the stuck call still ends with an error and the process exits. With the
    mount's default timeouts (30 s, retries for 60 s) as well as short ones."""
    setup = _outage_setup(session, server, f"unmount-inflight-{timeouts}-{os.getpid()}")
    name = setup["api_folder"].rsplit("/", 1)[1]
    args = _mount_args() if timeouts == "short" else ["--cache-ttl", "300"]
    with mounted(server, tmp_path / "mnt", *args) as mount:
        folder = mount.home / name
        os.listdir(folder)
        server.set_faults(stall=60.0)
        stuck: dict[str, Any] = {}
        try:
            caller = threading.Thread(
                target=lambda: stuck.update(timed(lambda: os.stat(folder / "unlisted" / "deeper"))),
                daemon=True,
            )
            caller.start()
            time.sleep(0.5)
            started = time.monotonic()
            plain = mount.unmount(timeout=60)
            plain_seconds = time.monotonic() - started
            lazy_seconds = None
            if os.path.ismount(mount.path):
                message = plain.stderr.decode(errors="replace")
                assert plain.returncode != 0 and ("busy" in message or "--lazy" in message), message
                started = time.monotonic()
                lazy = subprocess_run_unmount(mount, "--lazy")
                lazy_seconds = time.monotonic() - started
                assert lazy.returncode == 0, lazy.stderr.decode(errors="replace")
            if timeouts == "default":
                server.restart()  # cut the stalled request instead of waiting out 30 s+ in CI
            caller.join(SYSCALL_BOUND + 10)
            mount.proc.wait(timeout=SYSCALL_BOUND + 10)
        finally:
            server.clear_faults()
        report(
            f"unmount_with_call_in_flight_{timeouts}_timeouts",
            {
                "plain_seconds": round(plain_seconds, 2),
                "plain_exit": plain.returncode,
                "lazy_seconds": lazy_seconds and round(lazy_seconds, 2),
                "stuck_call": {k: v for k, v in stuck.items() if k != "value"},
            },
        )
        assert plain_seconds < 5.0, f"orionfs unmount took {plain_seconds:.1f} s"
        assert lazy_seconds is None or lazy_seconds < 5.0, f"--lazy took {lazy_seconds:.1f} s"
        assert not os.path.ismount(mount.path)
        # The stuck call ends with an error: its own timeout, or the connection the unmount cut.
        cut = (errno.EIO, errno.ETIMEDOUT, errno.ENOTCONN, errno.ECONNABORTED, errno.ENOENT)
        assert stuck.get("errno") in cut or (timeouts == "default" and "value" in stuck), stuck
        assert mount.proc.poll() is not None, "the mount process is still running"


def subprocess_run_unmount(mount, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        orionfs_cmd("unmount", *flags, str(mount.path)),
        env=mount.env,
        capture_output=True,
        timeout=60,
    )


# --- SIGKILL in the middle of an upload ---------------------------------------------------------------


def _partial_uploads(data_dir: Path) -> list[tuple[Path, int]]:
    found = []
    for part in (data_dir / "tmp").glob("upload-*.part"):
        try:
            found.append((part, part.stat().st_size))
        except FileNotFoundError:
            pass
    return found


def _integrity(db_path: Path) -> str:
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_server_killed_mid_upload_no_partial_file_db_intact_writer_error_data_recovered(
    server, session, tmp_path
):
    data_dir = Path(server.data_dir)
    db_path = data_dir / "orion.sqlite3"
    assert db_path.exists(), f"no SQLite database at {db_path}: {sorted(os.listdir(data_dir))}"
    size = (256 if LONG else 96) * MiB
    rng = random.Random(9)
    data = b"".join(rng.randbytes(MiB) for _ in range(size // MiB))
    digest = sha(data)
    home_api = f"/project/{server.project_id}/user/{server.username}"
    folder_name = f"killed-{os.getpid()}"
    session.create_paths(f"{home_api}/{folder_name}")
    target_name = "big.bin"

    with mounted(server, tmp_path / "mnt", "--timeout", "5", "--retry-deadline", "5") as mount:
        folder = mount.home / folder_name
        os.listdir(folder)
        writer = {}

        def write_big() -> None:
            writer.update(
                timed(lambda: write_file(folder / target_name, data, chunk=MiB), cap=HANG_CAP)
            )

        thread = threading.Thread(target=write_big, daemon=True)
        thread.start()
        # Kill the server once it has received part of the body, not all of it.
        killed_at = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and thread.is_alive():
            partial = [s for _, s in _partial_uploads(data_dir) if 0 < s < size]
            if partial and max(partial) >= MiB:
                killed_at = max(partial)
                server.kill()
                break
            time.sleep(0.005)
        thread.join(HANG_CAP + 10)
        assert killed_at is not None, (
            f"the upload was never seen in progress (writer: {writer}); cannot test a kill mid-upload"
        )
        assert not thread.is_alive(), "the writer hung after the server was killed"

        integrity_after_kill = _integrity(db_path)
        server.start()
        _wait_for_server(session)
        integrity_after_restart = _integrity(db_path)
        entries = api_files(session, f"{home_api}/{folder_name}").get(target_name, [])
        recovered = [n for n, h in recovery_copies(mount.recovery_dir).items() if h == digest]
        listed = os.listdir(folder)  # the same mount still answers
        report(
            "kill_mid_upload",
            {
                "upload_bytes": size,
                "server_had_received_bytes": killed_at,
                "writer": {k: v for k, v in writer.items() if k != "value"},
                "integrity_after_kill": integrity_after_kill,
                "integrity_after_restart": integrity_after_restart,
                "visible_after_restart": [e.get("size") for e in entries],
                "recovery_copies": recovered,
            },
        )
        assert integrity_after_kill == "ok"
        assert integrity_after_restart == "ok"
        assert not [e for e in entries if int(e.get("size") or 0) != size], (
            f"a partial file is visible: {entries}"
        )
        assert writer.get("errno") in (errno.EIO, errno.ETIMEDOUT, errno.EAGAIN), (
            f"the interrupted writer got no error: {writer}"
        )
        assert not entries, "the file is on the server although its writer got an error"
        assert recovered, f"the recovery folder {mount.recovery_dir} does not hold the data"
        assert target_name not in listed or os.stat(folder / target_name).st_size in (0, size)
        assert not _partial_uploads(data_dir), "stale upload parts left after the restart"
