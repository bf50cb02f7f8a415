"""The mount process (``orionfs mount --foreground``): the local server if asked for, the
credentials check, the session, cache and operations, then FUSE until unmounted.
"""

from __future__ import annotations

import argparse
import ctypes.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orionfs.client.config import SessionConfig
from orionfs.client.session import OrionSession
from orionfs.daemon import MountError
from orionfs.daemon.checks import load_config, validate
from orionfs.daemon.local_server import LocalServer
from orionfs.daemon.process import forget_state, write_state
from orionfs.daemon.stop import watch_stop_signal

logger = logging.getLogger(__name__)


def parse_fuse_options(values: Sequence[str]) -> dict[str, Any]:
    """``-o a=b,c`` (repeatable) -> ``{"a": "b", "c": True}``."""
    options: dict[str, Any] = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, val = item.partition("=")
            options[key] = val if sep else True
    return options


def run_foreground(args: argparse.Namespace, mountpoint: str) -> int:
    """Start the local server (``--local``), check credentials, mount, serve until unmounted;
    returns 0 once unmounted. MountError for every failure (the local server is stopped)."""
    if args.debug:
        logging.getLogger("orionfs").setLevel(logging.DEBUG)
        logging.getLogger().setLevel(logging.DEBUG)
    if not os.environ.get("FUSE_LIBRARY_NAME") and not os.environ.get("FUSE_LIBRARY_PATH"):
        if ctypes.util.find_library("fuse3"):
            os.environ["FUSE_LIBRARY_NAME"] = "fuse3"  # 1 MiB reads/writes, config-level options
    server: LocalServer | None = None
    try:
        if args.local:
            server = LocalServer.start(args.local, args.ready_timeout)
            config = server.config
        else:
            config = load_config(args.profile)
        validate(config, args.root, args.timeout)
        try:
            from orionfs.fuse import binding
        except OSError as error:
            raise MountError(f"libfuse cannot be loaded: {error}") from error
        operations = _operations(config, args)
        watch_stop_signal(operations, mountpoint, config.url, server)
        write_state(
            mountpoint,
            pid=os.getpid(),
            server_pid=server.process.pid if server else None,
            url=config.url,
            root=args.root,
        )
        logger.warning(
            "mounting %s%s at %s (ttl %gs%s)",
            config.url,
            args.root,
            mountpoint,
            args.cache_ttl,
            ", read-only" if args.read_only else "",
        )
        try:
            binding.run(operations, mountpoint, parse_fuse_options(args.fuse_options))
        except RuntimeError as error:
            raise MountError(f"mounting {mountpoint} failed (libfuse status {error})") from error
        logger.warning("unmounted %s", mountpoint)
        return 0
    finally:
        if server is not None:
            server.stop()
        forget_state(mountpoint)


def _operations(config: SessionConfig, args: argparse.Namespace) -> Any:
    """The OrionFS operations over a cached session of ``config``, as the options say."""
    from orionfs.fs.cache import LS_PAGE_SIZE, CachedSession
    from orionfs.fuse.operations import MountOptions, OrionFS

    session = OrionSession(
        config=config.replace(request_timeout=args.timeout, retry_timeout=args.retry_deadline)
    )
    cache = CachedSession(
        session, root=args.root, ttl=args.cache_ttl, page_size=args.page_size or LS_PAGE_SIZE
    )
    options = MountOptions(
        read_only=args.read_only,
        ttl=args.cache_ttl,
        staging_dir=Path(args.staging_dir) if args.staging_dir else None,
        recovery_dir=Path(args.recovery_dir) if args.recovery_dir else None,
    )
    return OrionFS(cache, options)
