"""``orionfs mount`` and ``orionfs unmount``: checks, credentials, daemon, local server.

``orionfs mount MOUNTPOINT`` checks everything it can first (mount point, ``/dev/fuse``, libfuse, the
profile, the credentials with one request, the root folder), then re-executes itself as a detached
``--foreground`` process (no fork after threads: the child starts its HTTP pool and the FUSE threads
itself) and returns once ``os.path.ismount`` says the mount is ready; if the child dies first, its
log's error line is printed. ``--local DATA_DIR`` starts ``orionfs serve`` on a free loopback port in
the mount process and stops it when the mount ends.

Every failure is one line on stderr, ``orionfs: error: ...``, and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes.util
import hashlib
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orionfs.client.config import SessionConfig, get_profile_config
from orionfs.client.wire import PAGE_LIMIT_MAX
from orionfs.exceptions import (
    InvalidCredentials,
    NotFoundResponse,
    OrionConnectionError,
    OrionError,
    OrionTimeout,
    ProfileError,
)

logger = logging.getLogger(__name__)

#: Default seconds the kernel and the cache keep metadata.
DEFAULT_CACHE_TTL: float = 5.0
#: Seconds one request may wait for the server before the operation fails (EIO/ETIMEDOUT).
DEFAULT_MOUNT_REQUEST_TIMEOUT: float = 30.0
#: Seconds after a request's first failure during which retries may happen (bounds every call).
DEFAULT_MOUNT_RETRY_DEADLINE: float = 60.0
#: Seconds ``orionfs mount`` waits for the mount (and ``--local`` for its server) to be ready.
DEFAULT_READY_TIMEOUT: float = 30.0
#: Seconds ``orionfs unmount`` waits for the mount process to end by itself after the kernel
#: unmount (it ends at once unless system calls are still waiting on the server).
UNMOUNT_WAIT: float = 1.0
#: Then it is told to stop (STOP_SIGNAL) and waited for this long, at most.
UNMOUNT_STOP_WAIT: float = 2.5
#: Seconds the mount process cuts its connections to the server after STOP_SIGNAL, so that calls
#: in flight (retries included) fail; it exits at most half as long again after that.
STOP_ABORT_WINDOW: float = 1.2
#: A call in flight this long (seconds) when STOP_SIGNAL comes waits on the server; shorter ones
#: (a write into the staging file after a lazy unmount) are left alone.
STUCK_AFTER: float = 0.5
#: The signal ``orionfs unmount`` sends a mount process that outlives its kernel mount (calls in
#: flight on a stalled server): unsaved staged data goes to the recovery folder, the process ends
#: without waiting for the server, and the calls still in flight fail at once (EIO).
STOP_SIGNAL = signal.SIGUSR1
#: Seconds the local server gets to stop before it is killed.
SERVER_STOP_WAIT: float = 10.0


class MountError(Exception):
    """A failure to report as one line (``orionfs: error: <message>``)."""


# -- command line ----------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add ``mount`` and ``unmount`` to the ``orionfs`` command."""
    mount = subparsers.add_parser(
        "mount",
        help="mount Orion folders as a local directory",
        description="Mount Orion folders (default: the whole namespace) at MOUNTPOINT.",
    )
    mount.add_argument("mountpoint", metavar="MOUNTPOINT", help="an existing empty directory")
    mount.add_argument("--profile", help="profile name (default: $ORION_PROFILE, else 'default')")
    mount.add_argument(
        "--root", default="/", help="Orion folder shown at the mount point (default /)"
    )
    mount.add_argument("--read-only", action="store_true", help="refuse every write with EROFS")
    mount.add_argument(
        "--cache-ttl",
        type=float,
        default=DEFAULT_CACHE_TTL,
        metavar="SECONDS",
        help=f"how long listings and attributes are trusted (default {DEFAULT_CACHE_TTL:g})",
    )
    mount.add_argument(
        "--page-size",
        type=int,
        default=None,
        metavar="N",
        help="entries per listing request (default: the server's maximum, 1000)",
    )
    mount.add_argument("--foreground", action="store_true", help="stay in the foreground")
    mount.add_argument("--debug", action="store_true", help="debug logging (implies no secrets)")
    mount.add_argument(
        "-o",
        dest="fuse_options",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="FUSE mount options, comma separated (e.g. allow_other)",
    )
    mount.add_argument(
        "--local",
        metavar="DATA_DIR",
        help="start the local Orion server on DATA_DIR (sample data on first start) and mount it",
    )
    mount.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_MOUNT_REQUEST_TIMEOUT,
        metavar="SECONDS",
        help=f"request timeout (default {DEFAULT_MOUNT_REQUEST_TIMEOUT:g})",
    )
    mount.add_argument(
        "--retry-deadline",
        type=float,
        default=DEFAULT_MOUNT_RETRY_DEADLINE,
        metavar="SECONDS",
        help=f"retries stop this long after a request first fails (default {DEFAULT_MOUNT_RETRY_DEADLINE:g})",
    )
    mount.add_argument(
        "--log-file", metavar="PATH", help="the daemon's log (default: under ~/.cache)"
    )
    mount.add_argument(
        "--recovery-dir", metavar="DIR", help="where data whose upload failed is kept"
    )
    mount.add_argument("--staging-dir", metavar="DIR", help="where writes are staged")
    mount.add_argument(
        "--ready-timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT,
        metavar="SECONDS",
        help=argparse.SUPPRESS,
    )
    mount.set_defaults(func=cmd_mount)

    unmount = subparsers.add_parser("unmount", help="unmount an orionfs mount")
    unmount.add_argument("mountpoint", metavar="MOUNTPOINT")
    unmount.add_argument("--lazy", action="store_true", help="detach now even if busy (umount -l)")
    unmount.set_defaults(func=cmd_unmount)


