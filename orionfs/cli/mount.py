"""``orionfs mount`` and ``orionfs unmount``.

``orionfs mount MOUNTPOINT`` checks everything it can first (option values, mount point,
``/dev/fuse``, libfuse, the profile, the credentials with one request, the root folder), then starts
the mount process detached (``orionfs mount --foreground`` with the same options) and returns once
the mount is ready. ``--local DATA_DIR`` starts ``orionfs serve`` on a free loopback port in the
mount process and stops it when the mount ends. The work is done in orionfs.daemon.

Every failure is one line on stderr, ``orionfs: error: ...``, and exit status 1.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orionfs.cli.cache import format_size, parse_size
from orionfs.client.config import CONFIG_DIR_ENV
from orionfs.client.wire import PAGE_LIMIT_MAX
from orionfs.daemon import MountError
from orionfs.daemon.checks import check_fuse, check_mountpoint, load_config, validate
from orionfs.daemon.options import (
    parse_duration,
    parse_gid,
    parse_mode,
    parse_uid,
    split_option_list,
)
from orionfs.daemon.process import (
    default_log_file,
    forget_state,
    process_alive,
    read_state,
    spawn_daemon,
    stop_mount_process,
    unmount,
    wait_for_uploads,
)
from orionfs.daemon.run import run_foreground
from orionfs.daemon.service import DEFAULT_STOP_TIMEOUT
from orionfs.daemon.state import is_dead_mount, is_mount_process, mount_at
from orionfs.fs.budget import DEFAULT_READ_AHEAD_MEMORY

#: Default seconds the kernel and the cache keep metadata.
DEFAULT_CACHE_TTL: float = 5.0
#: Seconds one request may wait for the server before the operation fails (EIO/ETIMEDOUT).
DEFAULT_MOUNT_REQUEST_TIMEOUT: float = 30.0
#: Seconds after a request's first failure during which retries may happen (bounds every call).
DEFAULT_MOUNT_RETRY_DEADLINE: float = 60.0
#: Seconds ``orionfs mount`` waits for the mount (and ``--local`` for its server) to be ready.
DEFAULT_READY_TIMEOUT: float = 30.0
#: Smallest values of the size options.
MIN_CACHE_SIZE: int = 1 << 20
MIN_READ_AHEAD_MEMORY: int = 8 << 20


def register(subparsers: Any) -> None:
    """Add ``mount`` and ``unmount`` to the ``orionfs`` command."""
    mount = subparsers.add_parser(
        "mount",
        help="mount Orion folders as a local directory",
        description="Mount Orion folders (default: the whole namespace) at MOUNTPOINT.",
    )
    add_mount_arguments(mount)
    mount.set_defaults(func=cmd_mount)

    unmount_parser = subparsers.add_parser("unmount", help="unmount an orionfs mount")
    unmount_parser.add_argument("mountpoint", metavar="MOUNTPOINT")
    unmount_parser.add_argument(
        "--lazy",
        action="store_true",
        help="detach now even if busy (umount -l), and do not wait for write-back uploads "
        "(they go on; what is left when the process ends, the next mount uploads)",
    )
    unmount_parser.set_defaults(func=cmd_unmount)


def _absolute_path(text: str) -> str:
    """A path option's value, made absolute where it is given (the mount process runs elsewhere)."""
    return os.path.abspath(text) if text else text


