"""Client subcommands of ``orionfs``: ``profile add|list|show``, ``ls``, ``stat``, ``tag``, ``untag``.

Handlers return an int exit code; an error is one clear line on stderr and exit code 1. A token is
never printed in full (``profile show`` prints its first 4 characters and an ellipsis); ``profile
add`` reads it from ``--token``, ``--token-stdin``, a login (``--username``) or, on a terminal, a
prompt that does not echo it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import getpass
import json
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from orionfs.client import config as cfg
from orionfs.client import wire
from orionfs.client.session import OrionSession
from orionfs.client.types import resource_from_entry
from orionfs.exceptions import OrionConnectionError, OrionError, OrionTimeout, ValidationError

Handler = Callable[[argparse.Namespace], int]

#: Columns of ``orionfs ls`` (long form).
_LS_COLUMNS = (wire.F_RESOURCE_TYPE, wire.F_ID, wire.F_SIZE, wire.F_MODIFIED, wire.F_NAME)


def mask_token(token: str) -> str:
    """A token shown safely: its first 4 characters and an ellipsis."""
    return (token[:4] + "…") if token else ""


def _fail(message: str) -> int:
    print(f"orionfs: error: {message}", file=sys.stderr)
    return 1


def _handles_errors(handler: Handler) -> Handler:
    """Turn an OrionError into one line on stderr and exit code 1."""

    @functools.wraps(handler)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except OrionError as exc:
            return _fail(str(exc) or type(exc).__name__)
        except OSError as exc:
            return _fail(str(exc))

    return wrapper


def _session(args: argparse.Namespace) -> OrionSession:
    """The session of ``--profile`` (else ORION_PROFILE, else default)."""
    return OrionSession(config=cfg.get_profile_config(getattr(args, "profile", None)))


# --- profile ----------------------------------------------------------------------------------
def _read_secret_line(what: str) -> str:
    """The first line of stdin, without its line end; raises ValidationError when it is empty."""
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise ValidationError(f"no {what} on stdin")
    return value


def _stdin_is_a_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdin
        return False


def _profile_token(args: argparse.Namespace, url: str, username: str) -> str:
    """The token of ``profile add``: ``--token``, ``--token-stdin``, a login with ``--username``
    and a password, or a prompt on a terminal. Raises ValidationError when there is none."""
    given = [o for o, on in (("--token", args.token), ("--token-stdin", args.token_stdin)) if on]
    if args.password_stdin:
        given.append("--password-stdin")
    if len(given) > 1:
        raise ValidationError(f"give only one of {', '.join(given)}")
    if args.token:
        return args.token
    if args.token_stdin:
        return _read_secret_line("token")
    if username:
        if args.password_stdin:
            password = _read_secret_line("password")
        else:
            password = getpass.getpass(f"Password for {username} at {url}: ")
        login = OrionSession(
            config=cfg.SessionConfig(
                url=url,
                username=username,
                request_timeout=PROFILE_CHECK_TIMEOUT,
                retry_timeout=PROFILE_CHECK_TIMEOUT,
            )
        )
        return login.retrieve_token(username, password)
    if args.password_stdin:
        raise ValidationError("--password-stdin needs --username")
    if not _stdin_is_a_tty():
        raise ValidationError("give --token TOKEN, --token-stdin, or --username USER to log in")
    token = getpass.getpass(f"Token for {url} (made in Orion under My Tokens): ").strip()
    if not token:
        raise ValidationError("no token given")
    return token


#: Seconds ``profile add`` waits for the server (its login or its check of the token).
PROFILE_CHECK_TIMEOUT: float = 10.0


def _one_line_transport_errors(url: str) -> contextlib.AbstractContextManager[None]:
    """While ``profile add`` talks to the server: urllib3's retry warnings are dropped and an
    unreachable server is one line (ValidationError: "cannot reach URL: Connection refused")."""
    from orionfs.daemon.checks import quiet_retries, root_cause  # the mount's own one-liners

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        try:
            with quiet_retries():
                yield
        except (OrionConnectionError, OrionTimeout) as error:
            raise ValidationError(f"cannot reach {url}: {root_cause(error)}") from error

    return guard()


@_handles_errors
def _profile_add(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"--url must be http(s)://HOST[:PORT], not {args.url!r}")
    username = args.username or ""
    with _one_line_transport_errors(url):
        token = _profile_token(args, url, username)
        if not username:
            probe = OrionSession(
                config=cfg.SessionConfig(
                    url=url,
                    token=token,
                    request_timeout=PROFILE_CHECK_TIMEOUT,
                    retry_timeout=PROFILE_CHECK_TIMEOUT,
                )
            )
            username = getattr(probe.get_user_profile(), wire.F_USERNAME, None) or ""
    path = cfg.save_profile(args.name, url, username, token, project=args.project)
    print(f"saved profile '{args.name}' ({username} at {url}) in {path}")
    return 0


@_handles_errors
def _profile_list(args: argparse.Namespace) -> int:
    current = os.environ.get(cfg.PROFILE_ENV) or cfg.DEFAULT_PROFILE
    for name in cfg.list_profiles():
        print(f"{'*' if name == current else ' '} {name}")
    return 0


@_handles_errors
def _profile_show(args: argparse.Namespace) -> int:
    conf = cfg.get_profile_config(args.name)
    print(f"profile:  {conf.profile}")
    print(f"url:      {conf.url}")
    print(f"username: {conf.username}")
    print(f"token:    {mask_token(conf.token)}")
    if conf.project is not None:
        print(f"project:  {conf.project}")
    return 0


# --- storage ----------------------------------------------------------------------------------
@_handles_errors
def _ls(args: argparse.Namespace) -> int:
    session = _session(args)
    if args.json:
        listing = session.ls_path(args.path)
        json.dump(listing[wire.F_RESULTS], sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    for entry in session.iter_ls_path(args.path):
        if args.long:
            print("\t".join(str(entry.get(col, "")) for col in _LS_COLUMNS))
        else:
            suffix = "/" if entry.get(wire.F_RESOURCE_TYPE) in (wire.FOLDER,) else ""
            print(f"{entry.get(wire.F_NAME)}{suffix}")
    return 0


@_handles_errors
def _stat(args: argparse.Namespace) -> int:
    entry = _session(args).stat_path(args.path)
    if args.json:
        json.dump(entry, sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    for key in sorted(entry):
        value = entry[key]
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        print(f"{key}: {value}")
    return 0


def _tag_command(remove: bool) -> Handler:
    @_handles_errors
    def handler(args: argparse.Namespace) -> int:
        session = _session(args)
        resource = resource_from_entry(session.stat_path(args.path), session)
        if remove:
            tags = session.untag_resource(resource, *args.tags)
        else:
            tags = session.tag_resource(resource, *args.tags)
        print("\n".join(tags))
        return 0

    return handler


def _add_profile_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default=None, help="profile to use (default: $ORION_PROFILE, else 'default')"
    )


def register(subparsers: Any) -> None:
    """Add the client subcommands to the ``orionfs`` parser's subparsers."""
    profile = subparsers.add_parser("profile", help="manage connection profiles")
    profile_sub = profile.add_subparsers(dest="profile_command", metavar="ACTION", required=True)

    add = profile_sub.add_parser("add", help="add or replace a profile")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--url", required=True, help="Orion base URL, e.g. http://127.0.0.1:8000")
    add.add_argument(
        "--token", help="an API token (visible to other local users in the process list: prefer "
        "--token-stdin, or give none to be asked for it)"
    )  # fmt: skip
    add.add_argument(
        "--token-stdin", action="store_true", help="read the token from stdin's first line"
    )
    add.add_argument("--username", help="user name (with no token: log in to get a token)")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    add.add_argument("--project", type=int, default=None, help="project id to work in")
    add.set_defaults(func=_profile_add)

    lst = profile_sub.add_parser("list", help="list profiles (* marks the current one)")
    lst.set_defaults(func=_profile_list)

    show = profile_sub.add_parser("show", help="show a profile (the token masked)")
    show.add_argument("name", nargs="?", default=None, metavar="NAME")
    show.set_defaults(func=_profile_show)

    ls = subparsers.add_parser("ls", help="list an Orion folder")
    ls.add_argument("path", metavar="PATH")
    ls.add_argument("--json", action="store_true", help="print the entries as JSON")
    ls.add_argument("-l", "--long", action="store_true", help="type, id, size, modified, name")
    _add_profile_option(ls)
    ls.set_defaults(func=_ls)

    st = subparsers.add_parser("stat", help="show one Orion path's details")
    st.add_argument("path", metavar="PATH")
    st.add_argument("--json", action="store_true", help="print the entry as JSON")
    _add_profile_option(st)
    st.set_defaults(func=_stat)

    for name, remove, text in (("tag", False, "add tags to"), ("untag", True, "remove tags from")):
        cmd = subparsers.add_parser(name, help=f"{text} the item at an Orion path")
        cmd.add_argument("path", metavar="PATH")
        cmd.add_argument("tags", nargs="+", metavar="TAG")
        _add_profile_option(cmd)
        cmd.set_defaults(func=_tag_command(remove))
