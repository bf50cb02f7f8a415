"""The mount process seen from outside: starting it detached, waiting until its mount is ready,
its state file, waiting for it to end, and unmounting.

``orionfs mount`` re-executes itself as a detached ``--foreground`` process (no fork after threads:
the child starts its HTTP pool and the FUSE threads itself) and returns once ``os.path.ismount``
says the mount is ready; if the child dies first, its log's error line is the message. The mount
process records its pid in a state file so that ``orionfs unmount`` can wait for it.

The supervisor helpers at the end (``wait_until_mounted``, ``stop_process``, ``force_unmount``,
``unmount_and_wait``) also serve the tests and the benchmark, which run mount processes of their own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orionfs.daemon import MountError
from orionfs.daemon import state as state_files

#: Seconds ``orionfs unmount`` waits for the mount process to end by itself after the kernel
#: unmount (it ends at once unless system calls are still waiting on the server).
UNMOUNT_WAIT: float = 1.0
#: Then it is told to stop (STOP_SIGNAL) and waited for this long, at most.
UNMOUNT_STOP_WAIT: float = 2.5
#: The signal ``orionfs unmount`` sends a mount process that outlives its kernel mount (calls in
#: flight on a stalled server): unsaved staged data goes to the recovery folder, the process ends
#: without waiting for the server, and the calls still in flight fail at once (EIO). The mount
#: process's side is orionfs.daemon.stop.
STOP_SIGNAL = signal.SIGUSR1
#: Seconds one fusermount / umount run may take.
UNMOUNT_TOOL_TIMEOUT: float = 30.0
#: Seconds between two polls of a mount point or a process.
POLL_INTERVAL: float = 0.05
#: Seconds ``force_unmount`` keeps retrying a busy mount before it detaches it lazily.
FORCE_UNMOUNT_BUSY_WAIT: float = 5.0

_ERROR_PREFIX = "orionfs: error: "
#: systemd's notification socket (orionfs.daemon.notify).
NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"


# -- state files -----------------------------------------------------------------------------------


def default_log_file(mountpoint: str) -> Path:
    """``~/.cache/orionfs/mount-<hash>.log`` for a mount point."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "orionfs"
    return base / f"mount-{_key(mountpoint)}.log"


def _key(mountpoint: str) -> str:
    return state_files.mount_key(mountpoint)


def _state_path(mountpoint: str) -> Path:
    """The mount's state file in the checked state folder (orionfs.daemon.state: StateError if
    the folder is not ours and 0700)."""
    path = state_files.state_path(mountpoint)
    assert path is not None  # made where absent
    return path


def write_state(mountpoint: str, **state: Any) -> None:
    """Record the mount process (pid) so that ``orionfs unmount`` can wait for it."""
    state_files.write_json(_state_path(mountpoint), {"mountpoint": mountpoint, **state})


def update_state(mountpoint: str, **fields: Any) -> None:
    """Change fields of this process's state file (the write-back queue's progress while the
    mount ends)."""
    state = read_state(mountpoint)
    if not state or state.get("pid") != os.getpid():
        return
    state.pop("mountpoint", None)
    write_state(mountpoint, **{**state, **fields})


def read_state(mountpoint: str) -> dict[str, Any] | None:
    """The recorded state of a mount, if any (StateError if the state folder is not safe)."""
    path = state_files.state_path(mountpoint, create=False)
    return None if path is None else state_files.read_json(path)


def forget_state(mountpoint: str, pid: int | None = None) -> None:
    """Remove the mount's state and status files if process ``pid`` (default: this one, the
    mount process as it ends) wrote them."""
    with contextlib.suppress(OSError, MountError):
        state = read_state(mountpoint)
        if state and state.get("pid") == (os.getpid() if pid is None else pid):
            state_files.remove(state_files.state_path(mountpoint, create=False))
            state_files.remove(state_files.status_path(mountpoint, create=False))


# -- the detached mount process --------------------------------------------------------------------


