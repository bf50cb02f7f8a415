"""The mount process (``orionfs mount --foreground``): the local server if asked for, the
credentials check, the session, cache and operations, then FUSE until unmounted.

As a service (orionfs.daemon.service): logging to stderr or ``--log-file`` at ``--log-level``,
``READY=1``/``STOPPING=1`` for systemd, SIGTERM/SIGINT/SIGHUP unmount cleanly (exit 0), libfuse's own
message when the mount fails, the status file for ``orionfs status``, and ``--metrics ADDR``.
"""

from __future__ import annotations

import argparse
import ctypes.util
import logging
import os
import time
from pathlib import Path
from typing import Any

from orionfs.client.config import DEFAULT_PROFILE, PROFILE_ENV, SessionConfig
from orionfs.client.session import OrionSession
from orionfs.daemon import MountError, logs
from orionfs.daemon.checks import load_config, validate
from orionfs.daemon.local_server import LocalServer
from orionfs.daemon.options import (
    escape_option_value,
    fsname,
    parse_fuse_options,
    permission_modes,
)
from orionfs.daemon.probe import MountProbe
from orionfs.daemon.process import forget_state, update_state, write_state
from orionfs.daemon.service import MountService, block_signals
from orionfs.daemon.stderr_tap import StderrTap
from orionfs.daemon.stop import watch_stop_signal

logger = logging.getLogger(__name__)


def fuse_mount_options(args: argparse.Namespace, profile: str) -> dict[str, Any]:
    """The libfuse options of the mount: the ``-o`` passthrough, the fsname ``orion:PROFILE:PATH``
    and subtype ``orionfs`` (what mount and df show), and ``--allow-other``, which always comes
    with ``default_permissions`` (the kernel then enforces the modes for every user)."""
    options = parse_fuse_options(args.fuse_options)
    options.setdefault("fsname", escape_option_value(fsname(profile, args.root)))
    options.setdefault("subtype", "orionfs")
    if getattr(args, "allow_other", False) or options.get("allow_other"):
        options["allow_other"] = True
        options["default_permissions"] = True
    return options


def profile_name(args: argparse.Namespace, config: SessionConfig | None = None) -> str:
    """The profile the mount uses (for --local, the data folder's own profile)."""
    if config is not None and config.profile:
        return config.profile
    return args.profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


def _log_level(args: argparse.Namespace) -> str:
    if args.debug:
        return "debug"
    level = getattr(args, "log_level", None)
    if level:
        return str(level)
    return "debug" if int(getattr(args, "verbose", 0) or 0) >= 2 else "info"


