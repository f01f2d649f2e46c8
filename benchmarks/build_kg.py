"""Benchmark: triples/s into the graph store, against a naive one-row-per-transaction insert.

Measures, in one run and on the same machine state:
  * end-to-end `build_graph` (read, normalise, check images, write, extract from text)
    on the Flipkart sample and on a synthetic catalog (100,000 products; 10,000 with --quick);
  * the store's batched write path alone (pre-normalised batches into ``upsert_products``);
  * the naive path: one transaction per triple (INSERT product, value, edge; COMMIT),
    with the same SQLite settings, on a prefix of the same triples.
Ratios are reported against the naive path measured in this run, and each synthetic build-kg
with worker processes (``--workers``, default 1,2) against the same build in one process
(``workers=1``, the path before worker processes), with the CPU seconds of both.

With ``--neo4j`` (start a Neo4j 5.26 server for the run) or ``--store bolt://...`` (an existing
server; credentials from ``--user/--password/--database`` or ``NEO4J_*``), the same questions are
asked of the Neo4j backend instead: the naive path is one ``MERGE`` statement per triple in its own
transaction; build-kg runs on the Flipkart sample and the store's write path on the synthetic
catalog at batch sizes 100, 1,000 and 10,000 products. The Neo4j database is EMPTIED first.

With ``--compare REF`` (Neo4j only), the store writes, build-kg of the Flipkart sample and of the
synthetic catalog (for each ``--workers`` count) also run with the write statements of git commit
REF (``graph_store`` as of REF, loaded into a module of its own; one transaction per batch, as
before batches were written in slices at once), alternating with the current code on the same
server, ``--rounds`` times each, so that a noisy machine hits both alike.

Usage: python benchmarks/build_kg.py [--quick] [--json PATH] [--products N] [--workers 1,2]
       python benchmarks/build_kg.py --products 1000000 --no-store-writes --workers 1,2
       python benchmarks/build_kg.py --build-ref HEAD~1 --rounds 3 --workers 2,1   # old kg_builder against the current one
       python benchmarks/build_kg.py --neo4j [--quick] [--json PATH] [--products N]
       python benchmarks/build_kg.py --store bolt://HOST:7687 [--user U] [--password P] [--database D]
       python benchmarks/build_kg.py --store bolt://... --compare HEAD~1 --rounds 3 --batches 2000,10000 --workers 2
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graph_store import AttributeEdge, ProductNode, open_store  # noqa: E402
from kg_builder import build_graph, open_catalog  # noqa: E402
from kg_builder.records.normalize import normalize_attribute, normalize_value  # noqa: E402
from kg_builder.synthetic import synthetic_products, write_synthetic_catalog  # noqa: E402

FLIPKART = ROOT.parent / "shared" / "data" / "flipkart-1050" / "flipkart_com-ecommerce_sample_1050.csv"


def end_to_end(catalog: Path, workdir: Path, name: str, preset: str | None = None, workers: int | None = None) -> dict:
    store_path = workdir / f"{name}-{workers}.db"
    with open_store(str(store_path), create=True) as store:
        return timed_build(store, catalog, name, preset, workers=workers)


def timed_build(store, catalog: Path, name: str, preset: str | None = None, batch_size: int = 2000,
                workers: int | None = None) -> dict:
    """One build; ``workers`` None is build-kg's default, 1 the path in one process (the old path).
    CPU seconds of this process and of its workers are recorded too: on a shared machine they
    say what the build cost when the wall clock says mostly who else was running."""
    before, started = os.times(), time.perf_counter()
    report = build_graph(open_catalog(catalog, preset=preset), store, batch_size=batch_size, workers=workers)
    seconds, after = time.perf_counter() - started, os.times()
    label = f"{name}: build-kg end to end" + (f", batch {batch_size:,}" if batch_size != 2000 else "")
    label += ", 1 process" if workers == 1 else f", {workers} workers" if workers else ", default workers"
    return {"case": label, "products": report.products, "triples": report.triples, "workers": workers,
            "seconds": seconds, "triples_per_s": report.triples / seconds,
            "cpu_parent_s": after.user + after.system - before.user - before.system,
            "cpu_workers_s": after.children_user + after.children_system - before.children_user - before.children_system,
            "load_average": os.getloadavg()[0]}


def batches(products: list[dict], size: int) -> list[tuple[list[ProductNode], list[AttributeEdge]]]:
    out = []
    for start in range(0, len(products), size):
        nodes, edges = [], []
        for p in products[start : start + size]:
            nodes.append(ProductNode(p["id"], p["title"], p["description"], tuple(p["category"].split(" > ")),
                                     properties={"price": p["price"]}))
            edges.extend(AttributeEdge(p["id"], normalize_attribute(a), normalize_value(v), "catalog", v)
                         for a, v in p["attributes"].items())
        out.append((nodes, edges))
    return out


def store_writes(products: list[dict], workdir: Path, batch_size: int) -> dict:
    with open_store(str(workdir / f"writes-{batch_size}.db"), create=True) as store:
        return timed_writes(store, products, batch_size)


def timed_writes(store, products: list[dict], batch_size: int, writes=None, label: str = "") -> dict:
    """The store's write path; with ``writes`` (a ``neo4j_writes`` module), its statements instead."""
    prepared = batches(products, batch_size)
    triples = sum(len(e) for _, e in prepared)
    before, started = os.times(), time.perf_counter()
    with statements_of(store, writes):
        for nodes, edges in prepared:
            store.upsert_products(nodes, edges)
    seconds, after = time.perf_counter() - started, os.times()
    return {"case": f"store writes, batch {batch_size:,}{label}", "products": len(products), "triples": triples,
            "seconds": seconds, "triples_per_s": triples / seconds,
            "cpu_parent_s": after.user + after.system - before.user - before.system, "cpu_workers_s": 0.0,
            "load_average": os.getloadavg()[0]}


