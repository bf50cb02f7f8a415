"""``orionfs recover``: what mounts of an account that died left in its staging folder.

``orionfs recover [--profile NAME] [--staging-dir DIR] [--recovery-dir DIR]`` handles those files
the way the account's next mount does when it starts (orionfs.fs.recovery): files a ``close()``
acknowledged (write-back) are uploaded where that overwrites nothing changed since, the others go
to the recovery folder under their Orion path. ``--list`` only shows them. Files of mounts still
running are never touched.

Prints one line per file; exit status 0, or 1 when an acknowledged file could not be uploaded (it
is then in the recovery folder, and its line says where) or the profile is unusable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orionfs.daemon import MountError


def register(subparsers: Any) -> None:
    """Add ``recover`` to the ``orionfs`` command."""
    parser = subparsers.add_parser(
        "recover",
        help="upload or keep what a mount that died left staged",
        description="Handle the files that mounts of a profile's account left in their staging "
        "folder when they died: acknowledged ones (write-back) are uploaded, the others are "
        "kept in the recovery folder under their Orion path.",
    )
    parser.add_argument("--profile", help="profile name (default: $ORION_PROFILE, else 'default')")
    parser.add_argument(
        "--staging-dir",
        metavar="DIR",
        help="the staging folder the mounts used (default $XDG_STATE_HOME/orionfs/staging)",
    )
    parser.add_argument(
        "--recovery-dir",
        metavar="DIR",
        help="where files not uploaded go (default $XDG_DATA_HOME/orionfs/recovery)",
    )
    parser.add_argument("--list", action="store_true", help="only list them")
    parser.set_defaults(func=cmd_recover)


def cmd_recover(args: argparse.Namespace) -> int:
    """``orionfs recover``: returns the exit status."""
    from orionfs.daemon.checks import load_config
    from orionfs.fs.journal import account_dir
    from orionfs.fs.leftovers import list_leftovers

    try:
        config = load_config(args.profile)
    except MountError as error:
        print(f"orionfs: error: {error}", file=sys.stderr)
        return 1
    account = account_dir(args.staging_dir, config.url, config.username)
    if args.list:
        leftovers = list_leftovers(account)
        for leftover in leftovers:
            state = "acknowledged" if leftover.record.acked else "unsaved"
            print(f"{state}\t{leftover.size}\t{leftover.record.orion_path}")
        if not leftovers:
            print("nothing left by a mount that ended")
        return 0
    return _recover(config, account, args.recovery_dir)


def _recover(config: Any, account: Path, recovery_dir: str | None) -> int:
    from orionfs.client.session import OrionSession
    from orionfs.fs.cache import CachedSession
    from orionfs.fs.leftovers import LeftoverClaim
    from orionfs.fs.openfiles import default_recovery_dir
    from orionfs.fs.recovery import Outcome, recover

    session = OrionSession(config=config)
    stores: dict[str, CachedSession] = {}

    def store_for(root: str) -> CachedSession:
        if root not in stores:
            stores[root] = CachedSession(session, root=root)
        return stores[root]

    def show(outcome: Outcome) -> None:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        print(f"{outcome.result}\t{outcome.orion_path}{detail}")

    claim = LeftoverClaim.take(account)
    if not claim.leftovers:
        claim.release()
        print("nothing left by a mount that ended")
        return 0
    target = Path(recovery_dir) if recovery_dir else default_recovery_dir()
    try:
        report = recover(claim, store_for, target, on_done=show)
    finally:
        session.close()
    print(report.summary())
    return 1 if report.failed else 0
