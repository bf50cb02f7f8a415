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

Module functions, as documented for orionclient: ``in_orion()``, ``get_profile_config(profile=None)``
(both in ``orionfs.client.config``) and ``get_session(...)``, which returns a plain retrying
``requests.Session``, not an OrionSession. ``APISession`` is the OrionSession of the default profile,
built on first use.

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

import threading
from collections.abc import Mapping
from typing import Any

import requests

from orionfs.client.account import AccountMixin
from orionfs.client.config import (
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RETRY_DICT,
    DEFAULT_RETRY_TIMEOUT,
    SessionConfig,
    get_profile_config,
    in_orion,
)
from orionfs.client.content import ContentMixin
from orionfs.client.paths import PathsMixin
from orionfs.client.resources import ResourcesMixin
from orionfs.client.sharing import SharingMixin
from orionfs.client.transport import RetryingSession

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
    to :func:`get_profile_config` (``ORION_PROFILE`` or ``default``; inside an Orion job, the job's
    configuration); ``orion_versions`` is the server's API versions if already known (else fetched
    on demand by ``check_api_versions``); ``requests_session`` is used instead of a new one (the
    session's retry adapters are mounted on it for the configured URL).
    """


def get_session(
    retry_dict: Mapping[int, int] | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
    backoff_dict: Mapping[int, tuple[float, float]] | None = None,
    log_failed_headers: bool = False,
) -> requests.Session:
    """A plain ``requests.Session`` (no Orion credentials) that retries per status code.

    ``retry_dict``: status -> retries (default ``DEFAULT_RETRY_DICT``: 429 and 5xx); only
    idempotent methods are retried on a bad status (any method on 429). ``backoff_dict``: status ->
    (base, cap) seconds of the jittered backoff. ``retry_timeout``: seconds after a request's first
    failure after which no retry starts. ``request_timeout``: seconds, for every request that does
    not pass its own ``timeout`` (below 60 s is discouraged against Orion, whose load balancer
    allows 60 s). ``log_failed_headers``: log the redacted headers of failed requests.
    """
    return RetryingSession(
        retry_dict=dict(retry_dict) if retry_dict is not None else DEFAULT_RETRY_DICT,
        request_timeout=float(request_timeout),
        retry_timeout=float(retry_timeout),
        backoff_dict=dict(backoff_dict) if backoff_dict is not None else None,
        log_failed_headers=bool(log_failed_headers),
    )


class _LazyDefaultSession(OrionSession):
    """The OrionSession of the default profile, built on first use, once, under a lock.

    Construction reads nothing; the first access to the session's state (``config``, the
    connection pool...) runs ``OrionSession.__init__`` with the default config. A build that fails
    (e.g. no profiles file: ProfileError) raises, and the next access tries again.
    """

    def __init__(self) -> None:  # OrionSession.__init__ runs later, in _build
        self._build_lock = threading.RLock()
        self._built = False
        self._building = False

    def _build(self) -> None:
        with self._build_lock:
            if self._built or self._building:
                return
            self._building = True
            try:
                OrionSession.__init__(self)
                self._built = True
            finally:
                self._building = False

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes not found: before the build, the session's state. Another
        # thread waits on the lock for the build; this thread, inside its own build, gets the
        # AttributeError of an attribute that is not set yet.
        if name.startswith("__") or self.__dict__.get("_built", True):
            raise AttributeError(name)
        self._build()
        return object.__getattribute__(self, name)

    def close(self) -> None:
        if self._built:
            super().close()

    def __repr__(self) -> str:
        return super().__repr__() if self._built else "<APISession, not built yet>"


#: The default session (profile ``ORION_PROFILE`` or ``default``; inside a job, the job's), an
#: OrionSession built on first use.
APISession: OrionSession = _LazyDefaultSession()
