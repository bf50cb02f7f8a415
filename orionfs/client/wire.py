"""The wire map: every endpoint path template and JSON field / query name the client uses.

Nothing else in the client spells a URL path or a wire field name, so matching the real Orion (whose
wire format is only partly public, see shared/orion-api.md) is a change to this module only. The
contract implemented here is docs/wire.md.

Path templates use ``str.format`` placeholders (``{id}``, ``{resource_type}``, ``{collection}``); the
session quotes every value before it goes into a path (:func:`build_path`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

# --- Authentication -------------------------------------------------------------------------------
# The client sends ``Authorization: Token <token>`` (scheme, one space, token). The orionclient
# documentation writes the header as ``Token:<token-value>``; we read that as the header's name and
# value run together, not as a colon in the value, because the API looks like Django REST Framework
# (trailing-slash URLs), whose TokenAuthentication splits the value on whitespace and ignores a
# value whose first word is not exactly ``Token``, so ``Token:<t>`` would be refused there, while
# ``Token <t>`` is the form it documents. Our server accepts both forms; the client sends one.
AUTH_HEADER: Final = "Authorization"
AUTH_SCHEME: Final = "Token"

# --- Resource wire names (the ``resource_type`` values) -----------------------------------------
FILE: Final = "file"
DATASET: Final = "dataset"
SHARD_COLLECTION: Final = "shard_collection"
SHARD: Final = "shard"
FOLDER: Final = "folder"
PROJECT: Final = "project"
USER: Final = "user"

#: Collection path per resource wire name (list with GET, create with POST).
RESOURCE_COLLECTIONS: Final[Mapping[str, str]] = {
    FILE: "/api/v3/storage/files/",
    DATASET: "/api/v1/datasets/",
    SHARD_COLLECTION: "/api/v1/storage/collections/",
    SHARD: "/api/v1/storage/collections/{collection}/shards/",
    FOLDER: "/api/v1/storage/folders/",
    PROJECT: "/api/v1/projects/",
    USER: "/api/v1/users/",
}
#: Appended to a collection path: one resource (GET, PATCH, DELETE).
DETAIL_SUFFIX: Final = "{id}/"
#: Appended to a collection path: a resource's content (GET, honours Range).
DOWNLOAD_SUFFIX: Final = "{id}/download/"
#: Appended to a collection path: replace a file's content (PUT, raw body).
CONTENT_SUFFIX: Final = "{id}/content/"

#: Resource types that may be tagged and shared (the server answers 400 for the others).
TAGGABLE_TYPES: Final = frozenset({FILE, DATASET, SHARD_COLLECTION})
#: Resource types whose content can be downloaded.
DOWNLOADABLE_TYPES: Final = frozenset({FILE, DATASET, SHARD})

# --- Fixed endpoints ------------------------------------------------------------------------------
TOKEN: Final = "/api/v1/auth/token/"
VERSIONS: Final = "/api/versions/"
USER_ME: Final = "/api/v1/users/me/"
BALANCE: Final = "/api/v1/billing/balance/"
PROJECT_LEAVE: Final = "/api/v1/projects/{id}/leave/"
LS: Final = "/api/v1/storage/ls/"
STAT: Final = "/api/v1/storage/stat/"
PATHS_CREATE: Final = "/api/v1/storage/paths/"
PATHS_REMOVE: Final = "/api/v1/storage/paths/remove/"
PATHS_ASSIGN: Final = "/api/v1/storage/paths/assign/"
PATHS_GET: Final = "/api/v1/storage/paths/get/"
TAGS: Final = "/api/v1/tags/{resource_type}/{id}/"
TAGS_REMOVE: Final = "/api/v1/tags/{resource_type}/{id}/remove/"
SHARING: Final = "/api/v1/sharing/{resource_type}/{id}/"
SHARING_REMOVE: Final = "/api/v1/sharing/{resource_type}/{id}/remove/"

#: API group versions this client speaks (``GET VERSIONS`` answers ``{"versions": {...}}``).
API_VERSIONS: Final[Mapping[str, str]] = {
    "storage": "v3",
    "datasets": "v1",
    "projects": "v1",
    "users": "v1",
}

# --- Common JSON fields ---------------------------------------------------------------------------
F_ID: Final = "id"
F_ID_STR: Final = "id_str"
F_RESOURCE_TYPE: Final = "resource_type"
F_NAME: Final = "name"
F_PATH: Final = "path"
F_SIZE: Final = "size"
F_STATE: Final = "state"
F_DESCRIPTION: Final = "description"
F_METADATA: Final = "metadata"
F_COLLECTION: Final = "collection"
F_PROJECT: Final = "project"
F_OWNER: Final = "owner"
F_TAGS: Final = "tags"
F_SYSTEMTAGS: Final = "systemtags"
F_DETAIL: Final = "detail"  # error bodies: {"detail": "..."}
F_TOKEN: Final = "token"
F_VERSIONS: Final = "versions"
F_USERNAME: Final = "username"
F_DEFAULT_PROJECT: Final = "default_project"
F_BALANCE: Final = "balance"
# storage/paths
F_PATHS: Final = "paths"
F_EXIST_OK: Final = "exist_ok"
F_RECURSIVE: Final = "recursive"
F_ASSIGNMENTS: Final = "assignments"
F_ITEMS: Final = "items"
# sharing / projects
F_SHARE_WITH: Final = "share_with"
F_IDS: Final = "ids"
F_USERS: Final = "users"
F_PROJECTS: Final = "projects"
F_NEW_OWNER_ID: Final = "new_owner_id"
SHARE_WITH_VALUES: Final = frozenset({F_USERS, F_PROJECTS})

# --- Fields of each resource (docs/wire.md) -------------------------------------------------------
# They decide which attributes a resource object has (as None) before the server has sent them;
# fields the server sends beyond these are kept too.
F_CREATED: Final = "created"
F_MODIFIED: Final = "modified"  # the server's time of the item's last change (st_ctime)
#: [I] The time of the content, which the client may set (st_mtime): upload field, content-replace
#: query, PATCH field of files and datasets; docs/wire.md.
F_MTIME: Final = "mtime"
ENTRY_FIELDS: Final = (
    F_ID, F_NAME, F_PATH, F_SIZE, F_CREATED, F_MODIFIED, F_MTIME, F_OWNER, F_PROJECT, F_STATE, F_TAGS,
    F_SYSTEMTAGS, "count",
)  # fmt: skip
RESOURCE_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    FILE: (*ENTRY_FIELDS, F_DESCRIPTION, "deleted", "sha256"),
    DATASET: (*ENTRY_FIELDS, F_DESCRIPTION, "deleted"),
    SHARD_COLLECTION: (*ENTRY_FIELDS, F_METADATA, "deleted"),
    SHARD: (F_ID, F_COLLECTION, F_NAME, F_STATE, F_SIZE, F_METADATA, F_CREATED, F_MODIFIED, F_PATH),
    FOLDER: ENTRY_FIELDS,
    PROJECT: (F_ID, F_NAME, F_OWNER, "members", F_CREATED),
    USER: (F_ID, F_USERNAME, "email", "first_name", "last_name", F_DEFAULT_PROJECT),
}

# --- Orion paths (not URLs) ----------------------------------------------------------------------
#: A user's "My Data" folder in a project: the default output folder.
MY_DATA_PATH: Final = "/project/{project}/user/{username}"

# --- Paging ---------------------------------------------------------------------------------------
F_COUNT: Final = "count"
F_NEXT: Final = "next"
F_RESULTS: Final = "results"
Q_LIMIT: Final = "limit"
Q_OFFSET: Final = "offset"
PAGE_LIMIT_DEFAULT: Final = 250
PAGE_LIMIT_MAX: Final = 1000

# --- Query parameters -----------------------------------------------------------------------------
Q_PATH: Final = "path"
Q_IMMEDIATE: Final = "immediate"
Q_NAME: Final = "name"
Q_TITLE: Final = "title"  # documented filter alias of name (substring); sent as name
TRUE: Final = "true"
FALSE: Final = "false"
#: Every query parameter ``GET LS`` accepts (``path`` is passed separately).
LS_QUERY_PARAMS: Final = frozenset(
    {
        "name",
        "name_contains",
        "name_icontains",
        "order_by",
        "types",
        "tag_filters",
        "systag_filters",
        "list",
        Q_LIMIT,
        Q_OFFSET,
    }
)
#: Joins a list or tuple query value (``types``, ``tag_filters``, ``systag_filters``) on the wire.
LIST_SEPARATOR: Final = ","

# --- Multipart uploads ----------------------------------------------------------------------------
UPLOAD_FILE_PART: Final = "file"
OCTET_STREAM: Final = "application/octet-stream"
#: Form fields whose value is JSON-encoded in a multipart body.
JSON_FORM_FIELDS: Final = frozenset({F_TAGS, F_METADATA})

# --- Streamed uploads (a file still being written) -----------------------------------------------
# A body whose length is unknown when it starts is sent to the same endpoints as a sized upload
# (``POST`` on the files collection, multipart with the ``file`` part last; ``PUT`` on a file's
# content, raw) with ``Transfer-Encoding: chunked`` and no Content-Length. The server commits
# nothing before the body's last chunk: a stream cut short creates or changes nothing
# (docs/wire.md "Streamed uploads"). Never retried blindly: the chunks are gone once sent.
H_TRANSFER_ENCODING: Final = "Transfer-Encoding"
CHUNKED: Final = "chunked"

# --- HTTP headers ---------------------------------------------------------------------------------
H_RANGE: Final = "Range"
H_CONTENT_TYPE: Final = "Content-Type"
H_CONTENT_LENGTH: Final = "Content-Length"
H_CONTENT_ENCODING: Final = "Content-Encoding"


def build_path(template: str, **params: object) -> str:
    """Fill a path template, quoting each value as one path segment (``/`` included).

    Raises KeyError when the template names a placeholder that was not given.
    """
    return template.format(**{k: quote(str(v), safe="") for k, v in params.items()})


def collection_path(resource_type: str) -> str:
    """The collection path template of a resource wire name.

    Raises KeyError for an unknown wire name.
    """
    return RESOURCE_COLLECTIONS[resource_type]


def detail_path(resource_type: str) -> str:
    """The one-resource path template of a resource wire name (placeholder ``{id}``)."""
    return RESOURCE_COLLECTIONS[resource_type] + DETAIL_SUFFIX


def download_path(resource_type: str) -> str:
    """The content path template of a downloadable resource wire name (placeholder ``{id}``)."""
    return RESOURCE_COLLECTIONS[resource_type] + DOWNLOAD_SUFFIX


def content_path(resource_type: str) -> str:
    """The replace-content path template (``PUT``) of a resource wire name."""
    return RESOURCE_COLLECTIONS[resource_type] + CONTENT_SUFFIX


def auth_header_value(token: str) -> str:
    """The ``Authorization`` header value for a token: ``Token <token>`` (see AUTH_SCHEME)."""
    return f"{AUTH_SCHEME} {token}"


def time_value(ns: int) -> str:
    """A time (nanoseconds since the epoch) as the API writes it: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
        microsecond=(ns % 1_000_000_000) // 1000
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