def _error(message: str) -> int:
    print(f"orionfs: error: {message}", file=sys.stderr)
    return 1


def check_options(args: argparse.Namespace) -> None:
    """Option values argparse lets through but that make no sense; MountError (one line)."""
    ttl = args.cache_ttl
    if not math.isfinite(ttl) or ttl < 0:
        raise MountError(f"--cache-ttl must be a number of seconds >= 0, not {ttl:g}")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise MountError(f"--timeout must be a number of seconds > 0, not {args.timeout:g}")
    if not math.isfinite(args.retry_deadline) or args.retry_deadline < 0:
        raise MountError(
            f"--retry-deadline must be a number of seconds >= 0, not {args.retry_deadline:g}"
        )
    page = getattr(args, "page_size", None)
    if page is not None and not 1 <= page <= PAGE_LIMIT_MAX:
        raise MountError(f"--page-size must be between 1 and {PAGE_LIMIT_MAX}, not {page}")


def cmd_mount(args: argparse.Namespace) -> int:
    """``orionfs mount``: returns the exit status."""
    try:
        check_options(args)
        mountpoint = check_mountpoint(args.mountpoint)
        check_fuse()
        if args.foreground:
            return run_foreground(args, mountpoint)
        if not args.local:
            config = load_config(args)
            validate(config, args.root, args.timeout)
        return spawn_daemon(args, mountpoint)
    except MountError as error:
        return _error(str(error))


def cmd_unmount(args: argparse.Namespace) -> int:
    """``orionfs unmount``: unmount and wait for the mount process (and its local server) to end."""
    mountpoint = os.path.abspath(args.mountpoint)
    if not os.path.ismount(mountpoint):
        return _error(f"{mountpoint} is not mounted")
    state = read_state(mountpoint)  # before: the mount process removes it as it ends
    try:
        unmount(mountpoint, lazy=args.lazy)
    except MountError as error:
        return _error(str(error))
    if state:
        stop_mount_process(int(state.get("pid", 0)))
    return 0


def stop_mount_process(pid: int) -> bool:
    """After the kernel unmount: wait briefly for the mount process to end; if calls in flight
    keep it (a stalled server answers them only after the request timeout), tell it to stop now
    (STOP_SIGNAL: staged data to the recovery folder, no waiting for the server). Bounded by
    UNMOUNT_WAIT + UNMOUNT_STOP_WAIT seconds; True if the process is gone."""
    if wait_for_exit(pid, UNMOUNT_WAIT):
        return True
    try:
        os.kill(pid, STOP_SIGNAL)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return wait_for_exit(pid, UNMOUNT_STOP_WAIT)


