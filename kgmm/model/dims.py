"""The sizes of a model that come from its data, not its config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelDims:
    """Sizes that come from the data (tokenizer and snapshot), saved with the model."""

    vocab_size: int
    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    num_attributes: int
    num_values: int
    num_categories: int
