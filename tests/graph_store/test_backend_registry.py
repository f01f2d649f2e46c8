"""Backends by URI scheme: a new backend registered from this file alone serves the contract, and
``StoreSpec`` opens any registered backend the same way.

The toy backend is ``memory://NAME``: the embedded SQLite store in a per-process temporary folder,
one file per NAME, so two opens of ``memory://shop`` see the same graph (like a named in-memory
database) while the URI has a scheme the built-in backends do not serve.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from graph_store import (
    AttributeEdge,
    GraphStore,
    ProductNode,
    RunInfo,
    StoreError,
    StoreSpec,
    open_store,
    opened,
    register_backend,
    registered,
    unregister_backend,
)
from graph_store.backends import BUILTIN, backend_for, scheme_of
from graph_store.sqlite_store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


class MemoryStore(SQLiteStore):
    """The embedded store under a ``memory://`` name: everything else is the SQLite backend."""

    def __init__(self, name: str, folder: Path) -> None:
        super().__init__(folder / f"{name}.db", create=True)
        self.uri = f"memory://{name}"


def open_memory(spec: StoreSpec, *, create: bool = False, folder: Path | None = None) -> GraphStore:
    """The toy backend's opener: the one function a backend module registers."""
    name = spec.uri.split("://", 1)[1]
    if not name.isidentifier():
        raise StoreError(f"{spec.uri}: a memory store is named by an identifier")
    return MemoryStore(name, folder or Path(tempfile.gettempdir()))


@pytest.fixture
def memory_backend(tmp_path: Path) -> Iterator[Path]:
    """``memory://`` registered for one test (its files in ``tmp_path``), then forgotten."""
    register_backend("memory", ["memory"], lambda spec, create=False: open_memory(spec, create=create, folder=tmp_path))
    try:
        yield tmp_path
    finally:
        unregister_backend("memory")


def test_a_backend_registered_from_a_test_file_reads_and_writes_through_the_contract(memory_backend: Path) -> None:
    with open_store("memory://shop") as store:
        assert isinstance(store, GraphStore) and store.uri == "memory://shop"
        store.upsert_products(
            [ProductNode("p1", "Red mug", category=("Home", "Kitchen")), ProductNode("p2", "Blue mug")],
            [AttributeEdge("p1", "color", "red", "catalog"), AttributeEdge("p2", "color", "blue", "catalog")],
        )
        run = RunInfo("run-1", "toy")
        assert store.write_predictions(run, [AttributeEdge("p2", "material", "steel", "model", score=0.8, run_id="run-1")]) == 1
    with StoreSpec("memory://shop").open() as again:  # the same name is the same graph
        assert [p.id for p in again.iter_products()] == ["p1", "p2"]
        assert again.stats().edges_by_source == {"catalog": 2, "model": 1}
        assert again.snapshot().num_products == 2
        assert again.delete_run("run-1") == 1
        assert again.prune_orphans() == 0  # delete_run already pruned "steel"
        assert str(again) == "memory://shop"
    assert (memory_backend / "shop.db").exists()


def test_registered_backend_serves_every_entry_point_that_takes_a_store(memory_backend: Path) -> None:
    with open_store("memory://shop") as store:
        store.upsert_products([ProductNode("p1", "Red mug")], [AttributeEdge("p1", "color", "red", "catalog")])
    with opened("memory://shop") as graph:  # what load_snapshot and the CLI use
        assert graph.get_product("p1") is not None
    with opened(StoreSpec("memory://shop")) as graph:
        assert graph.stats().products == 1


def test_unregistered_backend_is_an_unknown_scheme_again(memory_backend: Path) -> None:
    unregister_backend("memory")
    with pytest.raises(StoreError, match=r"unknown store scheme 'memory://'.*bolt://"):
        open_store("memory://shop")
    register_backend("memory", ["memory"], open_memory)  # the fixture unregisters it again


def test_a_scheme_served_by_another_backend_is_not_taken_silently() -> None:
    with pytest.raises(ValueError, match="already served by the neo4j backend"):
        register_backend("mine", ["bolt"], open_memory)
    assert backend_for("bolt://localhost:7687").name == "neo4j"


def test_every_builtin_backend_is_registered_and_its_opener_loads() -> None:
    """The meta-test: each backend that ships resolves to an importable opener."""
    table = registered()
    for backend in BUILTIN:
        for scheme in backend.schemes:
            assert table[scheme] is backend
        assert callable(backend.load())
    assert scheme_of("shop.db") == "" and scheme_of("NEO4J+S://x.databases.neo4j.io") == "neo4j+s"
    assert scheme_of("C:\\stores\\shop.db") == ""


def test_opened_leaves_an_open_store_open(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"), create=True)
    with opened(store) as same:
        assert same is store
    assert store.stats().products == 0  # still usable: its owner closes it
    store.close()


@pytest.mark.parametrize("uri", ["", "   "])
def test_empty_store_string_is_refused_instead_of_becoming_kgmm_db(uri: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match="the store is empty"):
        open_store(uri, create=True)
    with pytest.raises(StoreError, match="the store is empty"):
        StoreSpec(uri)
    assert not (tmp_path / "kgmm.db").exists()


def test_store_spec_keeps_the_password_out_of_repr_and_str() -> None:
    spec = StoreSpec("bolt://db.example.com:7687", user="alice", password="s3cret", database="shop")
    assert "s3cret" not in repr(spec) and "s3cret" not in str(spec)
    assert str(spec) == "bolt://db.example.com:7687" and not spec.is_file
    assert spec.slug() == "bolt-db.example.com-7687-shop"
    assert StoreSpec.coerce(spec) is spec and StoreSpec.coerce(Path("a/shop.db")).uri == "a/shop.db"
    assert StoreSpec("shop.db").is_file and StoreSpec("shop.db").slug() == "shop.db"


def test_store_spec_credentials_fall_back_to_neo4j_variables(monkeypatch) -> None:
    """None credentials are read from NEO4J_* when the store is opened (the driver is built
    without a network call, so no server is needed to see what it would use)."""
    from graph_store.neo4j_store import Neo4jStore

    monkeypatch.setenv("NEO4J_USER", "bob")
    monkeypatch.setenv("NEO4J_DATABASE", "catalog")
    spec = StoreSpec("bolt://127.0.0.1:1")
    store = Neo4jStore(spec.uri, user=spec.user, password=spec.password, database=spec.database)
    try:
        assert (store.user, store.database) == ("bob", "catalog")
        assert spec.slug() == "bolt-127.0.0.1-1-catalog"
    finally:
        store.close()
    explicit = Neo4jStore("bolt://127.0.0.1:1", user="alice", database="shop")
    assert (explicit.user, explicit.database) == ("alice", "shop")
    explicit.close()


def test_neo4j_driver_is_a_regular_dependency() -> None:
    """`--store bolt://...` works on a default install: the driver is not behind an extra.

    Read from pyproject.toml, the source of truth (an installed kgmm's metadata lags behind
    until it is reinstalled)."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(r.replace(" ", "").lower().startswith("neo4j>=") for r in project["dependencies"])
