"""Damaging test products' modalities: K3M's missing-modality and noisy-modality protocol.

A seeded share of the products has its text (title and description), its photo or both
removed (*missing*) or replaced by another product's (*noise*). Each product draws one
uniform number, and it is damaged at ratio ``r`` when that number is below ``r``: the
damaged sets are nested (20% inside 50% inside 80%), so curves over the ratio are not
blurred by resampling. Corruption edits the tables a :class:`PretrainData` reads (token
lists, photo lookups) in a shallow copy; the model, the graph and everything else are
untouched. The models themselves were trained with the modality dropout and swaps of
their config (``modality.*``), as K3M is.
"""

from __future__ import annotations

import copy

import numpy as np

from ..data.batches import PretrainData
from ..data.views import ModalityView

CONDITIONS = ("missing_text", "missing_image", "missing_both", "noise_text", "noise_image")
"""Corruption kinds: which modality is damaged and how."""


class _RemappedImages:
    """A photo lookup where product ``i`` shows photo ``remap[i]`` (-1: none)."""

    def __init__(self, base, remap: np.ndarray) -> None:
        self.base, self.remap = base, remap

    def has_image(self, index: int) -> bool:
        source = int(self.remap[index])
        return source >= 0 and self.base.has_image(source)

    def batch(self, indices, generator, augment):
        mapped = [None if i is None or self.remap[i] < 0 else int(self.remap[i]) for i in indices]
        return self.base.batch(mapped, generator, augment)


def corruption_draws(num_products: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two uniform numbers in [0, 1) per product, drawn once per seed: ``u`` decides whether
    the product is damaged at a ratio, ``w`` picks its swap partner."""
    rng = np.random.default_rng([seed, 7919])
    return rng.random(num_products), rng.random(num_products)


def _partners(w: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """[P] for each product another product from ``pool`` (itself only if the pool is just it)."""
    if pool.size == 0:
        return np.full(w.shape[0], -1)
    pick = np.minimum((w * pool.size).astype(np.int64), pool.size - 1)
    chosen = pool[pick]
    same = chosen == np.arange(w.shape[0])
    chosen[same] = pool[(pick[same] + 1) % pool.size]
    return chosen


def corrupt(data: PretrainData, condition: str, ratio: float, seed: int) -> PretrainData:
    """A copy of ``data`` in which a share ``ratio`` of the products is damaged.

    Args:
        data: batch tables (any view).
        condition: one of :data:`CONDITIONS`.
        ratio: share of products damaged, in [0, 1].
        seed: chooses the products (nested over ratios) and the swap partners.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    if ratio <= 0:
        return data
    kind, modality = condition.split("_")
    u, w = corruption_draws(data.num_products, seed)
    hit = np.flatnonzero(u < ratio)
    out = copy.copy(data)
    if modality in ("text", "both"):
        has_text = np.array([bool(t or d) for t, d in zip(data.titles, data.descriptions)], dtype=bool)
        source = text_sources(has_text, condition, ratio, seed)
        out.titles = [data.titles[s] if s >= 0 else [] for s in source.tolist()]
        out.descriptions = [data.descriptions[s] if s >= 0 else [] for s in source.tolist()]
    if modality in ("image", "both"):
        has_image = np.array([data.images.has_image(p) for p in range(data.num_products)], dtype=bool)
        remap = np.arange(data.num_products)
        remap[hit] = -1 if kind == "missing" else _partners(w, np.flatnonzero(has_image))[hit]
        out.images = _RemappedImages(data.images, remap)
    return out


def text_sources(has_text: np.ndarray, condition: str, ratio: float, seed: int) -> np.ndarray:
    """[P] whose text each product shows under ``condition`` at ``ratio``: itself, another
    product (noise) or -1 (missing).

    One plan for every reader of text: :func:`corrupt` applies it to token tables, the text
    baselines (:mod:`.tfidf`) to raw strings, so both see exactly the same damage.

    Args:
        has_text: [P] bool, the product has a title or a description (swap partners come
            from these).
        condition: one of :data:`CONDITIONS`; conditions that leave text alone return the identity.
        ratio: share of products damaged.
        seed: the same seed as :func:`corrupt`.
    """
    source = np.arange(has_text.shape[0])
    kind, modality = condition.split("_")
    if ratio <= 0 or modality not in ("text", "both"):
        return source
    u, w = corruption_draws(has_text.shape[0], seed)
    hit = u < ratio
    source[hit] = -1 if kind == "missing" else _partners(w, np.flatnonzero(has_text))[hit]
    return source


def touches(view: ModalityView, condition: str) -> bool:
    """Whether ``condition`` damages anything ``view`` reads (otherwise results equal the clean ones)."""
    modality = condition.split("_")[1]
    return (modality in ("text", "both") and view.text) or (modality in ("image", "both") and view.image)
