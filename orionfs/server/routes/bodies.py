"""The bodies that are not JSON: multipart and raw uploads in, ranged downloads out.

OpenAPI descriptions for the routes that read the body themselves (FastAPI cannot infer them), and
the helpers those routes share.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from orionfs.server import models as m
from orionfs.server.storage import BadInput, Storage, Upload
from orionfs.server.transfer import (
    BlobResponse,
    RangeNotSatisfiable,
    discard_upload,
    receive_multipart,
)

T = TypeVar("T")

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", "file"],
                    "properties": {
                        "name": {"type": "string"},
                        "path": {"type": "string"},
                        "description": {"type": "string"},
                        "tags": {"type": "string", "description": "JSON list of strings"},
                        "metadata": {"type": "string", "description": "JSON object (shards)"},
                        "mtime": {
                            "type": "string",
                            "description": "ISO 8601 with a zone (files and datasets)",
                        },
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}
RAW_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    },
    206: {
        "description": "Partial content",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    416: {"model": m.Detail, "description": "Range not satisfiable"},
}


def required_name(fields: dict[str, str]) -> str:
    """The ``name`` field of an upload form; BadInput if it is missing or empty."""
    name = fields.get("name")
    if not name:
        raise BadInput("the 'name' field is required")
    return name


def json_field(fields: dict[str, str], key: str, kind: type) -> Any:
    """Form field ``key`` parsed as JSON of type ``kind`` (a list: of strings); empty if absent.

    Raises BadInput for text that is not JSON or not of that type.
    """
    text = fields.get(key)
    if text is None or text == "":
        return kind()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{key} must be JSON") from exc
    if not isinstance(value, kind) or (
        kind is list and not all(isinstance(item, str) for item in value)
    ):
        raise BadInput(f"{key} must be a JSON {kind.__name__}")
    return value


async def receive_upload(
    request: Request,
    storage: Storage,
    read_fields: Callable[[dict[str, str]], T],
    count_lines: bool = False,
) -> tuple[Upload, T]:
    """Receive a multipart upload: (the ``file`` part on disk, ``read_fields(text fields)``).

    ``read_fields`` checks and converts the text fields (raising BadInput); when it raises, the
    upload is discarded. ``count_lines`` makes the upload count records (datasets).
    """
    fields, upload = await receive_multipart(request, storage, count_lines)
    try:
        return upload, read_fields(fields)
    except BaseException:
        await discard_upload(upload)
        raise


def blob_response(request: Request, opened: tuple[BinaryIO, int, str]) -> Response:
    """A streamed download of an opened blob (``Range`` honoured), or 416 past its end."""
    handle, size, name = opened
    try:
        return BlobResponse(handle, size, name, request.headers.get("range"))
    except RangeNotSatisfiable as exc:
        return JSONResponse(
            {"detail": str(exc)}, status_code=416, headers={"Content-Range": f"bytes */{exc.size}"}
        )
