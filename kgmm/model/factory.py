"""A fresh K3M sized for a snapshot and a tokenizer: the one place a model is born.

Pretraining, the evaluation protocol and the tests all start models the same way, so the
sizes, the id maps and the graph hash saved with a model can never disagree between them.
"""

from __future__ import annotations

from graph_store import Snapshot

from ..config import Config
from ..text import SpecialIds
from .dims import ModelDims
from .k3m import K3M


def new_model(config: Config, snapshot: Snapshot, tokenizer, snapshot_hash: str | None = None) -> K3M:
    """A K3M for ``snapshot``'s id maps, keeping ``tokenizer`` and the graph hash with it.

    Args:
        config: the full config.
        snapshot: the graph whose attributes, values and categories size the embeddings.
        tokenizer: the WordPiece tokenizer (or a pretrained encoder's) the text stream reads.
        snapshot_hash: the hash to record; ``snapshot.content_hash()`` when omitted (pass
            the whole graph's hash when ``snapshot`` is one of its training views).
    """
    special = SpecialIds.of(tokenizer)
    dims = ModelDims(special.vocab_size, special.pad, special.cls, special.sep, special.mask,
                     len(snapshot.attributes), len(snapshot.values), len(snapshot.categories))
    model = K3M(config, dims)
    model.tokenizer = tokenizer
    model.snapshot_hash = snapshot_hash or snapshot.content_hash()
    model.id_maps = {"attributes": snapshot.attributes, "values": [list(v) for v in snapshot.values],
                     "categories": snapshot.categories, "products": snapshot.product_ids}
    return model