def run_foreground(args: argparse.Namespace, mountpoint: str) -> int:
    """Start the local server (``--local``), check credentials, mount, serve until unmounted;
    returns 0 once unmounted (by ``orionfs unmount``, fusermount3, or a stop signal). MountError
    for every failure (the local server is stopped)."""
    log_counts = logs.configure(_log_level(args), Path(args.log_file) if args.log_file else None)
    if not os.environ.get("FUSE_LIBRARY_NAME") and not os.environ.get("FUSE_LIBRARY_PATH"):
        if ctypes.util.find_library("fuse3"):
            os.environ["FUSE_LIBRARY_NAME"] = "fuse3"  # 1 MiB reads/writes, config-level options
    server: LocalServer | None = None
    service: MountService | None = None
    metrics: Any = None
    started = time.time()
    try:
        if args.local:
            server = LocalServer.start(args.local, args.ready_timeout)
            config = server.config
        else:
            config = load_config(args.profile)
        # Before any thread: the stop signals go to the service's thread alone (its children,
        # the local server included, were started above with the signals unblocked).
        block_signals()
        profile = profile_name(args, config)
        source = fsname(profile, args.root)
        service = MountService(mountpoint, f"{source} at {mountpoint}", args.stop_timeout)
        service.watch_signals()
        validate(config, args.root, args.timeout)
        try:
            from orionfs.fuse import binding
        except OSError as error:
            raise MountError(f"libfuse cannot be loaded: {error}") from error
        operations = _operations(config, args)
        watch_stop_signal(operations, mountpoint, config.url, server)
        probe = MountProbe(
            operations,
            Path(args.recovery_dir) if args.recovery_dir else None,
            _data_cache_index(config, args),
            log_counts.counts,
        )
        metrics = _start_metrics(args, probe, operations, source, mountpoint)
        write_state(
            mountpoint,
            pid=os.getpid(),
            server_pid=server.process.pid if server else None,
            url=config.url,
            root=args.root,
            write_back=args.write_back,
            **_described(args, source, profile, started, metrics),
        )
        _write_side(operations, mountpoint)
        logger.warning(
            "mounting %s%s at %s (ttl %gs%s)",
            config.url,
            args.root,
            mountpoint,
            args.cache_ttl,
            ", read-only" if args.read_only else "",
        )
        if service.stop_requested.is_set():
            logger.warning("stopped before mounting")
            return 0
        service.serve(operations, probe, lambda: _give_up(operations, mountpoint, server))
        _mount(binding, operations, mountpoint, fuse_mount_options(args, profile), service)
        logger.warning("unmounted %s", mountpoint)
        return 0
    finally:
        if service is not None:
            service.done()
        if metrics is not None:
            metrics.stop()
        if server is not None:
            server.stop()
        forget_state(mountpoint)
        # The stop signals stay blocked: the service's thread takes any that still come, and the
        # process ends now (unblocked, a late SIGTERM would end it with -15 instead of 0).


def _mount(
    binding: Any,
    operations: Any,
    mountpoint: str,
    options: dict[str, Any],
    service: MountService,
) -> None:
    """Serve until unmounted; MountError with libfuse's own message if the mount fails."""
    tap = StderrTap()
    tap.start()
    service.on_ready(tap.stop)  # libfuse's start-up messages are what a failure needs
    try:
        binding.run(operations, mountpoint, options)
    except RuntimeError as error:
        tap.stop()
        said = "; ".join(tap.messages())
        reason = said or f"libfuse status {error}"
        raise MountError(f"mounting {mountpoint} failed: {reason}") from error
    finally:
        tap.stop()


def _described(
    args: argparse.Namespace, source: str, profile: str, started: float, metrics: Any
) -> dict[str, Any]:
    """What the state file says of the mount for ``orionfs status``."""
    return {
        "source": source,
        "profile": profile,
        "started": started,
        "local": args.local,
        "log_file": args.log_file,
        "metrics": f"{metrics.address[0]}:{metrics.address[1]}" if metrics else None,
    }


def _start_metrics(
    args: argparse.Namespace, probe: MountProbe, operations: Any, source: str, mountpoint: str
) -> Any:
    """The Prometheus endpoint if ``--metrics`` asks for one (its HTTP metrics watch the
    session's answers); None otherwise."""
    if not getattr(args, "metrics", None):
        return None
    from orionfs.daemon.metrics import MetricsServer

    server = MetricsServer(probe, {"source": source, "mountpoint": mountpoint})
    server.http.attach(operations.namespace.cache.session)
    host, port = server.start(args.metrics)
    logger.warning(
        "metrics on http://%s:%s/metrics", host if ":" not in host else f"[{host}]", port
    )
    return server


def _data_cache_index(config: SessionConfig, args: argparse.Namespace) -> Path | None:
    """The data cache's index file (its size for status and metrics), if the mount has one."""
    if getattr(args, "cache_mode", "off") == "off":
        return None
    from orionfs.fs.datacache import cache_dir, default_root

    root = Path(args.cache_dir) if args.cache_dir else default_root()
    return cache_dir(root, config.url, config.username) / "index.db"


