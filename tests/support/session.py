"""Session fixtures: OrionSession objects for the users of the real local server (``server``).

- ``session_factory(token=None, **config)``: a new OrionSession for ``server``'s sample user, short
  timeouts and fast backoff; any SessionConfig field can be overridden.
- ``session``: ``session_factory()``.
- ``other_user_session``: a session for a second user in a project of their own.
- ``session_home``: the sample user's My Data path; ``session_workdir``: a fresh folder in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orionfs.client.config import SessionConfig
from orionfs.client.session import OrionSession

#: Tests use short timeouts and near-instant backoff; the rules are the same.
TEST_REQUEST_TIMEOUT = 10.0
TEST_RETRY_TIMEOUT = 30.0
TEST_BACKOFF = {status: (0.01, 0.05) for status in (429, 500, 502, 503, 504)}


def make_session(server: Any, token: str | None = None, **overrides: Any) -> OrionSession:
    """An OrionSession on ``server`` (sample user unless ``token``/``username`` say otherwise)."""
    fields: dict[str, Any] = {
        "url": server.url,
        "username": server.username,
        "token": token if token is not None else server.token,
        "project": server.project_id,
        "request_timeout": TEST_REQUEST_TIMEOUT,
        "retry_timeout": TEST_RETRY_TIMEOUT,
        "backoff_dict": TEST_BACKOFF,
    }
    fields.update(overrides)
    return OrionSession(config=SessionConfig(**fields))


@pytest.fixture
def session_factory(server: Any) -> Iterator[Callable[..., OrionSession]]:
    made: list[OrionSession] = []

    def factory(token: str | None = None, **config: Any) -> OrionSession:
        session = make_session(server, token, **config)
        made.append(session)
        return session

    yield factory
    for session in made:
        session.close()


@pytest.fixture
def session(session_factory: Callable[..., OrionSession]) -> OrionSession:
    return session_factory()


@pytest.fixture
def other_user_session(server: Any, session_factory: Callable[..., OrionSession]) -> OrionSession:
    """A second user, in a new project of their own (not the sample user's)."""
    username = f"other-{uuid.uuid4().hex[:8]}"
    info = server.add_user(username, password="other-password", project=None)
    return session_factory(
        token=info["token"], username=info["user"]["username"], project=info["project"]
    )


@pytest.fixture
def session_home(server: Any) -> str:
    return f"/project/{server.project_id}/user/{server.username}"


@pytest.fixture
def session_workdir(session: OrionSession, session_home: str) -> str:
    """A fresh, empty folder in the sample user's My Data."""
    path = f"{session_home}/t-{uuid.uuid4().hex[:10]}"
    session.create_paths(path)
    return path
