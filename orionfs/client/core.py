"""The session core: configuration, adapters, the one request exit, JSON answers and paging.

:class:`SessionCore` is the base of every part of :class:`orionfs.client.session.OrionSession`. All
HTTP goes through :meth:`SessionCore._request`: it builds the URL from the wire map
(``orionfs.client.wire``, quoting path parts), sends the token, applies the configured timeout, and
turns a bad status into the matching exception of ``orionfs.exceptions`` (by status code, never by
message text). Retries are declared in ``orionfs.client.transport`` (an urllib3 ``Retry`` on the
adapter), not looped here.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Self

import requests
import urllib3.exceptions

from orionfs.client import wire
from orionfs.client.config import DEFAULT_RETRY_DICT, SessionConfig, get_profile_config
from orionfs.client.sendfile import SendfileAdapter
from orionfs.client.transport import (
    OrionHTTPAdapter,
    TokenAuth,
    build_no_retry,
    build_retry,
    redact,
    transport_error,
)
from orionfs.client.types import Link, OrionResource, ResourceKey, User, resource_class
from orionfs.exceptions import (
    BadResponse,
    InvalidCredentials,
    ValidationError,
    exception_for_status,
)

__all__ = ["ResourceRef", "SessionCore", "check_int", "check_path", "entry_list"]

logger = logging.getLogger(__name__)

#: Parallel listing: pages fetched or waiting ahead of the caller, per page in flight.
PAGES_AHEAD: int = 2

#: Endpoints that the server makes idempotent although they are POSTs (sets of tags / shares; a
#: read-only lookup): they may be retried like GETs.
_IDEMPOTENT_POSTS = (
    wire.TAGS.split("{", 1)[0],
    wire.SHARING.split("{", 1)[0],
    wire.PATHS_GET,
)
#: How a caller may name a resource: a ResourceKey, an object, an Entry/link dict, or a Link.
ResourceRef = ResourceKey | OrionResource | Mapping[str, Any] | Link


def check_int(value: Any, what: str) -> int:
    """``value`` if it is an int (not a bool); raises ValidationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer, not {value!r}")
    return value


