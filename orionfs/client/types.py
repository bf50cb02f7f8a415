"""Orion resource types, built from the API's JSON.

Each class has a ``resource_type`` (its wire name), ``id``, the API's fields as attributes (any field
the server sends, plus the documented ones, which default to None) and ``to_dict()``. Objects keep the
session that fetched them (``.session``), so a :class:`Link` can retrieve its resource.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from orionfs.client import wire
from orionfs.exceptions import OrionLinkError, ValidationError

if TYPE_CHECKING:
    from orionfs.client.session import OrionSession

__all__ = [
    "Dataset",
    "File",
    "Folder",
    "Link",
    "OrionResource",
    "Project",
    "RESOURCE_TYPES",
    "ResourceKey",
    "Shard",
    "ShardCollection",
    "User",
    "resource_class",
    "resource_from_entry",
]


class ResourceKey(NamedTuple):
    """What names one resource on the wire: its wire name, id, and (shards only) collection id.

    Accepted by every session method that takes a resource; cheaper to pass around than an object
    and checked first. ``ResourceKey("file", 12)``, ``ResourceKey("shard", 3, collection=7)``.
    """

    resource_type: str
    id: int
    collection: int | None = None


class OrionResource:
    """Base of the resource types: attributes from the API's JSON, plus the session."""

    resource_type: ClassVar[str] = ""
    fields: ClassVar[tuple[str, ...]] = (wire.F_ID,)

    def __init__(self, session: OrionSession | None = None, **data: Any) -> None:
        self.session = session
        self._keys: list[str] = []
        for name in self.fields:
            self._set(name, None)
        self._update(data)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], session: OrionSession | None = None):
        """Build an instance from the API's JSON object.

        Raises ValidationError when ``data`` is not a mapping.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(
                f"{cls.__name__}: expected a JSON object, got {type(data).__name__}"
            )
        return cls(session, **dict(data))

    def _set(self, name: str, value: Any) -> None:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            return
        if hasattr(type(self), name) and name not in self.fields:
            return  # never shadow a method or class attribute with a wire field
        if name not in self._keys:
            self._keys.append(name)
        setattr(self, name, value)

    def _update(self, data: Mapping[str, Any]) -> None:
        """Set the attributes from a JSON object (``resource_type`` is the class's own)."""
        for name, value in data.items():
            if name == wire.F_RESOURCE_TYPE:
                continue
            self._set(name, value)

    def to_dict(self) -> dict[str, Any]:
        """The resource as a JSON-ready dict, ``resource_type`` included."""
        out = {name: getattr(self, name) for name in self._keys}
        out[wire.F_RESOURCE_TYPE] = self.resource_type
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrionResource):
            return NotImplemented
        return (type(self), self.id, getattr(self, wire.F_COLLECTION, None)) == (
            type(other),
            other.id,
            getattr(other, wire.F_COLLECTION, None),
        )

    def __hash__(self) -> int:
        return hash((type(self), self.id))

    def __repr__(self) -> str:
        name = getattr(self, wire.F_NAME, None)
        return f"{type(self).__name__}(id={self.id!r}, name={name!r})"


class File(OrionResource):
    """A file: content plus name, path, tags."""

    resource_type = wire.FILE
    fields = wire.RESOURCE_FIELDS[wire.FILE]


class Dataset(OrionResource):
    """A dataset: records, one per line; ``count`` is the number of records."""

    resource_type = wire.DATASET
    fields = wire.RESOURCE_FIELDS[wire.DATASET]


class ShardCollection(OrionResource):
    """A shard collection (``state`` ``open`` while shards are added, then ``ready``)."""

    resource_type = wire.SHARD_COLLECTION
    fields = wire.RESOURCE_FIELDS[wire.SHARD_COLLECTION]


class Shard(OrionResource):
    """One shard of a collection; ``collection`` is the collection's id (needed for every URL)."""

    resource_type = wire.SHARD
    fields = wire.RESOURCE_FIELDS[wire.SHARD]


class Folder(OrionResource):
    """A folder (``id`` None for virtual folders such as ``/project``)."""

    resource_type = wire.FOLDER
    fields = wire.RESOURCE_FIELDS[wire.FOLDER]


class Project(OrionResource):
    """A project: ``id``, ``name``, ``owner``, ``members`` (user ids), ``created``."""

    resource_type = wire.PROJECT
    fields = wire.RESOURCE_FIELDS[wire.PROJECT]


