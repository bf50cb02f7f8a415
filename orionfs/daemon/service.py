"""The mount process as a service: readiness, the stop signals, and its status file.

- Readiness: once the mount answers (``stat`` of the mount point is served by this process), it
  sends systemd ``READY=1`` (orionfs.daemon.notify; ``Type=notify``) and writes its first status.
- Stop: SIGTERM, SIGINT and SIGHUP are blocked in every thread from the start (``block_signals``,
  before any thread exists) and taken by one thread with ``sigwait``, so neither libfuse's handlers
  nor Python's see them. On the first one the service says ``STOPPING=1`` and unmounts
  (``fusermount3 -u``; while files are open, a lazy unmount: they are served until closed); libfuse
  then returns, the operations' ``destroy`` uploads what is unsaved (and waits for the write-back
  queue), and the process exits 0. If that has not happened within ``--stop-timeout``, or a second
  signal comes, it stops waiting: unsaved data goes to the recovery folder (logged) and it exits 1
  (0 if nothing was left unsaved: the data of files still open was uploaded when the stop came).
- Status: every STATUS_INTERVAL seconds the numbers of orionfs.daemon.probe go to the mount's status
  file (orionfs.daemon.state), for ``orionfs status``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from orionfs.daemon import MountError
from orionfs.daemon import state as state_files
from orionfs.daemon.notify import Notifier
from orionfs.daemon.probe import MountProbe
from orionfs.daemon.process import POLL_INTERVAL, unmount

logger = logging.getLogger(__name__)

#: The signals that stop a mount process cleanly.
STOP_SIGNALS: frozenset[signal.Signals] = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
#: Default seconds between the stop signal and giving up on uploads (``--stop-timeout``); keep
#: systemd's TimeoutStopSec above it.
DEFAULT_STOP_TIMEOUT: float = 30.0
#: Seconds between two writes of the status file.
STATUS_INTERVAL: float = 2.0
#: Exit status of a stop that gave up waiting (unsaved data kept in the recovery folder).
GAVE_UP_STATUS: int = 1


def block_signals() -> None:
    """Block STOP_SIGNALS in this thread and so in every thread started after it (call first
    thing in the mount process, before any thread, from the main thread)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


class MountService:
    """Readiness, stop signals and status of one mount process (see the module docstring)."""

    def __init__(
        self,
        mountpoint: str,
        description: str,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        notifier: Notifier | None = None,
    ) -> None:
        self.mountpoint = mountpoint
        self.description = description
        self.stop_timeout = stop_timeout
        self.notifier = notifier or Notifier()
        self.ready = threading.Event()
        self.finished = threading.Event()  # libfuse returned (unmounted, or the mount failed)
        self.stop_requested = threading.Event()
        self.gave_up = False
        self.operations: Any = None
        self.probe: MountProbe | None = None
        self._on_ready: list[Callable[[], None]] = []
        self._give_up_hook: Callable[[], int] | None = None

    # -- set-up ----------------------------------------------------------------------------------

    def watch_signals(self) -> None:
        """Start the thread that takes the stop signals (they must be blocked already)."""
        threading.Thread(target=self._signals, name="orionfs-signals", daemon=True).start()

    def serve(self, operations: Any, probe: MountProbe | None, give_up: Callable[[], int]) -> None:
        """The mount is about to start: watch for readiness, then keep the status file;
        ``give_up`` ends the process without waiting (unsaved data kept; it returns how many
        files were kept, and the exit status is 1 only if any was)."""
        self.operations = operations
        self.probe = probe
        self._give_up_hook = give_up
        threading.Thread(target=self._readiness, name="orionfs-ready", daemon=True).start()

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the readiness thread) once the mount answers."""
        self._on_ready.append(callback)

    def done(self) -> None:
        """libfuse returned: no more readiness, status or stop work."""
        self.finished.set()
        with contextlib.suppress(MountError):
            state_files.remove(state_files.status_path(self.mountpoint, create=False))

    # -- readiness and status ----------------------------------------------------------------------

    def _readiness(self) -> None:
        while not self.finished.is_set():
            if state_files.mount_at(self.mountpoint) is not None:
                try:
                    os.stat(self.mountpoint)  # answered by this process: the mount serves
                    break
                except OSError:
                    pass
            time.sleep(POLL_INTERVAL)
        else:
            return
        self.ready.set()
        logger.info("ready: %s", self.description)
        self.notifier.ready(f"mounted {self.description}")
        for callback in self._on_ready:
            try:
                callback()
            except Exception:  # noqa: BLE001 - a hook must not stop the service
                logger.exception("a readiness hook failed")
        self.write_status()
        while not self.finished.wait(STATUS_INTERVAL):
            self.write_status()

    def write_status(self) -> None:
        """Write the probe's numbers to the status file (best effort)."""
        if self.probe is None or self.finished.is_set():
            return
        try:
            path = state_files.status_path(self.mountpoint)
            if path is not None:
                status = self.probe.snapshot().to_dict()
                status["stopping"] = self.stop_requested.is_set()
                state_files.write_json(path, status)
        except (OSError, MountError, ValueError) as error:
            logger.debug("status not written: %s", error)

    # -- stopping ----------------------------------------------------------------------------------

    def _signals(self) -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        name = signal.Signals(signum).name
        self.stop_requested.set()
        logger.warning("%s: unmounting %s (uploads get %gs)", name, self.mountpoint,
                       self.stop_timeout)  # fmt: skip
        self.notifier.stopping(f"stopping ({name}): uploading, then unmounting")
        timer = threading.Timer(self.stop_timeout, self._give_up, args=("the stop timeout",))
        timer.daemon = True
        timer.start()
        threading.Thread(target=self._unmount, name="orionfs-unmount", daemon=True).start()
        signum = signal.sigwait(STOP_SIGNALS)
        self._give_up(f"a second {signal.Signals(signum).name}")

    def _unmount(self) -> None:
        """Unmount once the mount is up (a plain unmount, else a lazy one: open files are served
        until closed). Before the mount is up, the mount process sees ``stop_requested``."""
        while not self.ready.wait(POLL_INTERVAL):
            if self.finished.is_set():
                return
        self.write_status()
        try:
            unmount(self.mountpoint)
            return
        except MountError as error:
            logger.warning("%s; detaching it, open files are served until closed", error)
        operations = getattr(self, "operations", None)
        if operations is not None:  # what open files hold so far is uploaded now
            operations.files.save_open()
        try:
            unmount(self.mountpoint, lazy=True)
        except MountError as error:
            logger.error("%s", error)

    def _give_up(self, why: str) -> None:
        if self.finished.is_set():
            return
        self.gave_up = True
        logger.error("stopping without waiting any more (%s)", why)
        with contextlib.suppress(MountError):
            if state_files.mount_at(self.mountpoint) is not None:
                unmount(self.mountpoint, lazy=True)
        kept = self._give_up_hook() if self._give_up_hook is not None else 1
        logging.shutdown()
        os._exit(GAVE_UP_STATUS if kept else 0)
