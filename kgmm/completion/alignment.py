"""Reading a store's graph with a model's id maps.

A model's embedding tables are indexed by the attributes, values and categories of the
snapshot it was trained on (saved as ``id_maps.json``). The store may have changed since:
new products, new values. The model is inductive over products (a product is its text,
photo, category and values, never an id), so new products are fine; what must line up
are the indices. :func:`align_snapshot` re-indexes a store's snapshot to the model's maps:
facts whose value the model has never seen are left out of the input (they cannot be
embedded), and a category it has never seen is replaced by its nearest known ancestor.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from graph_store import Snapshot
from graph_store.models import CATEGORY_SEPARATOR


def align_snapshot(snapshot: Snapshot, id_maps: dict) -> tuple[Snapshot, int]:
    """``snapshot`` re-indexed to ``id_maps``; returns it and the number of facts dropped."""
    attributes = list(id_maps["attributes"])
    values = [tuple(v) for v in id_maps["values"]]
    categories = list(id_maps["categories"])
    if attributes == snapshot.attributes and values == snapshot.values and categories == snapshot.categories:
        return snapshot, 0
    value_pos = {v: i for i, v in enumerate(values)}
    value_map = np.array([value_pos.get(v, -1) for v in snapshot.values], dtype=np.int64)
    edge_value = value_map[snapshot.edge_value] if snapshot.num_edges else np.zeros(0, np.int64)
    keep = edge_value >= 0
    order = np.lexsort((edge_value[keep], snapshot.edge_product[keep]))  # snapshots sort edges by (product, value)
    attribute_pos = {a: i for i, a in enumerate(attributes)}
    value_attribute = np.array([attribute_pos[a] for a, _ in values], dtype=np.int64)
    category_pos = {c: i for i, c in enumerate(categories)}
    category_parent = np.array(
        [category_pos.get(c.rsplit(CATEGORY_SEPARATOR, 1)[0], -1) if CATEGORY_SEPARATOR in c else -1 for c in categories], dtype=np.int64
    )
    product_category = np.array([_known_ancestor(snapshot, c, category_pos) for c in snapshot.product_category.tolist()], dtype=np.int64)
    kept_value = edge_value[keep][order]
    aligned = dataclasses.replace(
        snapshot,
        attributes=attributes,
        values=values,
        value_attribute=value_attribute,
        categories=categories,
        category_parent=category_parent,
        product_category=product_category,
        edge_product=snapshot.edge_product[keep][order],
        edge_attribute=value_attribute[kept_value],
        edge_value=kept_value,
        edge_source=snapshot.edge_source[keep][order],
        edge_score=snapshot.edge_score[keep][order],
    )
    return aligned, int((~keep).sum())


def _known_ancestor(snapshot: Snapshot, category: int, known: dict[str, int]) -> int:
    while category >= 0:
        found = known.get(snapshot.categories[category])
        if found is not None:
            return found
        category = int(snapshot.category_parent[category])
    return -1
