"""Resources by type and id: create, get, list, refresh, update, delete, and links to them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from orionfs.client import wire
from orionfs.client.bodies import multipart_body
from orionfs.client.core import ResourceRef, SessionCore, check_int
from orionfs.client.types import Link, OrionResource, ResourceKey, Shard, resource_class
from orionfs.exceptions import NotFoundResponse, ValidationError

__all__ = ["ResourcesMixin"]

logger = logging.getLogger(__name__)


class ResourcesMixin(SessionCore):
    """The resource methods of OrionSession: ``create_resource``, ``get_resource``, ..."""

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
            path_params[wire.F_COLLECTION] = check_int(
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
        rid = check_int(resource_id, f"the {cls.resource_type} id")
        if cls is Shard:
            collection = check_int(collection, "a shard's collection id")
        else:
            collection = None
        key = ResourceKey(cls.resource_type, rid, collection)
        response = self._request(
            "GET",
            wire.detail_path(cls.resource_type),
            path_params=self._path_params(key),
            timeout=timeout,
        )
        return cls.from_json(self._json(response), self)

    def list_resources(
        self,
        resource: str | type[OrionResource] | OrionResource,
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
            path_params[wire.F_COLLECTION] = check_int(
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
        key = self._ref(resource)
        response = self._request(
            "GET", wire.detail_path(key.resource_type), path_params=self._path_params(key)
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

    def set_mtime(self, resource: ResourceRef, mtime_ns: int) -> dict[str, Any]:
        """Set the content time (``mtime``) of a File or Dataset with one PATCH; returns the item
        as the server sends it. Raises ValidationError for another kind, BadResponse 400 where the
        server does not take the field, NotFoundResponse."""
        key = self._ref(resource)
        if key.resource_type not in (wire.FILE, wire.DATASET):
            raise ValidationError(f"a {key.resource_type} has no settable modification time")
        response = self._request(
            "PATCH",
            wire.detail_path(key.resource_type),
            path_params=self._path_params(key),
            json={wire.F_MTIME: wire.time_value(check_int(mtime_ns, "mtime_ns"))},
        )
        return self._json(response)

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
        key = self._ref(resource)
        response = self._request(
            "PATCH",
            wire.detail_path(key.resource_type),
            path_params=self._path_params(key),
            json=dict(params),
        )
        if response.content:
            resource._update(self._json(response))
        else:
            self.refresh_resource(resource)
        return resource

    def delete_resource(self, resource: ResourceRef, immediate: bool = False) -> bool:
        """Delete a resource (soft by default; ``immediate`` purges it).

        True when it was deleted, False when it does not exist (or is not visible to the user:
        the server answers both with 404). Raises ValidationError for something that is not a
        resource, AuthorizationRequired for one the user may see but not delete.
        """
        key = self._ref(resource)
        params = {wire.Q_IMMEDIATE: wire.TRUE} if immediate else None
        try:
            self._request(
                "DELETE",
                wire.detail_path(key.resource_type),
                path_params=self._path_params(key),
                params=params,
            )
        except NotFoundResponse:
            return False
        return True

    # --- links ------------------------------------------------------------------------------
    def create_link(self, resource: ResourceRef) -> dict[str, Any]:
        """A JSON-serializable dict referencing ``resource`` (storable; see :meth:`get_link`).

        Raises ValidationError when ``resource`` is not a resource with an integer id.
        """
        key = self._ref(resource)
        return Link(self, key.resource_type, key.id, key.collection).to_dict()

    def get_link(self, link_dict: Mapping[str, Any]) -> Link:
        """The Link for a dict made by :meth:`create_link`; ``link.get()`` fetches the resource.

        Raises OrionLinkError when the dict does not reference a resource.
        """
        return Link.from_dict(link_dict, self)
