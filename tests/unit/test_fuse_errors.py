"""The one errno table of the FUSE layer (orionfs.fuse.errno_for), and its boundary."""

from __future__ import annotations

import errno
import logging

import mfusepy
import pytest

from orionfs import exceptions as exc
from orionfs.exceptions import UnknownHandle
from orionfs.fuse.calls import Calls
from orionfs.fuse.errors import boundary, errno_for


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (exc.NotFoundResponse(None, "x", 404), errno.ENOENT),
        (exc.InvalidCredentials(None, "x", 401), errno.EACCES),
        (exc.AuthorizationRequired(None, "x", 403), errno.EACCES),
        (exc.BadResponse(None, "x", 409), errno.EEXIST),
        (exc.BadResponse(None, "x", 400), errno.EINVAL),
        (exc.BadResponse(None, "x", 413), errno.EFBIG),
        (exc.RateLimitedResponse(None, "x", 429), errno.EAGAIN),
        (exc.OrionServiceError(None, "x", 503), errno.EAGAIN),
        (exc.OrionServiceError(None, "x", 500), errno.EIO),
        (exc.OrionTimeout("slow"), errno.ETIMEDOUT),
        (exc.OrionConnectionError("down"), errno.EIO),
        (exc.ValidationError("bad"), errno.EINVAL),
        (exc.NotEnoughDiskError("full"), errno.ENOSPC),
        (exc.FolderNotEmpty("x"), errno.ENOTEMPTY),
        (exc.AlreadyExists("x"), errno.EEXIST),
        (exc.NotAFolder("x"), errno.ENOTDIR),
        (exc.IsAFolder("x"), errno.EISDIR),
        (exc.NotTaggable("x"), errno.ENOTSUP),
        (UnknownHandle(3), errno.EBADF),
        (OSError(errno.ENOSPC, "local disk full"), errno.ENOSPC),
        (RuntimeError("bug"), errno.EIO),
    ],
)
def test_errno_table(error, code):
    assert errno_for(error) == code


class _Ops:
    def __init__(self) -> None:
        self.calls = Calls()

    @boundary
    def boom(self, path: str) -> None:
        raise RuntimeError("unexpected")

    @boundary
    def missing(self, path: str) -> None:
        raise exc.NotFoundResponse(None, "no such path", 404)


def test_boundary_gives_every_exception_an_errno_and_logs_unexpected_ones(caplog):
    with caplog.at_level(logging.INFO, logger="orionfs.fuse.errors"):
        with pytest.raises(mfusepy.FuseOSError) as info:
            _Ops().boom("/x")
    assert info.value.errno == errno.EIO
    assert "unexpected error in boom" in caplog.text
    assert "Traceback" not in caplog.text  # tracebacks only at debug level
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="orionfs.fuse.errors"):
        with pytest.raises(mfusepy.FuseOSError) as info:
            _Ops().missing("/x")
    assert info.value.errno == errno.ENOENT
    assert caplog.text == ""  # an expected answer is no news


def test_boundary_counts_each_operation_and_its_errors_once():
    ops = _Ops()
    for _ in range(3):
        with pytest.raises(mfusepy.FuseOSError):
            ops.missing("/x")
    counts = ops.calls.counts()
    assert counts["missing"].calls == 3
    assert counts["missing"].errors == 3
    assert ops.calls.in_flight() == []


def test_each_mount_sees_only_its_own_calls_in_flight():
    first, second = _Ops(), _Ops()
    assert first.calls.start("read")
    try:
        assert [name for name, _ in first.calls.in_flight()] == ["read"]
        assert second.calls.in_flight() == []
    finally:
        first.calls.end(failed=False)
