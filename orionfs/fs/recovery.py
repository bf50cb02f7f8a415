"""Leftovers of a mount that died (orionfs.fs.journal): acknowledged data is uploaded, the rest
goes to the recovery folder under its Orion path. Used by the next mount of the account (in the
background) and by ``orionfs recover``.

An acknowledged file is uploaded only where that loses nothing (never over a change made since):
- a new file: created if its path is free; if a file there already has the same content (the
  upload had gone through before the crash), nothing more is sent;
- a File that existed: its content is replaced (same id) if the File is still at the version the
  data was based on, or already holds the same content;
- anything else (the path taken by other content, the File changed, moved or deleted meanwhile), or
  an upload that fails: the data goes to the recovery folder, and the log says where.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from orionfs.fs.entry import Entry
from orionfs.fs.leftovers import Leftover, LeftoverClaim
from orionfs.fs.staged import RECOVERY_DIR_MODE, RECOVERY_FILE_MODE

logger = logging.getLogger(__name__)

#: Bytes compared per read when checking whether Orion already holds a leftover's content.
COMPARE_CHUNK: int = 8 << 20

#: What happened to one leftover.
UPLOADED, ALREADY_STORED, KEPT = "uploaded", "already stored", "kept"


class RecoveryStore(Protocol):
    """What recovery needs of the cache (``orionfs.fs.cache.CachedSession``) of a root."""

    def find(self, path: str) -> Entry | None: ...

    def read(self, entry: Entry, offset: int, length: int) -> bytes: ...

    def create_file(self, path: str, fileobj: BinaryIO, size: int) -> Entry: ...

    def replace_content(self, path: str, fileobj: BinaryIO, size: int) -> Entry: ...


#: The store for an Orion root (None: none here; the leftover waits for another mount).
StoreFor = Callable[[str], RecoveryStore | None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One leftover handled: its Orion path, what happened, why or where it went, and whether a
    ``close()`` had acknowledged it (an acknowledged file kept is a failure; an unsaved one is
    where it belongs)."""

    orion_path: str
    result: str
    detail: str = ""
    acked: bool = False

    @property
    def failed(self) -> bool:
        return self.acked and self.result == KEPT


@dataclass
class RecoveryReport:
    """What ``recover`` did, one Outcome per leftover (``waiting``: no store for its root)."""

    outcomes: list[Outcome] = field(default_factory=list)
    waiting: int = 0

    def count(self, result: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.result == result)

    @property
    def failed(self) -> int:
        """Acknowledged files that could not be uploaded (kept in the recovery folder)."""
        return sum(1 for outcome in self.outcomes if outcome.failed)

    def summary(self) -> str:
        return (
            f"{self.count(UPLOADED)} uploaded, {self.count(ALREADY_STORED)} already stored, "
            f"{self.count(KEPT)} kept in the recovery folder"
            + (f", {self.waiting} left for a mount of their root" if self.waiting else "")
        )


def recover(
    claim: LeftoverClaim,
    store_for: StoreFor,
    recovery_dir: Path,
    on_done: Callable[[Outcome], None] | None = None,
) -> RecoveryReport:
    """Handle every leftover of ``claim`` (one at a time), then release it. Never raises for one
    file: a failure keeps the data in the recovery folder (logged)."""
    report = RecoveryReport()
    try:
        for leftover in claim.leftovers:
            record = leftover.record
            store = store_for(record.root) if record.acked else None
            if record.acked and store is None:
                report.waiting += 1
                continue
            try:
                outcome = _handle(leftover, store, recovery_dir)
            except OSError as error:  # the data cannot even be kept: leave it where it is
                logger.error("cannot recover %s (%s): left in %s", record.orion_path, error,
                             leftover.data)  # fmt: skip
                continue
            claim.forget(leftover)
            report.outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
    finally:
        claim.release()
    return report


