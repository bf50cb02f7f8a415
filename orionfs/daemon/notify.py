"""systemd's readiness protocol (sd_notify) for ``orionfs mount --foreground`` as a Type=notify unit.

systemd passes the path of a datagram socket in ``NOTIFY_SOCKET`` (``@name`` for the abstract
namespace); the service sends ``READY=1`` once it serves, ``STOPPING=1`` as it stops, and
``STATUS=...`` lines for ``systemctl status``. Without ``NOTIFY_SOCKET`` every call does nothing.
A send that fails is logged and ignored: readiness is a courtesy, never a reason to fail the mount.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

logger = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"


class Notifier:
    """Sends sd_notify messages to the socket named in the environment, if any."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get(NOTIFY_SOCKET_ENV, "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # the abstract namespace
        self.address = address or None

    @property
    def enabled(self) -> bool:
        """Whether a notification socket was given."""
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``send(READY=1, STATUS="mounted")``); True if sent."""
        if self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message)
        except OSError as error:
            logger.warning("cannot notify systemd (%s): %s", self.address.lstrip("\0"), error)
            return False
        return True

    def ready(self, status: str) -> bool:
        """The service is up (``READY=1``), with a status line."""
        return self.send(READY=1, STATUS=status, MAINPID=os.getpid())

    def stopping(self, status: str) -> bool:
        """The service is stopping (``STOPPING=1``), with a status line."""
        return self.send(STOPPING=1, STATUS=status)
