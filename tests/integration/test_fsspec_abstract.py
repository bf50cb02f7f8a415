"""fsspec's own abstract test suite (``fsspec.tests.abstract``) run on OrionFileSystem.

Every test class of the suite that applies to a remote filesystem: copy (``cp`` within Orion), get
(Orion to local), put (local to Orion), open (``xb``) and pipe (``mode="create"``), against the
real local server on a loopback port. Each test works in a fresh folder of the sample user's My Data.

The suite's glob edge cases are 32 parametrizations of one test per class, which exercise fsspec's
own glob rules over the same few requests; every 4th runs by default, all with ``ORIONFS_LONG=1``.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fsspec.tests.abstract import (
    AbstractCopyTests,
    AbstractFixtures,
    AbstractGetTests,
    AbstractOpenTests,
    AbstractPipeTests,
    AbstractPutTests,
)

from orionfs.fsspec import OrionFileSystem

LONG = os.environ.get("ORIONFS_LONG") == "1"
#: Without ORIONFS_LONG, the glob edge cases whose index is a multiple of this run.
GLOB_SAMPLE_EVERY = 4


class OrionFixtures(AbstractFixtures):
    """The suite's fixtures for Orion: a filesystem on the test server, a fresh folder per test."""

    @pytest.fixture(autouse=True)
    def _glob_edge_case_sample(self, request: pytest.FixtureRequest) -> None:
        callspec = getattr(request.node, "callspec", None)
        if LONG or callspec is None or "glob_edge_cases" not in request.node.name:
            return
        if callspec.indices.get("path", 0) % GLOB_SAMPLE_EVERY:
            pytest.skip(f"one glob edge case in {GLOB_SAMPLE_EVERY} runs (all: ORIONFS_LONG=1)")

    @pytest.fixture
    def fs(self, server: Any) -> Iterator[OrionFileSystem]:
        fs = OrionFileSystem(
            url=server.url,
            token=server.token,
            username=server.username,
            project=server.project_id,
            request_timeout=10,
            skip_instance_cache=True,
        )
        yield fs
        fs.session.close()

    @pytest.fixture
    def fs_join(self) -> Any:
        return posixpath.join

    @pytest.fixture
    def fs_path(self, fs: OrionFileSystem, server: Any) -> Iterator[str]:
        path = f"project/{server.project_id}/user/{server.username}/abstract-{uuid.uuid4().hex[:8]}"
        fs.makedirs(path)
        yield path
        fs.rm(path, recursive=True)


class TestOrionCopy(AbstractCopyTests, OrionFixtures):
    """fs.cp within Orion."""


class TestOrionGet(AbstractGetTests, OrionFixtures):
    """fs.get from Orion to local disk."""


class TestOrionPut(AbstractPutTests, OrionFixtures):
    """fs.put from local disk to Orion."""


class TestOrionOpen(AbstractOpenTests, OrionFixtures):
    """fs.open modes (``xb`` refuses an existing file)."""


class TestOrionPipe(AbstractPipeTests, OrionFixtures):
    """fs.pipe_file modes (``create`` refuses an existing file)."""