def _give_up(operations: Any, mountpoint: str, server: LocalServer | None) -> int:
    """The stop did not finish in time: keep unsaved data (recovery folder), stop the server.
    Returns how many files were kept (or 1 if keeping them failed)."""
    operations.stopping = True
    kept = 1
    try:
        operations.files.stop()
        kept = len(operations.files.abandon())  # logs each file it keeps
    except Exception:  # noqa: BLE001 - ending anyway; what was kept is logged
        logger.exception("keeping staged data failed")
    if server is not None:
        server.stop(1.0)
    forget_state(mountpoint)
    return kept


def _operations(config: SessionConfig, args: argparse.Namespace) -> Any:
    """The OrionFS operations over a cached session of ``config``, as the options say."""
    from orionfs.fs.budget import MemoryBudget, limit_malloc_arenas
    from orionfs.fs.cache import LS_PAGE_SIZE, CachedSession
    from orionfs.fs.journal import account_dir
    from orionfs.fs.localtimes import LocalTimes, local_times_file
    from orionfs.fs.reads import ReadPath
    from orionfs.fs.writeback import WriteBackOptions
    from orionfs.fuse.operations import MountOptions, OrionFS

    session = OrionSession(
        config=config.replace(request_timeout=args.timeout, retry_timeout=args.retry_deadline)
    )
    data = _data_cache(config, args)
    cache = CachedSession(
        session,
        root=args.root,
        ttl=args.cache_ttl,
        page_size=args.page_size or LS_PAGE_SIZE,
        on_upload=data.adopt if data is not None else None,
        on_new_version=data.rekey if data is not None else None,
        local_times=LocalTimes(local_times_file(config.url, config.username)),
    )
    limit_malloc_arenas()
    reads = ReadPath(
        cache, data=data, budget=MemoryBudget(args.read_ahead_memory), listing=cache.cached_listing
    )
    file_mode, dir_mode = permission_modes(args.umask, args.file_mode, args.dir_mode)
    options = MountOptions(
        read_only=args.read_only,
        ttl=args.cache_ttl,
        uid=-1 if args.uid is None else args.uid,
        gid=-1 if args.gid is None else args.gid,
        file_mode=file_mode,
        dir_mode=dir_mode,
        # The account's persistent staging folder (orionfs.fs.journal).
        staging_dir=account_dir(args.staging_dir, config.url, config.username),
        recovery_dir=Path(args.recovery_dir) if args.recovery_dir else None,
        write_back=(
            None
            if args.write_back is None
            else WriteBackOptions(delay=args.write_back, deadline=args.retry_deadline)
        ),
    )
    return OrionFS(cache, options, reads)


def _data_cache(config: SessionConfig, args: argparse.Namespace) -> Any:
    """The data cache of ``config``'s server and user (None for ``--cache-mode off``, or, with a
    warning, where it cannot be opened)."""
    if args.cache_mode == "off":
        return None
    import sqlite3

    from orionfs.fs.datacache import DataCache, cache_dir, default_max_size, default_root

    root = Path(args.cache_dir) if args.cache_dir else default_root()
    directory = cache_dir(root, config.url, config.username)
    max_size = args.cache_max_size or default_max_size(directory)
    try:
        data = DataCache(directory, max_size, owner=f"{config.url} {config.username}")
    except (OSError, sqlite3.Error) as error:
        logger.warning("no data cache (%s: %s): every open reads from the server", directory, error)
        return None
    logger.info("data cache %s (at most %d MiB)", directory, max_size >> 20)
    return data


def _write_side(operations: Any, mountpoint: str) -> None:
    """The write side's hooks: the write-back queue's progress goes to the state file while the
    mount ends (``orionfs unmount`` shows it), and what a mount of this account that died left
    staged is handled in the background (orionfs.fs.recovery), through this mount's cache for
    its root and a cache of their own for other roots."""
    from orionfs.fs.cache import CachedSession

    files = operations.files
    files.progress = lambda stats: update_state(mountpoint, uploads=stats.to_dict())
    cache = operations.namespace.cache
    stores = {cache.root: cache}

    def store_for(root: str) -> Any:
        if root not in stores:
            stores[root] = CachedSession(cache.session, root=root, ttl=cache.ttl)
        return stores[root]

    files.recover_leftovers(store_for)
