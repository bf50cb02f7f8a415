"""The client subcommands through ``orionfs.cli.main([...])`` against the real server."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import time

import pytest

from orionfs.cli import main
from orionfs.cli.commands import mask_token
from orionfs.client import config


@pytest.fixture
def cli_config(tmp_path, monkeypatch, server):
    """A fresh config folder holding one profile 'default' for the server's sample user."""
    folder = tmp_path / "cli-config"
    monkeypatch.setenv(config.CONFIG_DIR_ENV, str(folder))
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    config.save_profile("default", server.url, server.username, server.token, server.project_id)
    return folder


@pytest.fixture
def cli_home(server) -> str:
    return f"/project/{server.project_id}/user/{server.username}"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_mask_token_shows_four_characters_and_an_ellipsis():
    assert mask_token("abcdefghijkl") == "abcd…"
    assert mask_token("") == ""


def test_profile_add_with_token_saves_0600_and_finds_the_username(capsys, cli_config, server):
    code, out, err = _run(capsys, "profile", "add", "tok", "--url", server.url,
                          "--token", server.token)  # fmt: skip
    assert code == 0, err
    assert server.token not in out + err
    saved = config.get_profile_config("tok")
    assert (saved.url, saved.token, saved.username) == (server.url, server.token, server.username)
    assert stat.S_IMODE(os.stat(config.profiles_path()).st_mode) == 0o600


def test_profile_add_with_password_stdin_retrieves_a_token(capsys, cli_config, server,
                                                          monkeypatch):  # fmt: skip
    name = f"cli{time.monotonic_ns() % 10**9}"
    server.add_user(name, password="pass word", project=server.project_id)
    monkeypatch.setattr(sys, "stdin", io.StringIO("pass word\n"))
    code, out, err = _run(capsys, "profile", "add", "pw", "--url", server.url,
                          "--username", name, "--password-stdin")  # fmt: skip
    assert code == 0, err
    saved = config.get_profile_config("pw")
    assert saved.username == name and saved.token
    assert saved.token not in out + err


def test_profile_add_with_wrong_password_is_one_line_error_exit_1(capsys, cli_config, server,
                                                                 monkeypatch):  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong\n"))
    code, out, err = _run(capsys, "profile", "add", "bad", "--url", server.url,
                          "--username", server.username, "--password-stdin")  # fmt: skip
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("orionfs: error:")
    assert "bad" not in config.list_profiles()


def test_profile_add_token_stdin_reads_the_token_from_stdin(capsys, cli_config, server,
                                                           monkeypatch):  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO(server.token + "\n"))
    code, out, err = _run(capsys, "profile", "add", "ts", "--url", server.url, "--token-stdin")
    assert code == 0, err
    saved = config.get_profile_config("ts")
    assert (saved.token, saved.username) == (server.token, server.username)
    assert server.token not in out + err


