"""Bad input and security through a real mount (issue 5, "Bad input" and "Security").

Bad input gets a clear errno, changes nothing (checked through the API) and crashes nothing (the
mount answers afterwards):
- names: empty, ``.``/``..`` as rename targets, over 255 bytes (ENAMETOOLONG), NUL, invalid UTF-8
  (``os.fsencode`` surrogates), names that need the reversible name rule (duplicates, a literal
  ``" (id N)"`` suffix, ``∕``);
- xattrs: unknown names (ENODATA), huge values (E2BIG) and names (ERANGE), a buffer too small
  (ERANGE), writes to the read-only ones (EPERM).

Security:
- no token in any line of a ``--debug`` mount's log (nor in the server's log);
- the mount is not visible to another local uid unless ``-o allow_other`` is given;
- user B's mount (B's own profile) shows none of user A's My Data, and both see their Team Data.
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.reliability import mounted, report

pytestmark = pytest.mark.fuse

OTHER_USER = "nobody"


def errno_of(fn, *args) -> int | None:
    try:
        fn(*args)
    except OSError as error:
        return error.errno
    return None


def names_of(session, folder: str) -> list[tuple[str, str, int]]:
    """(name, resource_type, id) of a folder's entries through the API, sorted."""
    return sorted(
        (e["name"], e["resource_type"], e["id"]) for e in session.ls_path(folder)["results"]
    )


@pytest.fixture(scope="module")
def bad_input_mount(server, tmp_path_factory):
    base = tmp_path_factory.mktemp("badinput")
    # A short TTL: the tests set things up through the API and then look through the mount.
    with mounted(server, base / "mnt", "--cache-ttl", "1") as mount:
        yield mount


@pytest.fixture
def workdir(bad_input_mount, session, server):
    """A fresh folder with one file ``f.txt`` and one folder ``d``: (mount path, API path)."""
    name = f"bad-{time.monotonic_ns()}"
    api = f"/project/{server.project_id}/user/{server.username}/{name}"
    session.create_paths(f"{api}/d")
    session.upload_file(api, "f.txt", io.BytesIO(b"content"), size=7)
    folder = bad_input_mount.home / name
    wait_until(lambda: {"d", "f.txt"} <= set(os.listdir(folder)) if folder.exists() else False)
    return folder, api


