"""Tags: list, add and remove the user tags of taggable resources (File, Dataset, ShardCollection)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import requests

from orionfs.client import wire
from orionfs.client.core import ResourceRef, SessionCore, check_int
from orionfs.client.types import OrionResource, ResourceKey
from orionfs.exceptions import ValidationError

__all__ = ["TagsMixin"]


class TagsMixin(SessionCore):
    """The tag methods of OrionSession: ``list_tags``, ``tag_resource``, ``untag_resource``."""

    def _taggable(self, resource: ResourceRef, what: str) -> ResourceKey:
        """The key of a resource that may be tagged and shared; raises ValidationError."""
        key = self._ref(resource)
        if key.resource_type not in wire.TAGGABLE_TYPES:
            raise ValidationError(f"a {key.resource_type} cannot be {what}")
        return key

    @staticmethod
    def _tag_params(key: ResourceKey) -> dict[str, Any]:
        return {wire.F_RESOURCE_TYPE: key.resource_type, wire.F_ID: key.id}

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
        """The tags of a tags answer, also stored on ``resource`` when it is an object."""
        body = self._json(response)
        tags = list(body.get(wire.F_TAGS, [])) if isinstance(body, dict) else []
        if isinstance(resource, OrionResource):
            resource._set(wire.F_TAGS, tags)
            if isinstance(body, dict) and wire.F_SYSTEMTAGS in body:
                resource._set(wire.F_SYSTEMTAGS, list(body[wire.F_SYSTEMTAGS]))
        return tags

    def list_tags(self, resource: ResourceRef) -> Iterator[dict[str, Any]]:
        """The user tags of a taggable resource (File, Dataset, ShardCollection): an iterator of
        dicts, one per tag, ``{"name": <tag>}``.

        The request is made when this is called (not when the iterator is consumed). A resource
        object also gets the tags as its ``tags`` attribute. Raises ValidationError when the
        resource type is not taggable.
        """
        key = self._taggable(resource, "tagged")
        response = self._request("GET", wire.TAGS, path_params=self._tag_params(key))
        return iter([{wire.F_NAME: tag} for tag in self._tags_answer(resource, response)])

    def tag_resource(
        self, resource: ResourceRef, *tags: str, project: int | None = None
    ) -> list[str]:
        """Add tags (existing ones stay); returns the resource's tags afterwards.

        Raises ValidationError when the type is not taggable, no/empty tags are given or
        ``project`` is not an int, BadResponse 400 for a tag the server refuses.
        """
        key = self._taggable(resource, "tagged")
        if project is not None:
            check_int(project, "project")
        body = {wire.F_TAGS: self._check_tags(tags), wire.F_PROJECT: project}
        response = self._request("POST", wire.TAGS, path_params=self._tag_params(key), json=body)
        return self._tags_answer(resource, response)

    def untag_resource(
        self, resource: ResourceRef, *tags: str, project: int | None = None
    ) -> list[str]:
        """Remove tags (absent ones are silently ignored); returns the tags afterwards.

        ``project`` is accepted for orionclient compatibility; removal is not per project.
        Raises ValidationError when the type is not taggable or no tags are given.
        """
        key = self._taggable(resource, "untagged")
        body = {wire.F_TAGS: self._check_tags(tags)}
        response = self._request(
            "POST", wire.TAGS_REMOVE, path_params=self._tag_params(key), json=body
        )
        return self._tags_answer(resource, response)
