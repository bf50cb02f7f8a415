"""Crash-safe staging: every staged file in a persistent folder of its account, a journal that
says whose data each one is, and the leftovers of mounts that died.

Layout (``STAGING_ROOT``: ``--staging-dir``, else ``$XDG_STATE_HOME/orionfs/staging``)::

    STAGING_ROOT/<account key>/          one per server and user (0700), see ``account_dir``
        mount-<pid>-<random>/            one per mount process (0700)
            lock                         flock'ed while the mount process lives
            journal                      one JSON line per change of a slot's record
            <slot>.data                  a staged file's content (0600), made at its first byte

Each staged file has a *slot* (a number); the journal's last line for a slot is its record
(``JournalRecord``: the mount path and Orion root, the File's id and the version the data was based
on, whether a ``close()`` acknowledged it, whether it has a data file), or ``{"slot": n, "drop":
true}`` once it is stored or discarded. Lines are appended with one ``write`` each (cheap: a
create+close costs no file creation when the file stays empty) and the journal is rewritten with
the live records only when it grows long.

A mount folder whose ``lock`` nobody holds belongs to a mount process that ended (the kernel drops
a dead process's locks, even after ``kill -9``): its live records are *leftovers*, which the next
mount of the account (or ``orionfs recover``) claims and handles (orionfs.fs.leftovers,
orionfs.fs.recovery). A mount that ends cleanly removes its folder (and the account's, if that was
the last), so folders never pile up; one that ends with acknowledged files not uploaded (a stop
while the server stalls) leaves them for the next mount.

Durability: the journal and the data survive the mount process dying (they are in the page cache,
which the kernel writes back); they are not fsync'ed, so a power loss may lose the last seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orionfs.fs.leftovers import LeftoverClaim

logger = logging.getLogger(__name__)

#: Modes of the staging folders and of the files in them (they hold the user's data).
STAGING_DIR_MODE: int = 0o700
STAGING_FILE_MODE: int = 0o600
MOUNT_DIR_PREFIX = "mount-"
NEW_DIR_PREFIX = ".new-"
#: Seconds after which a mount folder left half set up (a crash while mounting) is removed.
STALE_NEW_DIR_AGE: float = 60.0
LOCK_NAME = "lock"
JOURNAL_NAME = "journal"
DATA_SUFFIX = ".data"
#: The journal is rewritten with its live records once it has this many lines more than them.
COMPACT_AFTER: int = 4096


def staging_root(base: str | os.PathLike[str] | None = None) -> Path:
    """``base`` (``--staging-dir``), else ``$XDG_STATE_HOME/orionfs/staging``
    (``~/.local/state/orionfs/staging``)."""
    if base:
        return Path(base)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "orionfs" / "staging"


def account_key(url: str, username: str) -> str:
    """A folder name for one server and user: readable (user and host), and unique (a hash of
    both, so that two URLs of one host or odd characters never share a folder)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "local"
    if parts.port:
        host += f"_{parts.port}"
    digest = hashlib.sha256(f"{url.rstrip('/')}\n{username}".encode()).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{username}@{host}")[:64]
    return f"{readable}-{digest}"


def account_dir(base: str | os.PathLike[str] | None, url: str, username: str) -> Path:
    """The staging folder of one account: ``staging_root(base) / account_key(url, username)``."""
    return staging_root(base) / account_key(url, username)


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """Whose data a staged file is: the mount path and the mount's Orion root (so the Orion
    path), the File's id and the version the data was based on (None for a new file), whether a
    ``close()`` acknowledged it (write-back: then it must reach Orion), and whether it has a data
    file (a file that stayed empty has none)."""

    path: str
    root: str = "/"
    id: int | None = None
    base_ctime_ns: int | None = None
    base_size: int | None = None
    acked: bool = False
    data: bool = False

    @property
    def orion_path(self) -> str:
        """The Orion path the data belongs to (root + mount path)."""
        return self.path if self.root in ("", "/") else self.root.rstrip("/") + self.path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JournalRecord:
        """A record from a journal line; ValueError / TypeError for one that is not."""
        fields = {f.name for f in dataclasses.fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in fields})
        if not isinstance(record.path, str) or not record.path.startswith("/"):
            raise ValueError(f"bad path in a staging record: {record.path!r}")
        return record