class User(OrionResource):
    """A user: ``id``, ``username``, ``email``, names, ``default_project``."""

    resource_type = wire.USER
    fields = wire.RESOURCE_FIELDS[wire.USER]


RESOURCE_TYPES: dict[str, type[OrionResource]] = {
    cls.resource_type: cls for cls in (File, Dataset, ShardCollection, Shard, Folder, Project, User)
}


def resource_class(resource_type: str | type[OrionResource]) -> type[OrionResource]:
    """The class for a resource class or wire name.

    Raises ValidationError for anything else.
    """
    if isinstance(resource_type, type) and issubclass(resource_type, OrionResource):
        if resource_type.resource_type in RESOURCE_TYPES:
            return resource_type
    elif isinstance(resource_type, str) and resource_type in RESOURCE_TYPES:
        return RESOURCE_TYPES[resource_type]
    raise ValidationError(f"unknown resource type: {resource_type!r}")


def resource_from_entry(
    entry: Mapping[str, Any],
    session: OrionSession | None = None,
    collection: int | None = None,
) -> OrionResource:
    """Build the right type from an ls/stat Entry (docs/wire.md "Entry").

    A shard's Entry does not name its collection; pass ``collection`` (the id of the listed
    collection) so that the Shard can be downloaded. Raises ValidationError for a malformed entry.
    """
    if not isinstance(entry, Mapping):
        raise ValidationError(f"an entry must be a JSON object, not {type(entry).__name__}")
    cls = resource_class(entry.get(wire.F_RESOURCE_TYPE, ""))
    resource = cls.from_json(entry, session)
    if cls is Shard and collection is not None and getattr(resource, wire.F_COLLECTION) is None:
        resource._set(wire.F_COLLECTION, collection)
    return resource


class Link:
    """A reference to a resource, from ``OrionSession.create_link``; ``get()`` retrieves it.

    ``target_type`` is the referenced resource's wire name, ``id`` its id; shard links also carry
    ``collection`` and ``id_str``. ``resource_type`` is ``"link"``.
    """

    resource_type: ClassVar[str] = "link"

    def __init__(
        self,
        session: OrionSession | None,
        target_type: str,
        id: int,
        collection: int | None = None,
        id_str: str | None = None,
    ) -> None:
        self.session = session
        self.target_type = target_type
        self.id = id
        self.collection = collection
        self.id_str = id_str if id_str is not None else str(id)

    @classmethod
    def from_dict(cls, link: Any, session: OrionSession | None = None) -> Link:
        """Parse a link dict.

        Raises OrionLinkError when it does not reference a resource.
        """
        if not isinstance(link, Mapping):
            raise OrionLinkError(f"a link must be a dict, not {type(link).__name__}")
        target = link.get(wire.F_RESOURCE_TYPE)
        if target not in RESOURCE_TYPES:
            raise OrionLinkError(f"link has no known {wire.F_RESOURCE_TYPE}: {target!r}")
        rid = link.get(wire.F_ID)
        if isinstance(rid, bool) or not isinstance(rid, int):
            raise OrionLinkError(f"link {wire.F_ID} must be an integer, not {rid!r}")
        collection = link.get(wire.F_COLLECTION)
        if target == wire.SHARD and (
            isinstance(collection, bool) or not isinstance(collection, int)
        ):
            raise OrionLinkError(f"a shard link needs an integer {wire.F_COLLECTION}")
        id_str = link.get(wire.F_ID_STR)
        return cls(session, target, rid, collection if target == wire.SHARD else None,
                   str(id_str) if id_str is not None else None)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The link as a JSON-serializable dict."""
        out: dict[str, Any] = {wire.F_RESOURCE_TYPE: self.target_type, wire.F_ID: self.id}
        if self.target_type == wire.SHARD:
            out[wire.F_COLLECTION] = self.collection
            out[wire.F_ID_STR] = self.id_str
        return out

    def get(self) -> OrionResource:
        """Retrieve the referenced resource through the link's session.

        Raises OrionLinkError without a session, and what ``get_resource`` raises.
        """
        if self.session is None:
            raise OrionLinkError("this link has no session to retrieve its resource with")
        if self.target_type == wire.SHARD:
            return self.session.get_resource(self.target_type, self.id, collection=self.collection)
        return self.session.get_resource(self.target_type, self.id)

    def __repr__(self) -> str:
        return f"Link({self.target_type}, id={self.id!r})"