@contextmanager
def statements_of(store, writes) -> Iterator[None]:
    """With ``writes`` (a ``neo4j_writes`` module of another commit), ``store`` writes each
    catalog or text batch with that module's statements, as that commit did: in slices at once
    (the current store's slicing) when the module has ``split_by_product`` (session 9 on), else
    in one transaction; with None, as the current code does."""
    if writes is None:
        yield
        return
    rows = store.batch_rows
    if hasattr(writes, "split_by_product"):
        def upsert(products, edges):
            ids = list(dict.fromkeys(p.id for p in products))
            store._sliced_write(
                "writing products", "writing categories and values", ids, products, edges,
                lambda tx: writes.upsert_products(tx, products, edges, rows),
                lambda piece: lambda tx: writes.upsert_products(tx, piece.products, piece.edges, rows, categories_written=True))

        def replace(ids, source, edges):
            ids = list(dict.fromkeys(ids))
            store._sliced_write(
                f"writing {source} edges", "writing values", ids, (), edges,
                lambda tx: writes.write_edges(tx, source, ids, edges, rows),
                lambda piece: lambda tx: writes.write_edges(tx, source, piece.product_ids, piece.edges, rows))

        store._upsert_products, store._replace_edges = upsert, replace
    else:
        store._upsert_products = lambda products, edges: store._write(
            "writing products", lambda tx: writes.upsert_products(tx, products, edges, rows))
        store._replace_edges = lambda ids, source, edges: store._write(
            f"writing {source} edges", lambda tx: writes.write_edges(tx, source, list(dict.fromkeys(ids)), edges, rows))
    try:
        yield
    finally:
        del store._upsert_products, store._replace_edges


