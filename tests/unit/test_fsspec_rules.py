"""Unit tests of the fsspec layer's pure rules: URLs and profiles, info dicts and shown names, the
error table. No server: the profile tests use a profiles file in a temp config folder."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from orionfs.client import wire
from orionfs.client.config import CONFIG_DIR_ENV, PROFILE_ENV, save_profile
from orionfs.exceptions import (
    AuthorizationRequired,
    BadResponse,
    NotFoundResponse,
    OrionServiceError,
    OrionTimeout,
    ProfileError,
    ValidationError,
)
from orionfs.fsspec import urls
from orionfs.fsspec.entries import entry_info, is_plain, listing_infos, orion_name, root_info
from orionfs.fsspec.errors import not_empty, translate

HOME = "project/1/user/me"


# -- URLs --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "profile", "path"),
    [
        ("orion://project/1/user/me/a.csv", None, "project/1/user/me/a.csv"),
        ("orion://work@project/1/user/me/a.csv", "work", "project/1/user/me/a.csv"),
        ("orion://a@b@project/1", "a@b", "project/1"),
        ("orion://", None, ""),
        ("orion://work@", "work", ""),
        ("/project/1/user/me/", None, "project/1/user/me"),
        ("project/1/user/me/x@y.csv", None, "project/1/user/me/x@y.csv"),
        ("orion://project/1/user/me/x@y.csv", None, "project/1/user/me/x@y.csv"),
    ],
)
def test_split_url_takes_the_profile_from_before_project(
    url: str, profile: str | None, path: str
) -> None:
    assert urls.split_url(url) == (profile, path)


def test_split_url_refuses_an_empty_profile() -> None:
    with pytest.raises(ValidationError):
        urls.split_url("orion://@project/1")


def test_urls_and_orion_paths_convert_both_ways() -> None:
    assert urls.orion_path(f"orion://{HOME}/a.csv") == f"/{HOME}/a.csv"
    assert urls.orion_path("") == "/"
    assert urls.fs_path(f"/{HOME}/a.csv") == f"{HOME}/a.csv"
    assert urls.make_url(f"{HOME}/a.csv") == f"orion://{HOME}/a.csv"
    url = urls.make_url(f"{HOME}/a.csv", "work")
    assert url == f"orion://work@{HOME}/a.csv"
    assert urls.split_url(url) == ("work", f"{HOME}/a.csv")


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profiles file with ``default`` and ``work``, and no ORION_PROFILE."""
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    save_profile("default", "http://127.0.0.1:1", "me", "token-default", project=1)
    return save_profile("work", "http://127.0.0.1:2", "worker", "token-work", project=2)


def test_profile_order_is_option_then_env_then_default(
    profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert urls.resolve_profile({}) == {"profile": "default"}
    assert urls.session_config(**urls.resolve_profile({})).token == "token-default"
    monkeypatch.setenv(PROFILE_ENV, "work")
    assert urls.resolve_profile({}) == {"profile": "work"}
    assert urls.session_config(**urls.resolve_profile({})).username == "worker"
    assert urls.resolve_profile({"profile": "default"}) == {"profile": "default"}
    assert urls.session_config(profile="default").url == "http://127.0.0.1:1"


def test_url_and_token_need_no_profile_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "none"))
    options = urls.resolve_profile({"url": "http://127.0.0.1:3", "token": "t"})
    assert "profile" not in options
    config = urls.session_config(**options, project=4)
    assert (config.url, config.token, config.project) == ("http://127.0.0.1:3", "t", 4)