# -- checks ----------------------------------------------------------------------------------------


def check_mountpoint(path: str) -> str:
    """The absolute mount point; MountError if missing, not a directory, or already mounted."""
    mountpoint = os.path.abspath(path)
    if not os.path.lexists(mountpoint):
        raise MountError(f"mount point {mountpoint} does not exist (create it with mkdir)")
    try:
        if not os.path.isdir(mountpoint):
            raise MountError(f"mount point {mountpoint} is not a directory")
        if os.path.ismount(mountpoint):
            raise MountError(
                f"mount point {mountpoint} is busy: something is already mounted there"
            )
        os.listdir(mountpoint)
    except OSError as error:
        raise MountError(f"mount point {mountpoint} is not usable: {error.strerror}") from error
    return mountpoint


def check_fuse() -> None:
    """MountError unless /dev/fuse is usable and libfuse can be found."""
    if not os.path.exists("/dev/fuse"):
        raise MountError(
            "no /dev/fuse: load the fuse kernel module (modprobe fuse), or give the container "
            "--device /dev/fuse --cap-add SYS_ADMIN"
        )
    if not os.access("/dev/fuse", os.R_OK | os.W_OK) and shutil.which("fusermount3") is None:
        raise MountError("/dev/fuse is not accessible and fusermount3 is missing (install fuse3)")
    if not (
        os.environ.get("FUSE_LIBRARY_PATH")
        or ctypes.util.find_library("fuse3")
        or ctypes.util.find_library("fuse")
    ):
        raise MountError("libfuse not found: install it (apt-get install fuse3 libfuse3-3)")


def load_config(args: argparse.Namespace) -> SessionConfig:
    """The profile's SessionConfig; MountError with the profile problem."""
    try:
        return get_profile_config(args.profile)
    except ProfileError as error:
        raise MountError(str(error)) from error


def validate(config: SessionConfig, root: str, timeout: float) -> None:
    """One or two requests: the token is good, the server answers, the root is a folder."""
    from orionfs.client.session import get_session

    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("urllib3").setLevel(logging.ERROR)  # retries are summed up below
    session = get_session(
        config=config, request_timeout=min(timeout, 15.0), retry_timeout=min(timeout, 15.0)
    )
    try:
        session.validate_authentication()
        entry = session.stat_path(root) if root != "/" else None
    except InvalidCredentials as error:
        raise MountError(
            f"bad credentials: {config.url} refused the token of profile '{config.profile}' "
            "(make a new token and run 'orionfs profile add')"
        ) from error
    except OrionTimeout as error:
        raise MountError(
            f"cannot reach the Orion server at {config.url}: no answer (timed out)"
        ) from error
    except OrionConnectionError as error:
        raise MountError(
            f"cannot reach the Orion server at {config.url}: {_root_cause(error)}"
        ) from error
    except NotFoundResponse as error:
        raise MountError(f"no such Orion folder: {root}") from error
    except OrionError as error:
        raise MountError(f"the server at {config.url} refused: {error}") from error
    finally:
        session.close()
    if entry is not None and entry.get("resource_type") not in ("folder", "shard_collection"):
        raise MountError(f"{root} is a {entry.get('resource_type')}, not a folder")


def _root_cause(error: BaseException) -> str:
    """The innermost OS-level reason of a transport error (e.g. "Connection refused")."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]
        stack += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return "connection failed"


# -- daemon ----------------------------------------------------------------------------------------


def default_log_file(mountpoint: str) -> Path:
    """``~/.cache/orionfs/mount-<hash>.log`` for a mount point."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "orionfs"
    return base / f"mount-{_key(mountpoint)}.log"


def _key(mountpoint: str) -> str:
    return hashlib.sha1(mountpoint.encode()).hexdigest()[:12]


def _state_path(mountpoint: str) -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/orionfs-{os.getuid()}"
    return Path(runtime) / "orionfs" / f"mount-{_key(mountpoint)}.json"


def write_state(mountpoint: str, **state: Any) -> None:
    """Record the mount process (pid) so that ``orionfs unmount`` can wait for it."""
    path = _state_path(mountpoint)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(json.dumps({"mountpoint": mountpoint, **state}))