def writes_at(ref: str, workdir: Path):
    """``graph_store.neo4j_writes`` as of git commit ``ref``, in a package of its own (``graph_store_ref``)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "graph_store"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(workdir / "ref", filter="data")
    package = workdir / "ref" / "graph_store"
    spec = importlib.util.spec_from_file_location("graph_store_ref", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["graph_store_ref"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("graph_store_ref.neo4j_writes")


def compare_writes(store, products: list[dict], args: argparse.Namespace, workdir: Path) -> list[dict]:
    """Store writes with the statements of ``args.compare`` and the current ones, alternating."""
    from graph_store.neo4j_store import clear_graph

    old, rows = writes_at(args.compare, workdir), []
    for size in args.batches:
        for _ in range(args.rounds):
            for writes, label in ((old, f", {args.compare} statements"), (None, "")):
                rows.append(timed_writes(store, products, size, writes, label))
                clear_graph(store)
        mine = [r["triples_per_s"] for r in rows[-2 * args.rounds:][1::2]]
        theirs = [r["triples_per_s"] for r in rows[-2 * args.rounds:][0::2]]
        print(f"batch {size:,}: current / {args.compare} = " + ", ".join(f"{a / b:.2f}x" for a, b in zip(mine, theirs)))
    return rows


def compare_flipkart(store, args: argparse.Namespace, workdir: Path) -> list[dict]:
    """build-kg of the Flipkart sample into SQLite, into Neo4j with ``args.compare``'s statements
    and with the current ones, alternating (the Neo4j graph emptied before each)."""
    from graph_store.neo4j_store import clear_graph

    old, rows = writes_at(args.compare, workdir), []
    for round_ in range(args.rounds):
        rows.append(end_to_end(FLIPKART, workdir, f"flipkart-1050 (SQLite, round {round_})", preset="flipkart"))
        for writes, label in ((old, f"{args.compare} statements"), (None, "current")):
            with statements_of(store, writes):
                rows.append(timed_build(store, FLIPKART, f"flipkart-1050 (Neo4j, {label})", preset="flipkart"))
            clear_graph(store)
        sqlite_s, old_s, new_s = (r["seconds"] for r in rows[-3:])
        print(f"flipkart round {round_}: Neo4j / SQLite = {old_s / sqlite_s:.2f}x ({args.compare}), {new_s / sqlite_s:.2f}x (current)")
    return rows


def compare_synthetic_builds(store, catalog: Path, name: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    """build-kg of the synthetic catalog into Neo4j with ``args.compare``'s statements and with the
    current ones, alternating, ``--rounds`` times for each ``--workers`` count (graph emptied between)."""
    from graph_store.neo4j_store import clear_graph

    old, rows = writes_at(args.compare, workdir), []
    for workers in args.workers:
        for round_ in range(args.rounds):
            for writes, label in ((old, f"{args.compare} statements"), (None, "current")):
                with statements_of(store, writes):
                    rows.append(timed_build(store, catalog, f"{name} (Neo4j, {label})", workers=workers))
                clear_graph(store)
            old_s, new_s = (r["seconds"] for r in rows[-2:])
            print(f"{name} build-kg, {workers} worker(s), round {round_}: current / {args.compare} = {old_s / new_s:.2f}x")
    return rows


def naive(products: list[dict], workdir: Path, limit: int, tuned: bool) -> dict:
    """One transaction per triple; ``tuned`` uses the store's WAL/NORMAL pragmas, else SQLite's defaults."""
    path = workdir / f"naive-{tuned}.db"
    open_store(str(path), create=True).close()  # same schema as the real store
    conn = sqlite3.connect(path, isolation_level=None)
    if tuned:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    else:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA synchronous = FULL")
    triples = [(p["id"], normalize_attribute(a), normalize_value(v), v) for p in products for a, v in p["attributes"].items()][:limit]
    started = time.perf_counter()
    for pid, attribute, value, raw in triples:
        conn.execute("BEGIN")
        conn.execute("INSERT OR IGNORE INTO products(id, title, description, image_status, properties) "
                     "VALUES (?, '', '', 'none', '{}')", (pid,))
        conn.execute("INSERT OR IGNORE INTO value_nodes(attribute, value) VALUES (?, ?)", (attribute, value))
        conn.execute("INSERT OR REPLACE INTO edges(product_pk, value_pk, source, run_id, raw) "
                     "SELECT p.pk, v.pk, 0, '', ? FROM products p, value_nodes v "
                     "WHERE p.id = ? AND v.attribute = ? AND v.value = ?", (raw, pid, attribute, value))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    label = "WAL, synchronous=NORMAL" if tuned else "SQLite defaults"
    return {"case": f"naive, 1 txn/triple ({label})", "products": None, "triples": len(triples),
            "seconds": seconds, "triples_per_s": len(triples) / seconds}


NAIVE_MERGE = (
    "MERGE (p:Product {id: $pid}) MERGE (v:Value {attribute: $a, value: $v}) "
    "MERGE (p)-[h:HAS {attribute: $a, source: 'catalog', run_id: ''}]->(v) SET h.raw = $raw"
)


def neo4j_naive(store, products: list[dict], limit: int) -> dict:
    """One MERGE statement per triple, each in its own (managed) transaction, same schema."""
    triples = [(p["id"], normalize_attribute(a), normalize_value(v), v) for p in products for a, v in p["attributes"].items()][:limit]
    store._ensure_schema()  # the same constraints as the batched path
    started = time.perf_counter()
    with store._driver.session(database=store.database) as session:
        for pid, attribute, value, raw in triples:
            params = {"pid": pid, "a": attribute, "v": value, "raw": raw}
            session.execute_write(lambda tx, params=params: tx.run(NAIVE_MERGE, params).consume())
    seconds = time.perf_counter() - started
    return {"case": "naive, 1 MERGE per triple, 1 txn each", "products": None, "triples": len(triples),
            "seconds": seconds, "triples_per_s": len(triples) / seconds}


@contextmanager
def neo4j_store(args: argparse.Namespace) -> Iterator[tuple[object, dict]]:
    """The Neo4j store to measure (emptied), and a description of its server."""
    from graph_store.neo4j_store import clear_graph

    server = None
    if args.neo4j:
        from tests.neo4j_server import Neo4jServer

        server = Neo4jServer(password="benchmark", heap=args.neo4j_heap, pagecache=args.neo4j_pagecache)
        server.start()
        uri, user, password = server.uri, server.user, server.password
    else:
        uri, user, password = args.store, args.user, args.password
    try:
        with open_store(uri, user=user, password=password, database=args.database) as store:
            with store._driver.session(database=store.database) as session:
                version = session.run("CALL dbms.components() YIELD versions, edition RETURN versions[0], edition").single()
            info = {"uri": store.uri, "neo4j": f"{version[0]} {version[1]}",
                    "server": f"started by the benchmark, heap {args.neo4j_heap}, page cache {args.neo4j_pagecache}"
                    if server else "external"}
            clear_graph(store)
            yield store, info
    finally:
        if server is not None:
            server.stop()


def run_neo4j(args: argparse.Namespace, workdir: Path, count: int) -> tuple[list[dict], dict]:
    from graph_store.neo4j_store import clear_graph

    rows: list[dict] = []
    with neo4j_store(args) as (store, info):
        rows.append(neo4j_naive(store, synthetic_products(2_000, seed=1), 1_000 if args.quick else 3_000))
        clear_graph(store)
        if FLIPKART.exists() and args.compare:
            rows.extend(compare_flipkart(store, args, workdir))
        elif FLIPKART.exists():
            for size in (100, 1_000, 10_000):
                rows.append(timed_build(store, FLIPKART, "flipkart-1050", preset="flipkart", batch_size=size))
                clear_graph(store)
        products = synthetic_products(count)
        if args.compare:
            rows.extend(compare_writes(store, products, args, workdir))
        else:
            for size in args.batches:
                rows.append(timed_writes(store, products, size))
                clear_graph(store)
        catalog = write_synthetic_catalog(workdir / "synthetic.jsonl", count)
        if args.compare:
            rows.extend(compare_synthetic_builds(store, catalog, f"synthetic-{count // 1000}k", args, workdir))
        for workers in [] if args.compare else args.workers:
            rows.append(timed_build(store, catalog, f"synthetic-{count // 1000}k", workers=workers))
            clear_graph(store)
    return rows, info


BUILD_ONE = """
import json, os, sys, time
from graph_store import open_store
from kg_builder import build_graph, open_catalog
catalog, store_path, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open_store(store_path, create=True) as store:
    before, started = os.times(), time.perf_counter()
    report = build_graph(open_catalog(catalog), store, workers=workers)
    seconds, after = time.perf_counter() - started, os.times()
