"""The server's event loop never waits for SQLite or the disk (shared/style.md, "Blocking work").

A storage call made slow on purpose (the ``storage-stall`` test hook blocks the calling thread, as
a slow disk or a busy database would) delays only the request that made it; requests that arrive
meanwhile are answered at once. And the latency hook delays requests side by side, not one after
the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.server import ServerProcess
from tests.support.server_api import Api

STALL_SECONDS = 1.0


def _api(server: ServerProcess) -> Api:
    return Api(server.url, server.token, server.username, server.project_id)


def _timed(call: Callable[[], requests.Response]) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = call()
    return time.monotonic() - started, response


SLOW_CALLS: dict[str, Callable[[Api], requests.Response]] = {
    # The token lookup of every request, done before any route runs.
    "authenticate": lambda api: api.get("/api/v1/users/me/"),
    # The temp file an upload is streamed into.
    "new_upload": lambda api: api.upload(api.my_data, "stalled.txt", b"stalled"),
}


@pytest.mark.parametrize("method", sorted(SLOW_CALLS))
def test_a_slow_storage_call_holds_up_only_its_own_request(
    server: ServerProcess, method: str
) -> None:
    slow_client, fast_client = _api(server), _api(server)
    assert fast_client.get("/api/versions/").status_code == 200  # connection open and warm
    server.stall_storage(method, STALL_SECONDS)
    slow: dict[str, object] = {}

    def send_slow() -> None:
        slow["seconds"], slow["response"] = _timed(lambda: SLOW_CALLS[method](slow_client))

    thread = threading.Thread(target=send_slow)
    thread.start()
    time.sleep(0.2)  # the slow request is now blocked in the stalled storage call
    seconds, response = _timed(lambda: fast_client.get("/api/versions/"))
    thread.join(10)
    print(f"\n[stalled {method}] slow request {slow['seconds']:.2f} s, concurrent {seconds:.3f} s")
    assert response.status_code == 200
    assert slow["seconds"] >= STALL_SECONDS  # the stall did hit the slow request
    assert slow["response"].status_code in (200, 201)  # type: ignore[union-attr]
    assert seconds < 0.3, f"a concurrent request waited {seconds:.2f} s for a stalled {method}"


def test_eight_concurrent_listings_take_about_one_latency(server: ServerProcess) -> None:
    latency = 0.02
    clients = [_api(server) for _ in range(8)]
    for client in clients:  # open every connection before timing
        assert client.ls(client.my_data).status_code == 200
    server.set_latency(latency * 1000)

    def batch() -> float:
        barrier = threading.Barrier(len(clients) + 1)

        def listing(client: Api) -> int:
            barrier.wait()
            return client.ls(client.my_data).status_code

        with ThreadPoolExecutor(len(clients)) as pool:
            futures = [pool.submit(listing, client) for client in clients]
            barrier.wait()
            started = time.monotonic()
            assert [f.result() for f in futures] == [200] * len(clients)
            return time.monotonic() - started

    best = min(batch() for _ in range(3))
    print(f"\n[8 concurrent listings, {latency * 1000:.0f} ms latency] {best * 1000:.0f} ms")
    # One after the other they would take 8 x 20 ms; side by side about one latency.
    assert best < len(clients) * latency / 2, f"8 concurrent listings took {best * 1000:.0f} ms"
