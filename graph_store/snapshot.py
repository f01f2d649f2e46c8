"""A frozen, array-backed view of the graph for the model.

The model never talks to a database: it reads a Snapshot (id maps plus typed edge
arrays plus a per-product modality table). Every backend must produce the *same*
snapshot for the same graph, so everything here is sorted by natural keys and the
content hash is computed from the arrays, not from storage details.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from array import array
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .models import CATEGORY_SEPARATOR, SOURCES, SourceCode
from .text_column import TextColumn, TextColumnBuilder

SOURCE_CODES = {name: int(SourceCode[name.upper()]) for name in SOURCES}
"""Edge source name -> int8 code stored in ``Snapshot.edge_source`` (:class:`SourceCode`)."""


@dataclass(frozen=True)
class Snapshot:
    """Id maps, edges and modalities of one graph, in deterministic order.

    Index spaces (all int64 indices into the sorted lists below):
        product: ``product_ids`` sorted by id.
        attribute: ``attributes`` sorted by name; it is also the relation index.
        value: ``values`` sorted by (attribute, value).
        category: ``categories`` sorted by path ("A > B > C").

    Edges are unique per (product, value); when several sources assert the same
    pair the most trusted one (catalog, then text, then model) is kept.

    Behaviour edges (product-product, undirected, stored once with ``src < dst``) are
    unique per (src, dst, kind) and sorted by (src, dst, kind); ``behaviour_kinds`` is
    sorted. They default to empty, so graphs without behaviour data keep their hash.
    """

    product_ids: list[str]
    attributes: list[str]
    values: list[tuple[str, str]]
    value_attribute: np.ndarray  # [V] int64, attribute index of each value
    categories: list[str]
    category_parent: np.ndarray  # [C] int64, parent category index or -1
    product_category: np.ndarray  # [P] int64, leaf category index or -1
    edge_product: np.ndarray  # [E] int64
    edge_attribute: np.ndarray  # [E] int64
    edge_value: np.ndarray  # [E] int64
    edge_source: np.ndarray  # [E] int8, see SOURCE_CODES
    edge_score: np.ndarray  # [E] float32, 1.0 for catalog and text facts
    titles: Sequence[str]  # a TextColumn from the backends (a list works too)
    descriptions: Sequence[str]
    images: list[str | None]  # absolute image path when the image checked ok
    behaviour_kinds: list[str] = field(default_factory=list)  # sorted kind names
    behaviour_src: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [B] int64 product, < dst
    behaviour_dst: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [B] int64 product
    behaviour_kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [B] int64 kind index
    behaviour_weight: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # [B] float32, > 0

    @property
    def num_products(self) -> int:
        return len(self.product_ids)

    @property
    def num_edges(self) -> int:
        return int(self.edge_product.shape[0])

    @property
    def num_behaviour_edges(self) -> int:
        return int(self.behaviour_src.shape[0])

    def has_title(self) -> np.ndarray:
        """[P] bool: the product has a non-empty title."""
        return _nonempty(self.titles)

    def has_description(self) -> np.ndarray:
        """[P] bool: the product has a non-empty description."""
        return _nonempty(self.descriptions)

    def has_image(self) -> np.ndarray:
        """[P] bool: the product has an image that decoded during the build."""
        return np.fromiter(
            (i is not None for i in self.images), dtype=bool, count=self.num_products
        )

    @cached_property
    def edge_ptr(self) -> np.ndarray:
        """[P + 1] int64: product ``p``'s edges are ``edge_*[edge_ptr[p] : edge_ptr[p + 1]]`` (edges
        sort by product). Why: reading one product's facts as a slice, instead of a table of every
        (product, attribute) built up front, is what keeps a million products' start-up small."""
        return np.searchsorted(self.edge_product, np.arange(self.num_products + 1))

    def category_levels(self, category: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """For items in categories ``category`` [N] (-1: none): at each level of the tree, leaf
        first, (positions of the items still in the tree, their category at that level). Counting
        an item in its category and every ancestor is one bincount per level, not a loop per item."""
        level = np.asarray(category, dtype=np.int64)
        on = np.flatnonzero(level >= 0)
        level = level[on]
        while on.size:
            yield on, level
            level = self.category_parent[level]
            keep = level >= 0
            on, level = on[keep], level[keep]

    @cached_property
    def product_top_category(self) -> np.ndarray:
        """[P] int64: each product's top-level category (the root above its category; -1: none)."""
        top = self.product_category.astype(np.int64, copy=True)
        for on, level in self.category_levels(top):
            top[on] = level
        return top

    def product_index(self) -> dict[str, int]:
        """Catalog id -> product index."""
        return {pid: i for i, pid in enumerate(self.product_ids)}

    def content_hash(self) -> str:
        """SHA-256 over ids, edges and modalities; checkpoints use it to refuse a mismatch."""
        digest = hashlib.sha256()
        for name in ("product_ids", "attributes", "categories", "titles", "descriptions", "images"):
            digest.update(name.encode())
            for piece in _json_pieces(getattr(self, name)):
                digest.update(piece.encode())
        digest.update(json.dumps(self.values, ensure_ascii=False).encode())
        for name in _ARRAY_FIELDS:
            array = np.ascontiguousarray(getattr(self, name))
            digest.update(name.encode())
            digest.update(str(array.dtype).encode())
            digest.update(array.tobytes())
        if self.num_behaviour_edges:  # only then: hashes of graphs without behaviour stay as they were
            digest.update(json.dumps(self.behaviour_kinds, ensure_ascii=False).encode())
            for name in _BEHAVIOUR_ARRAYS:
                array = np.ascontiguousarray(getattr(self, name))
                digest.update(name.encode())
                digest.update(str(array.dtype).encode())
                digest.update(array.tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path) -> None:
        """Write the snapshot as one ``.npz`` file (lists stored as JSON)."""
        lists = {name: list(getattr(self, name)) for name in (*_LIST_FIELDS, "behaviour_kinds")}
        arrays = {name: getattr(self, name) for name in (*_ARRAY_FIELDS, *_BEHAVIOUR_ARRAYS)}
        with open(path, "wb") as handle:
            np.savez(handle, _lists=np.frombuffer(json.dumps(lists).encode(), dtype=np.uint8), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Snapshot":
        """Read a snapshot written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            lists = json.loads(data["_lists"].tobytes().decode())
            # Files written before behaviour edges existed lack their arrays: the defaults apply.
            arrays = {name: data[name] for name in (*_ARRAY_FIELDS, *_BEHAVIOUR_ARRAYS) if name in data.files}
        lists["values"] = [tuple(v) for v in lists["values"]]
        return cls(**lists, **arrays)


_ARRAY_FIELDS = (
    "value_attribute",
    "category_parent",
    "product_category",
    "edge_product",
    "edge_attribute",
    "edge_value",
    "edge_source",
    "edge_score",
)
_BEHAVIOUR_ARRAYS = ("behaviour_src", "behaviour_dst", "behaviour_kind", "behaviour_weight")
_LIST_FIELDS = (
    "product_ids",
    "attributes",
    "values",
    "categories",
    "titles",
    "descriptions",
    "images",
)


def build_snapshot(
    products: Iterable[tuple[str, str, str, str | None, str | None]],
    category_paths: Iterable[str],
    edges: Iterable[tuple[str, str, str, str, float | None]],
    behaviour: Iterable[tuple[str, str, str, float]] = (),
) -> Snapshot:
    """Assemble a Snapshot from backend-neutral rows, in any order; backends call this.

    Edges are streamed into typed arrays (no Python object is kept per edge), then
    sorted and de-duplicated with numpy, so memory is bounded by the output arrays.

    Args:
        products: (id, title, description, image or None, leaf category path or None).
        category_paths: category paths in the store ("A > B > C"); prefixes are implied.
        edges: (product id, attribute, value, source, score) for every edge to include.
        behaviour: (product a, product b, kind, weight) behaviour edges, either order.
    """
    products = sorted(products, key=lambda row: row[0])
    product_pos = {row[0]: i for i, row in enumerate(products)}
    seen_values: dict[tuple[str, str], int] = {}
    prod, val, src, score = array("q"), array("q"), array("b"), array("f")
    for pid, attribute, value, source, edge_score in edges:
        key = (attribute, value)
        index = seen_values.get(key)
        if index is None:
            index = seen_values[key] = len(seen_values)
        prod.append(product_pos[pid])
        val.append(index)
        src.append(SOURCE_CODES[source])
        score.append(1.0 if edge_score is None else edge_score)
    columns = ProductColumnsBuilder()
    columns.extend(products)
    return assemble_snapshot(
        columns.finish(), category_paths, list(seen_values), np.frombuffer(prod, dtype=np.int64), np.frombuffer(val, dtype=np.int64),
        np.frombuffer(src, dtype=np.int8), np.frombuffer(score, dtype=np.float32), behaviour_arrays(behaviour, product_pos),
    )


def _edge_order(product: np.ndarray, value: np.ndarray, source: np.ndarray, score: np.ndarray, values: int) -> np.ndarray:
    """The order of ``np.lexsort((-score, source, value, product))``, faster: (product, value,
    source) packed into one int64 when it fits (sources are codes 0-3), sorted stably, with the
    score as a second key only when the scores differ (usually every edge is a fact, score 1.0).
    Edges come from a store nearly in product order, which a stable sort of one key exploits:
    0.3 s instead of 3 s for 11M edges."""
    if product.size == 0 or (int(product.max()) + 1) * max(values, 1) * 4 >= 2**62:
        return np.lexsort((-score, source, value, product))
    packed = (product.astype(np.int64) * values + value) * 4 + source
    if bool((score == score[0]).all()):
        return np.argsort(packed, kind="stable")
    return np.lexsort((-score, packed))


def assemble_snapshot(
    products: "ProductColumns",
    category_paths: Iterable[str],
    value_keys: list[tuple[str, str]],
    edge_product: np.ndarray,
    edge_value: np.ndarray,
    edge_source: np.ndarray,
    edge_score: np.ndarray,
    behaviour_arrays: dict,
) -> Snapshot:
    """A Snapshot from ``products`` (sorted by id) and edges as arrays: ``edge_product`` a position
    in ``products``, ``edge_value`` a position in ``value_keys`` (any order: they are sorted here),
    ``edge_source`` :class:`SourceCode`, ``edge_score`` (1.0 for facts). Why a second entry: a
    backend that can read its edges as numbers (SQLite's integer keys) skips a Python tuple of
    three strings per edge, the cost of reading 11M edges (issue 15)."""
    paths = set(category_paths) | {path for path in products.categories if path}
    for path in list(paths):
        parts = path.split(CATEGORY_SEPARATOR)
        paths.update(CATEGORY_SEPARATOR.join(parts[:depth]) for depth in range(1, len(parts)))
    categories = sorted(paths)
    category_pos = {path: i for i, path in enumerate(categories)}
    category_parent = np.array(
        [category_pos.get(_parent_path(path), -1) for path in categories], dtype=np.int64
    )
    product_category = np.fromiter(
        (category_pos[path] if path else -1 for path in products.categories), np.int64, len(products.ids)
    )

    sorted_keys = sorted(value_keys)
    position = {key: i for i, key in enumerate(sorted_keys)}
    rank = np.fromiter((position[key] for key in value_keys), np.int64, len(value_keys))  # given index -> sorted index
    edge_value = rank[edge_value] if len(edge_value) else np.zeros(0, np.int64)

    # Sort by (product, value, source, -score) and keep the first edge of each pair.
    order = _edge_order(edge_product, edge_value, edge_source, edge_score, len(value_keys))
    edge_product, edge_value = edge_product[order], edge_value[order]
    edge_source, edge_score = edge_source[order], edge_score[order]
    keep = np.ones(order.shape[0], dtype=bool)
    keep[1:] = (edge_product[1:] != edge_product[:-1]) | (edge_value[1:] != edge_value[:-1])

    attributes = sorted({a for a, _ in sorted_keys})
    attribute_pos = {a: i for i, a in enumerate(attributes)}
    value_attribute = np.fromiter(
        (attribute_pos[a] for a, _ in sorted_keys), np.int64, len(sorted_keys)
    )
    edge_value = edge_value[keep]
    return Snapshot(
        product_ids=products.ids,
        attributes=attributes,
        values=sorted_keys,
        value_attribute=value_attribute,
        categories=categories,
        category_parent=category_parent,
        product_category=product_category,
        edge_product=edge_product[keep].copy(),
        edge_attribute=value_attribute[edge_value],
        edge_value=edge_value,
        edge_source=edge_source[keep].copy(),
        edge_score=edge_score[keep].copy(),
        titles=products.titles,
        descriptions=products.descriptions,
        images=products.images,
        **behaviour_arrays,
    )


@dataclass
class ProductColumns:
    """The products of a snapshot, sorted by id, a column each: what a backend reads of them.
    Texts are :class:`TextColumn` objects, so a backend can fill them a chunk of rows at a time
    without a Python string per text (:class:`ProductColumnsBuilder`)."""

    ids: list[str]
    titles: TextColumn
    descriptions: TextColumn
    images: list[str | None]  # absolute path when the image checked ok
    categories: list[str | None]  # leaf category path


class ProductColumnsBuilder:
    """Fills :class:`ProductColumns` from rows already sorted by id, a chunk at a time."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.images: list[str | None] = []
        self.categories: list[str | None] = []
        self._titles, self._descriptions = TextColumnBuilder(), TextColumnBuilder()

    def extend(self, rows: Sequence[tuple[str, str | None, str | None, str | None, str | None]]) -> None:
        """Add (id, title, description, image, leaf path) rows; a missing text reads as ""."""
        self.ids.extend(row[0] for row in rows)
        self._titles.extend(row[1] or "" for row in rows)
        self._descriptions.extend(row[2] or "" for row in rows)
        self.images.extend(row[3] for row in rows)
        self.categories.extend(row[4] for row in rows)

    def finish(self) -> ProductColumns:
        return ProductColumns(self.ids, self._titles.finish(), self._descriptions.finish(), self.images, self.categories)


def behaviour_arrays(rows: Iterable[tuple[str, str, str, float]], product_pos: dict[str, int]) -> dict:
    """Behaviour edges as sorted, de-duplicated arrays (``src < dst`` by product index)."""
    kinds: dict[str, int] = {}
    src, dst, kind, weight = array("q"), array("q"), array("q"), array("f")
    for a, b, name, w in rows:
        i, j = product_pos[a], product_pos[b]
        src.append(min(i, j))
        dst.append(max(i, j))
        kind.append(kinds.setdefault(name, len(kinds)))
        weight.append(w)
    names = sorted(kinds)
    position = {name: i for i, name in enumerate(names)}
    rank = np.fromiter((position[name] for name in kinds), np.int64, len(kinds))
    src_a, dst_a = np.frombuffer(src, dtype=np.int64), np.frombuffer(dst, dtype=np.int64)
    kind_a = rank[np.frombuffer(kind, dtype=np.int64)] if len(kind) else np.zeros(0, np.int64)
    weight_a = np.frombuffer(weight, dtype=np.float32)
    order = np.lexsort((kind_a, dst_a, src_a))
    src_a, dst_a, kind_a, weight_a = src_a[order], dst_a[order], kind_a[order], weight_a[order]
    keep = np.ones(order.shape[0], dtype=bool)  # stores keep one edge per key; this is a guard
    keep[1:] = (src_a[1:] != src_a[:-1]) | (dst_a[1:] != dst_a[:-1]) | (kind_a[1:] != kind_a[:-1])
    return {
        "behaviour_kinds": names,
        "behaviour_src": src_a[keep].copy(),
        "behaviour_dst": dst_a[keep].copy(),
        "behaviour_kind": kind_a[keep].copy(),
        "behaviour_weight": weight_a[keep].copy(),
    }


def _nonempty(texts: Sequence[str]) -> np.ndarray:
    if isinstance(texts, TextColumn):
        return texts.nonempty()
    return np.fromiter((bool(t) for t in texts), dtype=bool, count=len(texts))


def _json_pieces(items: Sequence) -> Iterator[str]:
    """``json.dumps(list(items), ensure_ascii=False)``, in pieces for a :class:`TextColumn` (the
    hash of a snapshot is the same whichever way its texts are held)."""
    if isinstance(items, TextColumn):
        yield from items.json_chunks()
    else:
        yield json.dumps(items, ensure_ascii=False)


def _parent_path(path: str) -> str | None:
    parts = path.split(CATEGORY_SEPARATOR)
    return CATEGORY_SEPARATOR.join(parts[:-1]) if len(parts) > 1 else None
