"""Where mount processes say who they are, and how other processes find them safely.

State folder: ``$XDG_RUNTIME_DIR/orionfs``; without XDG_RUNTIME_DIR (systemd's system services,
mount(8) at boot), ``/run/orionfs`` for root and ``$TMPDIR/orionfs-<uid>/orionfs`` for others
(``/tmp`` without ``TMPDIR``). A folder there is used only if it is a real directory (no symlink),
owned by this user and 0700; otherwise every command refuses it in one line (``StateError``): in a
shared ``/tmp``, another user could plant a folder or a symlink there first. (A folder of ours that
only others could read, 0755 as older versions made it, is tightened to 0700; one that others
could write to is refused.) Files in it are opened with ``O_NOFOLLOW`` and written whole, then
renamed.

Per mount (key: a hash of the mount point):
- ``mount-<key>.json``: written once by the mount process (pid, source, profile, url, root, log,
  metrics address, start time), removed as it ends;
- ``mount-<key>.status.json``: rewritten every few seconds by the mount process (uploads, cache,
  errors; orionfs.daemon.service), read by ``orionfs status``, which never touches the mount itself
  (a hung mount would hang it).

The kernel's own view, ``/proc/self/mountinfo``, says what is mounted where (``mounts``): an orionfs
mount is of type ``fuse.orionfs`` and its source is ``orion:PROFILE:PATH``. Before a process named
in a state file is signalled, ``is_mount_process`` checks in ``/proc/PID/cmdline`` that it is the
orionfs mount process of that mount point (a pid is reused once its process is gone).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orionfs.daemon import MountError

#: The mode of the state folders.
STATE_DIR_MODE: int = 0o700
#: The filesystem type of orionfs mounts in /proc/self/mountinfo (``fuse.`` + subtype).
ORIONFS_FSTYPE: str = "fuse.orionfs"
MOUNTINFO: str = "/proc/self/mountinfo"
_STATE_SUFFIX = ".json"
_STATUS_SUFFIX = ".status.json"


class StateError(MountError):
    """The state folder cannot be trusted (not ours, not 0700, a symlink): one line."""


#: Root's state folder.
ROOT_STATE_DIR = Path("/run/orionfs")


def state_folders() -> list[Path]:
    """The folders from the top one of ours down to the state folder (each checked)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return [Path(runtime) / "orionfs"]
    if os.geteuid() == 0 and ROOT_STATE_DIR.parent.is_dir():
        return [ROOT_STATE_DIR]
    own = Path(tempfile.gettempdir()) / f"orionfs-{os.geteuid()}"  # in a shared /tmp
    return [own, own / "orionfs"]


def state_dir(create: bool = True) -> Path | None:
    """The state folder, checked (and made, 0700, where ``create``); None if it does not exist
    and ``create`` is False. StateError if it, or the ``orionfs-<uid>`` folder above it, is a
    symlink, not a directory, not ours, or open to others."""
    folders = state_folders()
    for folder in folders:
        if not _private_dir(folder, create):
            return None
    return folders[-1]


