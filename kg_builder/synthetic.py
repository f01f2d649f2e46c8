"""A synthetic catalog with a realistic shape, for benchmarks and tests.

Categories, attributes and values follow skewed (Zipf-like) popularity as real catalogs
do; titles and descriptions mention some attribute values and a measurement, so text
extraction has real work. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

COLORS = ["black", "white", "red", "blue", "green", "grey", "pink", "brown", "multicolor", "silver", "gold", "beige"]
MATERIALS = ["cotton", "polyester", "steel", "plastic", "wood", "glass", "ceramic", "leather", "silk", "rubber"]


def synthetic_products(count: int, seed: int = 0, attributes_per_product: int = 10) -> list[dict]:
    """``count`` canonical product objects (see kg_builder.readers.jsonl)."""
    rng = random.Random(seed)
    tops = [f"Department {i}" for i in range(10)]
    leaves = {top: [(top, f"Aisle {i}", f"Shelf {j}") for i in range(4) for j in range(5)] for top in tops}
    attribute_names = [f"feature {i}" for i in range(40)]
    values = {name: [f"{name.split()[1]}-option-{k}" for k in range(rng.randint(5, 200))] for name in attribute_names}
    brands = [f"Brand{k:04d}" for k in range(2000)]
    products = []
    for n in range(count):
        top = tops[min(int(rng.paretovariate(1.2)) - 1, len(tops) - 1)]
        category = rng.choice(leaves[top])
        color, material, brand = rng.choice(COLORS), rng.choice(MATERIALS), brands[min(int(rng.paretovariate(0.8)), len(brands)) - 1]
        chosen = rng.sample(attribute_names, attributes_per_product - 4)
        attributes = {"brand": brand, "color": color, "material": material, "weight": f"{rng.randint(1, 5000)} g"}
        for name in chosen:
            options = values[name]
            attributes[name] = options[min(int(rng.paretovariate(1.0)) - 1, len(options) - 1)]
        if n % 7 == 0:  # leave a gap that the text fills
            attributes.pop("material")
        height = rng.randint(5, 250)
        products.append(
            {
                "id": f"SKU{n:07d}",
                "title": f"{brand} {color.title()} {material.title()} {category[-1]} Item {n}",
                "description": f"A {color} {material} item by {brand}. It is {height} cm in height and ships in one box.",
                "category": " > ".join(category),
                "attributes": attributes,
                "price": round(rng.uniform(1, 500), 2),
            }
        )
    return products


def write_synthetic_catalog(path: str | Path, count: int, seed: int = 0) -> Path:
    """Write ``count`` synthetic products as canonical JSONL and return the path."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        for product in synthetic_products(count, seed):
            handle.write(json.dumps(product) + "\n")
    return path
