"""A TCP proxy on loopback that adds network latency without limiting throughput.

The machines that run the benchmarks are loopback-only and the kernel has no netem, so this proxy
stands in for a WAN: every byte that crosses it in either direction is held for ``delay_ms`` (the
one-way delay; the added round trip is twice that). Chunks are stamped with their arrival time and
released when ``arrival + delay`` is reached, while the reader keeps reading: transfers stay pipelined
and a 256 MiB download is slowed by one delay, not by one delay per chunk. With ``handshake=True`` the
first bytes of a new connection also wait for an emulated TCP handshake (one extra round trip), so
clients that open a connection per request pay what they would pay on a real network.

It has no ``orionfs`` imports and no dependencies beyond the standard library.

As a module::

    host, port, stop = start_proxy("127.0.0.1", 8000, delay_ms=10)   # adds a 20 ms round trip
    ...
    stop()

or, to change the delay while connections stay open, ``LatencyProxy`` (``set_delay_ms``).

As a command::

    python scripts/latency_proxy.py --target 127.0.0.1:8000 --rtt-ms 20 [--port 0] [--stdin-control]

prints ``listening HOST PORT`` once ready. With ``--stdin-control`` it reads lines ``rtt MS`` (or
``delay MS``) from standard input, answers ``ok rtt MS``; ``stats`` answers ``stats connections N``
(connections accepted so far); it exits when standard input closes (so it never outlives the process
that started it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable

logger = logging.getLogger("latency_proxy")

CHUNK_SIZE = 256 * 1024
# Bytes held in one direction before the reader stops reading (back-pressure). Large enough for the
# bandwidth-delay product of loopback at a WAN delay (1 GB/s x 50 ms = 50 MB would need more, but
# the proxy's own copy rate on one core is well below that).
MAX_BUFFERED = 64 * 1024 * 1024
CONNECT_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class _DelayedPipe:
    """Copies one direction of a connection, releasing each chunk ``delay`` after it arrived."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        delay: Callable[[], float],
        not_before: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._delay = delay
        self._not_before = not_before
        self._chunks: deque[tuple[float, bytes | None]] = deque()
        self._buffered = 0
        self._ready = asyncio.Event()  # a chunk was queued
        self._drained = asyncio.Event()  # room below MAX_BUFFERED again
        self._drained.set()
        self.bytes = 0

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        last = 0.0
        try:
            while True:
                data = await self._reader.read(CHUNK_SIZE)
                # Deadlines never go backwards, so order is kept even if the delay is lowered.
                last = max(loop.time() + self._delay(), self._not_before, last)
                self._chunks.append((last, data or None))
                self._ready.set()
                if not data:
                    return
                self._buffered += len(data)
                if self._buffered >= MAX_BUFFERED:
                    self._drained.clear()
                    await self._drained.wait()
        except (ConnectionError, OSError):
            self._chunks.append((last, None))
            self._ready.set()

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._chunks:
                self._ready.clear()
                await self._ready.wait()
                continue
            deadline, _ = self._chunks[0]
            wait = deadline - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            # Everything already due goes out in one write.
            now = loop.time()
            batch: list[bytes] = []
            eof = False
            while self._chunks and self._chunks[0][0] <= now:
                _, data = self._chunks.popleft()
                if data is None:
                    eof = True
                    break
                batch.append(data)
            if batch:
                payload = b"".join(batch)
                self._writer.write(payload)
                self.bytes += len(payload)
                await self._writer.drain()
                self._buffered -= len(payload)
                if self._buffered < MAX_BUFFERED:
                    self._drained.set()
            if eof:
                if self._writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        self._writer.write_eof()
                return

    async def run(self) -> None:
        """Copy until end of stream (then half-close the other side) or an error."""
        read_task = asyncio.create_task(self._read())
        try:
            await self._write()
        finally:
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read_task