def spawn_daemon(argv: Sequence[str], mountpoint: str, log_file: Path, ready_timeout: float) -> int:
    """Start ``argv`` (the ``--foreground`` mount process) detached, its output appended to
    ``log_file``, and wait until ``mountpoint`` is mounted; returns its pid.

    MountError if it exits first (with its log's last error line) or is not ready within
    ``ready_timeout`` seconds (then it is stopped).
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    start = log_file.stat().st_size if log_file.exists() else 0
    with open(log_file, "ab") as log, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(
            list(argv),
            stdin=devnull,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            # systemd's readiness socket is this process's: the child must not answer it.
            env={k: v for k, v in os.environ.items() if k != NOTIFY_SOCKET_ENV},
        )
    if wait_until_mounted(mountpoint, child, ready_timeout):
        return child.pid
    if child.poll() is not None:
        raise MountError(
            _last_error(log_file, start)
            or f"the mount process exited ({child.returncode}); see {log_file}"
        )
    child.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(5)
    raise MountError(f"the mount was not ready within {ready_timeout:g} s; see {log_file}")


def _last_error(log_file: Path, start: int) -> str | None:
    """The message of the last ``orionfs: error:`` line written since ``start``."""
    try:
        with open(log_file, "rb") as fh:
            fh.seek(start)
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith(_ERROR_PREFIX):
            return line[len(_ERROR_PREFIX) :]
    for line in reversed(lines):
        if " ERROR " in line or "Error" in line:
            return line.strip()
    return None


def wait_for_uploads(mountpoint: str, pid: int, show: bool, grace: float = UNMOUNT_WAIT) -> None:
    """After the kernel unmount of a write-back mount: wait while its process uploads what was
    queued (the state file's ``uploads``, orionfs.fs.writeback.UploadStats), with a progress
    line on stderr if ``show``. Returns when the process is gone, its queue is empty, or it has
    reported nothing within ``grace`` seconds (nothing was queued)."""
    start = time.monotonic()
    seen = False
    shown = False
    try:
        while process_alive(pid):
            uploads = (read_state(mountpoint) or {}).get("uploads")
            if isinstance(uploads, dict):
                seen = True
            queued = int(uploads.get("queued", 0)) if isinstance(uploads, dict) else 0
            if queued and show:
                mb = int(uploads.get("queued_bytes", 0)) / 1e6
                failed = int(uploads.get("failed", 0))
                line = f"orionfs: uploading {queued} files ({mb:.1f} MB) before the mount ends"
                line += f", {failed} failed" if failed else ""
                print(f"\r{line}   ", end="", file=sys.stderr, flush=True)
                shown = True
            if not queued and (seen or time.monotonic() - start >= grace):
                return
            time.sleep(POLL_INTERVAL * 4)
    finally:
        if shown:
            print(file=sys.stderr)


def stop_mount_process(pid: int, mountpoint: str | None = None) -> bool:
    """After the kernel unmount: wait briefly for the mount process to end; if calls in flight
    keep it (a stalled server answers them only after the request timeout), tell it to stop now
    (STOP_SIGNAL: staged data to the recovery folder, no waiting for the server). Bounded by
    UNMOUNT_WAIT + UNMOUNT_STOP_WAIT seconds; True if the process is gone. With ``mountpoint``,
    a process that is not the orionfs mount process of that mount point (its pid reused, or a
    forged state file) is never signalled (False)."""
    if wait_for_exit(pid, UNMOUNT_WAIT):
        return True
    if mountpoint is not None and not state_files.is_mount_process(pid, mountpoint):
        return False
    try:
        os.kill(pid, STOP_SIGNAL)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return wait_for_exit(pid, UNMOUNT_STOP_WAIT)


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` is gone; True if it is."""
    if pid <= 0:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(POLL_INTERVAL)
    return False


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    return fields[0] != "Z"


# -- unmounting ------------------------------------------------------------------------------------


def unmount(mountpoint: str | os.PathLike[str], lazy: bool = False) -> None:
    """``fusermount3 -u`` (``-uz`` if lazy), falling back to fusermount and umount; MountError
    with the tool's message if it fails (e.g. the mount is busy), or at once if the mount there
    is not a FUSE mount."""
    mountpoint = os.fspath(mountpoint)
    entry = state_files.mount_at(os.path.abspath(mountpoint))
    if entry is not None and not entry.fstype.startswith("fuse"):
        # Never the umount fallback on another kind of filesystem (a tmpfs, a disk).
        raise MountError(f"{mountpoint} is a {entry.fstype} mount, not FUSE: not unmounting it")
    flags = "-uz" if lazy else "-u"
    errors = []
    for tool in ("fusermount3", "fusermount"):
        if shutil.which(tool):
            result = subprocess.run(
                [tool, flags, mountpoint],
                capture_output=True,
                text=True,
                timeout=UNMOUNT_TOOL_TIMEOUT,
            )
            if result.returncode == 0:
                return
            errors.append(result.stderr.strip())
            break
    if os.geteuid() == 0 and shutil.which("umount"):
        cmd = ["umount", "-l", mountpoint] if lazy else ["umount", mountpoint]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=UNMOUNT_TOOL_TIMEOUT)
        if result.returncode == 0:
            return
        errors.append(result.stderr.strip())
    message = errors[-1] if errors else "no fusermount3, fusermount or umount found"
    raise MountError(f"cannot unmount {mountpoint}: {message} (try --lazy)")


