"""Streamed request bodies: sized, rewindable, read in 1 MiB blocks, never held in memory.

- :class:`StreamingBody` is a sized, rewindable, file-like request body over a chunk generator;
- :func:`raw_body` builds an ``application/octet-stream`` one from a file object or bytes;
- :func:`multipart_body` builds a ``multipart/form-data`` one (form fields, then file parts);
- :class:`ChunkedBody`, :func:`raw_stream` and :func:`multipart_stream`: bodies of unknown length
  (a file still being written), sent with ``Transfer-Encoding: chunked``, once; their pieces are
  bytes or :class:`FileSpan` (a range of an open file, which a plain-HTTP connection sends with
  sendfile(2): orionfs.client.sendfile).
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeAlias

from orionfs.client import wire
from orionfs.exceptions import ValidationError

__all__ = [
    "SEND_BLOCK_SIZE",
    "ChunkedBody",
    "FileSpan",
    "StreamingBody",
    "multipart_body",
    "multipart_stream",
    "raw_body",
    "raw_stream",
]

#: Bytes per send() of a request body and per read of an upload's source file.
SEND_BLOCK_SIZE = 1 << 20
#: Bytes per read of a FileSpan sent through requests (below 256 KiB: a process that bounds its
#: malloc arenas maps every larger buffer afresh, and urllib3 copies each one again to frame it).
SPAN_READ_BLOCK = 128 << 10


@dataclass(frozen=True, slots=True)
class FileSpan:
    """``length`` bytes of the open file ``fd`` from ``offset``: a piece of a chunked body that is
    sent from the file (sendfile(2) over plain HTTP) rather than held in memory. The file stays
    open, and holds those bytes, until the request is sent."""

    fd: int
    offset: int
    length: int

    def blocks(self, size: int = SPAN_READ_BLOCK) -> Iterator[bytes]:
        """The span's bytes read ``size`` at a time; OSError if the file is shorter."""
        position, end = self.offset, self.offset + self.length
        while position < end:
            data = os.pread(self.fd, min(size, end - position), position)
            if not data:
                raise OSError(errno.EIO, "the file is shorter than the span to send")
            position += len(data)
            yield data


#: A piece of a chunked body.
Piece: TypeAlias = bytes | memoryview | FileSpan


class StreamingBody(io.RawIOBase):
    """A sized, rewindable request body whose bytes come from a generator made on demand.

    requests sends ``Content-Length: len(body)`` and urllib3 reads it in blocks; on a retry urllib3
    rewinds it with ``seek(0)``, which starts a fresh generator (the source files are seeked back by
    the generator itself). Raises OSError from ``seek`` when the source cannot be rewound.
    """

    def __init__(self, make_chunks: Callable[[], Iterator[bytes]], length: int, content_type: str):
        super().__init__()
        self._make_chunks = make_chunks
        self._length = length
        self.content_type = content_type
        self._chunks: Iterator[bytes] | None = None
        self._pending = memoryview(b"")
        self._pos = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR and offset == 0:
            return self._pos
        if whence == os.SEEK_END and offset == 0:
            # Only for length probes; reading after this starts over from the beginning.
            return self._length
        if whence != os.SEEK_SET or offset != 0:
            raise OSError("a streaming body can only be rewound to its start")
        self._chunks = None
        self._pending = memoryview(b"")
        self._pos = 0
        return 0

    def read(self, size: int | None = -1) -> bytes | memoryview:  # type: ignore[override]
        if size is None or size < 0:
            parts = []
            while chunk := self.read(SEND_BLOCK_SIZE):
                parts.append(bytes(chunk))
            return b"".join(parts)
        if self._chunks is None:
            self._chunks = self._make_chunks()
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = memoryview(chunk)
        out = self._pending[:size]
        self._pending = self._pending[size:]
        self._pos += len(out)
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


FileSpec = (
    Any  # fileobj | bytes | (filename, fileobj_or_bytes) | (filename, fileobj_or_bytes, size)
)


def _source_size(fileobj: IO[bytes], size: int | None) -> tuple[int, int | None]:
    """(bytes to send, start offset or None when the source cannot seek).

    Raises ValidationError when the size cannot be known.
    """
    start: int | None = None
    try:
        if fileobj.seekable():
            start = fileobj.tell()
    except (AttributeError, OSError, ValueError):
        start = None
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValidationError(f"size must be a non-negative integer, not {size!r}")
        return size, start
    try:
        info = os.fstat(fileobj.fileno())
        if stat.S_ISREG(info.st_mode):  # a pipe or socket reports 0, not its length
            return info.st_size - (start or 0), start
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    if start is not None:
        end = fileobj.seek(0, os.SEEK_END)
        fileobj.seek(start)
        return end - start, start
    raise ValidationError("size is required for a source that cannot seek")


