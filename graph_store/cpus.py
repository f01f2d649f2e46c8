"""How many cores this process may really use: its CPU affinity and its cgroup's CPU quota.

``os.cpu_count()`` counts the host's cores. In a container limited to two CPUs on a 64-core
host it says 64, and every pool sized from it (build-kg's workers, SQLite's sorter threads,
torch's threads) oversubscribes the two it has. The scheduler's affinity mask (``taskset``,
``docker --cpuset-cpus``) and the cgroup quota (``docker --cpus``, Kubernetes CPU limits) are
what bound a process; this module reads both. It lives in the storage layer, the lowest of
kgmm's packages, so that the store, the builder and the trainer share one answer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _affinity_cpus() -> int:
    """Cores the scheduler lets this process run on (all of the host's where that is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def quota_cpus(root: Path = CGROUP_ROOT) -> int | None:
    """CPUs the cgroup's quota allows (rounded up), or None where there is no quota.

    cgroup v2 writes ``"<quota> <period>"`` (or ``"max <period>"``) in ``cpu.max``; v1 writes
    the two in ``cpu/cpu.cfs_quota_us`` (-1: none) and ``cpu/cpu.cfs_period_us``. A file that
    is missing or unreadable means no quota: the affinity mask still bounds the count.
    """
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            return _ratio(parts[0], parts[1])
        return None
    quota, period = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> int | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """The cores this process may use: the smaller of its affinity and its cgroup's quota, at least 1."""
    quota = quota_cpus(root)
    affinity = _affinity_cpus()
    return max(1, min(affinity, quota) if quota is not None else affinity)
