"""``mount.orionfs``: the mount helper that mount(8), fstab and systemd's mount units run.

mount(8) runs ``/sbin/mount.<type>`` for ``mount -t <type>`` and for fstab lines of that type, with a
reset PATH, as ``mount.<type> SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS]``. This module is installed as
the console script ``mount.orionfs``, whose first line names its own Python by absolute path, so
the links made once by ``mount.orionfs --install`` (``/sbin/mount.orionfs`` and
``/sbin/mount.fuse.orionfs``, for ``-t orionfs`` and ``-t fuse.orionfs``) work without PATH::

    mount -t fuse.orionfs work:/project/1/user/me /mnt/orion -o config_dir=/etc/orionfs,allow_other
    # /etc/fstab
    work:/project/1/user/me  /mnt/orion  fuse.orionfs  config_dir=/etc/orionfs,_netdev,nofail  0 0

SOURCE is ``PROFILE:ORION_PATH`` (``PROFILE`` alone: the whole namespace, ``/``). OPTIONS are the
``orionfs mount`` options as ``name=value`` (``cache_ttl=5m``, ``uid=1000``, ``ro``, ``local=DIR``,
``log_file=PATH``, ``metrics=9101``, ...), plus ``config_dir=DIR`` (at boot there is no
ORIONFS_CONFIG_DIR), plus libfuse's and the kernel's (``allow_other``, ``nosuid``, ...); the words
that belong to mount(8) and systemd (``noauto``, ``_netdev``, ``nofail``, ``user``, ``users``,
``x-systemd.automount``, ``defaults``) are left to them. The helper runs ``orionfs mount``, which
returns once the mount answers, the mount process running on in the background.

The same form works through libfuse's generic helper: ``mount.fuse3 'orionfs#work:/' /mnt``
runs ``orionfs work:/ /mnt -o ...`` (with orionfs on PATH), which ``orionfs.cli.main`` accepts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

#: Where ``--install`` puts the links (mount(8) looks in /sbin, /sbin/fs.d and /sbin/fs).
DEFAULT_INSTALL_DIR = "/sbin"
#: The names mount(8) runs for ``-t orionfs`` and ``-t fuse.orionfs``.
HELPER_NAMES: tuple[str, ...] = ("mount.orionfs", "mount.fuse.orionfs")


def parse_source(source: str) -> tuple[str, str]:
    """(profile, Orion path) of ``PROFILE:ORION_PATH`` (path default ``/``); ValueError if the
    profile is empty."""
    profile, _, path = source.partition(":")
    if not profile:
        raise ValueError(f"source {source!r} names no profile: write PROFILE:ORION_PATH")
    path = path or "/"
    return profile, path if path.startswith("/") else "/" + path


def mount_argv(source: str, mountpoint: str, options: Sequence[str]) -> list[str]:
    """The ``orionfs`` command line of a helper call."""
    profile, root = parse_source(source)
    argv = ["mount", mountpoint, "--profile", profile, "--root", root]
    for value in options:
        argv += ["-o", value]
    return argv


def build_parser() -> argparse.ArgumentParser:
    """mount(8)'s helper calling convention, plus ``--install``."""
    parser = argparse.ArgumentParser(
        prog="mount.orionfs",
        description="Mount an Orion folder for mount(8) and fstab: SOURCE is PROFILE:ORION_PATH.",
    )
    parser.add_argument("source", nargs="?", metavar="SOURCE")
    parser.add_argument("mountpoint", nargs="?", metavar="MOUNTPOINT")
    parser.add_argument("-o", dest="options", action="append", default=[], metavar="OPTIONS")
    parser.add_argument("-s", action="store_true", help="sloppy: ignored")
    parser.add_argument("-f", dest="fake", action="store_true", help="fake: check, do nothing")
    parser.add_argument("-n", action="store_true", help="no mtab: ignored")
    parser.add_argument("-v", dest="verbose", action="count", default=0, help="more output")
    parser.add_argument("-t", dest="fstype", metavar="TYPE", help="the type: ignored")
    parser.add_argument("-N", dest="namespace", metavar="NS", help=argparse.SUPPRESS)
    parser.add_argument(
        "--install",
        action="store_true",
        help="link this helper as mount.orionfs and mount.fuse.orionfs in --dir (once, as root)",
    )
    parser.add_argument("--dir", default=DEFAULT_INSTALL_DIR, help="where --install links it")
    return parser


def install(directory: Path, script: Path) -> list[Path]:
    """Link ``script`` as each of HELPER_NAMES in ``directory`` (replacing older links); returns
    the links. OSError if that is not allowed."""
    links = []
    for name in HELPER_NAMES:
        link = directory / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(script)
        links.append(link)
    return links


def own_script() -> Path:
    """This helper's console script (its first line names its Python by absolute path)."""
    argv0 = Path(sys.argv[0])
    if argv0.name in HELPER_NAMES and argv0.exists():
        return argv0.resolve()
    return Path(sys.executable).parent / "mount.orionfs"


def main(argv: Sequence[str] | None = None) -> int:
    """``mount.orionfs SOURCE MOUNTPOINT [-o OPTIONS]``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.install:
        script = own_script()
        if not script.exists():
            print(f"mount.orionfs: error: {script} not found", file=sys.stderr)
            return 1
        try:
            links = install(Path(args.dir), script)
        except OSError as error:
            print(f"mount.orionfs: error: cannot link into {args.dir}: {error}", file=sys.stderr)
            return 1
        print("\n".join(f"{link} -> {script}" for link in links))
        return 0
    if not args.source or not args.mountpoint:
        print("mount.orionfs: error: usage: mount.orionfs SOURCE MOUNTPOINT [-o OPTIONS]",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        command = mount_argv(args.source, os.path.abspath(args.mountpoint), args.options)
    except ValueError as error:
        print(f"mount.orionfs: error: {error}", file=sys.stderr)
        return 1
    if args.fake:
        return 0
    from orionfs.cli import main as orionfs_main

    return orionfs_main(["-v"] * min(args.verbose, 2) + command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