print(json.dumps({"triples": report.triples, "seconds": seconds,
                  "cpu_parent_s": after.user + after.system - before.user - before.system,
                  "cpu_workers_s": after.children_user + after.children_system - before.children_user - before.children_system}))
"""


def compare_builds(args: argparse.Namespace, workdir: Path, catalog: Path, name: str) -> list[dict]:
    """build-kg with ``kg_builder`` as of git commit ``args.build_ref`` and with the current one,
    alternating, each in a fresh process (the store code is the current one for both)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.build_ref, "kg_builder"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(workdir / "build-ref", filter="data")
    rows = []
    for round_ in range(args.rounds):
        for workers in args.workers:
            for label, path in ((args.build_ref, workdir / "build-ref"), ("current", ROOT)):
                store = workdir / f"compare-{round_}-{workers}-{label}.db"
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(ROOT)])}
                done = subprocess.run([sys.executable, "-c", BUILD_ONE, str(catalog), str(store), str(workers)],
                                      check=True, capture_output=True, text=True, env=env)
                row = json.loads(done.stdout.splitlines()[-1])
                row.update(case=f"{name}: build-kg, kg_builder {label}, {workers} worker(s), round {round_ + 1}",
                           products=None, workers=None, triples_per_s=row["triples"] / row["seconds"],
                           load_average=os.getloadavg()[0])
                rows.append(row)
                store.unlink()
    return rows


