"""The ``orion://`` URL rules and the choice of profile (pure functions, no I/O but the profile file).

URLs::

    orion://project/1/user/me/data.csv          the Orion path /project/1/user/me/data.csv
    orion://work@project/1/user/me/data.csv     the same path, through the profile "work"
    orion://                                    the root (it lists "project")

Every Orion path starts with ``/project``, so the part before the first ``/`` of a URL is always
``project`` (or empty, for the root); a ``PROFILE@`` in front of it names the profile, the way a
user name goes in front of a host. Inside the filesystem, paths are the URL without ``orion://``
and without the profile: ``project/1/user/me/data.csv`` (fsspec's convention for remote paths; a
leading ``/``, as in an Orion path, is accepted too).

The profile (:func:`session_config`): the ``profile`` storage option, else the profile the URL
names, else ``url=`` with ``token=`` (no profile file), else ``$ORION_PROFILE``, else ``default``.
"""

from __future__ import annotations

import os
from typing import Any

from orionfs.client.config import (
    DEFAULT_PROFILE,
    PROFILE_ENV,
    SessionConfig,
    get_profile_config,
)
from orionfs.exceptions import ValidationError

__all__ = [
    "PROTOCOL",
    "fs_path",
    "make_url",
    "orion_path",
    "profile_of_url",
    "resolve_profile",
    "session_config",
    "split_url",
    "strip_url",
]

PROTOCOL = "orion"
URL_PREFIX = f"{PROTOCOL}://"
PROFILE_SEPARATOR = "@"
SEP = "/"


def split_url(url: str) -> tuple[str | None, str]:
    """``(profile or None, filesystem path)`` of an ``orion://`` URL or of a path.

    Raises ValidationError for an empty ``PROFILE@``.
    """
    text = str(url)
    profile: str | None = None
    if text.startswith(URL_PREFIX):
        text = text[len(URL_PREFIX) :]
        head, slash, tail = text.partition(SEP)
        if PROFILE_SEPARATOR in head:
            profile, _, head = head.rpartition(PROFILE_SEPARATOR)
            if not profile:
                raise ValidationError(f"empty profile name in {url!r}")
            text = head + slash + tail
    return profile, text.strip(SEP)


def strip_url(url: str) -> str:
    """The filesystem path of a URL or path: no ``orion://``, no profile, no outer slashes."""
    return split_url(url)[1]


def profile_of_url(url: str) -> str | None:
    """The profile a URL names (``orion://PROFILE@project/...``), or None."""
    return split_url(url)[0]


def orion_path(path: str) -> str:
    """The Orion path of a filesystem path (``project/1`` -> ``/project/1``; ``""`` -> ``/``)."""
    return SEP + strip_url(path)


def fs_path(orion: str) -> str:
    """The filesystem path of an Orion path (``/project/1`` -> ``project/1``)."""
    return orion.strip(SEP)


def make_url(path: str, profile: str | None = None) -> str:
    """The ``orion://`` URL of a filesystem path, naming ``profile`` when one is given."""
    prefix = f"{profile}{PROFILE_SEPARATOR}" if profile else ""
    return f"{URL_PREFIX}{prefix}{strip_url(path)}"


def resolve_profile(options: dict[str, Any]) -> dict[str, Any]:
    """Storage options with the profile decided: ``profile`` is filled in from ``$ORION_PROFILE``
    (else ``default``) when the options name no profile, URL, config or session.

    Deciding it here, when the filesystem is made, keeps fsspec's instance cache and pickled
    filesystems (Dask workers) on the profile that was in force then.
    """
    given = ("profile", "url", "token", "config", "session")
    if any(options.get(key) is not None for key in given):
        return options
    return {**options, "profile": os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE}


def session_config(
    profile: str | None = None,
    url: str | None = None,
    token: str | None = None,
    username: str | None = None,
    project: int | None = None,
    request_timeout: float | None = None,
) -> SessionConfig:
    """The SessionConfig for the storage options (see the module docstring for the order).

    Raises ValidationError for ``url`` without ``token`` (or the reverse) or for both a profile and
    a url, ProfileError when the profile cannot be loaded.
    """
    if url is not None or token is not None:
        if profile is not None:
            raise ValidationError("give either a profile or url= with token=, not both")
        if not url or not token:
            raise ValidationError("url= needs token= (and token= needs url=)")
        config = SessionConfig(url=url, token=token, username=username or "", project=project)
    else:
        config = get_profile_config(profile)
        changes: dict[str, Any] = {}
        if username is not None:
            changes["username"] = username
        if project is not None:
            changes["project"] = project
        if changes:
            config = config.replace(**changes)
    if request_timeout is not None:
        config = config.replace(request_timeout=float(request_timeout))
    return config
