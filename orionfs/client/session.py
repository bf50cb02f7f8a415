"""OrionSession: the orionclient session API (shared/orion-api.md) over requests.

Every request goes through :meth:`OrionSession._request`, which builds the URL from the wire map
(``orionfs.client.wire``, quoting path parts), sends the token, applies the configured timeout, and turns a
bad status into the matching exception of ``orionfs.exceptions`` (by status code, never by message
text). Retries are declared in ``orionfs.client.transport`` (an urllib3 ``Retry`` on the adapter), not looped
here. Public methods are thin over ``_request`` and return typed objects from ``orionfs.client.types``.

Errors common to every method that talks to the server: ``InvalidCredentials`` (401 or no token),
``AuthorizationRequired`` (403), ``NotFoundResponse`` (404), ``RateLimitedResponse`` (429 after its
retries), ``BadResponse`` (other 4xx, e.g. 400 bad input, 409 conflict), ``OrionServiceError`` (5xx after
its retries), ``OrionTimeout``, ``OrionConnectionError``; ``ValidationError`` for bad arguments caught
before any request.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import requests
import urllib3.exceptions

from orionfs.client import wire
from orionfs.client.config import (
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RETRY_DICT,
    DEFAULT_RETRY_TIMEOUT,
    PROFILE_ENV,
    SessionConfig,
    get_profile_config,
)
from orionfs.client.transport import OrionHTTPAdapter, build_retry, multipart_body, raw_body
from orionfs.client.types import (
    File,
    Link,
    OrionResource,
    Project,
    Shard,
    User,
    resource_class,
)
from orionfs.exceptions import (
    BadResponse,
    InvalidAPIVersion,
    InvalidCredentials,
    OrionConnectionError,
    OrionError,
    OrionTimeout,
    ValidationError,
    exception_for_status,
)

__all__ = [
    "APISession",
    "OrionSession",
    "SessionConfig",
    "get_profile_config",
    "get_session",
    "in_orion",
]

logger = logging.getLogger(__name__)

#: Piece size for reading a ranged response body (large pieces: few Python calls per byte).
_READ_CHUNK = 1 << 20
_REDACTED = "<redacted>"
_SECRET_HEADERS = frozenset(
    {wire.AUTH_HEADER.lower(), "cookie", "set-cookie", "proxy-authorization"}
)
#: Endpoints that the server makes idempotent although they are POSTs (sets of tags / shares; a
#: read-only lookup): they may be retried like GETs.
_IDEMPOTENT_POSTS = (
    wire.TAGS.split("{", 1)[0],
    wire.SHARING.split("{", 1)[0],
    wire.PATHS_GET,
)
#: How a caller may name a resource: an object, an Entry/link dict, or a Link.
ResourceRef = OrionResource | Mapping[str, Any] | Link


def _redact(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with credential values replaced, safe to log."""
    return {k: (_REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


def _check_int(value: Any, what: str) -> int:
    """``value`` if it is an int (not a bool); raises ValidationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer, not {value!r}")
    return value


def _check_path(path: Any) -> str:
    """An absolute Orion path string; raises ValidationError otherwise (the server checks the rest)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValidationError(f"an Orion path must be an absolute string, not {path!r}")
    return path


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return wire.TRUE if value else wire.FALSE
    if isinstance(value, list | tuple | set | frozenset):
        return wire.LIST_SEPARATOR.join(str(v) for v in value)
    return str(value)


def _entry_list(answer: Any, key: str) -> list[dict[str, Any]]:
    """The list of Entry dicts under ``key`` of a JSON answer (empty if the server sent none)."""
    items = answer.get(key) if isinstance(answer, Mapping) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _transport_error(exc: BaseException) -> OrionError:
    """The orionfs exception for a requests/urllib3 transport failure (by exception class)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            break  # a subclass of ConnectTimeoutError in urllib3, but a refusal, not a timeout
        if isinstance(current, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError):
            return OrionTimeout(f"request timed out: {exc}")
        if isinstance(current, urllib3.exceptions.MaxRetryError):
            current = current.reason
            continue
        nxt = (
            current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        )
        current = nxt or current.__cause__ or current.__context__
    return OrionConnectionError(f"cannot reach the server: {exc}")


class OrionSession:
    """An HTTP session authenticated against Orion, for getting and creating Orion resources.

    ``config`` defaults to :func:`get_profile_config` (``ORION_PROFILE`` or ``default``);
    ``orion_versions`` is the server's API versions if already known (else fetched on demand by
    :meth:`check_api_versions`); ``requests_session`` is used instead of a new one (the session's
    retry adapters are mounted on it for the configured URL).
    """

    def __init__(
        self,
        config: SessionConfig | None = None,
        orion_versions: Mapping[str, str] | None = None,
        requests_session: requests.Session | None = None,
    ) -> None:
        self.config = config if config is not None else get_profile_config()
        self.orion_versions = dict(orion_versions) if orion_versions is not None else None
        self._http = requests_session if requests_session is not None else requests.Session()
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

    # --- plumbing ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"OrionSession(url={self.config.url!r}, username={self.config.username!r})"

    def __enter__(self) -> OrionSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

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
    ) -> requests.Response:
        """The one way out to the network: send one request and return the 2xx response.

        Raises the exception class of a non-2xx status (after the declared retries),
        OrionTimeout / OrionConnectionError for transport failures, InvalidCredentials when no
        token is configured (unless ``auth`` gives HTTP Basic credentials instead).
        """
        if not self._base:
            raise ValidationError("no Orion URL configured")
        url = self._base + wire.build_path(template, **(path_params or {}))
        send_headers = dict(headers or {})
        if auth is None:
            if not self.config.token:
                raise InvalidCredentials(custom_error_msg="no token configured for this session")
            send_headers[wire.AUTH_HEADER] = wire.auth_header_value(self.config.token)
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        wait = timeout if timeout is not None else self.config.request_timeout
        try:
            response = self._http.request(
                method,
                url,
                params=query or None,
                json=json,
                data=data,
                headers=send_headers,
                timeout=wait,
                stream=stream,
                auth=auth,
                verify=self.config.verify_ssl,
                allow_redirects=False,
            )
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            error = _transport_error(exc)
            if self.config.log_failed_headers:
                logger.warning(
                    "%s %s failed (%s); request headers: %s",
                    method, url, type(error).__name__, _redact(send_headers),
                )  # fmt: skip
            raise error from exc
        logger.debug("%s %s -> %s", method, template, response.status_code)
        if response.status_code >= 400 or response.status_code < 200:
            if self.config.log_failed_headers:
                logger.warning(
                    "%s %s -> %s; request headers: %s; response headers: %s",
                    method, url, response.status_code,
                    _redact(response.request.headers), _redact(response.headers),
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

    def _iter_pages(
        self,
        template: str,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Yield (count, results) per page, by ``offset += len(results)`` while ``next`` is set."""
        query = dict(params or {})
        offset = _check_int(query.pop(wire.Q_OFFSET, 0), wire.Q_OFFSET)
        limit = _check_int(query.pop(wire.Q_LIMIT, wire.PAGE_LIMIT_DEFAULT), wire.Q_LIMIT)
        while True:
            count, results, more = self._page(template, path_params, query, limit, offset, timeout)
            yield count, results
            offset += len(results)
            if not more or not results:
                return

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

    def _iter_pages_parallel(
        self,
        template: str,
        params: Mapping[str, Any] | None,
        parallel: int,
        timeout: float | None = None,
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Like :meth:`_iter_pages`, but once the first page gives the total ``count``, fetch the
        remaining pages ``parallel`` at a time; pages are yielded in order. Same requests as one
        after another (ceil(count / page)); a folder that grew meanwhile is finished sequentially."""
        query = dict(params or {})
        offset = _check_int(query.pop(wire.Q_OFFSET, 0), wire.Q_OFFSET)
        limit = _check_int(query.pop(wire.Q_LIMIT, wire.PAGE_LIMIT_DEFAULT), wire.Q_LIMIT)
        count, results, more = self._page(template, None, query, limit, offset, timeout)
        yield count, results
        step = len(results)  # the server's effective page size (it may cap ``limit``)
        offset += step
        if not more or not step:
            return
        offsets = list(range(offset, count, step))
        if offsets:
            pool = ThreadPoolExecutor(
                max_workers=min(parallel, len(offsets)), thread_name_prefix="orionfs-ls"
            )
            try:
                futures = [
                    pool.submit(self._page, template, None, query, step, start, timeout)
                    for start in offsets
                ]
                for future in futures:
                    count, results, more = future.result()
                    yield count, results
                    offset += len(results)
                    if len(results) < step:  # shrank meanwhile: the rest is past the end
                        more = more and bool(results)
                        break
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
        while more and results:  # grew meanwhile: one page after another
            count, results, more = self._page(template, None, query, limit, offset, timeout)
            yield count, results
            offset += len(results)

    @staticmethod
    def _ref(resource: ResourceRef) -> tuple[str, int, int | None]:
        """(wire name, id, collection id or None) of a resource; raises ValidationError."""
        if isinstance(resource, Link):
            return resource.target_type, resource.id, resource.collection
        if isinstance(resource, OrionResource):
            rtype, rid = resource.resource_type, resource.id
            collection = getattr(resource, wire.F_COLLECTION, None)
        elif isinstance(resource, Mapping):
            rtype = resource.get(wire.F_RESOURCE_TYPE)
            rid = resource.get(wire.F_ID)
            collection = resource.get(wire.F_COLLECTION)
        else:
            raise ValidationError(f"not a resource: {resource!r}")
        rtype = resource_class(rtype).resource_type
        rid = _check_int(rid, f"the {rtype} id")
        if rtype == wire.SHARD:
            collection = _check_int(collection, "a shard's collection id")
        return rtype, rid, collection if rtype == wire.SHARD else None

    @staticmethod
    def _path_params(rtype: str, rid: int, collection: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {wire.F_ID: rid}
        if rtype == wire.SHARD:
            params[wire.F_COLLECTION] = collection
        return params

    # --- paths ------------------------------------------------------------------------------
    def assign_paths(self, *assignments: Mapping[str, Any]) -> None:
        """Move items (see :meth:`move_items`, which also returns the moved entries)."""
        self.move_items(*assignments)

    def move_items(self, *assignments: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Move items (one request, whatever a folder holds) to folders, optionally renaming them.

        Each assignment needs ``resource_type``, ``id`` and ``path`` (the destination folder);
        an optional ``name`` overwrites the item's name. Returns the moved items' Entry dicts as
        the server sends them (``assign_paths``, as documented, returns None). Raises
        ValidationError for a malformed assignment, BadResponse 400 (e.g. a folder into itself) or
        409 (a folder name taken).
        """
        if not assignments:
            raise ValidationError("assign_paths needs at least one assignment")
        body = []
        for item in assignments:
            if not isinstance(item, Mapping):
                raise ValidationError(f"an assignment must be a dict, not {item!r}")
            missing = {wire.F_RESOURCE_TYPE, wire.F_ID, wire.F_PATH} - set(item)
            if missing:
                raise ValidationError(f"assignment {dict(item)!r} lacks {sorted(missing)}")
            entry = {
                wire.F_RESOURCE_TYPE: resource_class(item[wire.F_RESOURCE_TYPE]).resource_type,
                wire.F_ID: _check_int(item[wire.F_ID], wire.F_ID),
                wire.F_PATH: _check_path(item[wire.F_PATH]),
            }
            if item.get(wire.F_NAME) is not None:
                entry[wire.F_NAME] = item[wire.F_NAME]
            body.append(entry)
        response = self._request("POST", wire.PATHS_ASSIGN, json={wire.F_ASSIGNMENTS: body})
        return _entry_list(self._json(response), wire.F_RESULTS)

    def create_link(self, resource: ResourceRef) -> dict[str, Any]:
        """A JSON-serializable dict referencing ``resource`` (storable; see :meth:`get_link`).

        Raises ValidationError when ``resource`` is not a resource with an integer id.
        """
        rtype, rid, collection = self._ref(resource)
        return Link(self, rtype, rid, collection).to_dict()

    def get_link(self, link_dict: Mapping[str, Any]) -> Link:
        """The Link for a dict made by :meth:`create_link`; ``link.get()`` fetches the resource.

        Raises OrionLinkError when the dict does not reference a resource.
        """
        return Link.from_dict(link_dict, self)

    def create_paths(self, *paths: str, exist_ok: bool = True) -> None:
        """Create folders (see :meth:`create_folders`, which also returns their entries)."""
        self.create_folders(*paths, exist_ok=exist_ok)

    def create_folders(self, *paths: str, exist_ok: bool = True) -> list[dict[str, Any]]:
        """Create folders (and missing ancestors); returns the Entry dicts the server sends for
        them (``create_paths``, as documented, returns None).

        Raises BadResponse 409 when a path exists and not ``exist_ok`` (or a segment is not a
        folder), AuthorizationRequired inside a virtual folder, BadResponse 400 for a bad name.
        """
        if not paths:
            return []
        body = {wire.F_PATHS: [_check_path(p) for p in paths], wire.F_EXIST_OK: bool(exist_ok)}
        response = self._request("POST", wire.PATHS_CREATE, json=body)
        return _entry_list(self._json(response), wire.F_PATHS)

    def remove_paths(self, *paths: str, recursive: bool = False) -> None:
        """Delete paths, all or nothing (files, datasets and collections are soft-deleted).

        Raises NotFoundResponse for an absent path, BadResponse 409 for a non-empty folder without
        ``recursive``.
        """
        if not paths:
            return
        body = {wire.F_PATHS: [_check_path(p) for p in paths], wire.F_RECURSIVE: bool(recursive)}
        self._request("POST", wire.PATHS_REMOVE, json=body)

    def get_paths(self, *items: ResourceRef) -> dict[str, Any]:
        """The paths of Dataset / File / ShardCollection items, in one dict.

        Returns ``{"results": [{"resource_type", "id", "path"}, ...]}``. Raises ValidationError
        for an item that is not a resource.
        """
        refs = []
        for item in items:
            rtype, rid, _ = self._ref(item)
            refs.append({wire.F_RESOURCE_TYPE: rtype, wire.F_ID: rid})
        response = self._request("POST", wire.PATHS_GET, json={wire.F_ITEMS: refs})
        return self._json(response)

    def _ls_query(self, path: str, query_params: Mapping[str, Any] | None) -> dict[str, Any]:
        query: dict[str, Any] = {}
        for key, value in (query_params or {}).items():
            if key == wire.Q_PATH:
                continue  # the positional path wins
            if key not in wire.LS_QUERY_PARAMS:
                raise ValidationError(f"unknown ls query parameter: {key!r}")
            query[key] = value
        query[wire.Q_PATH] = _check_path(path)
        return query

    def iter_ls_path(
        self, path: str, query_params: Mapping[str, Any] | None = None, *, parallel: int = 1
    ) -> Iterator[dict[str, Any]]:
        """Yield the Entry dicts of a folder, fetching page after page as they are consumed.

        ``query_params`` as for :meth:`ls_path`. ``parallel`` > 1: once the first page gives the
        total ``count``, the other pages are fetched that many at a time (same requests, same
        order; not lazy past the first page). Raises NotFoundResponse for no such folder,
        BadResponse 400 when the path is not folder-like, ValidationError for an unknown param.
        """
        query = self._ls_query(path, query_params)
        if parallel > 1:
            pages = self._iter_pages_parallel(wire.LS, query, parallel)
        else:
            pages = self._iter_pages(wire.LS, params=query)
        for _count, results in pages:
            yield from results

    def ls_path(self, path: str, query_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """List a folder (every page): ``{"path", "count", "results": [Entry]}``.

        ``query_params``: ``name``, ``name_contains``, ``name_icontains``, ``order_by`` (e.g.
        ``created``, ``-name``), ``types`` (a list or comma string of resource types),
        ``tag_filters``, ``systag_filters`` (all must match), ``list`` (``data`` or ``folders``),
        ``limit`` (page size, default 250), ``offset`` (start). Raises NotFoundResponse for no such
        folder, BadResponse 400 for a non-folder path, ValidationError for an unknown param.
        """
        query = self._ls_query(path, query_params)
        results: list[dict[str, Any]] = []
        count = 0
        for page_count, page in self._iter_pages(wire.LS, params=query):
            count = page_count
            results.extend(page)
        return {wire.F_PATH: path, wire.F_COUNT: count, wire.F_RESULTS: results}

    def stat_path(self, path: str) -> dict[str, Any]:
        """The Entry of one path (``resource_type``, ``id``, ``path``, size, times...).

        Raises NotFoundResponse when absent.
        """
        response = self._request("GET", wire.STAT, params={wire.Q_PATH: _check_path(path)})
        return self._json(response)

    # --- resources --------------------------------------------------------------------------
    def create_resource(
        self,
        resource_type: str | type[OrionResource],
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> OrionResource:
        """Create a resource; ``params`` and ``files`` are what the REST API expects.

        With ``files`` (part name -> file object, bytes, ``(filename, source)`` or
        ``(filename, source, size)``) the body is a streamed multipart form with ``params`` as
        fields; without, ``params`` is the JSON body. A Shard needs ``params["collection"]``.
        Raises ValidationError for an unknown type or a source of unknown size, BadResponse 400/409.
        """
        cls = resource_class(resource_type)
        fields = dict(params or {})
        path_params: dict[str, Any] = {}
        if cls is Shard:
            path_params[wire.F_COLLECTION] = _check_int(
                fields.pop(wire.F_COLLECTION, None), "a shard's collection id"
            )
        template = wire.collection_path(cls.resource_type)
        if files:
            body = multipart_body(fields, files)
            response = self._request(
                "POST", template, path_params=path_params, data=body,
                headers={wire.H_CONTENT_TYPE: body.content_type},
            )  # fmt: skip
        else:
            response = self._request("POST", template, path_params=path_params, json=fields)
        return cls.from_json(self._json(response), self)

    def get_resource(
        self,
        resource_type: str | type[OrionResource],
        resource_id: int,
        timeout: float | None = None,
        *,
        collection: int | None = None,
    ) -> OrionResource:
        """Fetch one resource by type (class or wire name) and id.

        A Shard needs ``collection`` (its collection's id). ``timeout`` overrides the request
        timeout. Raises ValidationError for a bad type or a non-integer id, NotFoundResponse.
        """
        cls = resource_class(resource_type)
        rid = _check_int(resource_id, f"the {cls.resource_type} id")
        if cls is Shard:
            _check_int(collection, "a shard's collection id")
        response = self._request(
            "GET",
            wire.detail_path(cls.resource_type),
            path_params=self._path_params(cls.resource_type, rid, collection),
            timeout=timeout,
        )
        return cls.from_json(self._json(response), self)

    def list_resources(
        self,
        resource: str | type[OrionResource],
        filters: Mapping[str, Any] | None = None,
    ) -> Iterator[OrionResource]:
        """Iterate over resources of a type, following every page.

        ``filters`` are query parameters of the list endpoint; ``name`` (and its alias ``title``)
        match substrings, ``deleted=True`` includes soft-deleted items; Shards need ``collection``.
        Objects may be partial: :meth:`refresh_resource` completes them. Raises ValidationError
        for an unknown type.
        """
        if isinstance(resource, OrionResource):
            resource = type(resource)
        cls = resource_class(resource)
        query = dict(filters or {})
        if wire.Q_TITLE in query:
            query.setdefault(wire.Q_NAME, query.pop(wire.Q_TITLE))
        path_params: dict[str, Any] = {}
        if cls is Shard:
            path_params[wire.F_COLLECTION] = _check_int(
                query.pop(wire.F_COLLECTION, None), "a shard's collection id"
            )
        template = wire.collection_path(cls.resource_type)
        for _count, results in self._iter_pages(template, path_params, query):
            for item in results:
                yield cls.from_json(item, self)

    def refresh_resource(self, resource: OrionResource) -> OrionResource:
        """Reload a resource's attributes from the server (in place); returns it.

        Raises ValidationError for a resource without an id, NotFoundResponse when it is gone.
        """
        if not isinstance(resource, OrionResource):
            raise ValidationError(f"not a resource: {resource!r}")
        rtype, rid, collection = self._ref(resource)
        response = self._request(
            "GET", wire.detail_path(rtype), path_params=self._path_params(rtype, rid, collection)
        )
        resource._update(self._json(response))
        resource.session = self
        return resource

    def refresh_resource_until(
        self,
        resource: OrionResource,
        attribute: str,
        until_value: Any,
        timeout: float = 60,
        sleep_time: float = 1,
        debug_log: bool = True,
        not_match: bool = False,
    ) -> bool:
        """Refresh until ``resource.<attribute> == until_value`` (or ``!=`` with ``not_match``).

        Returns True when it matched, False when ``timeout`` seconds passed first. Raises what
        :meth:`refresh_resource` raises.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.refresh_resource(resource)
            value = getattr(resource, attribute, None)
            if (value != until_value) if not_match else (value == until_value):
                return True
            if debug_log:
                logger.debug("%r.%s is %r, waiting", resource, attribute, value)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(sleep_time, remaining))

    def update_resource(self, resource: OrionResource, params: Mapping[str, Any]) -> OrionResource:
        """Update fields of a resource (PATCH), then refresh its attributes; returns it.

        The attributes are refreshed from the server's answer to the PATCH (the updated object),
        or by a GET when the answer has no body. Folder paths are not handled here (use
        :meth:`assign_paths`): a ``path`` param raises ValidationError.
        """
        if not isinstance(resource, OrionResource):
            raise ValidationError(f"not a resource: {resource!r}")
        if wire.F_PATH in params:
            raise ValidationError("update_resource does not move items; use assign_paths")
        rtype, rid, collection = self._ref(resource)
        response = self._request(
            "PATCH",
            wire.detail_path(rtype),
            path_params=self._path_params(rtype, rid, collection),
            json=dict(params),
        )
        if response.content:
            resource._update(self._json(response))
        else:
            self.refresh_resource(resource)
        return resource

    def delete_resource(self, resource: ResourceRef, immediate: bool = False) -> bool:
        """Delete a resource (soft by default; ``immediate`` purges it); True when deleted.

        Raises NotFoundResponse when it does not exist.
        """
        rtype, rid, collection = self._ref(resource)
        params = {wire.Q_IMMEDIATE: wire.TRUE} if immediate else None
        response = self._request(
            "DELETE",
            wire.detail_path(rtype),
            path_params=self._path_params(rtype, rid, collection),
            params=params,
        )
        return 200 <= response.status_code < 300

    # --- tags -------------------------------------------------------------------------------
    def _taggable(self, resource: ResourceRef, what: str) -> tuple[str, int]:
        rtype, rid, _ = self._ref(resource)
        if rtype not in wire.TAGGABLE_TYPES:
            raise ValidationError(f"a {rtype} cannot be {what}")
        return rtype, rid

    @staticmethod
    def _check_tags(tags: Iterable[Any]) -> list[str]:
        out = list(tags)
        if not out:
            raise ValidationError("no tags given")
        for tag in out:
            if not isinstance(tag, str) or not tag:
                raise ValidationError(f"a tag must be a non-empty string, not {tag!r}")
        return out

    def _tags_answer(self, resource: ResourceRef, response: requests.Response) -> list[str]:
        body = self._json(response)
        tags = list(body.get(wire.F_TAGS, [])) if isinstance(body, dict) else []
        if isinstance(resource, OrionResource):
            resource._set(wire.F_TAGS, tags)
            if isinstance(body, dict) and wire.F_SYSTEMTAGS in body:
                resource._set(wire.F_SYSTEMTAGS, list(body[wire.F_SYSTEMTAGS]))
        return tags

    def list_tags(self, resource: ResourceRef) -> list[str]:
        """The user tags of a taggable resource (File, Dataset, ShardCollection).

        Raises ValidationError when the resource type is not taggable.
        """
        rtype, rid = self._taggable(resource, "tagged")
        response = self._request(
            "GET", wire.TAGS, path_params={wire.F_RESOURCE_TYPE: rtype, wire.F_ID: rid}
        )
        return self._tags_answer(resource, response)

    def tag_resource(
        self, resource: ResourceRef, *tags: str, project: int | None = None
    ) -> list[str]:
        """Add tags (existing ones stay); returns the resource's tags afterwards.

        Raises ValidationError when the type is not taggable or no/empty tags are given,
        BadResponse 400 for a tag the server refuses.
        """
        rtype, rid = self._taggable(resource, "tagged")
        body = {wire.F_TAGS: self._check_tags(tags), wire.F_PROJECT: project}
        if project is not None:
            _check_int(project, "project")
        response = self._request(
            "POST", wire.TAGS, path_params={wire.F_RESOURCE_TYPE: rtype, wire.F_ID: rid}, json=body
        )
        return self._tags_answer(resource, response)

    def untag_resource(
        self, resource: ResourceRef, *tags: str, project: int | None = None
    ) -> list[str]:
        """Remove tags (absent ones are silently ignored); returns the tags afterwards.

        ``project`` is accepted for orionclient compatibility; removal is not per project.
        Raises ValidationError when the type is not taggable or no tags are given.
        """
        rtype, rid = self._taggable(resource, "untagged")
        body = {wire.F_TAGS: self._check_tags(tags)}
        response = self._request(
            "POST",
            wire.TAGS_REMOVE,
            path_params={wire.F_RESOURCE_TYPE: rtype, wire.F_ID: rid},
            json=body,
        )
        return self._tags_answer(resource, response)

    # --- sharing ----------------------------------------------------------------------------
    def _sharing_body(self, share_with: Any, ids: Any) -> dict[str, Any]:
        if share_with not in wire.SHARE_WITH_VALUES:
            raise ValidationError(
                f"share_with must be one of {sorted(wire.SHARE_WITH_VALUES)}, not {share_with!r}"
            )
        if isinstance(ids, int) and not isinstance(ids, bool):
            ids = [ids]
        if not isinstance(ids, Iterable) or isinstance(ids, str | bytes):
            raise ValidationError(f"ids must be a list of integers, not {ids!r}")
        id_list = [_check_int(i, "a sharing id") for i in ids]
        return {wire.F_SHARE_WITH: share_with, wire.F_IDS: id_list}

    def share_resource(
        self, resource: ResourceRef, share_with: str, ids: Iterable[int] | int
    ) -> dict[str, list[int]]:
        """Share a resource with users or projects; returns ``{"users": [...], "projects": [...]}``.

        Raises ValidationError for a type that cannot be shared, a ``share_with`` other than
        ``"users"``/``"projects"`` or non-integer ids.
        """
        return self._change_sharing(wire.SHARING, resource, share_with, ids, "shared")

    def unshare_resource(
        self, resource: ResourceRef, share_with: str, ids: Iterable[int] | int
    ) -> dict[str, list[int]]:
        """Stop sharing with users or projects; returns the sharing status. Raises as share."""
        return self._change_sharing(wire.SHARING_REMOVE, resource, share_with, ids, "unshared")

    def _change_sharing(
        self,
        template: str,
        resource: ResourceRef,
        share_with: str,
        ids: Iterable[int] | int,
        verb: str,
    ) -> dict[str, list[int]]:
        """POST a sharing change (``template``: add or remove); returns the sharing status."""
        rtype, rid = self._taggable(resource, verb)
        response = self._request(
            "POST",
            template,
            path_params={wire.F_RESOURCE_TYPE: rtype, wire.F_ID: rid},
            json=self._sharing_body(share_with, ids),
        )
        return self._json(response)

    def list_sharing(self, resource: ResourceRef) -> dict[str, list[int]]:
        """The sharing status ``{"users": [...], "projects": [...]}`` of a resource.

        Raises ValidationError for a type that cannot be shared.
        """
        rtype, rid = self._taggable(resource, "shared")
        response = self._request(
            "GET", wire.SHARING, path_params={wire.F_RESOURCE_TYPE: rtype, wire.F_ID: rid}
        )
        return self._json(response)

    # --- projects, users, billing -----------------------------------------------------------
    def leave_project(self, resource: Project, new_owner_id: int | None = None) -> None:
        """Leave a project; its owner must name a member as ``new_owner_id``.

        Raises ValidationError if ``resource`` is not a Project or the id is not an int,
        BadResponse 400 when the owner names no (or a non-member) new owner.
        """
        if not isinstance(resource, Project):
            raise ValidationError(f"leave_project needs a Project, not {resource!r}")
        pid = _check_int(resource.id, "the project id")
        if new_owner_id is not None:
            _check_int(new_owner_id, "new_owner_id")
        self._request(
            "POST",
            wire.PROJECT_LEAVE,
            path_params={wire.F_ID: pid},
            json={wire.F_NEW_OWNER_ID: new_owner_id},
        )

    def get_user_profile(self) -> User:
        """The authenticated user. Raises InvalidCredentials for a bad token."""
        user = User.from_json(self._json(self._request("GET", wire.USER_ME)), self)
        self._user_cache = user
        return user

    def _me(self) -> User:
        return self._user_cache if self._user_cache is not None else self.get_user_profile()

    def _current_project_id(self) -> int:
        if self.config.project is not None:
            return self.config.project
        pid = getattr(self._me(), wire.F_DEFAULT_PROJECT, None)
        if pid is None:
            raise ValidationError("no project configured and the user has no default project")
        return _check_int(pid, "the default project id")

    def get_current_project(self) -> Project:
        """The profile's project (its ``project`` key), else the user's default project."""
        project = self.get_resource(Project, self._current_project_id())
        assert isinstance(project, Project)
        return project

    def get_current_balance(self) -> float:
        """The account balance. Raises BadResponse 400 without the cost-accounting capability."""
        body = self._json(self._request("GET", wire.BALANCE))
        try:
            return float(body[wire.F_BALANCE])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadResponse(None, f"balance answer without a {wire.F_BALANCE}") from exc

    def get_default_output_folder(self) -> str:
        """The user's "My Data" folder in the current project: ``/project/<pid>/user/<username>``."""
        username = self.config.username or getattr(self._me(), wire.F_USERNAME)
        return wire.MY_DATA_PATH.format(project=self._current_project_id(), username=username)

    def check_api_versions(self) -> dict[str, str]:
        """The server's API versions; raises InvalidAPIVersion if they differ from this client's."""
        if self.orion_versions is None:
            response = self._request("GET", wire.VERSIONS)
            body = self._json(response)
            versions = body.get(wire.F_VERSIONS) if isinstance(body, dict) else None
            if not isinstance(versions, dict):
                raise InvalidAPIVersion(response, "the server did not report its API versions")
            self.orion_versions = versions
        wrong = {
            group: self.orion_versions.get(group)
            for group, version in wire.API_VERSIONS.items()
            if self.orion_versions.get(group) != version
        }
        if wrong:
            raise InvalidAPIVersion(None, f"unsupported Orion API versions: {wrong}")
        return dict(self.orion_versions)

    # --- authentication ---------------------------------------------------------------------
    def is_authenticated(self, reconnect: bool = False) -> bool:
        """Whether the session has credentials: from the config only, unless ``reconnect``.

        With ``reconnect`` a request checks the token; False if the server refuses it (other
        errors propagate).
        """
        if not (self.config.url and self.config.token):
            return False
        if not reconnect:
            return True
        try:
            return self.validate_authentication()
        except InvalidCredentials:
            return False

    def validate_authentication(self) -> bool:
        """Check the token with a real request; True, or raises InvalidCredentials."""
        self.get_user_profile()
        return True

    def retrieve_token(self, username: str, password: str) -> str:
        """Get a token with HTTP Basic credentials; the session uses it from now on.

        Raises InvalidCredentials for wrong credentials, ValidationError for empty ones.
        """
        if not username or not isinstance(username, str) or not isinstance(password, str):
            raise ValidationError("retrieve_token needs a username and a password")
        response = self._request("POST", wire.TOKEN, auth=(username, password))
        body = self._json(response)
        token = body.get(wire.F_TOKEN) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponse(response, "the token answer holds no token")
        self.config = self.config.replace(token=token, username=username)
        self._user_cache = None
        return token

    # --- content (extensions for the mount) -------------------------------------------------
    def _download_ref(self, resource: ResourceRef) -> tuple[str, dict[str, Any]]:
        rtype, rid, collection = self._ref(resource)
        if rtype not in wire.DOWNLOADABLE_TYPES:
            raise ValidationError(f"a {rtype} has no content to read")
        return wire.download_path(rtype), self._path_params(rtype, rid, collection)

    def read_range(self, resource: ResourceRef, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of a File / Dataset / Shard from ``offset`` (one ranged GET).

        Fewer bytes at the end of the content; ``b""`` at or past the end. Raises ValidationError
        for a negative offset/length or a type without content, NotFoundResponse.
        """
        if _check_int(offset, "offset") < 0 or _check_int(length, "length") < 0:
            raise ValidationError("offset and length must not be negative")
        if length == 0:
            return b""
        template, path_params = self._download_ref(resource)
        try:
            response = self._request(
                "GET",
                template,
                path_params=path_params,
                headers={wire.H_RANGE: f"bytes={offset}-{offset + length - 1}"},
                stream=True,
            )
        except BadResponse as exc:
            if exc.status_code == 416:  # range not satisfiable: at or past the end
                return b""
            raise
        try:
            if response.status_code == 206:
                return self._read_body_into(response, length)
            # Read the body in large pieces: response.content reads 10 KiB at a time, which costs
            # more than half of the throughput of a large ranged read.
            body = bytearray()
            for chunk in response.iter_content(_READ_CHUNK):
                body += chunk
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise _transport_error(exc) from exc
        finally:
            response.close()
        return bytes(body[offset : offset + length])  # server ignored the Range

    @staticmethod
    def _read_body_into(response: requests.Response, length: int) -> bytes:
        """A 206 body, read into one buffer allocated once (no growing, no final copy): a
        bytearray, which is bytes-like (compares equal to bytes; slice it through a memoryview)."""
        raw = response.raw
        if response.headers.get("Content-Encoding", "identity") not in ("identity", ""):
            body = bytearray()
            for chunk in response.iter_content(_READ_CHUNK):
                body += chunk
            return body[:length]  # type: ignore[return-value]
        try:
            expected = int(response.headers.get("Content-Length", length))
        except ValueError:
            expected = length
        buffer = bytearray(min(length, max(expected, 0)))
        view = memoryview(buffer)
        filled = 0
        while filled < len(buffer):
            n = raw.readinto(view[filled : filled + _READ_CHUNK * 8])
            if not n:
                break
            filled += n
        view.release()
        if filled < len(buffer):
            del buffer[filled:]
        return buffer  # type: ignore[return-value]

    def download_file(
        self, resource: ResourceRef, fileobj: IO[bytes], chunk_size: int = 1 << 20
    ) -> int:
        """Stream a File / Dataset / Shard's whole content into ``fileobj``; returns the bytes.

        Raises ValidationError for a type without content, NotFoundResponse, transport errors.
        """
        template, path_params = self._download_ref(resource)
        response = self._request("GET", template, path_params=path_params, stream=True)
        written = 0
        try:
            for chunk in response.iter_content(chunk_size):
                fileobj.write(chunk)
                written += len(chunk)
        except requests.exceptions.RequestException as exc:
            raise _transport_error(exc) from exc
        finally:
            response.close()
        return written

    def upload_file(
        self, folder_path: str, name: str, fileobj: Any, size: int | None = None
    ) -> File:
        """Create a File named ``name`` in a folder from a binary file object (or bytes), streamed.

        ``size`` bytes are sent (default: to the end of ``fileobj``; required if it cannot seek).
        Raises ValidationError for a bad path or an unknown size, NotFoundResponse for no such
        folder, AuthorizationRequired for a virtual folder, BadResponse 400 for a bad name.
        """
        if not isinstance(name, str) or not name:
            raise ValidationError(f"a file name must be a non-empty string, not {name!r}")
        params = {wire.F_NAME: name, wire.F_PATH: _check_path(folder_path)}
        resource = self.create_resource(
            File, params, {wire.UPLOAD_FILE_PART: (name, fileobj, size)}
        )
        assert isinstance(resource, File)
        return resource

    def replace_file_content(
        self, file: ResourceRef, fileobj: Any, size: int | None = None
    ) -> File:
        """Replace a File's content atomically (same id), with a streamed PUT; returns the File.

        Raises ValidationError for a non-File or a source of unknown size, NotFoundResponse.
        """
        rtype, rid, _ = self._ref(file)
        if rtype != wire.FILE:
            raise ValidationError(f"only a file's content can be replaced, not a {rtype}'s")
        body = raw_body(fileobj, size)
        response = self._request(
            "PUT",
            wire.content_path(rtype),
            path_params={wire.F_ID: rid},
            data=body,
            headers={wire.H_CONTENT_TYPE: body.content_type},
        )
        data = self._json(response)
        if isinstance(file, File):
            file._update(data)
            file.session = self
            return file
        result = File.from_json(data, self)
        assert isinstance(result, File)
        return result


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
