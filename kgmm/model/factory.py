"""A fresh K3M sized for a snapshot and a tokenizer: the one place a model is born.

Pretraining, the evaluation protocol and the tests all start models the same way, so the
sizes, the id maps and the graph hash saved with a model can never disagree between them.
"""

from __future__ import annotations

import numpy as np
import torch

from graph_store import Snapshot

from ..config import Config
from ..modalities.lexical import EVIDENCE_BUCKETS, name_features
from ..text import SpecialIds
from .dims import ModelDims
from .k3m import K3M


def new_model(config: Config, snapshot: Snapshot, tokenizer, snapshot_hash: str | None = None,
              train_snapshot: Snapshot | None = None) -> K3M:
    """A K3M for ``snapshot``'s id maps, keeping ``tokenizer`` and the graph hash with it.

    Args:
        config: the full config.
        snapshot: the graph whose attributes, values and categories size the embeddings.
        tokenizer: the WordPiece tokenizer (or a pretrained encoder's) the text stream reads.
        snapshot_hash: the hash to record; ``snapshot.content_hash()`` when omitted (pass
            the whole graph's hash when ``snapshot`` is one of its training views).
        train_snapshot: the facts the evidence terms' category prior counts (the training
            graph, without validation or test facts); ``snapshot`` when omitted.
    """
    special = SpecialIds.of(tokenizer)
    dims = ModelDims(special.vocab_size, special.pad, special.cls, special.sep, special.mask,
                     len(snapshot.attributes), len(snapshot.values), len(snapshot.categories))
    model = K3M(config, dims)
    model.tokenizer = tokenizer
    if model.evidence is not None:
        fit_evidence(model, snapshot, tokenizer, train_snapshot or snapshot)
    model.snapshot_hash = snapshot_hash or snapshot.content_hash()
    model.id_maps = {"attributes": snapshot.attributes, "values": [list(v) for v in snapshot.values],
                     "categories": snapshot.categories, "products": snapshot.product_ids}
    return model


def fit_evidence(model: K3M, snapshot: Snapshot, tokenizer, train_snapshot: Snapshot) -> None:
    """The evidence terms' data: value names through the tokenizer, the training facts' counts."""
    words, ngrams = name_features(tokenizer, [value for _, value in snapshot.values])
    model.evidence.set_names(_padded(words, len(snapshot.values)), _padded(ngrams, len(snapshot.values)))
    model.evidence.set_idf(*document_frequency(snapshot, tokenizer))
    t = train_snapshot
    model.evidence.prior.fit(*(torch.from_numpy(np.asarray(x, dtype=np.int64)) for x in (
        snapshot.product_category, snapshot.category_parent, snapshot.value_attribute, t.edge_product, t.edge_attribute, t.edge_value)))


def _padded(rows: list[list[int]], count: int) -> torch.Tensor:
    """[max(count, 1), W] int64, 0-padded (W >= 1)."""
    out = torch.zeros(max(count, 1), max([1] + [len(r) for r in rows]), dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


IDF_PRODUCTS = 10_000
"""Products whose text the IDF is counted on (every one in a smaller catalog, so its IDF is unchanged)."""


def document_frequency(snapshot: Snapshot, tokenizer) -> tuple[torch.Tensor, int]:
    """([EVIDENCE_BUCKETS] products whose text has each n-gram bucket, product count): the
    lexical classifier's IDF, from every product's text (unsupervised, no fact read)."""
    from ..data.evidence import DESCRIPTION_TOKENS, EvidenceInput

    reader = EvidenceInput(tokenizer)
    encode = lambda texts, limit: tokenizer(texts, add_special_tokens=False, truncation=True, max_length=limit)["input_ids"]  # noqa: E731
    frequency = torch.zeros(EVIDENCE_BUCKETS)
    # IDF is a ratio: an evenly spaced sample of IDF_PRODUCTS estimates it (all of 100k products took 221 s)
    stride = max(1, -(-snapshot.num_products // IDF_PRODUCTS))
    chosen = range(0, snapshot.num_products, stride)
    for start in range(0, len(chosen), 4096):  # bounded memory on large catalogs
        titles = encode([snapshot.titles[p] for p in chosen[start : start + 4096]], DESCRIPTION_TOKENS)
        descriptions = encode([snapshot.descriptions[p] for p in chosen[start : start + 4096]], DESCRIPTION_TOKENS)
        for title, description in zip(titles, descriptions):
            buckets = set(reader.features(title)[0].tolist()) | set(reader.features(description)[0].tolist())
            if buckets:
                frequency[torch.tensor(sorted(buckets))] += 1
        reader.clear()
    return frequency, len(chosen)
