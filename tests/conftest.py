"""Shared fixtures: paths to real data, and stores parametrised over backends.

The contract tests take ``empty_store`` and run once per backend in ``BACKENDS``, so the
Neo4j backend passes the very same tests as the embedded one.

Neo4j: one in-process Neo4j 5.26 server (``tests.neo4j_server``) is started for the
whole session on first use, or, when ``NEO4J_URI`` is set, that server is used with
``NEO4J_USER`` / ``NEO4J_PASSWORD`` / ``NEO4J_DATABASE`` (every Neo4j test DELETES ALL DATA in
that database: point it at a scratch one). When no server can be had the Neo4j tests skip,
unless ``KGMM_REQUIRE_NEO4J=1`` (CI), where they fail. ``-m "not neo4j"`` leaves them out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from graph_store import GraphStore, open_store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FLIPKART = ROOT.parent / "shared" / "data" / "flipkart-1050" / "flipkart_com-ecommerce_sample_1050.csv"

BACKENDS = ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)]
NEO4J_TEST_PASSWORD = "kgmm-session-pw"


@dataclass(frozen=True)
class Neo4jTarget:
    """Where the Neo4j tests connect; ``open()`` gives a connected store."""

    uri: str
    user: str
    password: str
    database: str

    def open(self, **options: object) -> GraphStore:
        return open_store(self.uri, user=self.user, password=self.password, database=self.database, **options)

    def env(self) -> dict[str, str]:
        """Environment for a ``kgmm`` subprocess that should reach this server."""
        return {"NEO4J_USER": self.user, "NEO4J_PASSWORD": self.password, "NEO4J_DATABASE": self.database}


def neo4j_unavailable(reason: str) -> None:
    """Skip, or fail when ``KGMM_REQUIRE_NEO4J=1``."""
    if os.environ.get("KGMM_REQUIRE_NEO4J") == "1":
        pytest.fail(f"KGMM_REQUIRE_NEO4J=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def neo4j_target() -> Iterator[Neo4jTarget]:
    """One Neo4j server for the whole test session (started on first use)."""
    try:
        import neo4j  # noqa: F401
    except ImportError:
        neo4j_unavailable("the neo4j driver is not installed (pip install -e '.[test]')")
    if os.environ.get("NEO4J_URI"):
        yield Neo4jTarget(
            os.environ["NEO4J_URI"],
            os.environ.get("NEO4J_USER", "neo4j"),
            os.environ.get("NEO4J_PASSWORD", ""),
            os.environ.get("NEO4J_DATABASE", "neo4j"),
        )
        return
    from tests.neo4j_server import Neo4jLauncherError, Neo4jServer

    server = Neo4jServer(password=NEO4J_TEST_PASSWORD)
    try:
        server.start()
    except Neo4jLauncherError as err:
        neo4j_unavailable(f"cannot start the test Neo4j server: {err.summary}")
    try:
        yield Neo4jTarget(server.uri, server.user, server.password, "neo4j")
    finally:
        server.stop()


def fresh_neo4j_store(target: Neo4jTarget, opened: list[GraphStore]) -> GraphStore:
    """A store on the session's server, with every node and relationship deleted first."""
    from graph_store.neo4j_store import clear_graph

    store = target.open()
    opened.append(store)
    clear_graph(store)  # type: ignore[arg-type]
    return store


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
    """Opens fresh, empty stores of one backend; closes them afterwards.

    Neo4j Community has one user database, so every call empties it: stores made by one
    test share the graph, and the latest call starts it afresh.
    """
    opened: list[GraphStore] = []
    counter = iter(range(1000))

    if request.param == "neo4j":
        target = request.getfixturevalue("neo4j_target")

        def make() -> GraphStore:
            return fresh_neo4j_store(target, opened)

    else:

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


@pytest.fixture
def neo4j_store(neo4j_target: Neo4jTarget) -> Iterator[GraphStore]:
    """An empty Neo4j store on the session's server (for Neo4j-only tests)."""
    opened: list[GraphStore] = []
    yield fresh_neo4j_store(neo4j_target, opened)
    for store in opened:
        store.close()
