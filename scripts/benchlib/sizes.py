"""How much data the benchmark makes and how many times it runs each case."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    ls_small: int  # entries of the first ls folder (full: 1,000)
    ls_large: int  # entries of the second (full: 10,000)
    tree_folders: int  # find / stat / du tree: F folders ...
    tree_files: int  # ... x M files
    probes: int
    creates: int  # create+close and unlink
    small_files: int  # copy in and out, 4 KiB each
    small_size: int
    big_mib: int  # sequential read / write
    rss_entries: int  # the folder listed while the mount's RSS is watched
    runs: int  # runs per figure
    heavy_runs: int  # runs of the one-request-per-file cases (create, unlink, copy of small files)
    rss_runs: int
    # the data path (benchlib.datacache_cases)
    sniff_files: int = 20  # extension-less files ``file`` looks at
    sniff_size: int = 64 << 10
    readers: int = 8  # concurrent sequential readers, one file each ...
    reader_mib: int = 1024  # ... of this size
    full_cache_gib: int = 10  # the data cache of the RSS-with-a-full-cache case


QUICK = Sizes(
    ls_small=100,
    ls_large=300,
    tree_folders=10,
    tree_files=30,
    probes=100,
    creates=100,
    small_files=100,
    small_size=4096,
    big_mib=16,
    rss_entries=2_000,
    runs=2,
    heavy_runs=1,
    rss_runs=1,
    reader_mib=32,
    full_cache_gib=1,
)
FULL = Sizes(
    ls_small=1_000,
    ls_large=10_000,
    tree_folders=100,
    tree_files=100,
    probes=100,
    creates=1_000,
    small_files=1_000,
    small_size=4096,
    big_mib=256,
    rss_entries=100_000,
    runs=3,
    heavy_runs=1,
    rss_runs=1,
)