def read_state(mountpoint: str) -> dict[str, Any] | None:
    """The recorded state of a mount, if any."""
    try:
        return json.loads(_state_path(mountpoint).read_text())
    except (OSError, ValueError):
        return None


def child_argv(args: argparse.Namespace, mountpoint: str) -> list[str]:
    """The command line of the ``--foreground`` mount process."""
    argv = [sys.executable, "-m", "orionfs.cli"]
    argv += ["-v"] * min(int(getattr(args, "verbose", 0) or 0), 2) or ["-v"]
    argv += ["mount", mountpoint, "--foreground", "--root", args.root]
    argv += ["--cache-ttl", repr(args.cache_ttl), "--timeout", repr(args.timeout)]
    argv += ["--retry-deadline", repr(args.retry_deadline)]
    if getattr(args, "page_size", None):
        argv += ["--page-size", str(args.page_size)]
    for flag, value in (
        ("--profile", args.profile),
        ("--local", args.local and os.path.abspath(args.local)),
        ("--recovery-dir", args.recovery_dir and os.path.abspath(args.recovery_dir)),
        ("--staging-dir", args.staging_dir and os.path.abspath(args.staging_dir)),
    ):
        if value:
            argv += [flag, value]
    if args.read_only:
        argv.append("--read-only")
    if args.debug:
        argv.append("--debug")
    for option in args.fuse_options:
        argv += ["-o", option]
    return argv