# -- supervising a mount process (tests, benchmark) ------------------------------------------------


def wait_until_mounted(
    mountpoint: str | os.PathLike[str], process: subprocess.Popen[Any], timeout: float
) -> bool:
    """Poll until ``mountpoint`` is a mount point (True), or ``process`` has exited or ``timeout``
    seconds have passed (False; ``process.poll()`` tells which)."""
    deadline = time.monotonic() + timeout
    while not os.path.ismount(mountpoint):
        if process.poll() is not None or time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def stop_process(process: subprocess.Popen[Any] | None, timeout: float) -> int | None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL and wait as long again; returns the
    exit status (None if the process outlived even that)."""
    if process is None:
        return None
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout)
    return process.returncode


def force_unmount(
    mountpoint: str | os.PathLike[str], busy_wait: float = FORCE_UNMOUNT_BUSY_WAIT
) -> None:
    """Unmount ``mountpoint`` if it is mounted: retry a plain unmount while it is busy for up to
    ``busy_wait`` seconds, then detach it lazily. Never raises for a failed unmount."""
    deadline = time.monotonic() + busy_wait
    delay = POLL_INTERVAL
    while os.path.ismount(mountpoint):
        with contextlib.suppress(MountError, subprocess.TimeoutExpired):
            unmount(mountpoint)
        if not os.path.ismount(mountpoint) or time.monotonic() >= deadline:
            break
        time.sleep(delay)
        delay = min(2 * delay, 1.0)
    if os.path.ismount(mountpoint):
        with contextlib.suppress(MountError, subprocess.TimeoutExpired):
            unmount(mountpoint, lazy=True)


def unmount_and_wait(
    mountpoint: str | os.PathLike[str],
    process: subprocess.Popen[Any] | None,
    timeout: float,
    busy_wait: float = FORCE_UNMOUNT_BUSY_WAIT,
) -> int | None:
    """``force_unmount``, then wait up to ``timeout`` seconds for the mount process to end; one that
    does not is stopped (``stop_process``). Returns its exit status if it ended by itself, else
    None."""
    try:
        force_unmount(mountpoint, busy_wait)
    finally:
        status = _reap(process, timeout)
    return status


def _reap(process: subprocess.Popen[Any] | None, timeout: float) -> int | None:
    """Wait up to ``timeout`` seconds for ``process`` to end; stop it if it does not (None)."""
    if process is None:
        return None
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_process(process, timeout)
        return None