@pytest.mark.parametrize(
    "options",
    [
        {"url": "http://127.0.0.1:3"},
        {"token": "t"},
        {"profile": "work", "url": "http://127.0.0.1:3", "token": "t"},
    ],
)
def test_incomplete_or_conflicting_options_are_refused(options: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        urls.session_config(**options)


def test_a_missing_profile_is_a_profile_error_naming_it(profiles: Path) -> None:
    with pytest.raises(ProfileError, match="nope"):
        urls.session_config(profile="nope")


# -- info dicts and names ----------------------------------------------------------------------
def _entry(rtype: str, rid: int | None, name: str, size: int = 0, **extra: object) -> dict:
    return {
        wire.F_RESOURCE_TYPE: rtype,
        wire.F_ID: rid,
        wire.F_NAME: name,
        wire.F_PATH: f"/{HOME}/{name}",
        wire.F_SIZE: size,
        wire.F_TAGS: ["t"],
        wire.F_MODIFIED: "2024-01-02T03:04:05.000006Z",
        **extra,
    }


@pytest.mark.parametrize(
    ("rtype", "rid", "kind", "readonly", "size"),
    [
        (wire.FOLDER, 5, "directory", False, 0),
        (wire.FOLDER, None, "directory", True, 0),
        (wire.FILE, 6, "file", False, 7),
        (wire.DATASET, 7, "file", True, 7),
        (wire.SHARD_COLLECTION, 8, "directory", True, 0),
        (wire.SHARD, 9, "file", True, 7),
    ],
)
def test_each_kind_shows_as_the_mount_shows_it(
    rtype: str, rid: int | None, kind: str, readonly: bool, size: int
) -> None:
    info = entry_info(_entry(rtype, rid, "x", size=7), f"{HOME}/x")
    assert (info["type"], info["readonly"], info["size"]) == (kind, readonly, size)
    assert info["name"] == f"{HOME}/x"
    assert info[wire.F_RESOURCE_TYPE] == rtype
    assert info[wire.F_ID] == rid
    assert info[wire.F_TAGS] == ["t"]
    assert info[wire.F_MODIFIED] == "2024-01-02T03:04:05.000006Z"


def test_root_is_a_read_only_directory() -> None:
    info = root_info()
    assert (info["name"], info["type"], info["readonly"]) == ("", "directory", True)


def test_shared_names_show_with_an_id_suffix_lowest_id_keeps_the_name() -> None:
    entries = [
        _entry(wire.FILE, 9, "a.csv"),
        _entry(wire.FILE, 3, "a.csv"),
        _entry(wire.FILE, 4, "b"),
    ]
    shown = {
        info["name"].rsplit("/", 1)[-1]: info[wire.F_ID] for info in listing_infos(HOME, entries)
    }
    assert shown == {"a.csv": 3, "a.csv (id 9)": 9, "b": 4}


def test_a_literal_id_suffix_name_keeps_its_own_name() -> None:
    entries = [
        _entry(wire.FILE, 1, "x"),
        _entry(wire.FILE, 2, "x"),
        _entry(wire.FILE, 3, "x (id 2)"),
    ]
    shown = {
        info["name"].rsplit("/", 1)[-1]: info[wire.F_ID] for info in listing_infos(HOME, entries)
    }
    assert shown == {"x": 1, "x (id 2)": 3, "x (id 2) (id 2)": 2}


def test_a_slash_in_a_name_shows_as_division_slash_and_is_not_plain() -> None:
    entry = _entry(wire.FILE, 1, "a/b")
    (info,) = listing_infos(HOME, [entry])
    assert info["name"] == f"{HOME}/a\u2215b"
    assert not is_plain("a\u2215b")
    assert not is_plain("a (id 12)")
    assert is_plain("a (id x)") and is_plain("plain.csv")


def test_orion_name_is_the_last_part_of_the_orion_path() -> None:
    assert orion_name(entry_info(_entry(wire.FILE, 2, "x"), f"{HOME}/x (id 2)")) == "x"


# -- the error table ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (NotFoundResponse(None, "no such path: /p"), FileNotFoundError, errno.ENOENT),
        (AuthorizationRequired(None, "virtual folder"), PermissionError, errno.EACCES),
        (BadResponse(None, "taken", status_code=409), FileExistsError, errno.EEXIST),
        (BadResponse(None, "bad name", status_code=400), OSError, errno.EINVAL),
        (BadResponse(None, "too big", status_code=413), OSError, errno.EFBIG),
        (OrionServiceError(None, "boom", status_code=500), OSError, errno.EIO),
    ],
)
def test_orion_errors_become_builtin_oserrors_with_the_message(
    exc: Exception, kind: type[OSError], code: int
) -> None:
    error = translate(exc, "p")  # type: ignore[arg-type]
    assert type(error) is kind
    assert isinstance(error, OSError)
    assert error.errno == code
    assert error.filename == "p"
    assert str(exc) in str(error)


def test_a_conflict_can_mean_not_empty() -> None:
    error = translate(BadResponse(None, "not empty", status_code=409), "d", conflict=not_empty)
    assert isinstance(error, OSError) and error.errno == errno.ENOTEMPTY


@pytest.mark.parametrize("exc", [OrionTimeout("slow"), ValidationError("bad input")])
def test_builtin_kinds_pass_through_unchanged(exc: Exception) -> None:
    assert translate(exc, "p") is exc  # type: ignore[arg-type]