class BackgroundRecovery:
    """``recover`` in a thread of its own, for a mount that just started: ``pending`` counts the
    leftovers not handled yet (the mount's upload stats show it); the log says what happens."""

    def __init__(self, claim: LeftoverClaim, store_for: StoreFor, recovery_dir: Path) -> None:
        self.pending = len(claim.leftovers)
        acked = sum(1 for leftover in claim.leftovers if leftover.record.acked)
        logger.warning(
            "found %d staged files left by a mount that ended (%d acknowledged: uploading them; "
            "the others go to %s) in %s",
            self.pending, acked, recovery_dir, ", ".join(map(str, claim.folders)),
        )  # fmt: skip
        self._claim, self._store_for, self._recovery_dir = claim, store_for, recovery_dir
        self.report: RecoveryReport | None = None
        self.thread = threading.Thread(target=self._run, name="orionfs-recover", daemon=True)
        self.thread.start()

    def _done(self, outcome: Outcome) -> None:
        self.pending = max(0, self.pending - 1)

    def _run(self) -> None:
        try:
            self.report = recover(
                self._claim, self._store_for, self._recovery_dir, on_done=self._done
            )
            logger.warning("files left by a mount that ended: %s", self.report.summary())
        finally:
            self.pending = 0


def _handle(leftover: Leftover, store: RecoveryStore | None, recovery_dir: Path) -> Outcome:
    record = leftover.record
    if store is None:  # not acknowledged: close() never returned for it
        dest = keep(leftover, recovery_dir)
        logger.error(
            "unsaved data of %s (written when its mount ended, never closed) is kept in %s",
            record.orion_path, dest,
        )  # fmt: skip
        return Outcome(record.orion_path, KEPT, str(dest), acked=False)
    try:
        result, why = _upload(leftover, store)
    except Exception as error:  # noqa: BLE001 - kept and logged below
        result, why = None, f"the upload failed: {error}"
    if result is not None:
        logger.warning("%s: %s (acknowledged before its mount ended)", record.orion_path, result)
        return Outcome(record.orion_path, result, acked=True)
    dest = keep(leftover, recovery_dir)
    logger.error("%s: not uploaded (%s); its data is kept in %s", record.orion_path, why, dest)
    return Outcome(record.orion_path, KEPT, f"{why}; kept in {dest}", acked=True)


def _upload(leftover: Leftover, store: RecoveryStore) -> tuple[str | None, str]:
    """(UPLOADED or ALREADY_STORED, "") where that loses nothing, else (None, why not)."""
    record = leftover.record
    size = leftover.size
    current = store.find(record.path)
    if current is not None and (current.is_folder or not current.is_file):
        return None, f"a {current.kind} is at its path now"
    if current is not None and current.size == size and _same_content(store, current, leftover):
        return ALREADY_STORED, ""
    if record.id is None:
        if current is not None:
            return None, "another file was created at its path meanwhile"
        with leftover.open() as fileobj:
            store.create_file(record.path, fileobj, size)
        return UPLOADED, ""
    if current is None or current.id != record.id:
        return None, f"file {record.id} is no longer at its path"
    if (current.ctime_ns, current.size) != (record.base_ctime_ns, record.base_size):
        return None, f"file {record.id} was changed meanwhile"
    with leftover.open() as fileobj:
        store.replace_content(record.path, fileobj, size)
    return UPLOADED, ""


def _same_content(store: RecoveryStore, entry: Entry, leftover: Leftover) -> bool:
    """Whether Orion's ``entry`` holds exactly the leftover's bytes (read back in chunks)."""
    offset = 0
    with leftover.open() as local:
        while offset < entry.size:
            want = local.read(COMPARE_CHUNK)
            got = store.read(entry, offset, len(want)) if want else b""
            if not want or bytes(got) != want:
                return False
            offset += len(want)
    return True


def keep(leftover: Leftover, recovery_dir: Path) -> Path:
    """Move a leftover's data to ``recovery_dir/<its Orion path>`` (a suffix ``.<time>[.n]`` if
    that is taken); returns where it went."""
    rel = leftover.record.orion_path.strip("/") or "root"
    dest = recovery_dir / rel
    dest.parent.mkdir(parents=True, exist_ok=True, mode=RECOVERY_DIR_MODE)
    with contextlib.suppress(OSError):
        os.chmod(recovery_dir, RECOVERY_DIR_MODE)
    if dest.exists():
        stamp = time.strftime("%Y%m%dT%H%M%S")
        base, counter = dest.with_name(f"{dest.name}.{stamp}"), 1
        dest = base
        while dest.exists():
            counter += 1
            dest = base.with_name(f"{base.name}.{counter}")
    if leftover.record.data:
        shutil.move(str(leftover.data), dest)
    else:  # a file that stayed empty: kept empty, for the record
        dest.touch()
    os.chmod(dest, RECOVERY_FILE_MODE)
    return dest