class LatencyProxy:
    """A latency-adding TCP proxy served by its own event loop in a daemon thread."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        delay_ms: float,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        handshake: bool = True,
    ) -> None:
        self.target = (target_host, target_port)
        self.handshake = handshake
        self._delay = delay_ms / 1000.0
        self._listen = (listen_host, listen_port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()
        self.connections = 0
        self.host = listen_host
        self.port = 0

    @property
    def delay_ms(self) -> float:
        return self._delay * 1000.0

    def set_delay_ms(self, delay_ms: float) -> None:
        """Change the one-way delay; applies to chunks that arrive from now on."""
        self._delay = max(0.0, delay_ms / 1000.0)

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self.connections += 1
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        s_writer = None
        try:
            try:
                s_reader, s_writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.target), CONNECT_TIMEOUT
                )
            except (TimeoutError, OSError) as exc:
                logger.warning("cannot reach %s:%s: %s", *self.target, exc)
                return
            for w in (c_writer, s_writer):
                sock = w.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A real client's first bytes leave after SYN/SYN-ACK (one round trip) and arrive one
            # one-way delay later.
            first = accepted + 3 * self._delay if self.handshake else 0.0
            up = _DelayedPipe(c_reader, s_writer, lambda: self._delay, first)
            down = _DelayedPipe(s_reader, c_writer, lambda: self._delay, 0.0)
            results = await asyncio.gather(up.run(), down.run(), return_exceptions=True)
            for r in results:
                if isinstance(r, Exception) and not isinstance(r, ConnectionError | OSError):
                    logger.debug("pipe ended with %r", r)
        except asyncio.CancelledError:
            pass
        finally:
            for w in (c_writer, s_writer):
                if w is not None:
                    w.close()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(w.wait_closed(), 1.0)
            self._tasks.discard(task)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, *self._listen, backlog=512)
        sock = self._server.sockets[0]
        self.host, self.port = sock.getsockname()[:2]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_TIMEOUT)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), STOP_TIMEOUT)

    def start(self) -> tuple[str, int]:
        """Start listening in a background thread; returns (host, port)."""
        started = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._start())
            except BaseException as exc:  # reported to start()
                error.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._close())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not started.wait(STOP_TIMEOUT):
            raise TimeoutError("latency proxy did not start")
        if error:
            raise error[0]
        return self.host, self.port

    def stop(self) -> None:
        """Stop listening and close every connection; bounded."""
        if self._thread is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT)
        self._thread = None


def start_proxy(
    target_host: str, target_port: int, delay_ms: float, *, handshake: bool = True
) -> tuple[str, int, Callable[[], None]]:
    """Start a proxy on 127.0.0.1 (free port) to the target, each direction delayed by delay_ms.

    Returns ``(host, port, stop)``; ``stop()`` closes everything. The added round trip is
    ``2 * delay_ms`` (plus one more round trip before the first bytes of a connection when
    ``handshake`` is true).
    """
    proxy = LatencyProxy(target_host, target_port, delay_ms, handshake=handshake)
    host, port = proxy.start()
    return host, port, proxy.stop


def _parse_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    """Run the proxy until interrupted (or until stdin closes, with --stdin-control)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--rtt-ms", type=float, help="added round trip (each direction gets half)")
    group.add_argument("--delay-ms", type=float, help="one-way delay per direction")
    parser.add_argument(
        "--no-handshake", action="store_true", help="no extra round trip on connect"
    )
    parser.add_argument(
        "--stdin-control",
        action="store_true",
        help="read 'rtt MS' lines from stdin; exit when stdin closes",
    )
    args = parser.parse_args(argv)
    delay = args.delay_ms if args.delay_ms is not None else (args.rtt_ms or 0.0) / 2
    host, port = _parse_hostport(args.target)
    proxy = LatencyProxy(host, port, delay, args.host, args.port, handshake=not args.no_handshake)
    lhost, lport = proxy.start()
    print(f"listening {lhost} {lport}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if args.stdin_control:

        def control() -> None:
            for line in sys.stdin:
                parts = line.split()
                if len(parts) == 2 and parts[0] in ("rtt", "delay"):
                    try:
                        value = float(parts[1])
                    except ValueError:
                        print(f"error {line.strip()}", flush=True)
                        continue
                    proxy.set_delay_ms(value / 2 if parts[0] == "rtt" else value)
                    print(f"ok rtt {proxy.delay_ms * 2:g}", flush=True)
                elif parts == ["stats"]:
                    print(f"stats connections {proxy.connections}", flush=True)
                elif parts:
                    print(f"error {line.strip()}", flush=True)
            done.set()

        threading.Thread(target=control, daemon=True).start()
    while not done.wait(0.5):
        pass
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
