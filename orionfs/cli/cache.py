"""``orionfs cache du`` and ``orionfs cache clear``: the persistent data cache of the mounts
(orionfs.fs.datacache), one folder per server and user under ``$XDG_CACHE_HOME/orionfs/data``.

``du`` prints each cache folder's size, chunk count and owner (server and user); ``clear``
empties the cache of one profile (``--profile``, default: the default profile) or all of them
(``--all``). Clearing is safe while mounts use the cache: they fetch again what they miss.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

__all__ = ["format_size", "parse_size", "register"]

_SIZE = re.compile(r"\A\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """Bytes of a size such as ``512M``, ``10G``, ``1.5GiB`` or ``4096`` (binary units); an
    argparse type (ArgumentTypeError for anything else)."""
    match = _SIZE.match(str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 10G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(n: int) -> str:
    """``1.5G``-style text of a byte count."""
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def register(subparsers: Any) -> None:
    """Add ``cache du`` and ``cache clear`` to the ``orionfs`` command."""
    cache = subparsers.add_parser(
        "cache",
        help="show or clear the mounts' data cache",
        description="The data cache of the mounts: one folder per server and user.",
    )
    commands = cache.add_subparsers(dest="cache_command", metavar="COMMAND")
    du = commands.add_parser("du", help="size of each cache folder")
    du.add_argument("--cache-dir", type=Path, help="the data cache root (default under ~/.cache)")
    du.set_defaults(func=cmd_du)
    clear = commands.add_parser("clear", help="delete cached data")
    clear.add_argument("--profile", help="the profile whose cache to clear (default: default)")
    clear.add_argument("--all", action="store_true", help="clear every cache folder")
    clear.add_argument(
        "--cache-dir", type=Path, help="the data cache root (default under ~/.cache)"
    )
    clear.set_defaults(func=cmd_clear)
    cache.set_defaults(func=lambda args: _usage(cache))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _root(args: argparse.Namespace) -> Path:
    from orionfs.fs.datacache import default_root

    return args.cache_dir or default_root()


def _folders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if (p / "index.db").exists())
    except FileNotFoundError:
        return []


def cmd_du(args: argparse.Namespace) -> int:
    """``orionfs cache du``: one line per cache folder, then the total."""
    from orionfs.fs.cacheindex import read_usage

    root = _root(args)
    total = 0
    for folder in _folders(root):
        try:
            usage = read_usage(folder / "index.db")
        except (OSError, sqlite3.Error) as error:
            print(f"orionfs: error: {folder}: {error}", file=sys.stderr)
            continue
        owner = ""
        try:
            owner = (folder / "owner").read_text(encoding="utf-8").strip()
        except OSError:
            pass
        total += usage.bytes
        print(f"{format_size(usage.bytes):>8}  {usage.chunks:>8} chunks  {folder}  {owner}")
    print(f"{format_size(total):>8}  total  {root}")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    """``orionfs cache clear``: empty the cache of a profile's server and user, or every cache."""
    from orionfs.client import config as cfg
    from orionfs.exceptions import OrionError
    from orionfs.fs.datacache import DataCache, cache_dir

    root = _root(args)
    if args.all:
        folders = _folders(root)
    else:
        try:
            config = cfg.get_profile_config(args.profile)
        except (OrionError, OSError) as error:
            print(f"orionfs: error: {error}", file=sys.stderr)
            return 1
        folder = cache_dir(root, config.url, config.username)
        folders = [folder] if (folder / "index.db").exists() else []
    for folder in folders:
        cache = DataCache(folder, max_size=1 << 62)
        try:
            before = cache.usage()
            cache.clear()
        finally:
            cache.close()
        print(f"cleared {format_size(before.bytes)} in {folder}")
    if not folders:
        print(f"nothing cached under {root}")
    return 0
