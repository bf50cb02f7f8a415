"""Sharing: share a resource with users or projects, stop sharing it, list whom it is shared with."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from orionfs.client import wire
from orionfs.client.core import ResourceRef, check_int
from orionfs.client.tags import TagsMixin
from orionfs.client.types import OrionResource, Project, ResourceKey, User, resource_class
from orionfs.exceptions import BadResponse, ValidationError

__all__ = ["SharingMixin"]

#: What may stand for an id in ``ids``, per ``share_with`` value.
_SHARE_TARGETS: dict[str, type[OrionResource]] = {wire.F_USERS: User, wire.F_PROJECTS: Project}

#: Whom to share with: an id, a User / Project, or an iterable of them.
ShareIds = int | OrionResource | Iterable[int | OrionResource]


def _share_id(item: Any, share_with: str) -> int:
    """The id of one share target; raises ValidationError for a non-integer id or a wrong type."""
    if isinstance(item, OrionResource):
        target = _SHARE_TARGETS[share_with]
        if not isinstance(item, target):
            raise ValidationError(
                f"sharing with {share_with} needs a {target.__name__}, not {item!r}"
            )
        return check_int(item.id, f"the {target.__name__} id")
    return check_int(item, "a sharing id")


def _sharing_body(share_with: Any, ids: Any) -> dict[str, Any]:
    """The body of a sharing change; raises ValidationError for a bad ``share_with`` or ids."""
    if share_with not in wire.SHARE_WITH_VALUES:
        raise ValidationError(
            f"share_with must be one of {sorted(wire.SHARE_WITH_VALUES)}, not {share_with!r}"
        )
    if isinstance(ids, int | OrionResource):
        ids = [ids]
    if not isinstance(ids, Iterable) or isinstance(ids, str | bytes):
        raise ValidationError(f"ids must be integers, Users or Projects, not {ids!r}")
    return {wire.F_SHARE_WITH: share_with, wire.F_IDS: [_share_id(i, share_with) for i in ids]}


class SharingMixin(TagsMixin):
    """The sharing methods of OrionSession (shareable types are the taggable ones)."""

    def share_resource(
        self, resource: ResourceRef, share_with: str, ids: ShareIds
    ) -> dict[str, list[int]]:
        """Share a resource with users or projects; returns ``{"users": [...], "projects": [...]}``.

        ``ids``: an id, a User (``share_with="users"``) or Project (``"projects"``), or an iterable
        of them. Raises ValidationError for a type that cannot be shared, a ``share_with`` other
        than ``"users"``/``"projects"``, a non-integer id or a target of the other kind.
        """
        return self._change_sharing(wire.SHARING, resource, share_with, ids, "shared")

    def unshare_resource(
        self, resource: ResourceRef, share_with: str, ids: ShareIds
    ) -> dict[str, list[int]]:
        """Stop sharing with users or projects; returns the sharing status. Raises as share."""
        return self._change_sharing(wire.SHARING_REMOVE, resource, share_with, ids, "unshared")

    def _change_sharing(
        self,
        template: str,
        resource: ResourceRef,
        share_with: str,
        ids: ShareIds,
        verb: str,
    ) -> dict[str, list[int]]:
        """POST a sharing change (``template``: add or remove); returns the sharing status."""
        key = self._taggable(resource, verb)
        body = _sharing_body(share_with, ids)
        response = self._request("POST", template, path_params=self._tag_params(key), json=body)
        return self._json(response)

    def list_sharing(
        self,
        resource: str | type[OrionResource] | ResourceRef,
        resource_id: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Whom a resource is shared with: an iterator of dicts, one per share,
        ``{"share_with": "users" | "projects", "id": <user or project id>}``.

        ``resource`` is a resource class or wire name with ``resource_id``, or a resource itself
        (an object, a ResourceKey, a link dict; then ``resource_id`` may be left out, and must
        match if given). The request is made when this is called. Raises ValidationError for a type
        that cannot be shared or a missing / non-integer / mismatched id.
        """
        if isinstance(resource, str | type):
            rtype = resource_class(resource).resource_type
            resource = ResourceKey(rtype, check_int(resource_id, f"the {rtype} id"))
        key = self._taggable(resource, "shared")
        if resource_id is not None and check_int(resource_id, "resource_id") != key.id:
            raise ValidationError(f"resource_id {resource_id} is not the id of {resource!r}")
        response = self._request("GET", wire.SHARING, path_params=self._tag_params(key))
        status = self._json(response)
        if not isinstance(status, dict):
            raise BadResponse(response, "a sharing answer that is not an object")
        return iter(
            [
                {wire.F_SHARE_WITH: share_with, wire.F_ID: target}
                for share_with in (wire.F_USERS, wire.F_PROJECTS)
                for target in status.get(share_with) or []
            ]
        )