def run_sqlite(args: argparse.Namespace, workdir: Path, count: int) -> list[dict]:
    if args.build_ref:
        return compare_builds(args, workdir, write_synthetic_catalog(workdir / "synthetic.jsonl", count), f"synthetic-{count // 1000}k")
    rows: list[dict] = []
    sample = synthetic_products(2_000, seed=1)
    rows.append(naive(sample, workdir, 2_000 if args.quick else 5_000, tuned=False))
    rows.append(naive(sample, workdir, 5_000 if args.quick else 20_000, tuned=True))
    if FLIPKART.exists():
        rows.append(end_to_end(FLIPKART, workdir, "flipkart-1050", preset="flipkart"))
    catalog = write_synthetic_catalog(workdir / "synthetic.jsonl", count)
    for workers in args.workers:
        rows.append(end_to_end(catalog, workdir, f"synthetic-{count // 1000}k", workers=workers))
    if args.no_store_writes:
        return rows
    products = synthetic_products(count)
    for size in (1_000, 10_000):
        rows.append(store_writes(products, workdir, size))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 synthetic products; finishes within a minute (SQLite)")
    parser.add_argument("--products", type=int, default=None, help="synthetic catalog size (default 100,000)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--workers", type=lambda text: [int(w) for w in text.split(",")], default=[1, 2],
                        help="worker counts of the synthetic build-kg cases (default 1,2; 1 = one process, the old path)")
    parser.add_argument("--no-store-writes", action="store_true", help="SQLite: skip the store-writes cases (1M catalogs)")
    parser.add_argument("--neo4j", action="store_true", help="start a Neo4j server and measure the Neo4j backend")
    parser.add_argument("--neo4j-heap", default="2g", help="heap of the server started by --neo4j (default 2g)")
    parser.add_argument("--neo4j-pagecache", default="1g", help="page cache of that server (default 1g)")
    parser.add_argument("--batches", type=lambda text: [int(b) for b in text.split(",")], default=[100, 1_000, 10_000],
                        help="Neo4j: batch sizes of the store-writes cases (default 100,1000,10000)")
    parser.add_argument("--compare", default=None, metavar="REF",
                        help="Neo4j: the write statements of git commit REF against the current code, alternating")
    parser.add_argument("--build-ref", default=None, metavar="REF",
                        help="SQLite: only build-kg of the synthetic catalog with kg_builder as of git commit REF and "
                             "with the current one, alternating (--rounds, --workers)")
    parser.add_argument("--rounds", type=int, default=2, help="with --compare or --build-ref: runs of each (default 2)")
    parser.add_argument("--store", default=None, help="measure this Neo4j server (bolt://...); its database is emptied")
    parser.add_argument("--user", default=os.environ.get("NEO4J_USER"), help="Neo4j user (default $NEO4J_USER, neo4j)")
    parser.add_argument("--password", default=os.environ.get("NEO4J_PASSWORD"), help="Neo4j password (default $NEO4J_PASSWORD)")
    parser.add_argument("--database", default=os.environ.get("NEO4J_DATABASE"), help="Neo4j database (default neo4j)")
    args = parser.parse_args()
    count = args.products or (10_000 if args.quick else 100_000)
    on_neo4j = args.neo4j or bool(args.store)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "synthetic_products": count, "quick": args.quick}
    with tempfile.TemporaryDirectory() as tmp:
        if on_neo4j:
            rows, info = run_neo4j(args, Path(tmp), count)
            meta.update(info)
        else:
            rows = run_sqlite(args, Path(tmp), count)
            meta["sqlite"] = sqlite3.sqlite_version
    # (column label, JSON key, baseline triples/s)
    baselines = [("vs naive", "vs_naive", rows[0]["triples_per_s"])] if on_neo4j else [] if args.build_ref else [
        ("vs naive", "vs_naive_default", rows[0]["triples_per_s"]), ("vs naive WAL", "vs_naive_tuned", rows[1]["triples_per_s"])]
    for row in rows:
        for _, key, base in baselines:
            row[key] = row["triples_per_s"] / base
        one = next((r for r in rows if r.get("workers") == 1 and r["case"].split(":")[0] == row["case"].split(":")[0]), None)
        if row.get("workers") != 1 and one is not None and "workers" in row:
            row["vs_one_process"] = row["triples_per_s"] / one["triples_per_s"]
    print(("Neo4j " + meta["neo4j"] + ", " + meta["server"]) if on_neo4j else f"SQLite {meta['sqlite']}")
    print(f"{'case':<50} {'triples':>10} {'seconds':>8} {'triples/s':>11}" + "".join(f" {label:>13}" for label, _, _ in baselines))
    for row in rows:
        print(f"{row['case']:<50} {row['triples']:>10,} {row['seconds']:>8.2f} {row['triples_per_s']:>11,.0f}"
              + "".join(f" {row[key]:>12.1f}x" for _, key, _ in baselines)
              + (f"  {row['vs_one_process']:.2f}x 1 process" if "vs_one_process" in row else "")
              + (f"  cpu {row['cpu_parent_s']:.1f}s + workers {row['cpu_workers_s']:.1f}s" if "cpu_parent_s" in row else "")
              + (f"  load {row['load_average']:.1f}" if "load_average" in row else ""))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
