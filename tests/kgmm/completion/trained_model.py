"""One tiny model, really trained on the example catalog, shared by every completion test.

Training it once per test session (12 steps, a few seconds) instead of once per module keeps
the completion and CLI tests fast; the directory is removed when the session ends.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from tests.kgmm.k3m_testing import build_store, one_thread, tiny_config


@functools.cache
def trained_model() -> tuple[Path, Path]:
    """(the example catalog's embedded store, the model trained on it: ``run/model``)."""
    from kgmm.training import pretrain

    root = Path(tempfile.mkdtemp(prefix="kgmm-test-model-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    store = build_store(root / "example.db")
    with one_thread():
        pretrain(store, tiny_config(max_steps=12, eval_every=12, checkpoint_every=12), root / "run")
    return Path(store), root / "run" / "model"


def store_copy(tmp_path: Path, name: str) -> str:
    """A private copy of the trained store, so a test may write completions into it."""
    import shutil

    shutil.copy(trained_model()[0], tmp_path / name)
    return str(tmp_path / name)