class _Journal:
    """The append-only journal of one mount folder (thread-safe)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / JOURNAL_NAME
        self._lock = threading.Lock()
        self._fd = open_append(self.path)
        self._lines = 0

    def append(
        self, slot: int, record: JournalRecord | None, live: dict[int, JournalRecord]
    ) -> None:
        """Record ``slot``'s new record (None: dropped); ``live`` is every live record after
        the change (the journal is rewritten from it when it has grown long)."""
        line = (
            {"slot": slot, "drop": True}
            if record is None
            else {"slot": slot, **dataclasses.asdict(record)}
        )
        with self._lock:
            if self._lines > COMPACT_AFTER + len(live):
                self._compact(live)
            else:
                os.write(self._fd, (json.dumps(line) + "\n").encode())
                self._lines += 1

    def _compact(self, live: dict[int, JournalRecord]) -> None:
        temp = self.path.with_name(JOURNAL_NAME + ".new")
        text = "".join(
            json.dumps({"slot": slot, **dataclasses.asdict(record)}) + "\n"
            for slot, record in live.items()
        )
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, STAGING_FILE_MODE)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.replace(temp, self.path)
        os.close(self._fd)
        self._fd = open_append(self.path)
        self._lines = len(live)

    def close(self) -> None:
        with self._lock, contextlib.suppress(OSError):
            os.close(self._fd)


def open_append(path: Path) -> int:
    """A journal opened for appending (made 0600 where absent)."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, STAGING_FILE_MODE)


def replay(folder: Path) -> dict[int, JournalRecord]:
    """The live records of a mount folder's journal (unreadable lines are skipped: a line cut by
    a power loss)."""
    live: dict[int, JournalRecord] = {}
    try:
        text = (folder / JOURNAL_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return live
    for line in text.splitlines():
        try:
            data = json.loads(line)
            slot = data.pop("slot")
            if not isinstance(slot, int):
                continue
            if data.get("drop"):
                live.pop(slot, None)
            else:
                live[slot] = JournalRecord.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("skipped an unreadable line of %s", folder / JOURNAL_NAME)
    return live


class StagingArea:
    """One mount's staging folder in its account's folder; the mount process holds its lock.

    ``account`` None: a private temp folder (tests, embedded use), removed at ``close``.
    """

    def __init__(self, account: Path | None = None, root: str = "/") -> None:
        self.owned = account is None
        self.account = (
            Path(account) if account is not None else Path(tempfile.mkdtemp(prefix="orionfs-"))
        )
        _private_dir(self.account)
        self.root = root
        self.dir, self._lock_fd = _new_mount_dir(self.account)
        self._journal = _Journal(self.dir)
        self._slots = itertools.count(1)
        self._live: dict[int, JournalRecord] = {}
        self._lock = threading.Lock()

    def new_slot(self) -> int:
        """A slot for a new staged file (nothing is written yet)."""
        return next(self._slots)

    def data_path(self, slot: int) -> Path:
        return self.dir / f"{slot}{DATA_SUFFIX}"

    def create_data(self, slot: int) -> int:
        """Create the slot's empty data file (0600); returns a read-write descriptor."""
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        return os.open(self.data_path(slot), flags, STAGING_FILE_MODE)

    def record(self, slot: int, record: JournalRecord | None) -> None:
        """Journal the slot's record (None: the slot is dropped; its data is nobody's)."""
        with self._lock:
            if record is None:
                if self._live.pop(slot, None) is None:
                    return
            else:
                self._live[slot] = record
            self._journal.append(slot, record, self._live)

    def records(self) -> dict[int, JournalRecord]:
        """This mount's live records (what a crash now would leave)."""
        with self._lock:
            return dict(self._live)

    def claim_leftovers(self) -> LeftoverClaim:
        """Take the folders of the account's mounts that ended (their locks are free) with the
        records in them; the claim holds their locks until ``release``. Empty folders of ended
        mounts of other accounts of the staging root go too (``sweep``)."""
        from orionfs.fs.leftovers import LeftoverClaim, sweep  # they read this module's folders

        if not self.owned:
            sweep(self.account.parent, exclude=self.account)
        return LeftoverClaim.take(self.account, exclude=self.dir)

    def close(self) -> dict[int, JournalRecord]:
        """End of the mount: remove its folder, unless live records are left (acknowledged data
        not uploaded: the next mount uploads it), which are returned. A private temp folder goes
        whole."""
        kept = {} if self.owned else self.records()
        self._journal.close()
        if not kept:
            shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)
        with contextlib.suppress(OSError):
            self.account.rmdir()  # the account's last mount: nothing left of it
        if self.owned:
            shutil.rmtree(self.account, ignore_errors=True)
        return kept


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=STAGING_DIR_MODE)
    os.chmod(path, STAGING_DIR_MODE)


def _new_mount_dir(account: Path) -> tuple[Path, int]:
    """Make a mount folder with its lock held: set up under a name no scanner takes, then renamed
    to ``mount-<pid>-<random>``. Returns (folder, lock descriptor)."""
    try:
        new = Path(tempfile.mkdtemp(prefix=f"{NEW_DIR_PREFIX}{os.getpid()}-", dir=account))
    except FileNotFoundError:  # the account's last mount removed its folder just now
        _private_dir(account)
        new = Path(tempfile.mkdtemp(prefix=f"{NEW_DIR_PREFIX}{os.getpid()}-", dir=account))
    os.chmod(new, STAGING_DIR_MODE)
    fd = os.open(new / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, STAGING_FILE_MODE)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    final = account / (MOUNT_DIR_PREFIX + new.name[len(NEW_DIR_PREFIX) :])
    os.rename(new, final)
    return final, fd
