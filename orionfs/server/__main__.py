"""``python -m orionfs.server [serve] ...``: the server's command line without the client's imports."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from orionfs.server import cli


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``orionfs serve`` arguments (the word ``serve`` is optional) and run the server."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] != "serve":
        args_list.insert(0, "serve")
    parser = argparse.ArgumentParser(prog="python -m orionfs.server")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(args_list)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
