"""Chunked request bodies over plain HTTP, their file pieces sent with sendfile(2).

``SendfileAdapter`` is the transport adapter of streamed requests (``_request(retry=False)``,
wire "Streamed uploads"). A ChunkedBody going to an ``http://`` URL without a proxy (the local
server) goes out on a keep-alive connection of the adapter's own small pool: each FileSpan piece
with sendfile(2), so the kernel moves the file's page-cache pages into the socket and the bytes
never pass through Python (no read into memory, no framing copy, no copy into the socket), each
bytes piece with send(2). Anything else (TLS, a proxy, a sized body) takes requests' own path,
where FileSpans are read into memory (orionfs.client.bodies).

Like every streamed request it is sent once and never retried. If the body's pieces raise (the
stream was cut), the connection is closed mid-body and the server commits nothing; socket errors
and timeouts become requests' ConnectionError and ReadTimeout, as on requests' path.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy
from urllib3.util.wait import wait_for_read

from orionfs.client.bodies import ChunkedBody, FileSpan
from orionfs.client.transport import OrionHTTPAdapter

__all__ = ["SendfileAdapter"]

#: Idle keep-alive connections kept per host (one per stream running at once).
MAX_IDLE_PER_HOST: int = 4
#: Request headers the adapter writes itself: the body is chunked, and the answer is taken
#: unencoded (it is read whole here, not decoded by urllib3).
_OWN_HEADERS = frozenset({"accept-encoding", "content-length", "host"})


def _timeouts(timeout: Any) -> tuple[float | None, float | None]:
    """(connect, read) seconds from requests' ``timeout`` (a number, a pair, or None)."""
    if isinstance(timeout, tuple):
        return timeout[0], timeout[1]
    return timeout, timeout


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by the server (readable: EOF, or stray bytes)."""
    return conn.sock is None or wait_for_read(conn.sock, timeout=0.0)


def _sendfile(sock: socket.socket, span: FileSpan) -> None:
    """Send all of ``span`` on ``sock`` with sendfile(2) (``socket.sendfile``: under the socket's
    timeout). Raises TimeoutError, or OSError when the file is shorter than the span."""
    with os.fdopen(os.dup(span.fd), "rb", buffering=0) as file:
        sent = sock.sendfile(file, span.offset, span.length)
    if sent != span.length:
        raise OSError("the file is shorter than the span to send")


class SendfileAdapter(OrionHTTPAdapter):
    """OrionHTTPAdapter, with chunked bodies to plain-HTTP URLs sent as the module says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle: dict[tuple[str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        #: Bodies sent on this adapter's own connections.
        self.sendfile_bodies = 0

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """requests' send, or for a chunked body to a plain-HTTP URL without a proxy, ours."""
        url = request.url or ""
        body = request.body
        if isinstance(body, ChunkedBody) and urlsplit(url).scheme == "http":
            if not select_proxy(url, proxies or {}):
                return self._send_chunked(request, body, timeout)
        return super().send(request, stream, timeout, verify, cert, proxies)

    def idle_connections(self) -> int:
        """Keep-alive connections waiting for the next chunked body."""
        with self._lock:
            return sum(len(conns) for conns in self._idle.values())

    def close(self) -> None:
        """Close the idle connections, then requests' pools."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
        super().close()

    # -- one request -------------------------------------------------------------------------------

    def _connection(
        self, key: tuple[str, int], connect: float | None
    ) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                conn = http.client.HTTPConnection(key[0], key[1], timeout=connect)
                conn.connect()
                return conn
            if not _dropped(conn):
                return conn
            conn.close()

    def _release(self, key: tuple[str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def _send_chunked(
        self, request: requests.PreparedRequest, body: ChunkedBody, timeout: Any
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        key = (parts.hostname or "", parts.port or 80)
        connect, read = _timeouts(timeout)
        try:
            conn = self._connection(key, connect)
        except TimeoutError as error:
            raise requests.exceptions.ConnectTimeout(error, request=request) from error
        except OSError as error:
            raise requests.exceptions.ConnectionError(error, request=request) from error
        try:
            assert conn.sock is not None
            conn.sock.settimeout(read)
            self._write(conn, request, body)
            answer = conn.getresponse()
            content = answer.read()
        except BaseException as error:
            conn.close()  # mid-body: the server commits nothing
            if isinstance(error, TimeoutError):
                raise requests.exceptions.ReadTimeout(error, request=request) from error
            if isinstance(error, OSError | http.client.HTTPException):
                raise requests.exceptions.ConnectionError(error, request=request) from error
            raise  # the body's pieces raised: the stream was cut
        with self._lock:
            self.sendfile_bodies += 1
        if answer.will_close:
            conn.close()
        else:
            self._release(key, conn)
        return _response(request, answer, content, self)

    @staticmethod
    def _write(
        conn: http.client.HTTPConnection, request: requests.PreparedRequest, body: ChunkedBody
    ) -> None:
        """The request line, the headers, then the body as HTTP chunks."""
        conn.putrequest(request.method or "POST", request.path_url, skip_accept_encoding=True)
        for name, value in request.headers.items():
            if name.lower() not in _OWN_HEADERS:
                conn.putheader(name, value)
        conn.putheader("Accept-Encoding", "identity")
        conn.endheaders()
        sock = conn.sock
        assert sock is not None
        for piece in body.pieces():
            if isinstance(piece, FileSpan):
                if piece.length:
                    sock.sendall(b"%x\r\n" % piece.length)
                    _sendfile(sock, piece)
                    sock.sendall(b"\r\n")
            elif piece:
                sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")


def _response(
    request: requests.PreparedRequest,
    answer: http.client.HTTPResponse,
    content: bytes,
    adapter: SendfileAdapter,
) -> requests.Response:
    """A requests Response holding an answer read whole."""
    response = requests.Response()
    response.status_code = answer.status
    response.reason = answer.reason
    response.headers = CaseInsensitiveDict(answer.getheaders())
    response.encoding = get_encoding_from_headers(response.headers)
    response._content = content
    response._content_consumed = True
    response.url = request.url or ""
    response.request = request
    response.connection = adapter
    return response
