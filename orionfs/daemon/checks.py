"""What ``orionfs mount`` checks before it starts anything: the mount point, ``/dev/fuse``, libfuse,
the profile, and the credentials and root folder with one or two requests.

Each check raises MountError with the one line the user sees.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import logging
import os
import shutil
import threading
from collections.abc import Iterator

from orionfs.client.config import SessionConfig, get_profile_config
from orionfs.client.session import OrionSession
from orionfs.daemon import MountError
from orionfs.daemon.state import is_dead_mount
from orionfs.exceptions import (
    InvalidCredentials,
    NotFoundResponse,
    OrionConnectionError,
    OrionError,
    OrionTimeout,
    ProfileError,
)

#: Seconds, at most, that the credentials check waits for an answer and keeps retrying.
VALIDATION_TIMEOUT_MAX: float = 15.0
#: The urllib3 logger that warns of each retry ("Retrying (...) after connection broken ...").
URLLIB3_RETRY_LOGGER = "urllib3.connectionpool"


def check_mountpoint(path: str, allow_non_empty: bool = False) -> str:
    """The absolute mount point; MountError if missing, not a directory, already mounted (a dead
    orionfs mount included), or not empty (unless ``allow_non_empty``: what it holds is hidden
    while mounted)."""
    mountpoint = os.path.abspath(path)
    if is_dead_mount(mountpoint):
        raise MountError(
            f"mount point {mountpoint} holds a dead mount (its process is gone): "
            f"run 'orionfs unmount {mountpoint}' first"
        )
    if not os.path.lexists(mountpoint):
        raise MountError(f"mount point {mountpoint} does not exist (create it with mkdir)")
    try:
        if not os.path.isdir(mountpoint):
            raise MountError(f"mount point {mountpoint} is not a directory")
        if os.path.ismount(mountpoint):
            raise MountError(
                f"mount point {mountpoint} is busy: something is already mounted there"
            )
        entries = os.listdir(mountpoint)
    except OSError as error:
        raise MountError(f"mount point {mountpoint} is not usable: {error.strerror}") from error
    if entries and not allow_non_empty:
        raise MountError(
            f"mount point {mountpoint} is not empty ({len(entries)} entries would be hidden "
            "while mounted): use an empty folder, or --allow-non-empty"
        )
    return mountpoint


def check_fuse() -> None:
    """MountError unless /dev/fuse is usable and libfuse can be found."""
    if not os.path.exists("/dev/fuse"):
        raise MountError(
            "no /dev/fuse: load the fuse kernel module (modprobe fuse), or give the container "
            "--device /dev/fuse --cap-add SYS_ADMIN"
        )
    if not os.access("/dev/fuse", os.R_OK | os.W_OK) and shutil.which("fusermount3") is None:
        raise MountError("/dev/fuse is not accessible and fusermount3 is missing (install fuse3)")
    if not (
        os.environ.get("FUSE_LIBRARY_PATH")
        or ctypes.util.find_library("fuse3")
        or ctypes.util.find_library("fuse")
    ):
        raise MountError("libfuse not found: install it (apt-get install fuse3 libfuse3-3)")


def load_config(profile: str | None) -> SessionConfig:
    """The SessionConfig of ``profile`` (None: $ORION_PROFILE, else default); MountError with the
    profile problem."""
    try:
        return get_profile_config(profile)
    except ProfileError as error:
        raise MountError(str(error)) from error


def validate(config: SessionConfig, root: str, timeout: float) -> None:
    """One or two requests: the token is good, the server answers, the root is a folder.

    Waits (retries included) at most ``min(timeout, VALIDATION_TIMEOUT_MAX)`` seconds. Raises
    MountError with the reason (bad credentials, unreachable server, no such folder, ...).
    """
    wait = min(timeout, VALIDATION_TIMEOUT_MAX)
    session = OrionSession(config=config.replace(request_timeout=wait, retry_timeout=wait))
    try:
        with quiet_retries():
            accepted = session.validate_authentication()
            entry = session.stat_path(root) if accepted and root != "/" else None
    except InvalidCredentials as error:
        raise _bad_credentials(config) from error
    except OrionTimeout as error:
        raise MountError(
            f"cannot reach the Orion server at {config.url}: no answer (timed out)"
        ) from error
    except OrionConnectionError as error:
        raise MountError(
            f"cannot reach the Orion server at {config.url}: {root_cause(error)}"
        ) from error
    except NotFoundResponse as error:
        raise MountError(f"no such Orion folder: {root}") from error
    except OrionError as error:
        raise MountError(f"the server at {config.url} refused: {error}") from error
    finally:
        session.close()
    if not accepted:
        raise _bad_credentials(config)
    if entry is not None:
        from orionfs.fs.entry import Entry

        root_entry = Entry.from_wire(entry)
        if not root_entry.is_folder:
            raise MountError(f"{root} is a {root_entry.kind}, not a folder")


def _bad_credentials(config: SessionConfig) -> MountError:
    return MountError(
        f"bad credentials: {config.url} refused the token of profile '{config.profile}' "
        "(make a new token and run 'orionfs profile add')"
    )


class _OneThreadBelow(logging.Filter):
    """Drops the records below ``level`` logged by one thread."""

    def __init__(self, thread: int, level: int) -> None:
        super().__init__()
        self.thread = thread
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread or record.levelno >= self.level


@contextlib.contextmanager
def quiet_retries() -> Iterator[None]:
    """While the block runs, urllib3's warning for each retry made by this thread is dropped (the
    error that ends the retries is the one line the user sees); with ``-v`` they are kept.

    The logger's level is left alone: other threads, and this one after the block, log as before.
    """
    if logging.getLogger().isEnabledFor(logging.INFO):
        yield
        return
    retries = logging.getLogger(URLLIB3_RETRY_LOGGER)
    quiet = _OneThreadBelow(threading.get_ident(), logging.ERROR)
    retries.addFilter(quiet)
    try:
        yield
    finally:
        retries.removeFilter(quiet)


def root_cause(error: BaseException) -> str:
    """The innermost OS-level reason of a transport error (e.g. "Connection refused")."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]
        stack += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return "connection failed"
