"""OrionSession resource, tag, sharing, project, user and content methods against the real server."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from orionfs.client import wire
from orionfs.client.types import (
    Dataset,
    File,
    Folder,
    Link,
    Project,
    ResourceKey,
    Shard,
    ShardCollection,
    User,
    resource_from_entry,
)
from orionfs.exceptions import (
    AuthorizationRequired,
    BadResponse,
    InvalidCredentials,
    NotFoundResponse,
    OrionLinkError,
    OrionServiceError,
    ValidationError,
)


def _upload(session, folder, name, data=b"content"):
    return session.upload_file(folder, name, io.BytesIO(data))


# --- create / get / list / refresh / update / delete ------------------------------------------
def test_upload_file_returns_a_typed_file_with_its_size_and_path(session, session_workdir):
    file = _upload(session, session_workdir, "a.txt", b"hello")
    assert isinstance(file, File) and file.resource_type == "file"
    assert (file.name, file.size, file.path) == ("a.txt", 5, f"{session_workdir}/a.txt")
    assert file.to_dict()["resource_type"] == "file" and file.to_dict()["id"] == file.id


def test_create_resource_dataset_with_multipart_fields_and_tags(session, session_workdir):
    records = b"rec1\nrec2\nrec3\n"
    ds = session.create_resource(
        Dataset,
        {"name": "ds", "path": session_workdir, "description": "three", "tags": ["t1"]},
        {"file": ("ds.txt", io.BytesIO(records))},
    )
    assert isinstance(ds, Dataset)
    assert (ds.name, ds.description, ds.tags, ds.count) == ("ds", "three", ["t1"], 3)
    assert session.read_range(ds, 0, 100) == records


def test_create_resource_by_wire_name_and_json_body(session, session_workdir):
    coll = session.create_resource(
        "shard_collection", {"name": "c", "path": session_workdir, "metadata": {"k": 1}}
    )
    assert isinstance(coll, ShardCollection)
    assert (coll.state, coll.metadata) == ("open", {"k": 1})


def test_get_resource_accepts_class_or_wire_name(session, session_workdir):
    file = _upload(session, session_workdir, "g.txt")
    assert session.get_resource(File, file.id).name == "g.txt"
    assert session.get_resource("file", file.id, timeout=5).path == file.path


def test_get_resource_non_int_id_is_validation_error_and_unknown_id_404(session):
    with pytest.raises(ValidationError):
        session.get_resource(File, "12")
    with pytest.raises(ValidationError):
        session.get_resource("spaceship", 1)
    with pytest.raises(NotFoundResponse):
        session.get_resource(File, 987654321)


def test_get_resource_of_a_shard_needs_its_collection(session, session_workdir):
    coll = session.create_resource(ShardCollection, {"name": "sc", "path": session_workdir})
    shard = session.create_resource(Shard, {"collection": coll.id, "name": "s"}, {"file": b"x"})
    assert session.get_resource(Shard, shard.id, collection=coll.id).collection == coll.id
    with pytest.raises(ValidationError):
        session.get_resource(Shard, shard.id)


def test_shard_collection_ready_refuses_more_shards_409(session, session_workdir):
    coll = session.create_resource(ShardCollection, {"name": "rc", "path": session_workdir})
    session.update_resource(coll, {"state": "ready"})
    assert coll.state == "ready"
    with pytest.raises(BadResponse) as info:
        session.create_resource(Shard, {"collection": coll.id, "name": "late"}, {"file": b"x"})
    assert info.value.status_code == 409


def test_list_resources_follows_pages_and_filters_by_substring(session, session_workdir, server):
    tag = f"list-{os.getpid()}-{time.monotonic_ns()}"
    for i in range(260):
        session.upload_file(session_workdir, f"{tag}-{i:03d}.bin", io.BytesIO(b""))
    server.reset_counters()
    found = list(session.list_resources(File, {"name": tag}))
    assert len(found) == 260 and all(isinstance(f, File) for f in found)
    assert server.count("GET " + wire.collection_path(wire.FILE)) == 2
    by_title = list(session.list_resources("file", {"title": f"{tag}-25"}))
    assert sorted(f.name for f in by_title) == [f"{tag}-25{i}.bin" for i in range(10)]


def test_list_resources_projects_are_typed(session, server):
    projects = list(session.list_resources(Project))
    assert server.project_id in [p.id for p in projects]
    assert all(isinstance(p, Project) for p in projects)


def test_refresh_resource_reloads_attributes(session, session_workdir):
    file = _upload(session, session_workdir, "r.txt", b"1")
    stale = session.get_resource(File, file.id)
    session.replace_file_content(file, io.BytesIO(b"12345"))
    assert stale.size == 1
    assert session.refresh_resource(stale) is stale and stale.size == 5


def test_refresh_resource_until_waits_for_a_change(session, session_workdir, session_factory):
    coll = session.create_resource(ShardCollection, {"name": "until", "path": session_workdir})
    other = session_factory()
    timer = threading.Timer(0.3, lambda: other.update_resource(
        other.get_resource(ShardCollection, coll.id), {"state": "ready"}))  # fmt: skip
    timer.start()
    try:
        assert session.refresh_resource_until(coll, "state", "ready", timeout=10, sleep_time=0.05)
    finally:
        timer.join()
    assert coll.state == "ready"
    assert session.refresh_resource_until(coll, "state", "ready", timeout=1, not_match=True,
                                          sleep_time=0.05) is False  # fmt: skip


def test_update_resource_patches_then_refreshes_but_refuses_path(session, session_workdir):
    file = _upload(session, session_workdir, "u.txt")
    assert session.update_resource(file, {"name": "v.txt", "description": "d"}) is file
    assert (file.name, file.description, file.path) == ("v.txt", "d", f"{session_workdir}/v.txt")
    with pytest.raises(ValidationError):
        session.update_resource(file, {"path": "/elsewhere"})


def test_delete_resource_soft_hides_and_immediate_purges(session, session_workdir):
    soft = _upload(session, session_workdir, "soft.txt")
    hard = _upload(session, session_workdir, "hard.txt")
    assert session.delete_resource(soft) is True
    assert session.delete_resource(hard, immediate=True) is True
    assert [e["name"] for e in session.ls_path(session_workdir)["results"]] == []
    deleted = {f.id for f in session.list_resources(File, {"deleted": True, "name": "soft.txt"})}
    assert soft.id in deleted
    with pytest.raises(NotFoundResponse):
        session.get_resource(File, hard.id)


def test_delete_resource_of_an_item_that_does_not_exist_is_false(session, session_workdir):
    file = _upload(session, session_workdir, "twice.txt")
    assert session.delete_resource(file, immediate=True) is True
    assert session.delete_resource(file) is False
    assert session.delete_resource(ResourceKey("file", 2**40)) is False


# --- links ------------------------------------------------------------------------------------
def test_link_round_trip_retrieves_the_resource(session, session_workdir):
    file = _upload(session, session_workdir, "l.txt")
    link_dict = session.create_link(file)
    assert link_dict == {"resource_type": "file", "id": file.id}
    link = session.get_link(link_dict)
    assert isinstance(link, Link) and link.get() == file


def test_shard_link_carries_collection_and_id_str(session, session_workdir):
    coll = session.create_resource(ShardCollection, {"name": "lc", "path": session_workdir})
    shard = session.create_resource(Shard, {"collection": coll.id, "name": "s"}, {"file": b"x"})
    link_dict = session.create_link(shard)
    assert link_dict["collection"] == coll.id and link_dict["id_str"] == str(shard.id)
    assert session.get_link(link_dict).get().name == "s"


@pytest.mark.parametrize(
    "bad", [None, [], {"id": 1}, {"resource_type": "file"}, {"resource_type": "file", "id": "1"},
            {"resource_type": "nope", "id": 1}, {"resource_type": "shard", "id": 1}],
)  # fmt: skip
def test_get_link_with_invalid_dict_is_orion_link_error(session, bad):
    with pytest.raises(OrionLinkError):
        session.get_link(bad)


# --- tags -------------------------------------------------------------------------------------
def test_tag_list_untag_round_trip_ignores_absent_tags(session, session_workdir):
    file = _upload(session, session_workdir, "t.txt")
    assert list(session.list_tags(file)) == []
    assert sorted(session.tag_resource(file, "a", "b c")) == ["a", "b c"]
    assert sorted(session.tag_resource(file, "a")) == ["a", "b c"]  # existing ones stay
    assert session.untag_resource(file, "a", "never-there") == ["b c"]
    assert [t["name"] for t in session.list_tags(file)] == ["b c"] and file.tags == ["b c"]


def test_list_tags_is_an_iterator_of_dicts_one_per_tag(session, session_workdir):
    file = _upload(session, session_workdir, "it.txt")
    session.tag_resource(file, "x", "y")
    tags = session.list_tags(ResourceKey("file", file.id))
    assert iter(tags) is tags and not isinstance(tags, list)
    assert sorted(t["name"] for t in tags) == ["x", "y"]


def test_tagging_a_folder_is_validation_error_without_a_request(session, session_workdir, server):
    folder = resource_from_entry(session.stat_path(session_workdir), session)
    assert isinstance(folder, Folder)
    server.reset_counters()
    for call in (session.list_tags, lambda r: session.tag_resource(r, "x"),
                 lambda r: session.untag_resource(r, "x")):  # fmt: skip
        with pytest.raises(ValidationError):
            call(folder)
    assert server.counters()["total"] == 0


def test_bad_tag_is_rejected_by_the_server_with_400(session, session_workdir):
    file = _upload(session, session_workdir, "bt.txt")
    with pytest.raises(BadResponse) as info:
        session.tag_resource(file, "x" * 200)
    assert info.value.status_code == 400


# --- sharing and isolation --------------------------------------------------------------------
def test_share_gives_read_access_and_unshare_takes_it_back(
    session, other_user_session, session_workdir
):
    file = _upload(session, session_workdir, "shared.txt", b"secret")
    other_id = other_user_session.get_user_profile().id
    with pytest.raises(NotFoundResponse):
        other_user_session.get_resource(File, file.id)
    status = session.share_resource(file, "users", [other_id])
    assert status["users"] == [other_id]
    assert list(session.list_sharing(file)) == [{"share_with": "users", "id": other_id}]
    assert other_user_session.read_range(other_user_session.get_resource(File, file.id), 0, 6) == (
        b"secret"
    )
    with pytest.raises(AuthorizationRequired) as info:  # readable, not changeable
        other_user_session.update_resource(other_user_session.get_resource(File, file.id),
                                           {"name": "mine.txt"})  # fmt: skip
    assert info.value.status_code == 403
    session.unshare_resource(file, "users", other_id)
    assert list(session.list_sharing(file)) == []
    with pytest.raises(NotFoundResponse):
        other_user_session.get_resource(File, file.id)


@pytest.mark.parametrize("share_with, ids", [("groups", [1]), ("users", ["1"]), ("users", [True]),
                                              ("projects", "12"), ("users", 1.0), ("users", [2.5]),
                                              ("users", Project(id=1)), ("projects", [User(id=1)]),
                                              ("users", User(id="1"))])  # fmt: skip
def test_bad_share_arguments_are_validation_errors(session, session_workdir, share_with, ids):
    file = _upload(session, session_workdir, "bs.txt")
    with pytest.raises(ValidationError):
        session.share_resource(file, share_with, ids)
    with pytest.raises(ValidationError):
        session.unshare_resource(file, share_with, ids)


def test_list_sharing_takes_a_class_or_wire_name_and_an_id_or_an_instance(
    session, other_user_session, session_workdir
):
    file = _upload(session, session_workdir, "ls.txt")
    other = other_user_session.get_user_profile()
    project = session.get_current_project()  # a project share needs the sharer's membership
    session.share_resource(file, "users", other)  # a User stands for its id
    session.share_resource(file, "projects", [project])
    expected = [{"share_with": "users", "id": other.id},
                {"share_with": "projects", "id": project.id}]  # fmt: skip
    assert list(session.list_sharing(File, file.id)) == expected
    assert list(session.list_sharing("file", file.id)) == expected
    assert list(session.list_sharing(file)) == expected
    assert list(session.list_sharing(file, file.id)) == expected
    for bad in ((File, None), (File, "1"), (file, file.id + 1), ("folder", 1)):
        with pytest.raises(ValidationError):
            session.list_sharing(*bad)
    session.unshare_resource(file, "projects", project)
    assert list(session.list_sharing(file)) == expected[:1]


def test_users_cannot_see_each_others_my_data(session, other_user_session, server, session_home):
    with pytest.raises(NotFoundResponse):
        other_user_session.ls_path(session_home)
    with pytest.raises(NotFoundResponse):
        other_user_session.ls_path(f"/project/{server.project_id}")
    other_home = other_user_session.get_default_output_folder()
    with pytest.raises(NotFoundResponse):
        session.stat_path(other_home)
    assert str(server.project_id) not in [
        e["name"] for e in other_user_session.ls_path("/project")["results"]
    ]


# --- projects, users, balance, auth -----------------------------------------------------------
def test_user_profile_and_current_project(session, server):
    user = session.get_user_profile()
    assert isinstance(user, User) and user.username == server.username
    project = session.get_current_project()
    assert isinstance(project, Project) and project.id == server.project_id
    assert user.id in project.members


def test_current_project_without_a_project_in_the_profile_is_invalid_credentials(
    session_factory, server
):
    no_project = session_factory(project=None)
    server.reset_counters()
    with pytest.raises(InvalidCredentials):
        no_project.get_current_project()
    assert server.counters()["total"] == 0


def test_current_balance_needs_cost_accounting(session, server, session_factory):
    assert isinstance(session.get_current_balance(), float)
    info = server.add_user(f"nocost{os.getpid()}{time.monotonic_ns() % 10**6}",
                           password="pw", cost_accounting=False)  # fmt: skip
    no_cost = session_factory(token=info["token"], username=info["user"]["username"],
                              project=info["project"])  # fmt: skip
    with pytest.raises(BadResponse) as err:
        no_cost.get_current_balance()
    assert err.value.status_code == 400


def test_leave_project_validates_then_leaves(session, server, session_factory):
    with pytest.raises(ValidationError):
        session.leave_project({"id": server.project_id})
    with pytest.raises(ValidationError):
        session.leave_project(Project(id=server.project_id), new_owner_id="2")
    name = f"leaver{time.monotonic_ns() % 10**9}"
    info = server.add_user(name, password="pw", project=server.project_id)
    leaver = session_factory(token=info["token"], username=name, project=server.project_id)
    project = leaver.get_current_project()
    assert leaver.leave_project(project) is None
    with pytest.raises(NotFoundResponse):
        leaver.get_resource(Project, server.project_id)


def test_owner_leaving_without_new_owner_is_400(session, server):
    project = session.get_current_project()
    assert project.owner == session.get_user_profile().id  # the sample user owns project 1
    with pytest.raises(BadResponse) as info:
        session.leave_project(project)
    assert info.value.status_code == 400


def test_is_authenticated_is_config_only_unless_reconnect(session_factory, server):
    bad = session_factory(token="not-a-real-token")
    server.reset_counters()
    assert bad.is_authenticated() is True
    assert server.counters()["total"] == 0  # config only
    assert bad.is_authenticated(reconnect=True) is False
    assert session_factory().is_authenticated(reconnect=True) is True
    assert session_factory(token="").is_authenticated() is False


def test_validate_authentication_is_false_for_a_refused_token(session_factory, server):
    assert session_factory().validate_authentication() is True
    assert session_factory(token="bogus").validate_authentication() is False
    assert session_factory(token="").validate_authentication() is False
    server.set_faults(status=503, count=10)
    with pytest.raises(OrionServiceError):  # other errors are not a verdict on the token
        session_factory(retry_dict={}).validate_authentication()


def test_retrieve_token_uses_basic_auth_and_the_session_uses_the_token(server, session_factory):
    name = f"basic{time.monotonic_ns() % 10**9}"
    server.add_user(name, password="s3cret", project=server.project_id)
    fresh = session_factory(token="", username="")
    with pytest.raises(InvalidCredentials):
        fresh.retrieve_token(name, "wrong")
    token = fresh.retrieve_token(name, "s3cret")
    assert isinstance(token, str) and token and fresh.config.token == token
    assert fresh.get_user_profile().username == name


def test_api_versions_match_the_wire_map(session):
    assert session.check_api_versions() == dict(wire.API_VERSIONS)


# --- content ----------------------------------------------------------------------------------
def test_read_range_returns_exact_slices_and_empty_past_the_end(session, session_workdir, server):
    data = bytes(range(256)) * 40
    file = _upload(session, session_workdir, "range.bin", data)
    server.reset_counters()
    assert session.read_range(file, 100, 50) == data[100:150]
    assert server.count("GET " + wire.download_path(wire.FILE).replace("{id}", "{file_id}")) == 1
    assert session.read_range(file, len(data) - 10, 100) == data[-10:]
    assert session.read_range(file, len(data), 10) == b""
    assert session.read_range(file, 0, 0) == b""
    with pytest.raises(ValidationError):
        session.read_range(file, -1, 10)


def test_upload_streams_from_a_non_seekable_source_with_given_size(session, session_workdir):
    data = os.urandom(3 << 20)
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write_fd, data), os.close(write_fd)))
    writer.start()
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        file = session.upload_file(session_workdir, "pipe.bin", pipe, size=len(data))
    writer.join()
    assert file.size == len(data)
    assert session.read_range(file, 0, len(data)) == data


def test_upload_of_non_seekable_source_without_size_is_validation_error(session, session_workdir):
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    with os.fdopen(read_fd, "rb", buffering=0) as pipe, pytest.raises(ValidationError):
        session.upload_file(session_workdir, "nosize.bin", pipe)


def test_replace_file_content_keeps_the_id(session, session_workdir):
    file = _upload(session, session_workdir, "rep.txt", b"old")
    new = session.replace_file_content(file, io.BytesIO(b"brand new content"))
    assert new.id == file.id and new.size == len(b"brand new content")
    assert session.read_range(file, 0, 100) == b"brand new content"
    assert session.stat_path(f"{session_workdir}/rep.txt")["size"] == 17


def test_download_file_streams_the_whole_content(session, session_workdir, tmp_path):
    data = os.urandom(5 << 20)
    file = _upload(session, session_workdir, "dl.bin", data)
    out = tmp_path / "dl.bin"
    with out.open("wb") as fh:
        assert session.download_file(file, fh) == len(data)
    assert out.read_bytes() == data


def test_a_resource_key_names_a_resource_wherever_one_is_taken(session, session_workdir):
    file = _upload(session, session_workdir, "key.txt", b"keyed bytes")
    key = ResourceKey("file", file.id)
    assert session.read_range(key, 6, 5) == b"bytes"
    assert session.tag_resource(key, "k") == ["k"]
    assert session.create_link(key) == session.create_link(file)
    assert session.replace_file_content(key, io.BytesIO(b"new")).id == file.id
    coll = session.create_resource(ShardCollection, {"name": "kc", "path": session_workdir})
    shard = session.create_resource(Shard, {"collection": coll.id, "name": "s"}, {"file": b"sh"})
    assert session.read_range(ResourceKey("shard", shard.id, coll.id), 0, 10) == b"sh"
    assert session.delete_resource(key) is True


@pytest.mark.parametrize(
    "bad", [ResourceKey("nope", 1), ResourceKey("file", "1"), ResourceKey("file", True),
            ResourceKey("shard", 1), ResourceKey("shard", 1, "2")],
)  # fmt: skip
def test_a_malformed_resource_key_is_validation_error_without_a_request(session, server, bad):
    server.reset_counters()
    with pytest.raises(ValidationError):
        session.read_range(bad, 0, 1)
    assert server.counters()["total"] == 0


def test_reading_a_folder_is_validation_error(session, session_workdir):
    folder = resource_from_entry(session.stat_path(session_workdir))
    with pytest.raises(ValidationError):
        session.read_range(folder, 0, 1)


def test_persistence_through_the_api_across_restart(session, session_workdir, server):
    file = _upload(session, session_workdir, "persist.txt", b"survives")
    session.tag_resource(file, "kept")
    server.restart()
    again = session.stat_path(f"{session_workdir}/persist.txt")
    assert again["id"] == file.id and again["tags"] == ["kept"]
    assert session.read_range(file, 0, 100) == b"survives"
