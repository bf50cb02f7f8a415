"""The mount process's logging: where it goes, how much, and a count of what was logged.

- ``--foreground``: stderr, which systemd sends to the journal (without our timestamp there: the
  journal has its own); ``--log-file PATH``: that file instead. The detached mount process's stderr
  is its log file already (orionfs.daemon.process.spawn_daemon), so it logs to stderr.
- ``--log-level`` (debug, info, warning, error; default info; ``--debug`` is debug).
- Tracebacks only for unexpected errors: a FUSE call that fails with an ordinary errno (EACCES,
  ENOENT, ENOTEMPTY, ...) is one debug line from orionfs.fuse.errors.boundary; mfusepy's own logger
  would add a traceback for each, so it is kept at INFO.
- ``LogCounts`` counts the records by level since the start: ``orionfs status`` shows the errors,
  the metrics endpoint exports them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

#: Levels ``--log-level`` accepts.
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
#: mfusepy's logger: per-call debug lines, each failed call with a traceback.
MFUSEPY_LOGGER = "fuse"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: In the journal, which stamps every line itself.
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"


class LogCounts(logging.Handler):
    """Counts the records that reach it, by level name. Thread-safe."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._counts: dict[str, int] = {}
        self._count_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102
        with self._count_lock:
            self._counts[record.levelname] = self._counts.get(record.levelname, 0) + 1

    def counts(self) -> dict[str, int]:
        """Records by level name so far."""
        with self._count_lock:
            return dict(self._counts)

    @property
    def errors(self) -> int:
        """Records at ERROR or CRITICAL."""
        counts = self.counts()
        return counts.get("ERROR", 0) + counts.get("CRITICAL", 0)


def _stderr_is(path: Path) -> bool:
    """Whether stderr already writes to ``path`` (the detached mount process)."""
    try:
        mine, theirs = os.fstat(2), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _journal_stderr() -> bool:
    """Whether stderr is systemd's journal stream (``JOURNAL_STREAM`` names its device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        info = os.fstat(2)
    except OSError:
        return False
    return stream == f"{info.st_dev}:{info.st_ino}"


def configure(level: str, log_file: Path | None = None) -> LogCounts:
    """Send the process's logging to ``log_file`` (if given and not stderr already) or stderr,
    at ``level``; returns the counter of records (also installed)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if log_file is not None and not _stderr_is(log_file):
        log_file.parent.mkdir(parents=True, exist_ok=True)
        output: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
        output.setFormatter(logging.Formatter(FORMAT))
    else:
        output = logging.StreamHandler(sys.stderr)
        output.setFormatter(logging.Formatter(JOURNAL_FORMAT if _journal_stderr() else FORMAT))
    numeric = getattr(logging, level.upper())
    output.setLevel(numeric)
    counts = LogCounts()
    counts.setLevel(logging.WARNING)
    root.addHandler(output)
    root.addHandler(counts)
    root.setLevel(numeric)
    logging.getLogger("orionfs").setLevel(numeric)
    logging.getLogger(MFUSEPY_LOGGER).setLevel(max(numeric, logging.INFO))
    return counts
