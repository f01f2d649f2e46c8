"""Shared helpers for the model and training tests: real stores, the tiny config, a model.

Everything here is real: the example catalog's 126 products with their JPEGs, a WordPiece
vocabulary trained on them, the tiny model of ``examples/tiny.yaml``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path

import pytest
import torch

from graph_store import Snapshot, open_store
from kg_builder import build_graph, open_catalog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TINY = EXAMPLES / "tiny.yaml"

warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)


@contextlib.contextmanager
def one_thread():
    """Torch on one thread while a test runs: on a busy 2-core machine two OpenMP threads
    made each training step several times slower (see kgmm.training.distributed)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def build_store(path: Path, catalog: Path = EXAMPLES / "catalog.jsonl", **options) -> str:
    """Build ``catalog`` into a fresh embedded store at ``path``; returns its URI."""
    with open_store(str(path), create=True) as store:
        build_graph(open_catalog(catalog, **options), store)
    return str(path)


@functools.cache
def example_snapshot() -> Snapshot:
    """The example catalog's snapshot (built once per test process, in memory)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        uri = build_store(Path(tmp) / "example.db")
        with open_store(uri) as store:
            return store.snapshot()


def tiny_config(**train):
    """``examples/tiny.yaml`` with test-sized run settings (and any ``train`` overrides)."""
    from kgmm.config import load_config

    settings = {"max_steps": 8, "log_every": 2, "eval_every": 4, "checkpoint_every": 4, "cpu_threads": 1}
    settings.update(train)
    return load_config(TINY).replace("train", **settings)


def tiny_setup(config=None, snapshot: Snapshot | None = None, seed: int = 0):
    """(model, data, tokenizer) for a snapshot: everything a batch and a forward pass need."""
    from kgmm.data.batches import PretrainData
    from kgmm.data.split import split_edges
    from kgmm.model.factory import new_model
    from kgmm.text import train_wordpiece

    config = config or tiny_config()
    snapshot = snapshot or example_snapshot()
    tokenizer = train_wordpiece([t for pair in zip(snapshot.titles, snapshot.descriptions) for t in pair], config.text.vocab_size)
    torch.manual_seed(seed)
    model = new_model(config, snapshot, tokenizer)
    split = split_edges(snapshot, config.train.val_fraction, config.train.max_val, config.train.seed, config.train.min_val)
    data = PretrainData(snapshot, split, tokenizer, config, model.num_patches)
    return model, data, tokenizer


@pytest.fixture(autouse=True, scope="module")
def one_thread_per_module():
    """Import into a test module to run all its tests on one torch thread (see :func:`one_thread`)."""
    with one_thread():
        yield