def spawn_daemon(args: argparse.Namespace, mountpoint: str) -> int:
    """Start the mount process detached and wait until the mount is ready (or it failed)."""
    log_file = Path(args.log_file) if args.log_file else default_log_file(mountpoint)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    start = log_file.stat().st_size if log_file.exists() else 0
    with open(log_file, "ab") as log, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(
            child_argv(args, mountpoint),
            stdin=devnull,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + args.ready_timeout
    while time.monotonic() < deadline:
        if os.path.ismount(mountpoint):
            print(f"mounted at {mountpoint} (pid {child.pid}, log {log_file})")
            return 0
        if child.poll() is not None:
            return _error(
                _last_error(log_file, start)
                or f"the mount process exited ({child.returncode}); see {log_file}"
            )
        time.sleep(0.05)
    child.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(5)
    return _error(f"the mount was not ready within {args.ready_timeout:g} s; see {log_file}")


def _last_error(log_file: Path, start: int) -> str | None:
    """The message of the last ``orionfs: error:`` line written since ``start``."""
    try:
        with open(log_file, "rb") as fh:
            fh.seek(start)
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("orionfs: error: "):
            return line[len("orionfs: error: ") :]
    for line in reversed(lines):
        if " ERROR " in line or "Error" in line:
            return line.strip()
    return None


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` is gone; True if it is."""
    if pid <= 0:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
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


def unmount(mountpoint: str, lazy: bool = False) -> None:
    """``fusermount3 -u`` (``-uz`` if lazy), falling back to fusermount and umount."""
    flags = "-uz" if lazy else "-u"
    errors = []
    for tool in ("fusermount3", "fusermount"):
        if shutil.which(tool):
            result = subprocess.run(
                [tool, flags, mountpoint], capture_output=True, text=True, timeout=30
            )
            if result.returncode == 0:
                return
            errors.append(result.stderr.strip())
            break
    if os.geteuid() == 0 and shutil.which("umount"):
        cmd = ["umount", "-l", mountpoint] if lazy else ["umount", mountpoint]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if result.returncode == 0:
            return
        errors.append(result.stderr.strip())
    message = errors[-1] if errors else "no fusermount3, fusermount or umount found"
    raise MountError(f"cannot unmount {mountpoint}: {message} (try --lazy)")


# -- the local server ------------------------------------------------------------------------------


@dataclass
class LocalServer:
    """``orionfs serve`` on a free loopback port, run by the mount process."""

    process: subprocess.Popen[bytes]
    config: SessionConfig

    @classmethod
    def start(cls, data_dir: str, timeout: float) -> LocalServer:
        """Start the server and wait for its ``server.json``; MountError if it does not come up."""
        data = Path(data_dir).absolute()
        data.mkdir(parents=True, exist_ok=True)
        info_path = data / "server.json"
        started = time.time()
        log_path = data / "server.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orionfs.server",
                    "serve",
                    "--data",
                    str(data),
                    "--port",
                    "0",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise MountError(f"the local server exited ({process.returncode}); see {log_path}")
            info = _read_server_info(info_path, started, process.pid)
            if info is not None:
                config = SessionConfig(
                    url=info["url"],
                    username=info.get("username", ""),
                    token=info["token"],
                    profile="local",
                    project=info.get("project"),
                )
                logger.info("local server on %s (pid %s, data %s)", info["url"], process.pid, data)
                return cls(process, config)
            time.sleep(0.05)
        process.terminate()
        raise MountError(f"the local server did not start within {timeout:g} s; see {log_path}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SERVER_STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        logger.info("local server stopped")


def _read_server_info(path: Path, started: float, pid: int) -> dict[str, Any] | None:
    try:
        if path.stat().st_mtime < started - 1:
            return None  # a previous run's file
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not info.get("url") or not info.get("token"):
        return None
    if info.get("pid") not in (None, pid):
        return None  # another (or a previous) server process wrote it
    return info


# -- the mount process -----------------------------------------------------------------------------


def _handle_stop_signal(
    operations: Any, mountpoint: str, url: str, server: LocalServer | None
) -> None:
    """On STOP_SIGNAL (sent by ``orionfs unmount`` once the kernel mount is gone) while FUSE calls
    still wait on the server: stop waiting for it. The connections to the server are cut (again
    and again, for ``STOP_ABORT_WINDOW`` seconds, retries included), so each call in flight fails
    at once with its errno (EIO) and the mount process ends as after any unmount, keeping unsaved
    staged data in the recovery folder instead of uploading it. Should calls still be in flight
    after that window, the process keeps the staged data and exits anyway.

    Without calls in flight for STUCK_AFTER seconds the signal is ignored: after a lazy unmount
    the kernel keeps the connection for files still open, and they are served until closed.

    The main thread sits in libfuse (C) until every call in flight is answered, so a Python
    handler cannot run there; the signal's wakeup byte reaches a watcher thread instead.
    """
    from orionfs.fuse.errors import calls_in_flight

    target = urllib.parse.urlsplit(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        signal.signal(STOP_SIGNAL, lambda signum, frame: None)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # not the main thread (embedded use): no stop signal, unmount still works
        os.close(read_end)
        os.close(write_end)
        return

    def watch() -> None:
        while True:
            data = os.read(read_end, 64)
            if not data:
                return
            if int(STOP_SIGNAL) not in data:
                continue
            waiting = _stuck_calls(calls_in_flight)
            if waiting:
                break
            logger.info("stop signal ignored: no call waits on the server (open files are served)")
        logger.warning(
            "told to stop: the calls waiting on the server fail now: %s",
            ", ".join(f"{name} ({seconds:.1f} s)" for name, seconds in waiting),
        )
        operations.stopping = True  # destroy(): staged data to the recovery folder, no upload
        operations.files.stop()  # no new upload, download or read waits on the server
        deadline = time.monotonic() + STOP_ABORT_WINDOW
        while calls_in_flight() and time.monotonic() < deadline:
            cut_connections(port)
            time.sleep(0.05)
        # Whatever the calls answered, the process ends (the last one dropping the kernel's
        # connection); only if some are still stuck does it end here, without them.
        time.sleep(STOP_ABORT_WINDOW / 2)
        waiting = calls_in_flight()
        if not waiting:
            return
        logger.error("calls still waiting after the stop: %s; exiting", waiting)
        try:
            operations.files.abandon()
        except Exception:  # noqa: BLE001 - ending anyway; what was kept is logged
            logger.exception("keeping staged data failed")
        if server is not None:
            with contextlib.suppress(Exception):
                server.process.terminate()
                server.process.wait(1.0)
            with contextlib.suppress(Exception):
                server.process.kill()
        with contextlib.suppress(OSError):
            state = read_state(mountpoint)
            if state and state.get("pid") == os.getpid():
                _state_path(mountpoint).unlink()
        logging.shutdown()
        os._exit(0)

    threading.Thread(target=watch, name="orionfs-stop", daemon=True).start()


def _stuck_calls(calls_in_flight: Any) -> list[tuple[str, float]]:
    """The FUSE calls in flight for STUCK_AFTER seconds or more (waiting on the server: local
    work, e.g. a write into the staging file, takes far less), watched for up to STUCK_AFTER."""
    deadline = time.monotonic() + STUCK_AFTER
    while True:
        stuck = [(name, seconds) for name, seconds in calls_in_flight() if seconds >= STUCK_AFTER]
        if stuck or time.monotonic() >= deadline:
            return stuck
        time.sleep(0.05)


def cut_connections(port: int) -> int:
    """Shut down this process's TCP connections to ``port`` (the Orion server's): a request
    waiting on them fails at once. Returns how many were cut."""
    cut = 0
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    for name in fds:
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            dup = os.dup(fd)
        except OSError:
            continue
        try:
            sock = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue
        with sock:
            try:
                if sock.type != socket.SOCK_STREAM or sock.family not in (
                    socket.AF_INET,
                    socket.AF_INET6,
                ):
                    continue
                if sock.getpeername()[1] != port:
                    continue
                sock.shutdown(socket.SHUT_RDWR)
                cut += 1
            except OSError:
                continue
    return cut


def parse_fuse_options(values: Sequence[str]) -> dict[str, Any]:
    """``-o a=b,c`` (repeatable) -> ``{"a": "b", "c": True}``."""
    options: dict[str, Any] = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, val = item.partition("=")
            options[key] = val if sep else True
    return options


def run_foreground(args: argparse.Namespace, mountpoint: str) -> int:
    """Start the local server (``--local``), check credentials, mount, serve until unmounted."""
    if args.debug:
        logging.getLogger("orionfs").setLevel(logging.DEBUG)
        logging.getLogger().setLevel(logging.DEBUG)
    if not os.environ.get("FUSE_LIBRARY_NAME") and not os.environ.get("FUSE_LIBRARY_PATH"):
        if ctypes.util.find_library("fuse3"):
            os.environ["FUSE_LIBRARY_NAME"] = "fuse3"  # 1 MiB reads/writes, config-level options
    server: LocalServer | None = None
    try:
        if args.local:
            server = LocalServer.start(args.local, args.ready_timeout)
            config = server.config
        else:
            config = load_config(args)
        validate(config, args.root, args.timeout)
        try:
            from orionfs.fuse import binding, operations
        except OSError as error:
            raise MountError(f"libfuse cannot be loaded: {error}") from error
        from orionfs.client.session import get_session
        from orionfs.fs.cache import LS_PAGE_SIZE, CachedSession

        session = get_session(
            config=config, request_timeout=args.timeout, retry_timeout=args.retry_deadline
        )
        cache = CachedSession(
            session, root=args.root, ttl=args.cache_ttl, page_size=args.page_size or LS_PAGE_SIZE
        )
        options = operations.MountOptions(
            read_only=args.read_only,
            ttl=args.cache_ttl,
            staging_dir=Path(args.staging_dir) if args.staging_dir else None,
            recovery_dir=Path(args.recovery_dir) if args.recovery_dir else None,
        )
        operations = operations.OrionFS(cache, options)
        _handle_stop_signal(operations, mountpoint, config.url, server)
        write_state(
            mountpoint,
            pid=os.getpid(),
            server_pid=server.process.pid if server else None,
            url=config.url,
            root=args.root,
        )
        logger.warning(
            "mounting %s%s at %s (ttl %gs%s)",
            config.url,
            args.root,
            mountpoint,
            args.cache_ttl,
            ", read-only" if args.read_only else "",
        )
        try:
            binding.run(operations, mountpoint, parse_fuse_options(args.fuse_options))
        except RuntimeError as error:
            raise MountError(f"mounting {mountpoint} failed (libfuse status {error})") from error
        logger.warning("unmounted %s", mountpoint)
        return 0
    except MountError as error:
        return _error(str(error))
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(OSError):
            state = read_state(mountpoint)
            if state and state.get("pid") == os.getpid():
                _state_path(mountpoint).unlink()