def check_path(path: Any) -> str:
    """An absolute Orion path string; raises ValidationError otherwise (the server checks the rest)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValidationError(f"an Orion path must be an absolute string, not {path!r}")
    return path


def entry_list(answer: Any, key: str) -> list[dict[str, Any]]:
    """The list of Entry dicts under ``key`` of a JSON answer (empty if the server sent none)."""
    items = answer.get(key) if isinstance(answer, Mapping) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return wire.TRUE if value else wire.FALSE
    if isinstance(value, list | tuple | set | frozenset):
        return wire.LIST_SEPARATOR.join(str(v) for v in value)
    return str(value)


def _refuse_cookies(http: requests.Session) -> None:
    """Make the session's cookie jar refuse every cookie (token auth needs none), so the jar is
    never written after construction and threads only ever read it (see the session module)."""
    http.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))


class SessionCore:
    """Configuration, the connection pool with its retry adapters, ``_request``, JSON and paging.

    ``config`` defaults to :func:`get_profile_config` (``ORION_PROFILE`` or ``default``);
    ``orion_versions`` is the server's API versions if already known (else fetched on demand);
    ``requests_session`` is used instead of a new one (the retry adapters are mounted on it for
    the configured URL; its cookie policy is the caller's).
    """

    def __init__(
        self,
        config: SessionConfig | None = None,
        orion_versions: Mapping[str, str] | None = None,
        requests_session: requests.Session | None = None,
    ) -> None:
        self.config = config if config is not None else get_profile_config()
        self.orion_versions = dict(orion_versions) if orion_versions is not None else None
        if requests_session is None:
            requests_session = requests.Session()
            _refuse_cookies(requests_session)
        self._http = requests_session
        self._user_cache: User | None = None
        self._base = self.config.url.rstrip("/")
        retry_dict = self.config.retry_dict
        if retry_dict is None:
            retry_dict = DEFAULT_RETRY_DICT
        adapter = OrionHTTPAdapter(
            build_retry(retry_dict, self.config.backoff_dict, self.config.retry_timeout)
        )
        idempotent_post = OrionHTTPAdapter(
            build_retry(retry_dict, self.config.backoff_dict, self.config.retry_timeout, True)
        )
        if self._base:
            self._http.mount(self._base + "/", adapter)
            for prefix in _IDEMPOTENT_POSTS:
                self._http.mount(self._base + prefix, idempotent_post)
        # Streamed requests (``_request(retry=False)``) go out through a pool that never retries,
        # over plain HTTP with sendfile(2) for the pieces that are files (orionfs.client.sendfile).
        self._http_once = requests.Session()
        _refuse_cookies(self._http_once)
        if self._base:
            self._http_once.mount(self._base + "/", SendfileAdapter(build_no_retry()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.config.url!r}, username={self.config.username!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()
        self._http_once.close()

    def _request(
        self,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
        auth: tuple[str, str] | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """The one way out to the network: send one request and return the 2xx response.

        Raises the exception class of a non-2xx status (after the declared retries; a 3xx is a
        BadResponse, redirects are not followed), OrionTimeout / OrionConnectionError for
        transport failures, InvalidCredentials when no token is configured (unless ``auth`` gives
        HTTP Basic credentials instead), ValidationError when no URL is configured.
        ``retry=False``: never sent again (a streamed body), not even after a dropped connection.
        """
        if not self._base:
            raise ValidationError("no Orion URL configured")
        url = self._base + wire.build_path(template, **(path_params or {}))
        send_auth: tuple[str, str] | TokenAuth
        if auth is not None:
            send_auth = auth
        elif self.config.token:
            send_auth = TokenAuth(self.config.token)
        else:
            raise InvalidCredentials(custom_error_msg="no token configured for this session")
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        wait = timeout if timeout is not None else self.config.request_timeout
        try:
            http = self._http if retry else self._http_once
            response = http.request(
                method,
                url,
                params=query or None,
                json=json,
                data=data,
                headers=headers,
                timeout=wait,
                stream=stream,
                auth=send_auth,
                verify=self.config.verify_ssl,
                allow_redirects=False,
            )
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            error = transport_error(exc)
            if self.config.log_failed_headers:
                logger.warning(
                    "%s %s failed (%s); request headers: %s",
                    method, url, type(error).__name__, redact(headers or {}),
                )  # fmt: skip
            raise error from exc
        logger.debug("%s %s -> %s", method, template, response.status_code)
        if not 200 <= response.status_code < 300:
            if self.config.log_failed_headers:
                logger.warning(
                    "%s %s -> %s; request headers: %s; response headers: %s",
                    method, url, response.status_code,
                    redact(response.request.headers), redact(response.headers),
                )  # fmt: skip
            if stream:
                response.content  # noqa: B018 - read the (small) error body before closing
                response.close()
            raise exception_for_status(response.status_code)(response)
        return response

    @staticmethod
    def _json(response: requests.Response) -> Any:
        """The JSON body; raises BadResponse when it is not JSON."""
        try:
            return response.json()
        except ValueError as exc:
            raise BadResponse(response, "the server answered with invalid JSON") from exc

    # --- paging -----------------------------------------------------------------------------
    def _iter_pages(
        self,
        template: str,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        *,
        parallel: int = 1,
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Yield (count, results) per page, by ``offset += len(results)`` while ``next`` is set.

        ``parallel`` > 1: once the first page gives the total ``count``, the remaining pages are
        fetched that many at a time and yielded in order (the same ceil(count / page) requests as
        one after another); a folder that grew meanwhile is finished one page after another.
        """
        query = dict(params or {})
        offset = check_int(query.pop(wire.Q_OFFSET, 0), wire.Q_OFFSET)
        limit = check_int(query.pop(wire.Q_LIMIT, wire.PAGE_LIMIT_DEFAULT), wire.Q_LIMIT)
        count, results, more = self._page(template, path_params, query, limit, offset, timeout)
        yield count, results
        offset += len(results)
        if parallel > 1 and more and results:
            step = len(results)  # the server's effective page size (it may cap ``limit``)
            offsets = range(offset, count, step)
            for count, results, more in self._parallel_pages(
                template, path_params, query, step, offsets, parallel, timeout
            ):
                yield count, results
                offset += len(results)
                if len(results) < step:  # shrank meanwhile: the rest is past the end
                    more = more and bool(results)
                    break
        while more and results:
            count, results, more = self._page(template, path_params, query, limit, offset, timeout)
            yield count, results
            offset += len(results)

    def _parallel_pages(
        self,
        template: str,
        path_params: Mapping[str, Any] | None,
        query: Mapping[str, Any],
        step: int,
        offsets: range,
        parallel: int,
        timeout: float | None,
    ) -> Iterator[tuple[int, list[dict[str, Any]], bool]]:
        """The pages at ``offsets``, fetched ``parallel`` at a time, yielded in order; the ones not
        yet started are cancelled when the caller stops early. At most PAGES_AHEAD x ``parallel``
        pages are asked for ahead of the one the caller reads, so that a slow caller (the cache
        building entries of a 100,000-entry folder) does not hold every page in memory at once."""
        if not offsets:
            return
        pool = ThreadPoolExecutor(
            max_workers=min(parallel, len(offsets)), thread_name_prefix="orionfs-ls"
        )
        starts = iter(offsets)
        futures: deque[Future[tuple[int, list[dict[str, Any]], bool]]] = deque()

        def submit_next() -> None:
            start = next(starts, None)
            if start is not None:
                futures.append(
                    pool.submit(self._page, template, path_params, query, step, start, timeout)
                )

        try:
            for _ in range(PAGES_AHEAD * parallel):
                submit_next()
            while futures:
                page = futures.popleft().result()
                submit_next()  # a bounded window: pages wait in memory only that far ahead
                yield page
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _page(
        self,
        template: str,
        path_params: Mapping[str, Any] | None,
        query: Mapping[str, Any],
        limit: int,
        offset: int,
        timeout: float | None,
    ) -> tuple[int, list[dict[str, Any]], bool]:
        """One page: (count, results, whether ``next`` is set)."""
        params = {**query, wire.Q_LIMIT: limit, wire.Q_OFFSET: offset}
        response = self._request(
            "GET", template, path_params=path_params, params=params, timeout=timeout
        )
        page = self._json(response)
        results = page.get(wire.F_RESULTS) if isinstance(page, dict) else None
        if not isinstance(results, list):
            raise BadResponse(response, "a list answer without a results list")
        return int(page.get(wire.F_COUNT, len(results))), results, bool(page.get(wire.F_NEXT))

    # --- naming resources -------------------------------------------------------------------
    @staticmethod
    def _ref(resource: ResourceRef) -> ResourceKey:
        """The key (wire name, id, collection id or None) of a resource; raises ValidationError.

        A ResourceKey is checked first and costs no more than a few comparisons (ranged reads
        name their file this way).
        """
        if isinstance(resource, ResourceKey):
            rtype, rid, collection = resource
            if type(rid) is int and rtype in wire.RESOURCE_COLLECTIONS:
                if rtype != wire.SHARD:
                    return resource if collection is None else ResourceKey(rtype, rid)
                if type(collection) is int:
                    return resource
        elif isinstance(resource, Link):
            rtype, rid, collection = resource.target_type, resource.id, resource.collection
        elif isinstance(resource, OrionResource):
            rtype, rid = resource.resource_type, resource.id
            collection = getattr(resource, wire.F_COLLECTION, None)
        elif isinstance(resource, Mapping):
            rtype = resource.get(wire.F_RESOURCE_TYPE)
            rid = resource.get(wire.F_ID)
            collection = resource.get(wire.F_COLLECTION)
        else:
            raise ValidationError(f"not a resource: {resource!r}")
        rtype = resource_class(rtype).resource_type
        rid = check_int(rid, f"the {rtype} id")
        if rtype == wire.SHARD:
            return ResourceKey(rtype, rid, check_int(collection, "a shard's collection id"))
        return ResourceKey(rtype, rid)

    @staticmethod
    def _path_params(key: ResourceKey) -> dict[str, Any]:
        """The path placeholders of a resource's detail / download URL."""
        if key.collection is not None:
            return {wire.F_ID: key.id, wire.F_COLLECTION: key.collection}
        return {wire.F_ID: key.id}
