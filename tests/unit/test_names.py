"""The name rule (orionfs.fs.names), both ways: pure unit tests, no I/O."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orionfs.exceptions import NameTooLong
from orionfs.fs.entry import Entry
from orionfs.fs.names import (
    SLASH_SUBSTITUTE,
    display_base,
    display_names,
    is_plain,
    orion_name,
)
from orionfs.fs.namespace import NAME_MAX, check_name


def entry(name: str, rid: int | None, rtype: str = "file") -> Entry:
    return Entry.from_wire({"resource_type": rtype, "id": rid, "name": name, "path": f"/f/{name}"})


def shown(entries: list[Entry]) -> dict[str, int | None]:
    return {name: e.id for name, e in display_names(entries).items()}


def test_unique_plain_names_show_as_themselves() -> None:
    assert shown([entry("a.txt", 3), entry("b", 1, "folder")]) == {"a.txt": 3, "b": 1}


def test_slash_shows_as_division_slash() -> None:
    assert shown([entry("a/b", 7)]) == {f"a{SLASH_SUBSTITUTE}b": 7}
    assert display_base("x/y/z") == "x∕y∕z"


def test_new_names_are_sent_as_typed_and_show_back_as_typed() -> None:
    # Orion names cannot hold "/", so a typed "∕" stays one: the create succeeds and round-trips.
    for typed in ("x∕y∕z", "x (id 5)", "plain.txt", "a b"):
        assert orion_name(typed) == typed
        assert list(display_names([entry(orion_name(typed), 1)])) == [typed]


def test_duplicate_lowest_id_keeps_the_name_others_get_id_suffix() -> None:
    got = shown([entry("x", 9), entry("x", 3), entry("x", 5)])
    assert got == {"x": 3, "x (id 5)": 5, "x (id 9)": 9}


def test_result_does_not_depend_on_listing_order() -> None:
    entries = [entry("x", 9), entry("x", 3), entry("x (id 9)", 4), entry("a/b", 2), entry("a∕b", 1)]
    expected = shown(entries)
    rng = random.Random(0)
    for _ in range(20):
        rng.shuffle(entries)
        assert shown(entries) == expected


def test_literal_name_keeps_its_name_over_a_generated_one() -> None:
    # "x (id 5)" typed by a user keeps it; the duplicate x of id 5 takes the next free name.
    got = shown([entry("x", 3), entry("x", 5), entry("x (id 5)", 12)])
    assert got == {"x": 3, "x (id 5)": 12, "x (id 5) (id 5)": 5}


def test_literal_division_slash_and_real_slash_collide_then_split_by_id() -> None:
    got = shown([entry("a∕b", 8), entry("a/b", 4)])
    assert got == {"a∕b": 4, "a∕b (id 8)": 8}


def test_virtual_folders_with_null_ids_keep_their_names() -> None:
    got = shown([entry("project", None, "folder"), entry("user", None, "folder")])
    assert got == {"project": None, "user": None}


def test_root_slash_name_shows_as_division_slash() -> None:
    # The root's own Entry is named "/"; it never appears in a listing, but the rule stays total.
    assert shown([entry("/", None, "folder")]) == {SLASH_SUBSTITUTE: None}


def test_values_are_the_entries_themselves_not_copies() -> None:
    entries = [entry("x", 1), entry("x", 2)]
    got = display_names(entries)
    assert got["x"] is entries[0] and got["x (id 2)"] is entries[1]


def test_plain_names_are_exactly_those_stat_can_resolve() -> None:
    assert is_plain("report.pdf")
    assert is_plain("x (id five)")
    assert is_plain("(id 5)")  # no space before it: cannot be a generated suffix
    assert is_plain("x (id 5) tail")
    assert not is_plain("x (id 5)")
    assert not is_plain("a∕b")


def test_orion_name_keeps_a_typed_id_suffix() -> None:
    assert orion_name("x (id 5)") == "x (id 5)"


names = st.text(alphabet="ab/∕ (id5)", min_size=1, max_size=8)
kinds = st.sampled_from(["file", "dataset", "folder", "shard_collection", "shard"])


@st.composite
def folders(draw: st.DrawFn) -> list[Entry]:
    """Entries of one folder: unique ids, names drawn to collide often (incl. literal suffixes)."""
    ids = draw(st.lists(st.integers(1, 12), unique=True, max_size=12))
    out = []
    for rid in ids:
        name = draw(st.one_of(names, st.sampled_from(["x", "x (id 5)", "x (id 5) (id 5)", "x/y"])))
        out.append(entry(name, rid, draw(kinds)))
    return out


@settings(max_examples=400, deadline=None)
@given(folders())
def test_rule_is_injective_and_total(entries: list[Entry]) -> None:
    got = display_names(entries)
    assert len(got) == len(entries)  # every entry has exactly one name, no two share one
    assert sorted(id(e) for e in got.values()) == sorted(id(e) for e in entries)
    assert all("/" not in name and name for name in got)


@settings(max_examples=400, deadline=None)
@given(folders())
def test_rule_maps_back(entries: list[Entry]) -> None:
    got = display_names(entries)
    for shown_name, e in got.items():
        if is_plain(shown_name):
            # A plain name is the Orion name of the lowest-id entry of that name: what stat answers.
            assert orion_name(shown_name) == e.name
            assert e.id == min(o.id for o in entries if o.name == e.name)
        # A unique base always shows as itself, and is the Orion name when that held no "/".
        base = display_base(e.name)
        if sum(display_base(o.name) == base for o in entries) == 1:
            assert shown_name == base
            if "/" not in e.name:
                assert orion_name(shown_name) == e.name


@settings(max_examples=200, deadline=None)
@given(folders(), st.randoms(use_true_random=False))
def test_rule_is_independent_of_order(entries: list[Entry], rng: random.Random) -> None:
    expected = {name: id(e) for name, e in display_names(entries).items()}
    shuffled = list(entries)
    rng.shuffle(shuffled)
    assert {name: id(e) for name, e in display_names(shuffled).items()} == expected


def test_a_segment_over_255_bytes_is_too_long_whatever_its_length_in_characters() -> None:
    check_name("/" + "é" * (NAME_MAX // 2))  # 254 bytes
    with pytest.raises(NameTooLong):
        check_name("/a/" + "é" * (NAME_MAX // 2 + 1) + "/b")  # 256 bytes in 128 characters
    with pytest.raises(NameTooLong):
        check_name("/" + "n" * (NAME_MAX + 1))
    check_name("/" + "/".join(["d" * 200] * 20))  # a long path of names under the limit
