"""OrionSession: the orionclient session API (shared/orion-api.md) over requests.

``OrionSession`` is composed of one part per concern, each a mixin over :class:`SessionCore`:

- ``orionfs.client.core``: config, adapters, the one request exit ``_request`` (with header
  redaction), JSON answers, paging (also several pages at a time), naming a resource (``_ref``);
- ``orionfs.client.paths``: ``ls_path``, ``stat_path``, ``create_paths``, ``assign_paths``, ...;
- ``orionfs.client.resources``: create / get / list / refresh / update / delete, links;
- ``orionfs.client.tags`` and ``orionfs.client.sharing``: tags, sharing;
- ``orionfs.client.account``: user, project, balance, API versions, authentication;
- ``orionfs.client.content``: ``read_range``, ``download_file``, ``upload_file``,
  ``replace_file_content``.

Errors common to every method that talks to the server: ``InvalidCredentials`` (401 or no token),
``AuthorizationRequired`` (403), ``NotFoundResponse`` (404), ``RateLimitedResponse`` (429 after its
retries), ``BadResponse`` (other 4xx, e.g. 400 bad input, 409 conflict), ``OrionServiceError`` (5xx after
its retries), ``OrionTimeout``, ``OrionConnectionError``; ``ValidationError`` for bad arguments caught
before any request.

Threads: one OrionSession, and its one ``requests.Session``, serves every FUSE thread at once (and the
threads of a parallel listing). requests does not promise that a Session is thread-safe (psf/requests
issue 2766), so this is why sharing ours is safe:

- The connections live in urllib3's pool (``PoolManager`` -> ``HTTPConnectionPool``), which is
  thread-safe: each request takes a connection of its own from a locked queue and puts it back.
- The session's state is only read after ``__init__``: the adapters are mounted there and never
  again; headers, query, timeout, auth and ``verify`` are arguments of each call, never session
  attributes; redirects are not followed (no redirect state).
- The cookie jar is the one thing requests writes on every answer. A session we create refuses all
  cookies (token auth needs none), so the jar stays empty and threads only ever read it. (A
  ``requests_session`` passed in keeps its own cookie policy.)
- The token goes in as requests' ``auth`` (``TokenAuth``). Without an ``auth``, requests reads
  ``~/.netrc`` on every call and, if it names the host, replaces our header with Basic credentials.
- What the OrionSession itself changes after construction, it changes by replacing a whole
  reference: ``config`` (``retrieve_token``), the cached user, ``orion_versions``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from orionfs.client.account import AccountMixin
from orionfs.client.config import (
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RETRY_TIMEOUT,
    PROFILE_ENV,
    SessionConfig,
    get_profile_config,
)
from orionfs.client.content import ContentMixin
from orionfs.client.paths import PathsMixin
from orionfs.client.resources import ResourcesMixin
from orionfs.client.sharing import SharingMixin

__all__ = [
    "APISession",
    "OrionSession",
    "SessionConfig",
    "get_profile_config",
    "get_session",
    "in_orion",
]


class OrionSession(PathsMixin, SharingMixin, AccountMixin, ContentMixin, ResourcesMixin):
    """An HTTP session authenticated against Orion, for getting and creating Orion resources.

    ``OrionSession(config=None, orion_versions=None, requests_session=None)``: ``config`` defaults
    to :func:`get_profile_config` (``ORION_PROFILE`` or ``default``); ``orion_versions`` is the
    server's API versions if already known (else fetched on demand by ``check_api_versions``);
    ``requests_session`` is used instead of a new one (the session's retry adapters are mounted on
    it for the configured URL).
    """


def in_orion() -> bool:
    """True inside an Orion job: ``ORION_JOB_ID`` (or another platform ``ORION_*`` variable) is set.

    ``ORION_PROFILE`` is the client's own variable, so it does not count.
    """
    if os.environ.get("ORION_JOB_ID"):
        return True
    return any(k.startswith("ORION_") and k != PROFILE_ENV for k in os.environ)


def get_session(
    retry_dict: Mapping[int, int] | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
    backoff_dict: Mapping[int, tuple[float, float]] | None = None,
    log_failed_headers: bool = False,
    config: SessionConfig | None = None,
    profile: str | None = None,
) -> OrionSession:
    """A new OrionSession for ``config`` (default: the profile ``profile``/``ORION_PROFILE``/default).

    The arguments override the config's fields (``retry_dict``/``backoff_dict`` only when given).
    Raises ProfileError when no config is given and the profile cannot be loaded.
    """
    base = config if config is not None else get_profile_config(profile)
    changes: dict[str, Any] = {
        "request_timeout": float(request_timeout),
        "retry_timeout": float(retry_timeout),
        "log_failed_headers": bool(log_failed_headers),
    }
    if retry_dict is not None:
        changes["retry_dict"] = dict(retry_dict)
    if backoff_dict is not None:
        changes["backoff_dict"] = dict(backoff_dict)
    return OrionSession(config=base.replace(**changes))


class _LazySession:
    """A proxy that builds the default OrionSession on first attribute access (thread-safe)."""

    def __init__(self) -> None:
        self._session: OrionSession | None = None
        self._lock = threading.Lock()

    def _get(self) -> OrionSession:
        with self._lock:
            if self._session is None:
                self._session = get_session()
            return self._session

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._get(), name)

    def __repr__(self) -> str:
        state = "unbuilt" if self._session is None else repr(self._session)
        return f"<APISession {state}>"


#: The default session (profile ``ORION_PROFILE`` or ``default``), built on first use.
APISession: Any = _LazySession()
