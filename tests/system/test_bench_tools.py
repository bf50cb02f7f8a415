"""Tests of the benchmark's own tools: the latency proxy (scripts/latency_proxy.py).

Everything runs on loopback against an echo server started here. Timing assertions are one-sided
(a delay is at least the setting; a pipelined transfer is far from what per-chunk sleeping would
cost), never a tight window, so a loaded CI machine cannot make them flake.
"""

from __future__ import annotations

import hashlib
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import latency_proxy  # noqa: E402

IO_TIMEOUT = 30.0


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(IO_TIMEOUT)
        while True:
            try:
                data = self.request.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    server = _EchoServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(IO_TIMEOUT)


@pytest.fixture
def proxy_factory(echo_server):
    stops = []

    def make(delay_ms: float, handshake: bool = False) -> tuple[str, int]:
        host, port, stop = latency_proxy.start_proxy(*echo_server, delay_ms, handshake=handshake)
        stops.append(stop)
        return host, port

    yield make
    for stop in stops:
        stop()


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    parts = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("closed early")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _round_trips(host: str, port: int, count: int) -> list[float]:
    with socket.create_connection((host, port), timeout=IO_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"warm")
        _recv_exactly(sock, 4)  # the first exchange may carry the handshake delay
        times = []
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(b"ping")
            assert _recv_exactly(sock, 4) == b"ping"
            times.append(time.perf_counter() - start)
        return times


def test_added_round_trip_is_at_least_twice_the_one_way_delay(proxy_factory):
    host, port = proxy_factory(10)  # 10 ms each way -> 20 ms round trip
    times = _round_trips(host, port, 10)
    assert min(times) >= 0.0199
    # Far below a second even on a busy machine: the delay is added once, not repeatedly.
    assert sorted(times)[len(times) // 2] < 1.0


def test_zero_delay_adds_no_sleep(proxy_factory):
    host, port = proxy_factory(0)
    times = _round_trips(host, port, 20)
    assert sorted(times)[len(times) // 2] < 0.5


def test_ten_mib_pass_unchanged_and_pipelined(proxy_factory):
    """10 MiB echo through a 200 ms round trip: bytes identical, and the transfer is not slowed
    by a delay per chunk (about 160 chunks x 2 directions x 100 ms would be over 30 s)."""
    host, port = proxy_factory(100)
    payload = os.urandom(10 * 1024 * 1024)
    received = bytearray()
    with socket.create_connection((host, port), timeout=IO_TIMEOUT) as sock:
        start = time.perf_counter()

        def send() -> None:
            view = memoryview(payload)
            for i in range(0, len(view), 65536):
                sock.sendall(view[i : i + 65536])

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        while len(received) < len(payload):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += chunk
        elapsed = time.perf_counter() - start
        sender.join(IO_TIMEOUT)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    assert elapsed >= 0.199
    assert elapsed < 15.0


def test_handshake_emulation_adds_one_round_trip_to_the_first_exchange(proxy_factory):
    host, port = proxy_factory(10, handshake=True)
    with socket.create_connection((host, port), timeout=IO_TIMEOUT) as sock:
        start = time.perf_counter()
        sock.sendall(b"hello")
        assert _recv_exactly(sock, 5) == b"hello"
        first = time.perf_counter() - start
    assert first >= 0.0399  # handshake (20 ms) + request and answer (20 ms)


def test_half_close_is_forwarded(proxy_factory):
    host, port = proxy_factory(1)
    with socket.create_connection((host, port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(1024)
            if not chunk:
                break
            data += chunk
    assert data == b"last words"


def test_set_delay_changes_later_round_trips(echo_server):
    proxy = latency_proxy.LatencyProxy(*echo_server, 0, handshake=False)
    host, port = proxy.start()
    try:
        proxy.set_delay_ms(25)
        assert min(_round_trips(host, port, 3)) >= 0.0499
    finally:
        proxy.stop()


def test_many_concurrent_connections(proxy_factory):
    host, port = proxy_factory(5)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=IO_TIMEOUT) as sock:
                msg = f"client {i}".encode() * 1000
                sock.sendall(msg)
                assert _recv_exactly(sock, len(msg)) == msg
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(IO_TIMEOUT)
    assert not errors


def test_cli_prints_its_port_takes_commands_and_exits_when_stdin_closes(echo_server):
    target = f"{echo_server[0]}:{echo_server[1]}"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPTS / "latency_proxy.py"),
            "--target",
            target,
            "--rtt-ms",
            "0",
            "--no-handshake",
            "--stdin-control",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        words = proc.stdout.readline().split()
        assert words[:2] == ["listening", "127.0.0.1"]
        port = int(words[2])
        proc.stdin.write("rtt 30\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok rtt 30"
        assert min(_round_trips("127.0.0.1", port, 3)) >= 0.0299
        proc.stdin.write("stats\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "stats connections 1"
        proc.stdin.close()
        assert proc.wait(IO_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(IO_TIMEOUT)
