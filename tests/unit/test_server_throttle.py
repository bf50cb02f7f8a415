"""The failed-login throttle of the server (orionfs/server/throttle.py), on a fake clock."""

from __future__ import annotations

from orionfs.server.throttle import LoginThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_th_failure_within_the_window_blocks_until_the_oldest_expires() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(limit=3, window=60, clock=clock)
    keys = [("user", "ann"), ("address", "10.0.0.1")]
    for _ in range(2):
        throttle.failed(keys)
        clock.now += 10
    assert throttle.retry_after(keys) is None
    throttle.failed(keys)  # third failure, at 1020
    assert throttle.retry_after(keys) == 40  # the first (at 1000) expires at 1060
    clock.now = 1059.5
    assert throttle.retry_after(keys) == 1
    clock.now = 1060
    assert throttle.retry_after(keys) is None


def test_each_key_counts_alone_and_any_blocked_key_blocks() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(limit=2, window=60, clock=clock)
    throttle.failed([("user", "ann"), ("address", "a")])
    throttle.failed([("user", "bob"), ("address", "a")])
    assert throttle.retry_after([("user", "ann"), ("address", "b")]) is None
    assert throttle.retry_after([("user", "cid"), ("address", "a")]) == 60


def test_a_success_forgets_the_users_failures_but_not_the_addresss() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(limit=2, window=60, clock=clock)
    keys = [("user", "ann"), ("address", "a")]
    throttle.failed(keys)
    throttle.succeeded(("user", "ann"))
    throttle.failed(keys)
    assert throttle.retry_after([("user", "ann")]) is None
    assert throttle.retry_after([("address", "a")]) == 60
