"""The ``orionfs`` command: one entry point, one subcommand per job.

Each part of the package registers its own subcommands (``register(subparsers)``), so that a command
imports only what it needs: ``orionfs ls`` never loads the server, ``orionfs serve`` never loads FUSE.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from orionfs import __version__


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand registered."""
    from orionfs.cli import cache, commands, mount, recover, stats, status
    from orionfs.server import cli as server_cli

    parser = argparse.ArgumentParser(
        prog="orionfs",
        description="Mount Orion folders as a local directory, and serve a local Orion.",
    )
    parser.add_argument("--version", action="version", version=f"orionfs {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(subparsers)
    server_cli.register(subparsers)
    mount.register(subparsers)
    recover.register(subparsers)
    status.register(subparsers)
    stats.register(subparsers)
    cache.register(subparsers)
    return parser


def _is_helper_call(parser: argparse.ArgumentParser, argv: Sequence[str]) -> bool:
    """Whether ``argv`` is libfuse's generic helper form, ``orionfs SOURCE MOUNTPOINT -o ...``
    (``mount.fuse3 'orionfs#work:/path' /mnt``), not a subcommand."""
    commands: set[str] = set()
    for action in parser._actions:  # argparse keeps the subcommands only there
        if isinstance(action, argparse._SubParsersAction):
            commands |= set(action.choices)
    positional = [arg for arg in argv if not arg.startswith("-")]
    return (
        bool(argv)
        and not argv[0].startswith("-")
        and argv[0] not in commands
        and (len(positional) >= 2)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``orionfs`` command line; returns the process exit code."""
    parser = build_parser()
    if argv is None:
        argv = sys.argv[1:]
    if _is_helper_call(parser, argv):
        from orionfs.cli.helper import main as helper_main

        return helper_main(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
