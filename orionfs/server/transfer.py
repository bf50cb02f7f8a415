"""Streaming bodies for the server: multipart and raw uploads into a temp file, ranged downloads.

Uploads never buffer a whole body in memory: each chunk of the file part goes straight into an
:class:`~orionfs.server.storage.Upload`, and a form's text fields are capped in number and size.
The upload's disk work (opening, writing, closing, removing) happens in worker threads, never on
the event loop. Downloads read 1 MiB at a time with ``os.pread`` in a worker thread and honour a
single ``Range: bytes=...`` (``a-b``, ``a-``, ``-n``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any, BinaryIO
from urllib.parse import quote

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from orionfs.server.storage import BadInput, Storage, TooLarge, Upload

logger = logging.getLogger(__name__)

DOWNLOAD_CHUNK = 1 << 20
# An upload form holds a few small text fields and one file part. The text is held in memory, so
# it is capped: parts (fields and the file), and text bytes of all fields together. The parser caps
# each part's headers (8 of at most 4 KiB each). A refused form's body is read to its end (up to
# FORM_DRAIN_BYTES, then the connection closes) so that the client sees the answer.
MAX_FORM_PARTS = 32
MAX_FORM_TEXT_BYTES = 1 << 20
FORM_DRAIN_BYTES = 256 << 20


class RangeNotSatisfiable(Exception):
    """The requested byte range starts past the end of the content (HTTP 416)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable (size {size})")
        self.size = size


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte range a ``Range`` header asks for, or None for all.

    Malformed or multi-range headers are ignored (None: the whole content), as RFC 9110 allows.
    Raises :class:`RangeNotSatisfiable` when the range lies past the end.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    if not all(part.isdigit() for part in (first_text, last_text) if part):
        return None
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else max(first, size - 1)
    if last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable(size)
    return first, min(last, size - 1)


class BlobResponse(Response):
    """Stream an open blob (whole or one range); closes the handle when done."""

    def __init__(self, handle: BinaryIO, size: int, name: str, range_header: str | None) -> None:
        self.handle = handle
        try:
            byte_range = parse_range(range_header, size)
        except RangeNotSatisfiable:
            handle.close()
            raise
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
        }
        if byte_range is None:
            self.first, self.length, status = 0, size, 200
        else:
            first, last = byte_range
            self.first, self.length, status = first, last - first + 1, 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        super().__init__(status_code=status, headers=headers, media_type="application/octet-stream")
        # Response.__init__ set Content-Length 0 for the empty body; give the real length.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.raw_headers.append((b"content-length", str(self.length).encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers, then the bytes in 1 MiB chunks read in a worker thread."""
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            if scope.get("method") == "HEAD" or self.length == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            fd = self.handle.fileno()
            offset, remaining = self.first, self.length
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(
                    os.pread, fd, min(DOWNLOAD_CHUNK, remaining), offset
                )
                if not chunk:
                    logger.error("blob shorter than its recorded size")
                    break
                offset += len(chunk)
                remaining -= len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
                )
        finally:
            self.handle.close()


async def _write(upload: Upload, data: bytes) -> None:
    """Append to an upload without blocking the event loop (waits in a thread when it is behind)."""
    if not upload.write_nowait(data):
        await anyio.to_thread.run_sync(upload.write, data)


async def discard_upload(upload: Upload | None) -> None:
    """Discard an upload in a thread, even while the request is being cancelled."""
    if upload is not None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(upload.discard)


async def receive_raw(request: Request, storage: Storage) -> Upload:
    """Stream a raw request body into a new upload (discarded on error)."""
    upload = await anyio.to_thread.run_sync(storage.new_upload)
    try:
        async for chunk in request.stream():
            await _write(upload, chunk)
        await anyio.to_thread.run_sync(upload.close)
    except BaseException:
        await discard_upload(upload)
        raise
    return upload


class _MultipartSink:
    """Callbacks for python-multipart: text fields into a dict, the ``file`` part's bytes aside.

    The parser calls these synchronously, so they do no I/O: the ``file`` part's bytes wait in
    :attr:`file_data` until :func:`receive_multipart` moves them into the upload.
    """

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.parts = 0
        self.text_bytes = 0
        self.file_started = False
        self.file_data: list[bytes] = []
        self._headers: dict[str, bytes] = {}
        self._field = b""
        self._value = b""
        self._name: str | None = None
        self._is_file = False
        self._buffer = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._buffer = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        self.parts += 1
        if self.parts > MAX_FORM_PARTS:
            raise TooLarge(f"more than {MAX_FORM_PARTS} parts in the upload form")
        _, params = parse_options_header(self._headers.get("content-disposition", b""))
        raw_name = params.get(b"name")
        if raw_name is None:
            raise BadInput("multipart part without a name")
        self._name = raw_name.decode("utf-8", "replace")
        self._is_file = self._name == "file"
        if self._is_file:
            if self.file_started:
                raise BadInput("more than one 'file' part")
            self.file_started = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.file_data.append(bytes(data[start:end]))
        else:
            self.text_bytes += end - start
            if self.text_bytes > MAX_FORM_TEXT_BYTES:
                raise TooLarge(f"the upload form's fields exceed {MAX_FORM_TEXT_BYTES} bytes")
            self._buffer += data[start:end]

    def on_part_end(self) -> None:
        if not self._is_file and self._name is not None:
            try:
                self.fields[self._name] = bytes(self._buffer).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadInput(f"form field {self._name!r} is not UTF-8") from exc

    def take_file_data(self) -> list[bytes]:
        """The ``file`` part's bytes parsed since the last call."""
        data, self.file_data = self.file_data, []
        return data


async def receive_multipart(
    request: Request, storage: Storage, count_lines: bool = False
) -> tuple[dict[str, str], Upload]:
    """Parse a multipart/form-data body: (text fields, upload of the ``file`` part).

    ``count_lines`` makes the upload count records (datasets).

    Raises BadInput for a body that is not multipart, is malformed or has no ``file`` part, and
    TooLarge for a form over the caps (MAX_FORM_PARTS, MAX_FORM_TEXT_BYTES).
    """
    content_type, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise BadInput("expected a multipart/form-data body with a boundary")
    sink = _MultipartSink()
    upload: Upload | None = None
    body = request.stream()
    try:
        parser = MultipartParser(boundary, sink.callbacks())
        async for chunk in body:
            if chunk:
                parser.write(chunk)
            if sink.file_started and upload is None:
                upload = await anyio.to_thread.run_sync(storage.new_upload, count_lines)
            for data in sink.take_file_data():
                assert upload is not None
                await _write(upload, data)
        parser.finalize()
        if upload is None:
            raise BadInput("missing the 'file' part")
        await anyio.to_thread.run_sync(upload.close)
    except (BadInput, TooLarge):
        await discard_upload(upload)
        await _drain(body)
        raise
    except Exception as exc:
        await discard_upload(upload)
        if type(exc).__module__.startswith("python_multipart"):
            await _drain(body)
            raise BadInput(f"malformed multipart body: {exc}") from exc
        raise
    except BaseException:
        await discard_upload(upload)
        raise
    return sink.fields, upload


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read and drop the rest of a refused body (at most FORM_DRAIN_BYTES)."""
    drained = 0
    try:
        async for chunk in body:
            drained += len(chunk)
            if drained > FORM_DRAIN_BYTES:
                return
    except ClientDisconnect:
        pass