def wait_until(predicate, timeout: float = 15.0) -> None:
    """Poll ``predicate`` until true (external changes show in the mount within its TTL)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the mount did not show the API's change in time"
        time.sleep(0.2)


def assert_alive(mount) -> None:
    """The mount still answers after the bad input."""
    assert "project" in os.listdir(mount.path)
    assert os.listdir(mount.home) is not None


# --- names ------------------------------------------------------------------------------------------


def test_names_over_255_bytes_are_enametoolong_and_nothing_is_created(
    workdir, session, bad_input_mount
):
    folder, api = workdir
    before = names_of(session, api)
    for long_name in ("a" * 256, "名" * 86, "é" * 128):  # 256, 258 and 256 bytes
        assert len(long_name.encode()) > 255
        create = os.O_WRONLY | os.O_CREAT
        assert errno_of(os.open, folder / long_name, create, 0o644) == errno.ENAMETOOLONG
        assert errno_of(os.mkdir, folder / long_name) == errno.ENAMETOOLONG
        assert errno_of(os.rename, folder / "f.txt", folder / long_name) == errno.ENAMETOOLONG
        assert errno_of(os.rename, folder / "d", folder / long_name) == errno.ENAMETOOLONG
        assert errno_of(os.stat, folder / long_name) == errno.ENAMETOOLONG
    assert names_of(session, api) == before
    # Exactly 255 bytes is a valid name, and round-trips.
    ok_name = "b" * 251 + ".txt"
    (folder / ok_name).write_bytes(b"255")
    assert ok_name in {n for n, _, _ in names_of(session, api)}
    assert (folder / ok_name).read_bytes() == b"255"
    assert_alive(bad_input_mount)


def test_empty_dot_and_dotdot_rename_targets_are_refused_and_change_nothing(
    workdir, session, bad_input_mount
):
    folder, api = workdir
    before = names_of(session, api)
    refused = {errno.EBUSY, errno.EINVAL, errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOENT}
    cases = [
        ("file -> ''", lambda: os.rename(folder / "f.txt", "")),
        ("file -> '.'", lambda: os.rename(folder / "f.txt", f"{folder}/.")),
        ("file -> '..'", lambda: os.rename(folder / "f.txt", f"{folder}/..")),
        ("file -> 'd/.'", lambda: os.rename(folder / "f.txt", f"{folder}/d/.")),
        ("dir -> '.'", lambda: os.rename(folder / "d", f"{folder}/.")),
        ("dir -> 'd/..'", lambda: os.rename(folder / "d", f"{folder}/d/..")),
        ("'.' -> x", lambda: os.rename(f"{folder}/.", folder / "x")),
        ("'..' -> x", lambda: os.rename(f"{folder}/d/..", folder / "x")),
        ("mkdir ''", lambda: os.mkdir("")),
        ("mkdir '.'", lambda: os.mkdir(f"{folder}/.")),
        ("mkdir '..'", lambda: os.mkdir(f"{folder}/d/..")),
        ("rmdir '.'", lambda: os.rmdir(f"{folder}/d/.")),
        ("unlink ''", lambda: os.unlink(f"{folder}/")),
        ("open ''", lambda: open("", "wb")),
    ]
    wrong = []
    for label, fn in cases:
        code = errno_of(fn)
        if code not in refused:
            wrong.append(f"{label}: {errno.errorcode.get(code, code)}")
    assert not wrong, wrong
    assert names_of(session, api) == before
    assert (folder / "f.txt").read_bytes() == b"content"
    assert_alive(bad_input_mount)


def test_nul_in_a_name_never_reaches_the_mount_and_changes_nothing(
    workdir, session, bad_input_mount
):
    folder, api = workdir
    before = names_of(session, api)
    for fn in (
        lambda: open(f"{folder}/a\0b", "wb"),
        lambda: os.mkdir(f"{folder}/a\0b"),
        lambda: os.rename(folder / "f.txt", f"{folder}/a\0b"),
        lambda: os.setxattr(folder / "f.txt", "user.orion.tag.a\0b", b""),
    ):
        with pytest.raises(ValueError):
            fn()
    assert names_of(session, api) == before
    assert_alive(bad_input_mount)


def test_invalid_utf8_names_are_refused_with_a_clear_errno_and_change_nothing(
    workdir, session, bad_input_mount
):
    folder, api = workdir
    before = names_of(session, api)
    bad = os.fsdecode(b"bad-\xff\xfe-name.txt")  # lone surrogates: not UTF-8 once encoded
    assert "\udcff" in bad
    clear = {errno.EINVAL, errno.EILSEQ}
    results = {
        "create": errno_of(lambda: open(folder / bad, "wb").close()),
        "mkdir": errno_of(os.mkdir, folder / bad),
        "rename file to it": errno_of(os.rename, folder / "f.txt", folder / bad),
        "rename folder to it": errno_of(os.rename, folder / "d", folder / bad),
    }
    lookup = errno_of(os.stat, folder / bad)
    wrong = {k: errno.errorcode.get(v, v) for k, v in results.items() if v not in clear}
    assert not wrong, f"expected EINVAL/EILSEQ: {wrong}"
    assert lookup in (errno.ENOENT, errno.EINVAL, errno.EILSEQ), errno.errorcode.get(lookup, lookup)
    assert names_of(session, api) == before
    assert bad.encode("utf-8", "surrogateescape") not in os.listdir(os.fsencode(folder))
    assert_alive(bad_input_mount)


def test_duplicate_names_show_under_the_reversible_rule_and_each_maps_to_its_own_file(
    workdir, session, bad_input_mount
):
    folder, api = workdir
    first = session.upload_file(api, "dup.txt", io.BytesIO(b"first"), size=5)
    second = session.upload_file(api, "dup.txt", io.BytesIO(b"second"), size=6)
    low, high = sorted([first, second], key=lambda f: f.id)
    alt = f"dup.txt (id {high.id})"
    wait_until(lambda: {"dup.txt", alt} <= set(os.listdir(folder)))
    contents = {
        low.id: b"first" if low is first else b"second",
        high.id: b"second" if high is second else b"first",
    }
    assert (folder / "dup.txt").read_bytes() == contents[low.id]
    assert (folder / alt).read_bytes() == contents[high.id]
    assert os.getxattr(folder / alt, "user.orion.id").decode() == str(high.id)
    # Renaming the generated name moves exactly that file.
    os.rename(folder / alt, folder / "renamed.txt")
    by_name = {n: i for n, _, i in names_of(session, api)}
    assert by_name["renamed.txt"] == high.id
    assert by_name["dup.txt"] == low.id
    # A literal " (id N)" typed by the user is kept as typed.
    literal = "note (id 12345).txt"
    (folder / literal).write_bytes(b"literal")
    assert literal in {n for n, _, _ in names_of(session, api)}
    assert (folder / literal).read_bytes() == b"literal"


def test_division_slash_in_a_name_round_trips_through_the_mount(workdir, session, bad_input_mount):
    folder, api = workdir
    name = "a\u2215b.txt"  # a legitimate local file name
    (folder / name).write_bytes(b"slash")
    assert name in os.listdir(folder)
    assert (folder / name).read_bytes() == b"slash"
    api_names = {n for n, _, _ in names_of(session, api)}
    assert name in api_names or "a/b.txt" in api_names


# --- xattrs --------------------------------------------------------------------------------------------


def test_unknown_user_xattrs_are_enodata_and_other_namespaces_eopnotsupp(workdir, bad_input_mount):
    folder, _ = workdir
    for target in (folder / "f.txt", folder / "d"):
        for name in ("user.orion.nope", "user.orion.tag.absent", "user.other", "user.orion."):
            assert errno_of(os.getxattr, target, name) == errno.ENODATA, (target.name, name)
        # EOPNOTSUPP: ls and libacl stop asking the device (docs/mount.md)
        for name in (
            "security.selinux",
            "security.capability",
            "system.posix_acl_access",
            "trusted.x",
        ):
            assert errno_of(os.getxattr, target, name) == errno.EOPNOTSUPP, (target.name, name)


def test_huge_xattr_values_and_names_are_e2big_or_erange_and_change_nothing(
    workdir, session, bad_input_mount
):
    folder, api = workdir
    target = folder / "f.txt"
    os.setxattr(target, "user.orion.tag.keep", b"")
    before = os.getxattr(target, "user.orion.tags")
    assert errno_of(os.setxattr, target, "user.orion.tags", b"x" * (64 * 1024 + 1)) == errno.E2BIG
    assert errno_of(os.setxattr, target, "user.orion.tag.x", b"v" * (1 << 20)) == errno.E2BIG
    assert errno_of(os.setxattr, target, "user.orion.tag." + "t" * 250, b"") == errno.ERANGE
    assert errno_of(os.getxattr, target, "user.orion.tag." + "t" * 250) == errno.ERANGE
    # Under the kernel's limit but far beyond a tag's: refused, clearly.
    code = errno_of(os.setxattr, target, "user.orion.tags", b"y" * 60_000)
    assert code in (errno.E2BIG, errno.ERANGE, errno.EINVAL), errno.errorcode.get(code, code)
    assert os.getxattr(target, "user.orion.tags") == before
    file_id = int(os.getxattr(target, "user.orion.id"))
    assert session.get_resource("file", file_id).tags == ["keep"]


def test_xattr_read_into_a_too_small_buffer_is_erange(workdir, bad_input_mount):
    folder, _ = workdir
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(2)
    path = os.fsencode(folder / "f.txt")
    size = libc.getxattr(path, b"user.orion.link", buf, ctypes.c_size_t(2))
    assert size == -1 and ctypes.get_errno() == errno.ERANGE
    names = ctypes.create_string_buffer(3)
    size = libc.listxattr(path, names, ctypes.c_size_t(3))
    assert size == -1 and ctypes.get_errno() == errno.ERANGE


@pytest.mark.parametrize(
    "name", ["user.orion.id", "user.orion.type", "user.orion.link", "user.orion.systemtags"]
)
def test_read_only_xattrs_refuse_writes_with_eperm_and_keep_their_value(workdir, name):
    folder, _ = workdir
    target = folder / "f.txt"
    before = os.getxattr(target, name)
    assert errno_of(os.setxattr, target, name, b"42") == errno.EPERM
    assert errno_of(os.removexattr, target, name) == errno.EPERM
    assert os.getxattr(target, name) == before


# --- no token in the logs -------------------------------------------------------------------------------


def test_no_token_in_any_line_of_a_debug_mount_log(server, session, tmp_path):
    token = server.token
    with mounted(server, tmp_path / "mnt", "--debug", "--timeout", "5") as mount:
        work = mount.home / f"logs-{os.getpid()}"
        work.mkdir()
        (work / "a.txt").write_bytes(b"hello")
        assert (work / "a.txt").read_bytes() == b"hello"
        os.setxattr(work / "a.txt", "user.orion.tag.t", b"")
        os.getxattr(work / "a.txt", "user.orion.link")
        errno_of(os.stat, work / "absent")
        os.rename(work / "a.txt", work / "b.txt")
        # Failures are logged at WARNING with details: make some happen.
        server.set_faults(status=503, count=6)
        errno_of(os.listdir, mount.home / f"logs-{os.getpid()}-absent")
        server.set_faults(status=401, count=2)
        errno_of(lambda: (work / "c.txt").write_bytes(b"x"))
        server.clear_faults()
        os.unlink(work / "b.txt")
        log = mount.log()
    server_log = Path(server.log_path).read_text(errors="replace")
    lines = log.splitlines()
    assert any("DEBUG" in line for line in lines), "the --debug run logged no DEBUG line"
    pieces = [token, token[: len(token) // 2], token[len(token) // 2 :]]
    leaked = [line for line in lines if any(p and p in line for p in pieces)]
    report("debug_log", {"mount_log_lines": len(lines), "lines_with_token": len(leaked)})
    assert not leaked, "token in the mount log:\n" + "\n".join(leaked[:5])
    assert token not in server_log, "token in the server log"


# --- another local uid ------------------------------------------------------------------------------


def _as_other_user(*argv: str) -> subprocess.CompletedProcess:
    if shutil.which("runuser"):
        cmd = ["runuser", "-u", OTHER_USER, "--", *argv]
    else:
        cmd = [
            "setpriv",
            "--reuid",
            str(pwd.getpwnam(OTHER_USER).pw_uid),
            "--regid",
            str(pwd.getpwnam(OTHER_USER).pw_gid),
            "--clear-groups",
            *argv,
        ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


@pytest.fixture
def public_dir():
    """A folder every local user may traverse (pytest's tmp_path is 0700)."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root to run a command as another uid")
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        pytest.fail(f"no local user {OTHER_USER!r} to check the mount's visibility with")
    folder = Path(tempfile.mkdtemp(prefix="orionfs-rel-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_mount_is_invisible_to_another_uid_without_allow_other(server, public_dir):
    # The other uid can reach an ordinary folder next to it: only the mount refuses.
    (public_dir / "plain").mkdir()
    assert _as_other_user("ls", str(public_dir / "plain")).returncode == 0
    with mounted(server, public_dir / "mnt") as mount:
        assert os.listdir(mount.path)  # the owner sees it
        for argv in (
            ["stat", str(mount.path)],
            ["ls", str(mount.path)],
            ["cat", str(mount.home / "README.txt")],
        ):
            result = _as_other_user(*argv)
            assert result.returncode != 0, f"{argv} worked as {OTHER_USER}: {result.stdout}"
            assert "Permission denied" in result.stderr, result.stderr


def test_mount_is_visible_to_another_uid_with_allow_other(server, public_dir):
    with mounted(server, public_dir / "mnt", "-o", "allow_other") as mount:
        result = _as_other_user("ls", str(mount.path))
        assert result.returncode == 0, result.stderr
        assert "project" in result.stdout.split()


# --- user B's mount -----------------------------------------------------------------------------------


def test_user_b_mount_shows_none_of_user_a_my_data_and_both_share_team_data(
    server, session, tmp_path
):
    b = server.add_user(f"bob{os.getpid()}", password="bob-password-1", project=server.project_id)
    b_name = b["user"]["username"]
    pid = server.project_id
    a_home_api = f"/project/{pid}/user/{server.username}"
    secret_folder = f"{a_home_api}/secret-{os.getpid()}"
    session.create_paths(secret_folder)
    session.upload_file(secret_folder, "s.txt", io.BytesIO(b"A only"), size=6)
    team_api = f"/project/{pid}/team"
    session.upload_file(team_api, f"from-a-{os.getpid()}.txt", io.BytesIO(b"team!"), size=5)

    with mounted(server, tmp_path / "mnt", token=b["token"], username=b_name) as mount:
        users = mount.path / "project" / str(pid) / "user"
        assert os.listdir(users) == [b_name]
        a_home = users / server.username
        a_file = a_home / f"secret-{os.getpid()}" / "s.txt"
        denied = {errno.ENOENT, errno.EACCES, errno.EPERM}
        attempts = {
            "stat A's My Data": lambda: os.stat(a_home),
            "list A's My Data": lambda: os.listdir(a_home),
            "read A's file": lambda: a_file.read_bytes(),
            "write into A's My Data": lambda: (a_home / "planted.txt").write_bytes(b"x"),
            "mkdir in A's My Data": lambda: os.mkdir(a_home / "planted"),
            "tag A's file": lambda: os.setxattr(a_file, "user.orion.tag.pwned", b""),
            "move A's file to B": lambda: os.rename(a_file, mount.home / "stolen.txt"),
            "delete A's file": lambda: os.unlink(a_file),
            "delete A's folder": lambda: os.rmdir(a_home / f"secret-{os.getpid()}"),
        }
        wrong = {}
        for label, fn in attempts.items():
            code = errno_of(fn)
            if code not in denied:
                wrong[label] = errno.errorcode.get(code, code)
        assert not wrong, f"B's mount reached A's My Data: {wrong}"
        # Team Data: B reads A's file and writes one that A sees.
        team = mount.team
        assert (team / f"from-a-{os.getpid()}.txt").read_bytes() == b"team!"
        (team / f"from-b-{os.getpid()}.txt").write_bytes(b"from B")
    assert names_of(session, secret_folder) == [
        ("s.txt", "file", names_of(session, secret_folder)[0][2])
    ]
    team_names = {n for n, _, _ in names_of(session, team_api)}
    assert f"from-b-{os.getpid()}.txt" in team_names
    tags = session.ls_path(secret_folder)["results"][0]["tags"]
    assert "pwned" not in tags
    assert json.dumps(tags)  # still a list the API serves