def _as_fileobj(source: Any) -> IO[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    if not hasattr(source, "read"):
        raise ValidationError(f"not a binary file object or bytes: {type(source).__name__}")
    return source


def _file_chunks(fileobj: IO[bytes], start: int | None, size: int) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``fileobj`` from ``start``; raises ValidationError if it is short."""
    if start is not None:
        fileobj.seek(start)
    remaining = size
    while remaining > 0:
        chunk = fileobj.read(min(SEND_BLOCK_SIZE, remaining))
        if not chunk:
            raise ValidationError(f"the source ended {remaining} bytes before its size of {size}")
        remaining -= len(chunk)
        yield chunk


def raw_body(source: Any, size: int | None = None) -> StreamingBody:
    """A streamed ``application/octet-stream`` body of ``size`` bytes (default: to the end)."""
    fileobj = _as_fileobj(source)
    length, start = _source_size(fileobj, size)
    if start is None:
        used = False

        def once() -> Iterator[bytes]:
            nonlocal used
            if used:
                raise OSError("the upload source cannot seek, so it cannot be sent again")
            used = True
            return _file_chunks(fileobj, None, length)

        return StreamingBody(once, length, wire.OCTET_STREAM)
    return StreamingBody(lambda: _file_chunks(fileobj, start, length), length, wire.OCTET_STREAM)


def _form_value(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return (wire.TRUE if value else wire.FALSE).encode()
    if name in wire.JSON_FORM_FIELDS or isinstance(value, list | tuple | dict):
        return json.dumps(value).encode()
    return str(value).encode()


def _quote_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def _field_parts(boundary: str, fields: Mapping[str, Any]) -> list[bytes]:
    """The form fields of a multipart body, one encoded part each (None values left out)."""
    parts = []
    for name, value in fields.items():
        if value is None:
            continue
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_header(name)}"\r\n\r\n'
        ).encode()
        parts.append(head + _form_value(value, name) + b"\r\n")
    return parts


def _file_head(boundary: str, name: str, filename: str) -> bytes:
    """The headers of a file part (its bytes follow, then CRLF)."""
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_header(name)}"; '
        f'filename="{_quote_header(filename)}"\r\n'
        f"{wire.H_CONTENT_TYPE}: {wire.OCTET_STREAM}\r\n\r\n"
    ).encode()


def multipart_body(fields: Mapping[str, Any], files: Mapping[str, FileSpec]) -> StreamingBody:
    """A streamed ``multipart/form-data`` body: form ``fields`` then the file parts.

    Each ``files`` value is a binary file object, bytes, ``(filename, source)`` or
    ``(filename, source, size)``. The Content-Length is computed up front; file parts are read in
    1 MiB blocks while sending. Raises ValidationError for a source of unknown size.
    """
    boundary = f"orionfs-{uuid.uuid4().hex}"
    crlf = b"\r\n"
    pieces: list[bytes | tuple[IO[bytes], int | None, int]] = []
    pieces.extend(_field_parts(boundary, fields))
    for name, spec in files.items():
        filename, source, size = name, spec, None
        if isinstance(spec, Sequence) and not isinstance(spec, bytes | bytearray | str):
            filename, source, *rest = spec
            size = rest[0] if rest else None
        fileobj = _as_fileobj(source)
        length, start = _source_size(fileobj, size)
        pieces.append(_file_head(boundary, name, str(filename)))
        pieces.append((fileobj, start, length))
        pieces.append(crlf)
    pieces.append(f"--{boundary}--\r\n".encode())
    total = sum(p[2] if isinstance(p, tuple) else len(p) for p in pieces)
    sent_once = False

    def chunks() -> Iterator[bytes]:
        nonlocal sent_once
        if sent_once and any(isinstance(p, tuple) and p[1] is None for p in pieces):
            raise OSError("an upload source cannot seek, so the body cannot be sent again")
        sent_once = True
        for piece in pieces:
            if isinstance(piece, tuple):
                yield from _file_chunks(*piece)
            else:
                yield piece

    return StreamingBody(chunks, total, f"multipart/form-data; boundary={boundary}")


class ChunkedBody:
    """A request body of unknown length, sent with ``Transfer-Encoding: chunked``: ``pieces``
    gives its pieces as they come (bytes or FileSpans), iterating it gives bytes only (how
    requests sends it: one chunk per item, FileSpans read in SPAN_READ_BLOCK blocks). Either can
    be had once only (a second send, e.g. a retry, raises OSError instead of sending a truncated
    body)."""

    def __init__(self, chunks: Iterable[Piece], content_type: str) -> None:
        self._chunks: Iterable[Piece] | None = chunks
        self.content_type = content_type

    def pieces(self) -> Iterator[Piece]:
        """The body's pieces, in order (OSError if they were taken already)."""
        chunks, self._chunks = self._chunks, None
        if chunks is None:
            raise OSError("a chunked body is sent once; it cannot be sent again")
        return iter(chunks)

    def __iter__(self) -> Iterator[bytes]:
        return _as_bytes(self.pieces())


def _as_bytes(pieces: Iterator[Piece]) -> Iterator[bytes]:
    for piece in pieces:
        if isinstance(piece, FileSpan):
            yield from piece.blocks()
        elif isinstance(piece, memoryview):
            yield bytes(piece)
        else:
            yield piece


def raw_stream(chunks: Iterable[Piece]) -> ChunkedBody:
    """A chunked ``application/octet-stream`` body of the pieces ``chunks`` yields."""
    return ChunkedBody(chunks, wire.OCTET_STREAM)


def multipart_stream(
    fields: Mapping[str, Any], part: str, filename: str, chunks: Iterable[Piece]
) -> ChunkedBody:
    """A chunked ``multipart/form-data`` body: form ``fields``, then one file part ``part``
    whose bytes are what ``chunks`` yields (the server reads the fields before the file)."""
    boundary = f"orionfs-{uuid.uuid4().hex}"
    head = b"".join(_field_parts(boundary, fields)) + _file_head(boundary, part, filename)
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[Piece]:
        yield head
        yield from chunks
        yield tail

    return ChunkedBody(body(), f"multipart/form-data; boundary={boundary}")