class _Terminal(io.StringIO):
    """A stdin that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_profile_add_asks_for_the_token_on_a_terminal(capsys, cli_config, server, monkeypatch):
    prompts = []
    monkeypatch.setattr(sys, "stdin", _Terminal(""))
    monkeypatch.setattr(
        "orionfs.cli.commands.getpass.getpass",
        lambda prompt: prompts.append(prompt) or server.token,
    )
    code, out, err = _run(capsys, "profile", "add", "asked", "--url", server.url)
    assert code == 0, err
    assert len(prompts) == 1 and "Token" in prompts[0]
    assert config.get_profile_config("asked").token == server.token
    assert server.token not in out + err


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        ((), "", "give --token TOKEN, --token-stdin, or --username USER to log in"),
        (("--token-stdin",), "", "no token on stdin"),
        (("--token", "abc", "--token-stdin"), "abc\n", "give only one of --token, --token-stdin"),
        (("--password-stdin",), "pw\n", "--password-stdin needs --username"),
    ],
)
def test_profile_add_token_problems_are_one_line_errors_exit_1(capsys, cli_config, server,
                                                              monkeypatch, argv, stdin,
                                                              message):  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))  # not a terminal: no prompt
    code, out, err = _run(capsys, "profile", "add", "none", "--url", server.url, *argv)
    assert code == 1 and out == ""
    assert err == f"orionfs: error: {message}\n"
    assert "none" not in config.list_profiles()


def test_profile_list_marks_the_current_profile(capsys, cli_config, server, monkeypatch):
    config.save_profile("second", server.url, server.username, server.token)
    code, out, _ = _run(capsys, "profile", "list")
    assert code == 0
    assert out.splitlines() == ["* default", "  second"]
    monkeypatch.setenv(config.PROFILE_ENV, "second")
    _, out, _ = _run(capsys, "profile", "list")
    assert out.splitlines() == ["  default", "* second"]


def test_profile_show_never_prints_the_token_in_full(capsys, cli_config, server):
    code, out, _ = _run(capsys, "profile", "show")
    assert code == 0
    assert server.token not in out
    assert f"token:    {server.token[:4]}…" in out
    assert server.url in out and server.username in out


def test_profile_show_of_missing_profile_names_the_file(capsys, cli_config):
    code, out, err = _run(capsys, "profile", "show", "ghost")
    assert code == 1 and out == ""
    assert "ghost" in err and str(config.profiles_path()) in err and err.count("\n") == 1


def test_ls_prints_names_and_json(capsys, cli_config, server, cli_home):
    from orionfs.client.session import OrionSession

    session = OrionSession(config=config.get_profile_config())
    folder = f"{cli_home}/cli-ls-{time.monotonic_ns()}"
    session.create_paths(f"{folder}/sub")
    session.upload_file(folder, "f.txt", io.BytesIO(b"abc"))
    code, out, _ = _run(capsys, "ls", folder)
    assert code == 0 and out.splitlines() == ["f.txt", "sub/"]
    code, out, _ = _run(capsys, "ls", folder, "--json")
    entries = json.loads(out)
    assert code == 0 and [(e["name"], e["resource_type"]) for e in entries] == [
        ("f.txt", "file"), ("sub", "folder"),
    ]  # fmt: skip


def test_ls_with_profile_option_uses_that_profile(capsys, cli_config, server, cli_home):
    config.save_profile("broken", server.url, server.username, "not-a-token")
    code, _, err = _run(capsys, "ls", cli_home, "--profile", "broken")
    assert code == 1 and "401" in err and err.count("\n") == 1
    code, _, _ = _run(capsys, "ls", cli_home, "--profile", "default")
    assert code == 0


def test_ls_of_absent_path_is_one_line_error_exit_1(capsys, cli_config, cli_home):
    code, out, err = _run(capsys, "ls", f"{cli_home}/absent-folder")
    assert code == 1 and out == ""
    assert err.startswith("orionfs: error:") and err.count("\n") == 1 and "404" in err


def test_stat_prints_fields_and_json(capsys, cli_config, cli_home):
    code, out, _ = _run(capsys, "stat", cli_home)
    assert code == 0 and f"path: {cli_home}" in out.splitlines()
    code, out, _ = _run(capsys, "stat", cli_home, "--json")
    assert code == 0 and json.loads(out)["resource_type"] == "folder"


def test_tag_and_untag_change_the_item_tags(capsys, cli_config, cli_home):
    from orionfs.client.session import OrionSession

    session = OrionSession(config=config.get_profile_config())
    name = f"cli-tag-{time.monotonic_ns()}.txt"
    session.upload_file(cli_home, name, io.BytesIO(b"x"))
    path = f"{cli_home}/{name}"
    code, out, _ = _run(capsys, "tag", path, "red", "blue")
    assert code == 0 and sorted(out.split()) == ["blue", "red"]
    code, out, _ = _run(capsys, "untag", path, "red")
    assert code == 0 and out.split() == ["blue"]
    assert session.stat_path(path)["tags"] == ["blue"]


def test_tagging_a_folder_is_one_line_error(capsys, cli_config, cli_home):
    code, _, err = _run(capsys, "tag", cli_home, "x")
    assert code == 1 and "cannot be tagged" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--cache-ttl", "-1", "--cache-ttl must be a number of seconds >= 0, not -1"),
        ("--cache-ttl", "nan", "--cache-ttl must be a number of seconds >= 0, not nan"),
        ("--timeout", "0", "--timeout must be a number of seconds > 0, not 0"),
        ("--page-size", "1001", "--page-size must be between 1 and 1000, not 1001"),
    ],
)
def test_mount_rejects_bad_option_values_with_one_line(capsys, tmp_path, option, value, message):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    code, out, err = _run(capsys, "mount", str(mountpoint), option, value)
    assert code == 1 and out == ""
    assert err == f"orionfs: error: {message}\n"
    assert not os.path.ismount(mountpoint)
