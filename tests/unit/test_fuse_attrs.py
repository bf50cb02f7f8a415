"""Attributes as the kernel gets them: ``AttrRules`` (modes, owner, inode of an Entry) and
``StatPacker`` (Attrs -> the platform's ``struct stat``, read back through mfusepy's ``c_stat``)."""

from __future__ import annotations

import dataclasses
import stat

import mfusepy
import pytest

from orionfs.client import wire
from orionfs.fs.entry import Entry
from orionfs.fuse.attrs import BLOCK_SIZE, AttrRules, Attrs
from orionfs.fuse.cstat import StatPacker
from orionfs.fuse.inodes import inode_of

NS = 1_000_000_000


def _entry(kind: str, rid: int | None = 7, size: int = 0, **times: int) -> Entry:
    return Entry(kind=kind, id=rid, name="x", path="/p/x", size=size, **times)


def _read_back(data: bytes) -> mfusepy.c_stat:
    assert len(data) == mfusepy.ctypes.sizeof(mfusepy.c_stat)
    return mfusepy.c_stat.from_buffer_copy(data)


def test_every_field_lands_where_the_platforms_struct_stat_has_it():
    attrs = Attrs(
        mode=stat.S_IFREG | 0o640,
        nlink=3,
        uid=1001,
        gid=1002,
        size=(1 << 40) + 5,
        blocks=123456,
        blksize=BLOCK_SIZE,
        mtime_ns=1_700_000_000 * NS + 123_456_789,
        ctime_ns=1_700_000_100 * NS + 1,
        ino=(1 << 63) | 99,
    )
    st = _read_back(StatPacker().pack(attrs))
    assert st.st_mode == attrs.mode and st.st_nlink == 3
    assert (st.st_uid, st.st_gid) == (1001, 1002)
    assert st.st_size == attrs.size and st.st_blocks == 123456 and st.st_blksize == BLOCK_SIZE
    assert st.st_ino == attrs.ino
    assert (st.st_mtimespec.tv_sec, st.st_mtimespec.tv_nsec) == (1_700_000_000, 123_456_789)
    assert (st.st_atimespec.tv_sec, st.st_atimespec.tv_nsec) == (1_700_000_000, 123_456_789)
    assert (st.st_ctimespec.tv_sec, st.st_ctimespec.tv_nsec) == (1_700_000_100, 1)
    assert st.st_dev == 0 and st.st_rdev == 0


def test_the_same_attrs_are_packed_once_and_new_values_anew():
    packer = StatPacker()
    attrs = Attrs(mode=stat.S_IFDIR, ino=5)
    first = packer.pack(attrs)
    assert packer.pack(attrs) is first  # remembered
    bigger = packer.pack(attrs._replace(size=7))
    assert _read_back(bigger).st_size == 7 and _read_back(first).st_size == 0
    once = packer.pack(Attrs(mode=stat.S_IFREG, ino=6), remember=False)
    assert _read_back(once).st_ino == 6 and _read_back(once).st_dev == 0


def test_a_negative_or_oversized_value_is_refused_not_wrapped():
    packer = StatPacker()
    with pytest.raises(Exception):  # noqa: B017 - struct.error
        packer.pack(Attrs(mode=stat.S_IFREG, uid=-5))


def test_rules_give_kinds_their_modes_and_read_only_drops_write_bits():
    rules = AttrRules(uid=10, gid=20, file_mode=0o644, dir_mode=0o755, read_only=False)
    assert rules.of(_entry(wire.FILE)).mode == stat.S_IFREG | 0o644
    assert rules.of(_entry(wire.FOLDER)).mode == stat.S_IFDIR | 0o755
    assert rules.of(_entry(wire.FOLDER, rid=None)).mode == stat.S_IFDIR | 0o555  # virtual folder
    assert rules.of(_entry(wire.DATASET)).mode == stat.S_IFREG | 0o444
    assert rules.of(_entry(wire.SHARD_COLLECTION)).mode == stat.S_IFDIR | 0o555
    ro = AttrRules(uid=10, gid=20, file_mode=0o644, dir_mode=0o755, read_only=True)
    assert ro.of(_entry(wire.FILE)).mode == stat.S_IFREG | 0o444
    assert ro.of(_entry(wire.FOLDER)).mode == stat.S_IFDIR | 0o555


def test_rules_give_the_same_entry_the_same_attrs_and_a_changed_one_new_attrs():
    rules = AttrRules(uid=10, gid=20, file_mode=0o644, dir_mode=0o755, read_only=False)
    entry = _entry(wire.FILE, size=1)
    attrs = rules.of(entry)
    assert rules.of(entry) is attrs
    grown = dataclasses.replace(entry, size=4096)  # the cache's answer after a write
    assert rules.of(grown).size == 4096 and rules.of(entry).size == 1


def test_rules_take_size_times_owner_and_inode_from_the_entry():
    rules = AttrRules(uid=10, gid=20, file_mode=0o644, dir_mode=0o755, read_only=False)
    entry = _entry(wire.FILE, size=1025, mtime_ns=5 * NS, ctime_ns=6 * NS)
    attrs = rules.of(entry)
    assert (attrs.uid, attrs.gid, attrs.nlink) == (10, 20, 1)
    assert attrs.size == 1025 and attrs.blocks == 3
    assert (attrs.mtime_ns, attrs.ctime_ns) == (5 * NS, 6 * NS)
    assert attrs.ino == inode_of(entry)
    assert rules.of(_entry(wire.FILE, mtime_ns=5 * NS)).ctime_ns == 5 * NS  # no ctime: the mtime
    assert rules.of(_entry(wire.FOLDER)).nlink == 2
