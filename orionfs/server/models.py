"""Pydantic schemas of the server's request and response bodies (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field

MAX_ID = 2**63 - 1
T = TypeVar("T")


class Detail(BaseModel):
    """Every error body."""

    detail: str


class Page(BaseModel, Generic[T]):
    """One page of a list endpoint."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


class Token(BaseModel):
    token: str


class Versions(BaseModel):
    versions: dict[str, str]


class UserOut(BaseModel):
    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    default_project: int | None


class ProjectOut(BaseModel):
    id: int
    name: str
    owner: int | None
    members: list[int]
    created: str


class Balance(BaseModel):
    balance: float
    currency: str


class Entry(BaseModel):
    resource_type: str
    id: int | None
    name: str
    path: str
    size: int
    created: str
    modified: str
    mtime: str
    owner: int | None
    project: int | None
    state: str
    tags: list[str]
    systemtags: list[str]
    count: int


class FileOut(BaseModel):
    id: int
    name: str
    path: str
    size: int
    created: str
    modified: str
    mtime: str
    owner: int | None
    project: int | None
    state: str
    description: str
    tags: list[str]
    systemtags: list[str]
    deleted: str | None
    sha256: str | None


class DatasetOut(BaseModel):
    id: int
    name: str
    description: str
    created: str
    modified: str
    mtime: str
    count: int
    size: int
    owner: int | None
    project: int | None
    systemtags: list[str]
    tags: list[str]
    deleted: str | None
    path: str
    state: str


class CollectionOut(BaseModel):
    id: int
    name: str
    path: str
    state: str
    metadata: dict[str, Any]
    owner: int | None
    project: int | None
    created: str
    modified: str
    mtime: str
    tags: list[str]
    systemtags: list[str]
    deleted: str | None


class ShardOut(BaseModel):
    id: int
    collection: int
    name: str
    state: str
    size: int
    metadata: dict[str, Any]
    created: str
    modified: str


class TagsOut(BaseModel):
    tags: list[str]
    systemtags: list[str]


class SharingOut(BaseModel):
    users: list[int]
    projects: list[int]


class PathsOut(BaseModel):
    paths: list[Entry]


class EntriesOut(BaseModel):
    results: list[Entry]


class ItemPath(BaseModel):
    resource_type: str
    id: int
    path: str


class ItemPathsOut(BaseModel):
    results: list[ItemPath]


# -- request bodies --------------------------------------------------------------------------

Id = Field(ge=1, le=MAX_ID)


class LeaveIn(BaseModel):
    new_owner_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class PathsIn(BaseModel):
    paths: list[str]
    exist_ok: bool = True


class RemoveIn(BaseModel):
    paths: list[str]
    recursive: bool = False


class AssignmentIn(BaseModel):
    resource_type: str
    id: int = Id
    path: str
    name: str | None = None


class AssignIn(BaseModel):
    assignments: list[AssignmentIn]


class ItemRefIn(BaseModel):
    resource_type: str
    id: int = Id


class GetPathsIn(BaseModel):
    items: list[ItemRefIn]


class ResourcePatchIn(BaseModel):
    name: str | None = None
    description: str | None = None
    mtime: str | None = Field(
        default=None, description="ISO 8601 with a zone; stored as UTC with microseconds"
    )


class CollectionIn(BaseModel):
    name: str
    path: str | None = None
    metadata: dict[str, Any] | None = None


class CollectionPatchIn(BaseModel):
    name: str | None = None
    state: str | None = None
    metadata: dict[str, Any] | None = None


class TagsIn(BaseModel):
    tags: list[str]
    project: int | None = Field(default=None, ge=1, le=MAX_ID)


class TagsRemoveIn(BaseModel):
    tags: list[str]


class ShareIn(BaseModel):
    share_with: str
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]]


class LatencyIn(BaseModel):
    ms: float = Field(ge=0, le=600_000)


class FaultsIn(BaseModel):
    status: int | None = Field(default=None, ge=100, le=599)
    drop: bool = False
    stall: float | None = Field(default=None, ge=0, le=3600)
    count: int | None = Field(default=None, ge=0)
    fraction: float | None = Field(default=None, ge=0, le=1)
    path_prefix: str | None = None
    retry_after: int | None = Field(default=None, ge=0)
    seed: int | None = None
    method: str | None = None
    clear: bool = False


class StorageStallIn(BaseModel):
    method: str
    seconds: float = Field(ge=0, le=60)
    count: int = Field(default=1, ge=1, le=1000)


class Counters(BaseModel):
    total: int
    by_endpoint: dict[str, int]


class TestUserIn(BaseModel):
    username: str
    password: str
    project: int | None = Field(default=None, ge=1, le=MAX_ID)
    cost_accounting: bool = True


class TestUserOut(BaseModel):
    user: UserOut
    token: str
    project: int
