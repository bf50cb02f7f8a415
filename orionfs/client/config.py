"""Client configuration: ``SessionConfig``, the named defaults, and the profiles file.

Profiles live in ``config_dir()/profiles.ini`` (``ORIONFS_CONFIG_DIR``, else ``~/.config/orionfs``),
one INI section per profile with keys ``url``, ``username``, ``token`` and optional ``project``. The
file holds tokens, so like ssh we keep it 0600 in a 0700 folder, create it that way, and refuse to
read a file that group or others can read (``save_profile`` repairs the permissions).

Inside an Orion job (:func:`in_orion`: ``ORION_JOB_ID`` is set) there is no profiles file: the
platform hands the job its connection in environment variables, and :func:`get_profile_config`
returns that configuration whatever profile is asked for. Which variables the platform sets is not
public (shared/orion-api.md); ours are an inference, kept in ``JOB_*_ENVS`` so that they can be
corrected in one place: url from ``ORION_API_URL`` (else ``ORION_URL``), token from
``ORION_API_TOKEN`` (else ``ORION_TOKEN``), username from ``ORION_USERNAME``, project from
``ORION_PROJECT_ID`` (else ``ORION_PROJECT``).

Nothing here reads the environment at import time; every function reads it when called.
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orionfs.exceptions import ProfileError

__all__ = [
    "CONFIG_DIR_ENV",
    "DEFAULT_BACKOFF",
    "DEFAULT_BACKOFF_DICT",
    "DEFAULT_CONNECT_RETRIES",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_PROFILE",
    "DEFAULT_READ_RETRIES",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_RETRY_DICT",
    "DEFAULT_RETRY_TIMEOUT",
    "JOB_ID_ENV",
    "PROFILE_ENV",
    "SessionConfig",
    "config_dir",
    "get_profile_config",
    "in_orion",
    "list_profiles",
    "profiles_path",
    "save_profile",
]

#: Seconds to wait for a connection or for the next byte of an answer. Orion's load balancer cuts
#: requests at 60 s, so shorter timeouts are discouraged for general use (tests use short ones).
DEFAULT_REQUEST_TIMEOUT: float = 60.0
#: Overall seconds after a request's first failure during which retries may still happen.
DEFAULT_RETRY_TIMEOUT: float = 3600.0
#: Retries per HTTP status. 429 is retried many times (Orion rate-limits bursts); 5xx a few times.
#: 403/404/409 are NOT retried by default, although OpenEye's own jobs do: for an interactive mount
#: they are answers (no access / no such file / exists), and retrying them only turns a quick
#: ENOENT into a long hang. Pass them in ``retry_dict`` to get OpenEye's behaviour.
DEFAULT_RETRY_DICT: Mapping[int, int] = {429: 45, 500: 2, 502: 3, 503: 3, 504: 3}
#: (base, cap) seconds of the decorrelated-jitter backoff, for statuses without their own entry.
DEFAULT_BACKOFF: tuple[float, float] = (0.1, 90.0)
#: Per-status (base, cap) seconds; empty means DEFAULT_BACKOFF for every status.
DEFAULT_BACKOFF_DICT: Mapping[int, tuple[float, float]] = {}
#: Retries of a failed connect (the request was never sent, so any method is safe to retry).
DEFAULT_CONNECT_RETRIES: int = 2
#: Retries of a read error / dropped connection (idempotent methods only).
DEFAULT_READ_RETRIES: int = 2
#: Connections kept per host (the FUSE loop is multi-threaded).
DEFAULT_POOL_SIZE: int = 32
DEFAULT_PROFILE: str = "default"
PROFILE_ENV: str = "ORION_PROFILE"
#: Set by the platform inside an Orion job (its id).
JOB_ID_ENV: str = "ORION_JOB_ID"
#: Where a job's connection comes from, first variable set wins (inferred, see the module docstring).
JOB_URL_ENVS: tuple[str, ...] = ("ORION_API_URL", "ORION_URL")
JOB_TOKEN_ENVS: tuple[str, ...] = ("ORION_API_TOKEN", "ORION_TOKEN")
JOB_USERNAME_ENVS: tuple[str, ...] = ("ORION_USERNAME",)
JOB_PROJECT_ENVS: tuple[str, ...] = ("ORION_PROJECT_ID", "ORION_PROJECT")
CONFIG_DIR_ENV: str = "ORIONFS_CONFIG_DIR"
PROFILES_FILE: str = "profiles.ini"

_DIR_MODE = 0o700
_FILE_MODE = 0o600
_KEY_URL, _KEY_USERNAME, _KEY_TOKEN, _KEY_PROJECT = "url", "username", "token", "project"


@dataclass(frozen=True)
class SessionConfig:
    """Everything an OrionSession needs; built once at the edge and passed down.

    ``retry_dict`` / ``backoff_dict`` of None mean the module defaults. The token never appears in
    ``repr()``.
    """

    url: str = ""
    username: str = ""
    token: str = field(default="", repr=False)
    profile: str = DEFAULT_PROFILE
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    retry_dict: Mapping[int, int] | None = None
    backoff_dict: Mapping[int, tuple[float, float]] | None = None
    retry_timeout: float = DEFAULT_RETRY_TIMEOUT
    log_failed_headers: bool = False
    project: int | None = None
    verify_ssl: bool = True

    def replace(self, **changes: object) -> SessionConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def config_dir() -> Path:
    """The configuration folder: ``$ORIONFS_CONFIG_DIR``, else ``~/.config/orionfs``."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "orionfs"


