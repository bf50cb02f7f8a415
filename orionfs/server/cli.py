"""``orionfs serve``: run the local Orion server.

On every start it writes DATA_DIR/server.json (0600: url, pid, username, token, project, and with
``--test-hooks`` the hooks' secret, new at every start) once the socket is listening, and (unless ``--no-profile``) the client profile section (default ``[local]``)
in ``$ORIONFS_CONFIG_DIR/profiles.ini`` (default ``~/.config/orionfs/profiles.ini``).
"""

from __future__ import annotations

import argparse
import configparser
import io
import ipaddress
import json
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8765
SERVER_JSON = "server.json"
GRACEFUL_SHUTDOWN_SECONDS = 5


@dataclass(frozen=True)
class ServerInfo:
    """What a running server tells its clients (the content of server.json)."""

    url: str
    pid: int
    username: str
    token: str
    project: int
    password: str | None = None
    test_hooks_secret: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of server.json (the password only while it is known, the hooks' secret only
        with ``--test-hooks``)."""
        data: dict[str, Any] = {
            "url": self.url,
            "pid": self.pid,
            "username": self.username,
            "token": self.token,
            "project": self.project,
        }
        if self.password:
            data["password"] = self.password
        if self.test_hooks_secret:
            data["test_hooks_secret"] = self.test_hooks_secret
        return data


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_dir() -> Path:
    """The client's config folder: ``$ORIONFS_CONFIG_DIR`` or ``~/.config/orionfs``."""
    env = os.environ.get("ORIONFS_CONFIG_DIR")
    return Path(env) if env else Path.home() / ".config" / "orionfs"


def write_profile(name: str, info: ServerInfo, folder: Path | None = None) -> Path:
    """Write or update profile section ``name`` in profiles.ini (0600 in a 0700 folder).

    Other sections are preserved. Returns the file's path.
    """
    folder = folder or config_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        # Like ssh: a profile folder others can read or enter would expose the token file's name
        # and let them swap it; tighten it rather than write a token into it.
        folder.chmod(0o700)
    path = folder / "profiles.ini"
    parser = configparser.ConfigParser(interpolation=None)
    if path.exists():
        parser.read(path, encoding="utf-8")
    if not parser.has_section(name):
        parser.add_section(name)
    parser[name]["url"] = info.url
    parser[name]["username"] = info.username
    parser[name]["token"] = info.token
    parser[name]["project"] = str(info.project)
    text = io.StringIO()
    parser.write(text)
    write_private(path, text.getvalue())
    return path


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP (not 0) so that asyncio sets TCP_NODELAY on accepted connections; without it,
    # Nagle plus delayed ACKs add ~40 ms to every keep-alive request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _sample_credentials(storage: Any, data_dir: Path) -> tuple[str, str, int, str | None]:
    """(username, token, project, password) of the sample user, creating it on the first start."""
    from orionfs.server.sample import SAMPLE_USERNAME, create_sample

    previous: dict[str, Any] = {}
    info_path = data_dir / SERVER_JSON
    if info_path.exists():
        try:
            previous = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("ignoring unreadable %s", info_path)
    password = previous.get("password")
    if not storage.has_users():
        sample = create_sample(storage)
        password = sample.password
        # The password is a credential: it goes to the owner-only server.json, never to a log.
        logger.warning("created sample user %r; its password is in %s", sample.username, info_path)
    user = storage.get_user_by_name(previous.get("username") or SAMPLE_USERNAME)
    if user is None:
        raise RuntimeError("the data dir has users but no sample user; remove server.json")
    token = previous.get("token")
    owner = storage.authenticate(token) if isinstance(token, str) else None
    if owner is None or owner.id != user.id:
        token = storage.issue_token(user.id)
    return user.username, token, int(user.default_project or 1), password


def run_server(
    data_dir: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    test_hooks: bool = False,
    ready_callback: Callable[[ServerInfo], None] | None = None,
    log_level: str = "info",
) -> None:
    """Serve until SIGTERM/SIGINT. Writes server.json once listening, then calls ``ready_callback``.

    Raises OSError when the address cannot be bound.
    """
    import uvicorn

    from orionfs.server.app import create_app
    from orionfs.server.storage import Storage

    data = Path(data_dir).resolve()
    storage = Storage(data)
    try:
        username, token, project, password = _sample_credentials(storage, data)
        hooks_secret = secrets.token_hex(20) if test_hooks else None
        app = create_app(data, test_hooks=test_hooks, storage=storage, hooks_secret=hooks_secret)
        sock = _bind(host, port)
        bound_port = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        info = ServerInfo(
            url=f"http://{shown_host}:{bound_port}",
            pid=os.getpid(),
            username=username,
            token=token,
            project=project,
            password=password,
            test_hooks_secret=hooks_secret,
        )

        class _Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: FrameType | None) -> None:
                super().handle_exit(sig, frame)
                # uvicorn re-raises the signal after its graceful shutdown, which would kill the
                # process before the storage is closed; a handled SIGTERM/SIGINT exits with 0.
                captured = getattr(self, "_captured_signals", None)
                if isinstance(captured, list):
                    captured.clear()

            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    write_private(data / SERVER_JSON, json.dumps(info.to_dict(), indent=2) + "\n")
                    logger.info("serving %s on %s (data in %s)", "orionfs", info.url, data)
                    if ready_callback is not None:
                        ready_callback(info)

        config = uvicorn.Config(
            app,
            log_level=log_level,
            access_log=log_level == "debug",
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            server_header=False,
        )
        _Server(config).run(sockets=[sock])
    finally:
        storage.close()
        logger.info("server stopped")


def serve(args: argparse.Namespace) -> int:
    """Handler of ``orionfs serve``; returns the exit code."""
    level = args.log_level.upper()
    server_logger = logging.getLogger("orionfs.server")
    server_logger.setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not is_loopback(args.host) and not args.allow_remote:
        logger.error("refusing to listen on %s (not loopback) without --allow-remote", args.host)
        return 2

    def ready(info: ServerInfo) -> None:
        if not args.no_profile:
            path = write_profile(args.profile_name, info)
            logger.info("wrote profile [%s] to %s", args.profile_name, path)

    try:
        run_server(
            args.data,
            host=args.host,
            port=args.port,
            test_hooks=args.test_hooks,
            ready_callback=ready,
            log_level=args.log_level.lower(),
        )
    except OSError as exc:
        logger.error("cannot serve on %s:%s: %s", args.host, args.port, exc)
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the local Orion-compatible server",
        description="Run the local Orion-compatible REST server (SQLite + blob folder).",
    )
    parser.add_argument("--data", default="./orion-data", help="data folder (default ./orion-data)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 = any free)",
    )
    parser.add_argument("--test-hooks", action="store_true", help="enable /api/v1/_test/ hooks")
    parser.add_argument(
        "--profile-name", default="local", help="client profile to write (default local)"
    )
    parser.add_argument("--no-profile", action="store_true", help="do not write a client profile")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow binding a non-loopback address"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level (default info)",
    )
    parser.set_defaults(func=serve)
