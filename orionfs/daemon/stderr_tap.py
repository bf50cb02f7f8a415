"""libfuse's own messages while the mount starts, so that a failed mount reports them.

libfuse (and the fusermount3 it runs) write why a mount failed to file descriptor 2 ("fuse: unknown
option(s): `-o bogus'", "fusermount3: option allow_other only allowed if 'user_allow_other' is set
in /etc/fuse.conf") and then return a bare status. While the mount starts, ``StderrTap`` puts a pipe
in front of descriptor 2: everything still reaches the real stderr (the terminal, the journal or
the log file), and the lines libfuse wrote are kept for the error message. Once the mount is ready
(or has failed), descriptor 2 is put back.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading

#: How libfuse's and fusermount's lines begin.
LIBFUSE_PREFIXES: tuple[str, ...] = ("fuse:", "fuse3:", "fusermount", "fusermount3")
#: Lines kept (the last ones).
KEPT_LINES: int = 20
#: Seconds ``stop`` waits for the copying thread to finish.
STOP_WAIT: float = 2.0


class StderrTap:
    """A pipe in front of descriptor 2 that copies everything through and keeps libfuse's lines."""

    def __init__(self) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=KEPT_LINES)
        self._saved: int | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Put the pipe in front of descriptor 2 (best effort: nothing changes if it fails)."""
        try:
            read_end, write_end = os.pipe()
        except OSError:
            return
        saved = os.dup(2)
        os.dup2(write_end, 2)
        os.close(write_end)
        self._saved = saved
        # The thread writes to its own copy of the real stderr, closed when it ends, so that
        # ``stop`` can close ``saved`` at once without the number being reused under it.
        self._thread = threading.Thread(
            target=self._copy, args=(read_end, os.dup(saved)), name="orionfs-stderr", daemon=True
        )
        self._thread.start()

    def _copy(self, read_end: int, target: int) -> None:
        pending = b""
        try:
            while True:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                with contextlib.suppress(OSError):
                    os.write(target, chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                self._keep(lines)
        finally:
            self._keep([pending])
            os.close(read_end)
            os.close(target)

    def _keep(self, lines: list[bytes]) -> None:
        with self._lock:
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith(LIBFUSE_PREFIXES):
                    self._lines.append(line)

    def stop(self) -> None:
        """Put descriptor 2 back (idempotent) and let the copying thread finish."""
        saved, self._saved = self._saved, None
        if saved is None:
            return
        os.dup2(saved, 2)  # closes the pipe's last write end held by this process
        os.close(saved)
        if self._thread is not None:
            self._thread.join(STOP_WAIT)

    def messages(self) -> list[str]:
        """libfuse's lines so far."""
        with self._lock:
            return list(self._lines)