def add_mount_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Add the arguments of ``orionfs mount`` to ``parser``; returns them, so that ``child_argv``
    can write parsed values back as a command line. Every one of them is also an ``-o`` option
    (``apply_option_list``), and every time option takes units (``5s``, ``2m``, ``1h``)."""
    actions = [
        parser.add_argument(
            "mountpoint",
            metavar="MOUNTPOINT",
            type=_absolute_path,
            help="an existing empty directory",
        ),
        parser.add_argument(
            "--profile", help="profile name (default: $ORION_PROFILE, else 'default')"
        ),
        parser.add_argument(
            "--root", default="/", help="Orion folder shown at the mount point (default /)"
        ),
        parser.add_argument(
            "--read-only", action="store_true", help="refuse every write with EROFS"
        ),
        parser.add_argument(
            "--cache-ttl",
            type=float,
            default=DEFAULT_CACHE_TTL,
            metavar="SECONDS",
            help=f"how long listings and attributes are trusted (default {DEFAULT_CACHE_TTL:g})",
        ),
        parser.add_argument(
            "--page-size",
            type=int,
            default=None,
            metavar="N",
            help="entries per listing request (default: the server's maximum, 1000)",
        ),
        parser.add_argument("--foreground", action="store_true", help="stay in the foreground"),
        parser.add_argument(
            "--debug", action="store_true", help="debug logging (implies no secrets)"
        ),
        parser.add_argument(
            "-o",
            dest="fuse_options",
            action="append",
            default=[],
            metavar="OPTIONS",
            help="FUSE mount options, comma separated (e.g. allow_other)",
        ),
        parser.add_argument(
            "--local",
            metavar="DATA_DIR",
            type=_absolute_path,
            help="start the local Orion server on DATA_DIR (sample data on first start) and mount it",
        ),
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_MOUNT_REQUEST_TIMEOUT,
            metavar="SECONDS",
            help=f"request timeout (default {DEFAULT_MOUNT_REQUEST_TIMEOUT:g})",
        ),
        parser.add_argument(
            "--retry-deadline",
            type=float,
            default=DEFAULT_MOUNT_RETRY_DEADLINE,
            metavar="SECONDS",
            help="retries stop this long after a request first fails "
            f"(default {DEFAULT_MOUNT_RETRY_DEADLINE:g})",
        ),
        parser.add_argument(
            "--log-file",
            metavar="PATH",
            type=_absolute_path,
            help="the daemon's log (default: under ~/.cache)",
        ),
        parser.add_argument(
            "--recovery-dir",
            metavar="DIR",
            type=_absolute_path,
            help="where data whose upload failed is kept",
        ),
        parser.add_argument(
            "--staging-dir",
            metavar="DIR",
            type=_absolute_path,
            help="where writes are staged, one folder per server and user "
            "(default $XDG_STATE_HOME/orionfs/staging)",
        ),
        parser.add_argument(
            "--write-back",
            type=float,
            default=None,
            metavar="DELAY",
            help="close() returns once the file is staged; it is uploaded DELAY seconds after "
            "its last close, in the background (default: close() waits for the upload)",
        ),
        parser.add_argument(
            "--cache-mode",
            choices=("full", "off"),
            default="full",
            help="full: keep file content in the data cache on disk, across remounts (default); "
            "off: every open reads from the server",
        ),
        parser.add_argument(
            "--cache-max-size",
            type=parse_size,
            default=None,
            metavar="SIZE",
            help="most the data cache keeps, e.g. 10G (default: a tenth of the free disk, "
            "256M to 10G); least recently used data goes first",
        ),
        parser.add_argument(
            "--cache-dir",
            metavar="DIR",
            type=_absolute_path,
            help="where the data cache lives (default $XDG_CACHE_HOME/orionfs/data, "
            "one folder per server and user)",
        ),
        parser.add_argument(
            "--read-ahead-memory",
            type=parse_size,
            default=DEFAULT_READ_AHEAD_MEMORY,
            metavar="SIZE",
            help="memory all open files may use to read ahead, together "
            f"(default {format_size(DEFAULT_READ_AHEAD_MEMORY)})",
        ),
        parser.add_argument(
            "--ready-timeout",
            type=float,
            default=DEFAULT_READY_TIMEOUT,
            metavar="SECONDS",
            help=argparse.SUPPRESS,
        ),
    ]
    actions += add_system_arguments(parser)
    for action in actions:
        if action.dest in DURATION_OPTIONS:
            action.type = parse_duration
            action.metavar = "DURATION"
    return actions


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
    delay = getattr(args, "write_back", None)
    if delay is not None and (not math.isfinite(delay) or delay < 0):
        raise MountError(f"--write-back must be a number of seconds >= 0, not {delay:g}")
    max_size = getattr(args, "cache_max_size", None)
    if max_size is not None and max_size < MIN_CACHE_SIZE:
        raise MountError(f"--cache-max-size must be at least 1M, not {max_size} bytes")
    memory = getattr(args, "read_ahead_memory", DEFAULT_READ_AHEAD_MEMORY)
    if memory < MIN_READ_AHEAD_MEMORY:
        raise MountError(f"--read-ahead-memory must be at least 8M, not {memory} bytes")
    page = getattr(args, "page_size", None)
    if page is not None and not 1 <= page <= PAGE_LIMIT_MAX:
        raise MountError(f"--page-size must be between 1 and {PAGE_LIMIT_MAX}, not {page}")


def cmd_mount(args: argparse.Namespace) -> int:
    """``orionfs mount``: returns the exit status."""
    try:
        apply_option_list(args)
        check_options(args)
        check_system_options(args)
        mountpoint = check_mountpoint(args.mountpoint, args.allow_non_empty)
        check_fuse()
        if args.foreground:
            return run_foreground(args, mountpoint)
        if not args.local:
            validate(load_config(args.profile), args.root, args.timeout)
        log_file = Path(args.log_file) if args.log_file else default_log_file(mountpoint)
        pid = spawn_daemon(child_argv(args), mountpoint, log_file, args.ready_timeout)
    except MountError as error:
        return _error(str(error))
    print(f"mounted at {mountpoint} (pid {pid}, log {log_file})")
    return 0


def cmd_unmount(args: argparse.Namespace) -> int:
    """``orionfs unmount``: unmount and wait for the mount process (and its local server) to end.

    Only orionfs mounts (``fuse.orionfs`` in /proc/self/mountinfo); anything else is refused in one
    line. A dead orionfs mount (its process gone: kill -9, a crash) is cleared."""
    mountpoint = os.path.abspath(args.mountpoint)
    entry = mount_at(mountpoint)
    if entry is None:
        return _error(f"{mountpoint} is not mounted")
    if not entry.is_orionfs:
        return _error(
            f"{mountpoint} is not an orionfs mount ({entry.fstype} from {entry.source}): "
            "not unmounting it"
        )
    try:
        state = read_state(mountpoint)  # before: the mount process removes it as it ends
    except MountError as error:
        return _error(str(error))
    pid = int(state.get("pid", 0)) if state else 0
    alive = pid > 0 and process_alive(pid) and is_mount_process(pid, mountpoint)
    dead = is_dead_mount(mountpoint) or (state is not None and not alive)
    try:
        unmount(mountpoint, lazy=args.lazy)
    except MountError as error:
        if not dead:
            return _error(str(error))
        try:
            unmount(mountpoint, lazy=True)
        except MountError as again:
            return _error(str(again))
    if dead:
        if state:
            forget_state(mountpoint, pid=pid)
        print(f"cleared the dead mount at {mountpoint} (its process was gone)", file=sys.stderr)
        return 0
    if state:
        if state.get("write_back") is not None and not args.lazy:
            # Write-back: the mount process uploads what is queued before it ends.
            wait_for_uploads(mountpoint, pid, sys.stderr.isatty())
        stop_mount_process(pid, mountpoint)
    return 0


def child_argv(args: argparse.Namespace) -> list[str]:
    """The command line of the detached mount process: ``orionfs mount --foreground`` with every
    mount option of ``args`` (paths are absolute since parsing), logging at least at INFO."""
    verbose = ["-v"] * max(1, min(int(getattr(args, "verbose", 0) or 0), 2))
    actions = add_mount_arguments(argparse.ArgumentParser(add_help=False))
    values = argparse.Namespace(**{**vars(args), "foreground": True})
    return [sys.executable, "-m", "orionfs.cli", *verbose, "mount", *option_argv(actions, values)]


def option_argv(actions: Sequence[argparse.Action], values: argparse.Namespace) -> list[str]:
    """Arguments that ``actions`` parse back into ``values`` (an option at its default is left out).

    Values are written ``--option=value`` (``-o=value``), so that one starting with ``-`` stays a
    value; floats with ``repr``, which parses back to the same float.
    """
    argv: list[str] = []
    for action in actions:
        value = getattr(values, action.dest)
        if not action.option_strings:
            argv.append(_text(value))
            continue
        if value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:  # a switch (store_true)
            argv.append(flag)
            continue
        for item in value if isinstance(value, list) else [value]:
            argv.append(f"{flag}={_text(item)}")
    return argv


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


# -- the system side: fstab and mount(8), systemd, ownership and modes, monitoring --------------------

#: Options whose value is a duration (``5s``, ``2m``, ``1h``; a bare number is seconds).
DURATION_OPTIONS: frozenset[str] = frozenset(
    {"cache_ttl", "timeout", "retry_deadline", "ready_timeout", "write_back", "stop_timeout"}
)
#: Levels of ``--log-level``.
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")


class Mode(int):
    """A mode that a command line writes back in octal (``child_argv``)."""

    def __str__(self) -> str:
        return f"0{int(self):o}"


def _mode(text: str) -> Mode:
    return Mode(parse_mode(text))


def add_system_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options of ``orionfs mount`` for system use: access for other users, ownership and
    modes, logging, systemd's stop, metrics, the profiles folder."""
    return [
        parser.add_argument(
            "--allow-other",
            action="store_true",
            help="let other local users in (needs user_allow_other in /etc/fuse.conf unless "
            "root); the kernel then enforces the modes (default_permissions is always on)",
        ),
        parser.add_argument(
            "--allow-non-empty",
            action="store_true",
            help="mount over a folder that is not empty (what it holds is hidden meanwhile)",
        ),
        parser.add_argument(
            "--uid", type=parse_uid, default=None, metavar="USER", help="owner shown (default: you)"
        ),
        parser.add_argument(
            "--gid",
            type=parse_gid,
            default=None,
            metavar="GROUP",
            help="group shown (default: yours)",
        ),  # fmt: skip
        parser.add_argument(
            "--umask",
            type=_mode,
            default=None,
            metavar="MASK",
            help="modes of files 0666 and folders 0777 less MASK, e.g. 027 (files are never "
            "executable); default 0644/0755",
        ),
        parser.add_argument(
            "--file-mode",
            type=_mode,
            default=None,
            metavar="MODE",
            help="mode of writable files, e.g. 0640 (read-only kinds lose the write bits)",
        ),  # fmt: skip
        parser.add_argument(
            "--dir-mode",
            type=_mode,
            default=None,
            metavar="MODE",
            help="mode of writable folders, e.g. 0750",
        ),  # fmt: skip
        parser.add_argument(
            "--log-level",
            choices=LOG_LEVELS,
            default=None,
            help="how much the mount process logs (default info; --debug is debug)",
        ),
        parser.add_argument(
            "--metrics",
            metavar="ADDR",
            default=None,
            help="serve Prometheus metrics on ADDR: PORT (127.0.0.1), HOST:PORT or [IPV6]:PORT",
        ),
        parser.add_argument(
            "--stop-timeout",
            type=parse_duration,
            default=DEFAULT_STOP_TIMEOUT,
            metavar="DURATION",
            help="on SIGTERM/SIGINT, how long pending uploads may take before the mount stops "
            f"anyway, keeping their data (default {DEFAULT_STOP_TIMEOUT:g}s)",
        ),
        parser.add_argument(
            "--config-dir",
            metavar="DIR",
            type=_absolute_path,
            default=None,
            help="the folder of profiles.ini (default $ORIONFS_CONFIG_DIR, else ~/.config/orionfs)",
        ),
    ]


