"""Modification times the server would not keep, kept by the mount instead (persistent).

Orion's documented API has no settable modification time; the local server takes ``mtime`` (an
inferred field, docs/wire.md). Where a server refuses it, ``touch``, ``cp -p``, ``tar x`` and
``rsync -a`` must still see the time they set, or ``rsync -a`` copies everything again each run.
``LocalTimes`` remembers such a time per item and version (the server's change time): the mount
shows it for as long as the item keeps that version, in this mount and after a remount on this
machine. Other machines and other Orion clients see the server's time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from orionfs.fs.entry import Entry

logger = logging.getLogger(__name__)


def local_times_file(url: str, username: str) -> Path:
    """Where the times of one server and user are kept: ``$XDG_DATA_HOME/orionfs/mtimes/``."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    digest = hashlib.sha256(f"{url.rstrip('/')}\0{username}".encode()).hexdigest()[:16]
    return base / "orionfs" / "mtimes" / f"{digest}.json"


#: Items remembered at most (the oldest are forgotten first).
MAX_ITEMS: int = 100_000


class LocalTimes:
    """Kept modification times by item, in one JSON file (0600) written on each change."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._times: dict[str, tuple[int, int]] = {}  # "kind:id" -> (version ctime, mtime)
        if path is not None:
            try:
                loaded = json.loads(path.read_text())
                self._times = {k: (int(v[0]), int(v[1])) for k, v in loaded.items()}
            except (OSError, ValueError, TypeError, IndexError, AttributeError):
                self._times = {}

    @staticmethod
    def _key(entry: Entry) -> str:
        return f"{entry.kind}:{entry.id}"

    def keep(self, entry: Entry, mtime_ns: int) -> Entry:
        """Remember ``mtime_ns`` for ``entry``'s current version; returns the entry showing it."""
        with self._lock:
            self._times[self._key(entry)] = (entry.ctime_ns, mtime_ns)
            while len(self._times) > MAX_ITEMS:
                self._times.pop(next(iter(self._times)))
            self._save()
        return dataclasses.replace(entry, mtime_ns=mtime_ns)

    def apply(self, entry: Entry) -> Entry:
        """``entry`` with the time kept for it, if its version is still the one it was kept for."""
        if not self._times or entry.id is None:
            return entry
        kept = self._times.get(self._key(entry))
        if kept is None or kept[0] != entry.ctime_ns:
            return entry
        return dataclasses.replace(entry, mtime_ns=kept[1])

    def _save(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_name(self._path.name + ".tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(self._times, out)
            os.replace(tmp, self._path)
        except OSError as error:
            logger.warning("cannot keep modification times in %s: %s", self._path, error)
