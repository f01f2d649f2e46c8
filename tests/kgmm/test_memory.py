"""Large freed blocks leave the process's resident memory (glibc, Linux)."""

from __future__ import annotations

import sys

import numpy as np
import psutil
import pytest

from kgmm.memory import return_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_temporaries_under_a_live_block_are_given_back() -> None:
    assert return_freed_memory()
    process = psutil.Process()
    before = process.memory_info().rss
    blocks = [np.ones(2 << 20, dtype=np.uint8) for _ in range(100)]  # 200 MiB of 2 MiB temporaries, touched
    kept = blocks[-1]  # the last one stays alive above the others, as a live array does in a heap
    del blocks
    after = process.memory_info().rss
    assert kept.sum() == kept.size
    assert after - before < 32 << 20, f"{(after - before) >> 20} MiB still resident"
