"""CPU placement for the probe cases: the caller and a mount's threads pinned to chosen CPUs.

A probe of an absent name is one FUSE round trip (the caller's thread wakes a mount thread, which
wakes the caller), and its time depends mostly on where the scheduler runs the two: on one CPU
both wake-ups are plain context switches, on two CPUs each one wakes an idle CPU. Pinning both
sides the same way for every mount compares what the mounts do, not where they happened to run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def _pin_process(pid: int, cpus: set[int]) -> None:
    """Every current thread of ``pid`` allowed only ``cpus`` (threads that exit meanwhile are
    skipped)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, PermissionError):
            os.sched_setaffinity(int(tid), cpus)


def two_cpus() -> tuple[int, int] | None:
    """Two CPUs this process may run on (the lowest two), or None on a one-CPU machine."""
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[0], allowed[1]) if len(allowed) >= 2 else None


@contextlib.contextmanager
def pinned(pid: int, caller_cpu: int, mount_cpu: int) -> Iterator[None]:
    """The calling thread on ``caller_cpu`` and every thread of process ``pid`` on ``mount_cpu``;
    both given back the CPUs this process had before (threads started meanwhile included)."""
    allowed = os.sched_getaffinity(0)
    _pin_process(pid, {mount_cpu})
    os.sched_setaffinity(0, {caller_cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)
        _pin_process(pid, allowed)
