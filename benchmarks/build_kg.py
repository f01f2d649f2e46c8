"""Benchmark: triples/s into the graph store, against a naive one-row-per-transaction insert.

Measures, in one run and on the same machine state:
  * end-to-end `build_graph` (read, normalise, check images, write, extract from text)
    on the Flipkart sample and on a synthetic catalog (100,000 products; 10,000 with --quick);
  * the store's batched write path alone (pre-normalised batches into ``upsert_products``);
  * the naive path: one transaction per triple (INSERT product, value, edge; COMMIT),
    with the same SQLite settings, on a prefix of the same triples.
Ratios are reported against the naive path measured in this run.

Usage: python benchmarks/build_kg.py [--quick] [--json PATH] [--products N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graph_store import AttributeEdge, ProductNode, open_store  # noqa: E402
from kg_builder import build_graph, open_catalog  # noqa: E402
from kg_builder.normalize import normalize_attribute, normalize_value  # noqa: E402
from kg_builder.synthetic import synthetic_products, write_synthetic_catalog  # noqa: E402

FLIPKART = ROOT.parent / "shared" / "data" / "flipkart-1050" / "flipkart_com-ecommerce_sample_1050.csv"


def end_to_end(catalog: Path, workdir: Path, name: str, preset: str | None = None) -> dict:
    store_path = workdir / f"{name}.db"
    with open_store(str(store_path), create=True) as store:
        started = time.perf_counter()
        report = build_graph(open_catalog(catalog, preset=preset), store)
        seconds = time.perf_counter() - started
    return {"case": f"{name}: build-kg end to end", "products": report.products, "triples": report.triples,
            "seconds": seconds, "triples_per_s": report.triples / seconds}


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
    prepared = batches(products, batch_size)
    triples = sum(len(e) for _, e in prepared)
    with open_store(str(workdir / f"writes-{batch_size}.db"), create=True) as store:
        started = time.perf_counter()
        for nodes, edges in prepared:
            store.upsert_products(nodes, edges)
        seconds = time.perf_counter() - started
    return {"case": f"store writes, batch {batch_size:,}", "products": len(products), "triples": triples,
            "seconds": seconds, "triples_per_s": triples / seconds}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 synthetic products; finishes within a minute")
    parser.add_argument("--products", type=int, default=None, help="synthetic catalog size (default 100,000)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    count = args.products or (10_000 if args.quick else 100_000)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sample = synthetic_products(2_000, seed=1)
        rows.append(naive(sample, workdir, 2_000 if args.quick else 5_000, tuned=False))
        rows.append(naive(sample, workdir, 5_000 if args.quick else 20_000, tuned=True))
        if FLIPKART.exists():
            rows.append(end_to_end(FLIPKART, workdir, "flipkart-1050", preset="flipkart"))
        catalog = write_synthetic_catalog(workdir / "synthetic.jsonl", count)
        rows.append(end_to_end(catalog, workdir, f"synthetic-{count // 1000}k"))
        products = synthetic_products(count)
        for size in (1_000, 10_000):
            rows.append(store_writes(products, workdir, size))
    default, tuned = rows[0]["triples_per_s"], rows[1]["triples_per_s"]
    for row in rows:
        row["vs_naive_default"] = row["triples_per_s"] / default
        row["vs_naive_tuned"] = row["triples_per_s"] / tuned
    print(f"{'case':<46} {'triples':>10} {'seconds':>8} {'triples/s':>11} {'vs naive':>9} {'vs naive WAL':>13}")
    for row in rows:
        print(f"{row['case']:<46} {row['triples']:>10,} {row['seconds']:>8.2f} {row['triples_per_s']:>11,.0f} "
              f"{row['vs_naive_default']:>8.1f}x {row['vs_naive_tuned']:>12.1f}x")
    if args.json:
        meta = {"python": platform.python_version(), "machine": platform.machine(), "sqlite": sqlite3.sqlite_version,
                "synthetic_products": count, "quick": args.quick}
        args.json.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