def profiles_path() -> Path:
    """The profiles file, ``config_dir()/profiles.ini``."""
    return config_dir() / PROFILES_FILE


def _check_permissions(path: Path) -> None:
    """Refuse a profiles file that group or others may read or write, as ssh does for keys."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ProfileError(
            f"permissions {mode:04o} for '{path}' are too open: it holds tokens and must be "
            f"readable by its owner only; run 'chmod 600 {path}' (or save a profile to repair it)"
        )


def _read_profiles(path: Path | None = None) -> configparser.ConfigParser:
    """Parse the profiles file; raises ProfileError when it is missing, unsafe or malformed."""
    path = path or profiles_path()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        _check_permissions(path)
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError as exc:
        raise ProfileError(
            f"no profiles file at '{path}'; add one with 'orionfs profile add NAME --url URL ...'"
        ) from exc
    except configparser.Error as exc:
        raise ProfileError(f"cannot parse '{path}': {exc}") from exc
    except OSError as exc:
        raise ProfileError(f"cannot read '{path}': {exc}") from exc
    return parser


def list_profiles() -> list[str]:
    """The profile names in the profiles file (empty when there is no file).

    Raises ProfileError for an unsafe or malformed file.
    """
    if not profiles_path().exists():
        return []
    return _read_profiles().sections()


def _parse_project(value: str | None, path: Path, name: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ProfileError(f"profile '{name}' in '{path}': project must be an integer") from exc


def in_orion() -> bool:
    """True inside an Orion job: ``ORION_JOB_ID`` is set (other ``ORION_*`` variables do not count)."""
    return bool(os.environ.get(JOB_ID_ENV))


def _first_env(names: tuple[str, ...]) -> tuple[str, str]:
    """(value, name) of the first of ``names`` set to a non-blank value, else ("", "")."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value, name
    return "", ""


def _job_config() -> SessionConfig:
    """The configuration the platform gives a job; raises ProfileError naming what is missing."""
    url, _ = _first_env(JOB_URL_ENVS)
    token, _ = _first_env(JOB_TOKEN_ENVS)
    if not url or not token:
        names = ", ".join(JOB_URL_ENVS if not url else JOB_TOKEN_ENVS)
        raise ProfileError(f"inside an Orion job ({JOB_ID_ENV} is set), but none of {names} is set")
    project, project_var = _first_env(JOB_PROJECT_ENVS)
    try:
        project_id = int(project) if project else None
    except ValueError as exc:
        raise ProfileError(f"{project_var} must be an integer") from exc
    return SessionConfig(
        url=url,
        username=_first_env(JOB_USERNAME_ENVS)[0],
        token=token,
        profile=f"job {os.environ.get(JOB_ID_ENV, '').strip()}",
        project=project_id,
    )


def get_profile_config(profile: str | None = None) -> SessionConfig:
    """The SessionConfig of a profile: ``profile``, else ``$ORION_PROFILE``, else ``default``.

    Inside an Orion job (:func:`in_orion`) the job's configuration from the environment, whatever
    ``profile`` is (see the module docstring for the variables). Raises ProfileError (naming the
    file) when the file is missing or unsafe, the profile is absent, or it lacks a url or token;
    inside a job, when the job's url or token variable is not set.
    """
    if in_orion():
        return _job_config()
    name = profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    path = profiles_path()
    parser = _read_profiles(path)
    if not parser.has_section(name):
        known = ", ".join(parser.sections()) or "none"
        raise ProfileError(f"no profile '{name}' in '{path}' (profiles: {known})")
    section = parser[name]
    url = section.get(_KEY_URL, "").strip()
    token = section.get(_KEY_TOKEN, "").strip()
    if not url or not token:
        raise ProfileError(
            f"profile '{name}' in '{path}' needs both '{_KEY_URL}' and '{_KEY_TOKEN}'"
        )
    return SessionConfig(
        url=url,
        username=section.get(_KEY_USERNAME, "").strip(),
        token=token,
        profile=name,
        project=_parse_project(section.get(_KEY_PROJECT), path, name),
    )


def _ensure_private_dir(folder: Path) -> None:
    folder.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) != _DIR_MODE:
        os.chmod(folder, _DIR_MODE)


def save_profile(
    name: str, url: str, username: str, token: str, project: int | None = None
) -> Path:
    """Add or replace a profile; returns the profiles file path.

    The folder is made 0700 and the file written atomically as 0600 (which also repairs a file that
    had looser permissions). Raises ProfileError for an empty name/url/token or an unreadable file.
    """
    if not name or any(c in name for c in "[]\n\r") or name != name.strip():
        raise ProfileError(f"bad profile name: {name!r}")
    if not url or not token:
        raise ProfileError("a profile needs a url and a token")
    path = profiles_path()
    _ensure_private_dir(path.parent)
    parser = configparser.ConfigParser(interpolation=None)
    if path.exists():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, _FILE_MODE)  # repair first, so the read below is allowed
        parser = _read_profiles(path)
    parser[name] = {_KEY_URL: url, _KEY_USERNAME: username, _KEY_TOKEN: token}
    if project is not None:
        parser[name][_KEY_PROJECT] = str(int(project))
    fd, tmp = tempfile.mkstemp(prefix=".profiles.", dir=path.parent)  # created 0600
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            parser.write(fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
