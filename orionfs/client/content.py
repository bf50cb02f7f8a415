"""Content: ranged reads, whole downloads, uploads and in-place replacement of a File's bytes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

import requests
import urllib3.exceptions

from orionfs.client import wire
from orionfs.client.bodies import ChunkedBody, Piece, multipart_stream, raw_body, raw_stream
from orionfs.client.core import ResourceRef, check_int, check_path
from orionfs.client.resources import ResourcesMixin
from orionfs.client.transport import transport_error
from orionfs.client.types import File
from orionfs.exceptions import BadResponse, ValidationError

__all__ = ["ContentMixin"]

#: Piece size for reading a response body (large pieces: few Python calls per byte).
_READ_CHUNK = 1 << 20
#: Bytes asked of the socket per ``readinto`` of a ranged answer.
_READINTO_CHUNK = 8 * _READ_CHUNK


def _read_all(response: requests.Response) -> bytearray:
    """The whole body in large pieces (``response.content`` reads 10 KiB at a time, which costs
    more than half of the throughput of a large read)."""
    body = bytearray()
    for chunk in response.iter_content(_READ_CHUNK):
        body += chunk
    return body


def _read_body_into(response: requests.Response, length: int) -> bytearray:
    """A 206 body of at most ``length`` bytes, read into one buffer allocated once (no growing, no
    final copy): a bytearray, which is bytes-like and compares equal to bytes."""
    if response.headers.get(wire.H_CONTENT_ENCODING, "identity") not in ("identity", ""):
        return _read_all(response)[:length]
    try:
        expected = int(response.headers.get(wire.H_CONTENT_LENGTH, length))
    except ValueError:
        expected = length
    buffer = bytearray(min(length, max(expected, 0)))
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        n = response.raw.readinto(view[filled : filled + _READINTO_CHUNK])
        if not n:
            break
        filled += n
    view.release()
    if filled < len(buffer):
        del buffer[filled:]
    return buffer


class ContentMixin(ResourcesMixin):
    """The content methods of OrionSession (extensions of orionclient's API for the mount)."""

    def _download_ref(self, resource: ResourceRef) -> tuple[str, dict[str, Any]]:
        key = self._ref(resource)
        if key.resource_type not in wire.DOWNLOADABLE_TYPES:
            raise ValidationError(f"a {key.resource_type} has no content to read")
        return wire.download_path(key.resource_type), self._path_params(key)

    def read_range(self, resource: ResourceRef, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of a File / Dataset / Shard from ``offset`` (one ranged GET).

        Fewer bytes at the end of the content; ``b""`` at or past the end. The result is bytes or
        a bytearray (bytes-like, equal to the same bytes). Raises ValidationError for a negative
        offset/length or a type without content, NotFoundResponse.
        """
        if check_int(offset, "offset") < 0 or check_int(length, "length") < 0:
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
                return _read_body_into(response, length)  # type: ignore[return-value]
            body = _read_all(response)  # a 200: the server ignored the Range
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise transport_error(exc) from exc
        finally:
            response.close()
        return bytes(body[offset : offset + length])

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
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise transport_error(exc) from exc
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
        params = {wire.F_NAME: name, wire.F_PATH: check_path(folder_path)}
        resource = self.create_resource(
            File, params, {wire.UPLOAD_FILE_PART: (name, fileobj, size)}
        )
        assert isinstance(resource, File)
        return resource

    def replace_file_content(
        self, file: ResourceRef, fileobj: Any, size: int | None = None
    ) -> File:
        """Replace a File's content atomically (same id), with a streamed PUT; returns the File.

        A File object passed in is updated in place and returned. Raises ValidationError for a
        non-File or a source of unknown size, NotFoundResponse.
        """
        key = self._ref(file)
        if key.resource_type != wire.FILE:
            raise ValidationError(
                f"only a file's content can be replaced, not a {key.resource_type}'s"
            )
        body = raw_body(fileobj, size)
        response = self._request(
            "PUT",
            wire.content_path(key.resource_type),
            path_params={wire.F_ID: key.id},
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

    # -- streamed uploads (wire "Streamed uploads": length unknown when the request starts) ------

    def upload_file_stream(self, folder_path: str, name: str, chunks: Iterable[Piece]) -> File:
        """Create a File named ``name`` in a folder from the pieces ``chunks`` yields (bytes, or
        FileSpans of an open file), sent while they come (chunked; for a file still being
        written). Sent once, never retried: if iterating ``chunks`` raises, the request is cut
        and nothing is created.

        Raises what ``upload_file`` raises, and what ``chunks`` raises.
        """
        if not isinstance(name, str) or not name:
            raise ValidationError(f"a file name must be a non-empty string, not {name!r}")
        fields = {wire.F_NAME: name, wire.F_PATH: check_path(folder_path)}
        body = multipart_stream(fields, wire.UPLOAD_FILE_PART, name, chunks)
        data = self._json(self._send_stream("POST", wire.collection_path(wire.FILE), {}, body))
        result = File.from_json(data, self)
        assert isinstance(result, File)
        return result

    def replace_file_content_stream(self, file: ResourceRef, chunks: Iterable[Piece]) -> File:
        """Replace a File's content (same id) with the pieces ``chunks`` yields (bytes, or
        FileSpans), sent while they come (chunked). Sent once, never retried; a cut stream
        changes nothing.

        Raises ValidationError for a non-File, NotFoundResponse, and what ``chunks`` raises.
        """
        key = self._ref(file)
        if key.resource_type != wire.FILE:
            raise ValidationError(
                f"only a file's content can be replaced, not a {key.resource_type}'s"
            )
        template = wire.content_path(key.resource_type)
        response = self._send_stream("PUT", template, {wire.F_ID: key.id}, raw_stream(chunks))
        result = File.from_json(self._json(response), self)
        assert isinstance(result, File)
        return result

    def _send_stream(
        self, method: str, template: str, path_params: dict[str, Any], body: ChunkedBody
    ) -> requests.Response:
        headers = {wire.H_CONTENT_TYPE: body.content_type, wire.H_TRANSFER_ENCODING: wire.CHUNKED}
        return self._request(
            method, template, path_params=path_params, data=body, headers=headers, retry=False
        )