def apply_option_list(args: argparse.Namespace) -> None:
    """Move the ``-o`` items that name ``orionfs mount`` options (``cache_ttl=5m``, ``ro``,
    ``uid=1000``, ``config_dir=/etc/orionfs``, ...) onto ``args``; mount(8)'s and systemd's own
    words (``noauto``, ``_netdev``, ``user``, ``x-systemd.*``) are dropped; the rest stays in
    ``args.fuse_options`` for libfuse. MountError (one line) for a bad value."""
    actions = {a.dest: a for a in add_mount_arguments(argparse.ArgumentParser(add_help=False))}
    sorted_out = split_option_list(args.fuse_options, actions)
    for name, value in sorted_out.settings.items():
        action = actions[name]
        if action.nargs == 0:  # a switch
            setattr(args, name, value is True or str(value).lower() in ("1", "true", "yes", "on"))
            continue
        if value is True:
            raise MountError(f"-o {name} needs a value ({name}=...)")
        try:
            converted = action.type(value) if callable(action.type) else value
        except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
            raise MountError(f"-o {name}={value}: {error}") from error
        if action.choices is not None and converted not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise MountError(f"-o {name}={value}: choose from {choices}")
        setattr(args, name, converted)
    args.fuse_options = sorted_out.fuse


def check_system_options(args: argparse.Namespace) -> None:
    """The system options' values (MountError, one line); ``--config-dir`` takes effect here, for
    this process and the ones it starts (the mount process, the local server)."""
    if args.stop_timeout < 0:
        raise MountError(f"--stop-timeout must be >= 0, not {args.stop_timeout:g}")
    if args.metrics:
        from orionfs.daemon.metrics import parse_address

        parse_address(args.metrics)
    if args.config_dir:
        os.environ[CONFIG_DIR_ENV] = args.config_dir
