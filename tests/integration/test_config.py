"""orionfs.client.config: SessionConfig, config_dir, profiles.ini (perms, lookup, errors), in_orion and
a job's configuration; APISession's lazy build; get_session's signature."""

from __future__ import annotations

import dataclasses
import inspect
import os
import stat
import subprocess
import sys
import threading
import time

import pytest
import requests

from orionfs.client import config
from orionfs.client import session as session_module
from orionfs.client.session import OrionSession, get_session, in_orion
from orionfs.exceptions import ProfileError, ValidationError

TOKEN = "tok-abcdef0123456789"


@pytest.fixture
def cfg_dir(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    monkeypatch.setenv(config.CONFIG_DIR_ENV, str(folder))
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    return folder


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_session_config_is_frozen_with_named_defaults():
    conf = config.SessionConfig(url="http://x", token="t")
    assert conf.request_timeout == config.DEFAULT_REQUEST_TIMEOUT == 60
    assert conf.retry_timeout == config.DEFAULT_RETRY_TIMEOUT
    assert conf.profile == config.DEFAULT_PROFILE == "default"
    assert conf.project is None and conf.verify_ssl is True and conf.log_failed_headers is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        conf.url = "http://y"  # type: ignore[misc]
    assert conf.replace(url="http://y").url == "http://y" and conf.url == "http://x"


def test_default_retry_dict_retries_429_and_5xx_but_not_403_404_409():
    retry = config.DEFAULT_RETRY_DICT
    assert retry[429] > max(retry[s] for s in (500, 502, 503, 504)) > 0
    assert not {403, 404, 409} & set(retry)


def test_config_dir_honours_env_at_call_time_not_import_time(tmp_path, monkeypatch):
    # A fresh interpreter imports the module first and sets the variable afterwards.
    code = (
        "import os, orionfs.client.config as c, orionfs.client.session; "
        f"os.environ[{config.CONFIG_DIR_ENV!r}] = {str(tmp_path / 'late')!r}; "
        "print(c.config_dir())"
    )
    env = {k: v for k, v in os.environ.items() if k != config.CONFIG_DIR_ENV}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == str(tmp_path / "late"), out.stderr
    monkeypatch.setenv(config.CONFIG_DIR_ENV, str(tmp_path / "late"))
    assert config.config_dir() == tmp_path / "late"
    assert config.profiles_path() == tmp_path / "late" / "profiles.ini"
    monkeypatch.delenv(config.CONFIG_DIR_ENV)
    assert config.config_dir() == config.Path.home() / ".config" / "orionfs"


def test_saved_profile_round_trips_with_project(cfg_dir):
    config.save_profile("work", "http://h:1", "alice", TOKEN, project=7)
    conf = config.get_profile_config("work")
    assert (conf.url, conf.username, conf.token, conf.profile, conf.project) == (
        "http://h:1", "alice", TOKEN, "work", 7,
    )  # fmt: skip


def test_profile_file_is_0600_in_0700_folder(cfg_dir):
    path = config.save_profile("default", "http://h:1", "alice", TOKEN)
    assert _mode(cfg_dir) == 0o700
    assert _mode(path) == 0o600


def test_group_readable_profile_file_is_refused_naming_the_file(cfg_dir):
    path = config.save_profile("default", "http://h:1", "alice", TOKEN)
    os.chmod(path, 0o640)
    with pytest.raises(ProfileError, match="too open") as info:
        config.get_profile_config()
    assert str(path) in str(info.value)
    assert TOKEN not in str(info.value)


def test_save_profile_repairs_loose_permissions(cfg_dir):
    path = config.save_profile("a", "http://h:1", "alice", TOKEN)
    os.chmod(path, 0o666)
    config.save_profile("b", "http://h:2", "bob", TOKEN)
    assert _mode(path) == 0o600
    assert config.list_profiles() == ["a", "b"]


def test_orion_profile_env_picks_the_profile_else_default(cfg_dir, monkeypatch):
    config.save_profile("default", "http://default:1", "d", TOKEN)
    config.save_profile("other", "http://other:1", "o", TOKEN)
    assert config.get_profile_config().url == "http://default:1"
    monkeypatch.setenv(config.PROFILE_ENV, "other")
    assert config.get_profile_config().url == "http://other:1"
    assert config.get_profile_config("default").url == "http://default:1"  # explicit wins


def test_missing_profile_error_names_the_file_and_the_profile(cfg_dir):
    path = config.save_profile("default", "http://h:1", "alice", TOKEN)
    with pytest.raises(ProfileError) as info:
        config.get_profile_config("nope")
    assert "nope" in str(info.value) and str(path) in str(info.value)
    assert isinstance(info.value, ValidationError)


def test_missing_profiles_file_error_names_the_file(cfg_dir):
    with pytest.raises(ProfileError) as info:
        config.get_profile_config()
    assert str(cfg_dir / "profiles.ini") in str(info.value)
    assert config.list_profiles() == []


def test_profile_without_token_is_refused(cfg_dir):
    cfg_dir.mkdir(mode=0o700)
    path = cfg_dir / "profiles.ini"
    path.write_text("[default]\nurl = http://h:1\nusername = a\n")
    os.chmod(path, 0o600)
    with pytest.raises(ProfileError, match="token"):
        config.get_profile_config()


def test_save_profile_refuses_empty_token_or_bad_name(cfg_dir):
    with pytest.raises(ProfileError):
        config.save_profile("x", "http://h:1", "a", "")
    with pytest.raises(ProfileError):
        config.save_profile("bad]name", "http://h:1", "a", TOKEN)


def test_get_session_has_the_documented_signature_and_returns_a_plain_requests_session():
    params = inspect.signature(get_session).parameters
    assert [(p.name, p.default) for p in params.values()] == [
        ("retry_dict", None), ("request_timeout", 60), ("retry_timeout", 3600),
        ("backoff_dict", None), ("log_failed_headers", False),
    ]  # fmt: skip
    http = get_session({400: 3, 404: 3, 500: 3}, request_timeout=10, retry_timeout=600)
    assert isinstance(http, requests.Session) and not isinstance(http, OrionSession)
    retry = http.get_adapter("https://orion.example.com/").max_retries
    assert retry.status_retries == {400: 3, 404: 3, 500: 3} and retry.retry_timeout == 600
    assert http.request_timeout == 10


def test_api_session_is_an_orion_session_built_lazily_from_the_profile(cfg_dir, monkeypatch):
    lazy = session_module._LazyDefaultSession()
    assert isinstance(session_module.APISession, OrionSession) and isinstance(lazy, OrionSession)
    assert "not built" in repr(lazy)  # importing and holding it reads no profile
    with pytest.raises(ProfileError):
        lazy.config  # noqa: B018 - no profile yet: the build fails, and is tried again later
    config.save_profile("p2", "http://127.0.0.1:9", "bob", TOKEN)
    monkeypatch.setenv(config.PROFILE_ENV, "p2")
    assert lazy.config.username == "bob"
    assert lazy.is_authenticated() is True


def test_api_session_is_built_once_when_threads_race_to_it(cfg_dir, monkeypatch):
    config.save_profile("default", "http://127.0.0.1:9", "carol", TOKEN, project=4)
    real = session_module.OrionSession.__init__
    builds = []

    def slow_init(self, *args, **kwargs):
        builds.append(threading.get_ident())
        time.sleep(0.2)
        real(self, *args, **kwargs)

    monkeypatch.setattr(session_module.OrionSession, "__init__", slow_init)
    lazy = session_module._LazyDefaultSession()
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(lazy.config.username)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == ["carol"] * 8 and len(builds) == 1
    assert lazy.get_default_output_folder() == "/project/4/user/carol"  # no request needed


def _clear_orion_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("ORION_"):
            monkeypatch.delenv(key)


def test_in_orion_is_true_only_with_orion_job_id(monkeypatch):
    _clear_orion_env(monkeypatch)
    assert in_orion() is False
    monkeypatch.setenv("ORION_PROFILE", "x")
    monkeypatch.setenv("ORION_API_URL", "http://127.0.0.1:9")
    assert in_orion() is False  # other ORION_* variables do not count
    monkeypatch.setenv("ORION_JOB_ID", "1234")
    assert in_orion() is True


def test_inside_a_job_every_profile_is_the_jobs_configuration(cfg_dir, monkeypatch, server):
    _clear_orion_env(monkeypatch)
    config.save_profile("default", "http://127.0.0.1:9", "alice", TOKEN)
    monkeypatch.setenv("ORION_JOB_ID", "77")
    monkeypatch.setenv("ORION_API_URL", server.url)
    monkeypatch.setenv("ORION_API_TOKEN", server.token)
    monkeypatch.setenv("ORION_USERNAME", server.username)
    monkeypatch.setenv("ORION_PROJECT_ID", str(server.project_id))
    for profile in (None, "default", "no-such-profile"):
        conf = config.get_profile_config(profile)
        assert (conf.url, conf.token, conf.username, conf.project) == (
            server.url, server.token, server.username, server.project_id,
        )  # fmt: skip
    with OrionSession(config=config.get_profile_config().replace(request_timeout=10)) as job:
        home = job.get_default_output_folder()
        assert job.stat_path(home)["resource_type"] == "folder"


def test_inside_a_job_without_a_token_variable_is_profile_error(cfg_dir, monkeypatch):
    _clear_orion_env(monkeypatch)
    monkeypatch.setenv("ORION_JOB_ID", "77")
    monkeypatch.setenv("ORION_URL", "http://127.0.0.1:9")
    with pytest.raises(ProfileError, match="ORION_API_TOKEN"):
        config.get_profile_config("default")
    monkeypatch.setenv("ORION_TOKEN", TOKEN)
    assert config.get_profile_config().token == TOKEN