def _private_dir(folder: Path, create: bool) -> bool:
    """Check (or make) one private folder; False if it is absent and not made."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        if not create:
            return False
        try:
            os.mkdir(folder, STATE_DIR_MODE)
        except FileExistsError:
            pass  # made meanwhile: checked below like any other
        except OSError as error:
            raise StateError(f"cannot make the state folder {folder}: {error.strerror}") from error
        info = os.lstat(folder)
    if _tightenable(info):
        os.chmod(folder, STATE_DIR_MODE, follow_symlinks=False)
        info = os.lstat(folder)
    problem = _private_dir_problem(info)
    if problem:
        raise StateError(
            f"refusing the state folder {folder}: {problem} (it must be a directory of yours, "
            "mode 0700; remove it, or set XDG_RUNTIME_DIR)"
        )
    return True


def _tightenable(info: os.stat_result) -> bool:
    """A directory of ours that others may read but not change (nothing can have been planted)."""
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and stat.S_IMODE(info.st_mode) & 0o022 == 0
        and stat.S_IMODE(info.st_mode) != STATE_DIR_MODE
    )


def _private_dir_problem(info: os.stat_result) -> str | None:
    if stat.S_ISLNK(info.st_mode):
        return "it is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    if info.st_uid != os.geteuid():
        return f"it belongs to uid {info.st_uid}"
    mode = stat.S_IMODE(info.st_mode)
    if mode != STATE_DIR_MODE:
        return f"its mode is {mode:04o}"
    return None


def mount_key(mountpoint: str) -> str:
    """The state files' key of a mount point."""
    return hashlib.sha1(mountpoint.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def state_path(mountpoint: str, create: bool = True) -> Path | None:
    """``mount-<key>.json`` of a mount point in the checked state folder (None: no folder)."""
    folder = state_dir(create)
    return None if folder is None else folder / f"mount-{mount_key(mountpoint)}{_STATE_SUFFIX}"


def status_path(mountpoint: str, create: bool = True) -> Path | None:
    """``mount-<key>.status.json`` of a mount point (None: no state folder)."""
    folder = state_dir(create)
    return None if folder is None else folder / f"mount-{mount_key(mountpoint)}{_STATUS_SUFFIX}"


# -- files ---------------------------------------------------------------------------------------


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` whole: a new 0600 file (O_EXCL, O_NOFOLLOW), then renamed."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(data), handle)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path`` (None if absent, unreadable, not ours, not a regular file, or
    a symlink: O_NOFOLLOW)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return None
        try:
            data = json.loads(handle.read())
        except (OSError, ValueError):
            return None
    return data if isinstance(data, dict) else None


def remove(path: Path | None) -> None:
    """Remove a state file if it is there."""
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


def all_states() -> list[dict[str, Any]]:
    """Every mount's state (``mount-*.json``), each with its ``status`` (or None) merged in;
    empty where there is no state folder."""
    folder = state_dir(create=False)
    if folder is None:
        return []
    states = []
    for path in sorted(folder.glob(f"mount-*{_STATE_SUFFIX}")):
        if path.name.endswith(_STATUS_SUFFIX):
            continue
        state = read_json(path)
        if state and isinstance(state.get("mountpoint"), str):
            status = read_json(path.with_name(path.name[: -len(_STATE_SUFFIX)] + _STATUS_SUFFIX))
            states.append({**state, "status": status})
    return states


# -- the kernel's view ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One line of /proc/self/mountinfo."""

    mountpoint: str
    fstype: str
    source: str
    options: str

    @property
    def is_orionfs(self) -> bool:
        """Whether orionfs made this mount (``fuse.orionfs``).

        >>> MountEntry("/m", "fuse.orionfs", "orion:p:/", "rw,user_id=1000").is_orionfs
        True
        """
        return self.fstype == ORIONFS_FSTYPE

    @property
    def user_id(self) -> int | None:
        """The uid that made a FUSE mount (its ``user_id=`` option), if shown."""
        for option in self.options.split(","):
            key, _, value = option.partition("=")
            if key == "user_id" and value.isdigit():
                return int(value)
        return None


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    if "\\" not in field:
        return field
    out = bytearray()
    raw = field.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and i + 4 <= len(raw) and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def mounts(mountinfo: str = MOUNTINFO) -> list[MountEntry]:
    """Every mount this process sees, in mount order."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
            entries.append(
                MountEntry(
                    mountpoint=_unescape(fields[4]),
                    fstype=fields[sep + 1],
                    source=_unescape(fields[sep + 2]),
                    options=fields[sep + 3] if len(fields) > sep + 3 else "",
                )
            )
        except (ValueError, IndexError):
            continue
    return entries


def mount_at(mountpoint: str, mountinfo: str = MOUNTINFO) -> MountEntry | None:
    """The mount on top at ``mountpoint`` (the last one mounted there), if any. Works for a dead
    FUSE mount too, where ``os.path.ismount`` says False (stat fails with ENOTCONN)."""
    wanted = {mountpoint, os.path.realpath(mountpoint)}
    found = None
    for entry in mounts(mountinfo):
        if entry.mountpoint in wanted:
            found = entry
    return found


def is_dead_mount(mountpoint: str) -> bool:
    """Whether the mount at ``mountpoint`` no longer answers (its process is gone: ENOTCONN)."""
    try:
        os.stat(mountpoint)
    except OSError as error:
        return error.errno == errno.ENOTCONN
    return False


# -- processes -----------------------------------------------------------------------------------


def process_argv(pid: int) -> list[str] | None:
    """The command line of process ``pid`` (None if gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0") if part]


def is_mount_process(pid: int, mountpoint: str) -> bool:
    """Whether ``pid`` is an orionfs mount process (``orionfs ... mount --foreground``) of
    ``mountpoint``: what a state file claims is checked before a signal is sent."""
    if pid <= 0:
        return False
    argv = process_argv(pid)
    if not argv:
        return False
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = "/"
    is_orionfs = any(
        arg == "orionfs.cli" or os.path.basename(arg) in ("orionfs", "mount.orionfs")
        for arg in argv[:4]
    )
    paths = {os.path.normpath(os.path.join(cwd, arg)) for arg in argv if not arg.startswith("-")}
    return is_orionfs and "mount" in argv and "--foreground" in argv and mountpoint in paths


def iter_orionfs_mounts(all_users: bool | None = None) -> Iterator[MountEntry]:
    """The orionfs mounts this process sees: this user's (root: everyone's, unless
    ``all_users`` is False)."""
    everyone = os.geteuid() == 0 if all_users is None else all_users
    uid = os.geteuid()
    return (
        entry
        for entry in mounts()
        if entry.is_orionfs and (everyone or entry.user_id in (None, uid))
    )
