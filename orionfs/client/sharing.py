"""Sharing: share a resource with users or projects, stop sharing it, list whom it is shared with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orionfs.client import wire
from orionfs.client.core import ResourceRef, check_int
from orionfs.client.tags import TagsMixin
from orionfs.exceptions import ValidationError

__all__ = ["SharingMixin"]


def _sharing_body(share_with: Any, ids: Any) -> dict[str, Any]:
    """The body of a sharing change; raises ValidationError for a bad ``share_with`` or ids."""
    if share_with not in wire.SHARE_WITH_VALUES:
        raise ValidationError(
            f"share_with must be one of {sorted(wire.SHARE_WITH_VALUES)}, not {share_with!r}"
        )
    if isinstance(ids, int) and not isinstance(ids, bool):
        ids = [ids]
    if not isinstance(ids, Iterable) or isinstance(ids, str | bytes):
        raise ValidationError(f"ids must be a list of integers, not {ids!r}")
    return {wire.F_SHARE_WITH: share_with, wire.F_IDS: [check_int(i, "a sharing id") for i in ids]}


class SharingMixin(TagsMixin):
    """The sharing methods of OrionSession (shareable types are the taggable ones)."""

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
        key = self._taggable(resource, verb)
        body = _sharing_body(share_with, ids)
        response = self._request("POST", template, path_params=self._tag_params(key), json=body)
        return self._json(response)

    def list_sharing(self, resource: ResourceRef) -> dict[str, list[int]]:
        """The sharing status ``{"users": [...], "projects": [...]}`` of a resource.

        Raises ValidationError for a type that cannot be shared.
        """
        key = self._taggable(resource, "shared")
        response = self._request("GET", wire.SHARING, path_params=self._tag_params(key))
        return self._json(response)
