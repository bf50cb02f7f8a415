"""What mounts that died left in a staging root (orionfs.fs.journal): finding, claiming and
sweeping their folders.

A mount folder whose ``lock`` nobody holds belongs to a mount process that ended; its live journal
records are *leftovers*. ``LeftoverClaim`` takes such folders of one account (their locks, so that
two processes never handle the same files) for orionfs.fs.recovery, and removes them once handled;
``list_leftovers`` only looks; ``sweep`` removes folders of ended mounts that left nothing, in
every account of a staging root, and the account folders left empty.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orionfs.fs.journal import (
    DATA_SUFFIX,
    JOURNAL_NAME,
    LOCK_NAME,
    MOUNT_DIR_PREFIX,
    NEW_DIR_PREFIX,
    STAGING_FILE_MODE,
    STALE_NEW_DIR_AGE,
    JournalRecord,
    open_append,
    replay,
)

__all__ = ["Leftover", "LeftoverClaim", "list_leftovers", "sweep"]


@dataclass(frozen=True, slots=True)
class Leftover:
    """A staged file of a mount that died: its record, and its data file (absent: empty)."""

    record: JournalRecord
    data: Path
    slot: int = 0

    @property
    def size(self) -> int:
        if not self.record.data:
            return 0
        try:
            return self.data.stat().st_size
        except OSError:
            return 0

    def open(self) -> Any:
        """Its content, as a binary file object (an empty one for a file without data)."""
        if not self.record.data:
            return open(os.devnull, "rb")
        return open(self.data, "rb")


def _leftovers_in(folder: Path) -> list[Leftover]:
    """The live records of a dead mount's folder, with their data; a record whose data file is
    gone (handled already) is skipped, and data files without a record (garbage) are removed."""
    live = replay(folder)
    found = []
    for slot, record in sorted(live.items()):
        data = folder / f"{slot}{DATA_SUFFIX}"
        if record.data and not data.exists():
            continue
        found.append(Leftover(record, data, slot))
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            stem = name[: -len(DATA_SUFFIX)]
            if name.endswith(DATA_SUFFIX) and not (stem.isdigit() and int(stem) in live):
                with contextlib.suppress(OSError):
                    (folder / name).unlink()
    return found


class LeftoverClaim:
    """Mount folders of an account whose mount process ended, locked by this process."""

    def __init__(self, folders: list[tuple[Path, int]], account: Path | None = None) -> None:
        self._folders = folders
        self._account = account
        self.leftovers: list[Leftover] = [
            leftover for folder, _ in folders for leftover in _leftovers_in(folder)
        ]

    @classmethod
    def take(cls, account: Path, exclude: Path | None = None) -> LeftoverClaim:
        """Lock every dead mount folder of ``account`` (live mounts hold their locks)."""
        folders = []
        for folder in _mount_dirs(account):
            if folder == exclude:
                continue
            fd = _try_lock(folder)
            if fd is not None:
                folders.append((folder, fd))
        return cls(folders, account)

    @property
    def folders(self) -> list[Path]:
        return [folder for folder, _ in self._folders]

    @staticmethod
    def forget(leftover: Leftover) -> None:
        """A leftover is handled: its data goes and its slot is dropped in its journal."""
        folder = leftover.data.parent
        with contextlib.suppress(OSError):
            leftover.data.unlink()
        with contextlib.suppress(OSError):
            fd = open_append(folder / JOURNAL_NAME)
            try:
                os.write(fd, (json.dumps({"slot": leftover.slot, "drop": True}) + "\n").encode())
            finally:
                os.close(fd)

    def release(self) -> None:
        """Remove the claimed folders left with nothing to handle, and let go of the locks
        (what is left stays for a later mount)."""
        for folder, fd in self._folders:
            if not _leftovers_in(folder):
                shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._folders = []
        if self._account is not None:
            with contextlib.suppress(OSError):
                self._account.rmdir()  # nothing of the account left (``orionfs recover``)


def _mount_dirs(account: Path) -> list[Path]:
    """The mount folders of an account; half set-up ones older than STALE_NEW_DIR_AGE go."""
    try:
        entries = list(os.scandir(account))
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        if entry.name.startswith(MOUNT_DIR_PREFIX):
            found.append(Path(entry.path))
        elif entry.name.startswith(NEW_DIR_PREFIX):
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime > STALE_NEW_DIR_AGE:
                    shutil.rmtree(entry.path, ignore_errors=True)
    return sorted(found)


def _try_lock(folder: Path, create: bool = True) -> int | None:
    """The folder's lock, taken (a descriptor), or None if a live process holds it (or, with
    ``create`` False, if there is no lock file: not a mount folder)."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(folder / LOCK_NAME, flags, STAGING_FILE_MODE)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


#: An account folder's name (``account_key``): only such folders of a staging root are swept.
_ACCOUNT_NAME = re.compile(r".+-[0-9a-f]{12}")


def sweep(root: Path, exclude: Path | None = None) -> int:
    """Remove, in every account folder of the staging root ``root`` (but ``exclude``), the
    folders of mounts that ended with nothing staged, then account folders left empty: a test
    server on a new port is a new account each time, and its folders must not pile up. Folders
    with staged files stay (their account's next mount, or ``orionfs recover``, handles them).
    Returns how many folders went."""
    removed = 0
    try:
        accounts = [p for p in root.iterdir() if p.is_dir() and _ACCOUNT_NAME.fullmatch(p.name)]
    except OSError:
        return 0
    for account in accounts:
        if account == exclude:
            continue
        for folder in _mount_dirs(account):
            fd = _try_lock(folder, create=False)
            if fd is None:
                continue
            try:
                if not _leftovers_in(folder):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            finally:
                os.close(fd)
        with contextlib.suppress(OSError):
            account.rmdir()
    return removed


def list_leftovers(account: Path) -> list[Leftover]:
    """What mounts of this account that died left staged (not claimed: nothing changes), for
    ``orionfs recover --list`` and status displays: what the next mount will handle."""
    found = []
    for folder in _mount_dirs(account):
        fd = _try_lock(folder)
        if fd is None:
            continue  # a live mount
        try:
            live = replay(folder)
            found.extend(
                Leftover(record, folder / f"{slot}{DATA_SUFFIX}", slot)
                for slot, record in sorted(live.items())
                if not record.data or (folder / f"{slot}{DATA_SUFFIX}").exists()
            )
        finally:
            os.close(fd)
    return found
