"""The usable core count: affinity and cgroup quota, read from files shaped as the kernel writes them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from graph_store.cpus import quota_cpus, usable_cpus


def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return tmp_path


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.max": "200000 100000"}, 2),              # v2: docker --cpus 2
    ({"cpu.max": "150000 100000"}, 2),              # 1.5 CPUs: a second core is partly usable
    ({"cpu.max": "50000 100000"}, 1),               # half a CPU still runs one thread
    ({"cpu.max": "max 100000"}, None),              # v2 without a limit
    ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3),  # v1
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),   # v1 without a limit
    ({"cpu.max": "garbage"}, None),
    ({}, None),                                     # no cgroup files at all (macOS, some CI)
])
def test_quota_is_read_as_each_cgroup_version_writes_it(tmp_path: Path, files: dict[str, str], expected) -> None:
    assert quota_cpus(_cgroup(tmp_path, files)) == expected


def test_usable_cpus_is_the_smaller_of_affinity_and_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cpus(_cgroup(tmp_path / "none", {})) == affinity
    assert usable_cpus(_cgroup(tmp_path / "one", {"cpu.max": "100000 100000"})) == 1
    assert usable_cpus(_cgroup(tmp_path / "many", {"cpu.max": f"{1000 * 100000} 100000"})) == affinity


def test_this_machine_counts_at_least_one_core() -> None:
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)
