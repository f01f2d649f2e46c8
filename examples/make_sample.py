"""Regenerate the example catalog from the Flipkart sample in ../shared (run from the repo root).

Picks a fixed, category-balanced subset, writes it in kgmm's canonical JSONL (raw
attribute spellings kept) with its photos, plus a CSV + mapping and a Turtle version
of the first products, so every reader has a small real input.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from kg_builder.readers.flipkart import open_flipkart
from kg_builder.records import CatalogRecord

PER_CATEGORY = 18
HERE = Path(__file__).resolve().parent


def main(source: Path) -> None:
    by_top: dict[str, list[CatalogRecord]] = defaultdict(list)
    for item in open_flipkart(source).rows():
        if isinstance(item, CatalogRecord) and item.category:
            by_top[item.category[0]].append(item)
    chosen = [r for top in sorted(by_top) for r in by_top[top][:PER_CATEGORY]]
    images = HERE / "images"
    images.mkdir(exist_ok=True)
    with open(HERE / "catalog.jsonl", "w", encoding="utf-8") as out:
        for record in chosen:
            attributes: dict[str, list[str]] = defaultdict(list)
            for name, value in record.attributes:
                if value not in attributes[name]:
                    attributes[name].append(value)
            photo = Path(record.image_base or "") / (record.image or "")
            image = None
            if record.image and photo.is_file():
                shutil.copy(photo, images / photo.name)
                image = f"images/{photo.name}"
            product = {
                "id": record.id,
                "title": record.title,
                "description": record.description[:1500],
                "category": " > ".join(record.category),
                "image": image,
                "attributes": {k: v[0] if len(v) == 1 else v for k, v in attributes.items()},
                "price": record.properties.get("discounted_price"),
            }
            out.write(json.dumps({k: v for k, v in product.items() if v is not None}, ensure_ascii=False) + "\n")
    write_csv(chosen[:20])
    print(f"wrote {len(chosen)} products to {HERE / 'catalog.jsonl'}")


def write_csv(records: list[CatalogRecord]) -> None:
    """A CSV with its own column names, to show a mapping file at work."""
    with open(HERE / "catalog.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["sku", "name", "details", "breadcrumb", "photo", "brand", "colour", "material", "list_price"])
        for r in records:
            get = lambda key: next((v for k, v in r.attributes if k.lower() == key), "")  # noqa: E731
            writer.writerow([r.id, r.title, r.description[:300], " > ".join(r.category), f"images/{r.image}",
                             get("brand"), get("color"), get("material"), r.properties.get("retail_price", "")])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/flipkart-1050/flipkart_com-ecommerce_sample_1050.csv"))
