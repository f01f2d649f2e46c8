"""Shared fixtures: paths to real data, and stores parametrised over backends.

The contract tests take ``empty_store`` and run once per backend in ``BACKENDS``; the
Neo4j backend joins that list when it exists, so it passes the very same tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from graph_store import GraphStore, open_store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FLIPKART = ROOT.parent / "shared" / "data" / "flipkart-1050" / "flipkart_com-ecommerce_sample_1050.csv"

BACKENDS = ["sqlite"]


@pytest.fixture(scope="session")
def flipkart_csv() -> Path:
    """The real 1,050-product catalog from ../shared (CI always has it)."""
    if not FLIPKART.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{FLIPKART} is missing: CI must run with ../shared beside the repo")
        pytest.skip(f"{FLIPKART} not present")
    return FLIPKART


@pytest.fixture
def example_catalog() -> Path:
    return EXAMPLES / "catalog.jsonl"


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], GraphStore]]:
    """Opens fresh, empty stores of one backend; closes them afterwards."""
    opened: list[GraphStore] = []
    counter = iter(range(1000))

    def make() -> GraphStore:
        store = open_store(str(tmp_path / f"store-{next(counter)}.db"), create=True)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def empty_store(store_factory: Callable[[], GraphStore]) -> GraphStore:
    return store_factory()
