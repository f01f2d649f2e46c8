"""Generate examples/behaviour.csv: SYNTHETIC behaviour pairs for the example catalog.

The Flipkart sample has no user behaviour, so these pairs are made up, deterministically
(fixed seed, sorted inputs), to look like what a shop would log:

* ``co_view``: products of the same sub-category (the first two category levels) are
  viewed together; each product gets up to three partners, weights are view counts.
* ``same_query``: products of the same brand come up for one search query.
* ``co_purchase``: a few products bought together across top-level categories.

Run from the repository root: ``python examples/make_behaviour.py``. Other catalogs: export
them as JSONL first (``kgmm export --format jsonl``) and pass ``--catalog`` / ``--out``;
``--kinds co_view,co_purchase`` leaves out the brand-based ``same_query`` pairs, which
would hand a model the brand attribute it is evaluated on (docs/EVALUATION.md does so).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 7
CO_VIEW_PARTNERS = 3
CO_PURCHASES = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", type=Path, default=HERE / "catalog.jsonl", help="JSONL catalog (id, category, attributes)")
    parser.add_argument("--out", type=Path, default=HERE / "behaviour.csv")
    parser.add_argument("--kinds", default="co_view,same_query,co_purchase", help="comma-separated kinds to generate")
    args = parser.parse_args()
    kinds = set(args.kinds.split(","))
    products = [json.loads(line) for line in args.catalog.read_text(encoding="utf-8").split("\n") if line.strip()]  # not splitlines: U+2028 may sit inside a string
    rng = random.Random(SEED)
    pairs: dict[tuple[str, str, str], float] = {}

    def add(a: str, b: str, kind: str, weight: float) -> None:
        if a != b and kind in kinds:
            pairs.setdefault((min(a, b), max(a, b), kind), weight)

    by_sub: dict[str, list[str]] = defaultdict(list)
    by_brand: dict[str, list[str]] = defaultdict(list)
    by_top: dict[str, list[str]] = defaultdict(list)
    for product in products:
        path = [part.strip() for part in product.get("category", "").split(">")]
        by_sub[" > ".join(path[:2])].append(product["id"])
        by_top[path[0]].append(product["id"])
        attributes = {name.lower(): value for name, value in (product.get("attributes") or {}).items()}
        brand = attributes.get("brand")
        if isinstance(brand, list):
            brand = brand[0] if brand else None
        if brand:
            by_brand[str(brand).strip().lower()].append(product["id"])

    for group in (sorted(ids) for _, ids in sorted(by_sub.items())):
        for pid in group:
            others = [o for o in group if o != pid]
            for other in rng.sample(others, min(CO_VIEW_PARTNERS, len(others))):
                add(pid, other, "co_view", float(rng.randint(1, 40)))
    for group in (sorted(ids) for _, ids in sorted(by_brand.items())):
        for i, pid in enumerate(group):
            for other in group[i + 1 :]:
                add(pid, other, "same_query", float(rng.randint(1, 10)))
    tops = sorted(by_top)
    while "co_purchase" in kinds and len(tops) > 1 and sum(kind == "co_purchase" for _, _, kind in pairs) < CO_PURCHASES:
        first, second = rng.sample(tops, 2)
        add(rng.choice(sorted(by_top[first])), rng.choice(sorted(by_top[second])), "co_purchase", float(rng.randint(1, 3)))

    with open(args.out, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["product_a", "product_b", "weight", "kind"])
        for (a, b, kind), weight in sorted(pairs.items(), key=lambda item: (item[0][2], item[0][0], item[0][1])):
            writer.writerow([a, b, f"{weight:g}", kind])
    print(f"wrote {len(pairs)} pairs to {args.out}")


if __name__ == "__main__":
    main()
