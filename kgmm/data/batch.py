"""The multimodal batch the model reads: plain tensors, one field per input or target.

``B`` products, ``L`` text tokens, ``S`` image side, ``N`` image patches, ``K`` (attribute,
value) tokens, ``n`` subgraph nodes, ``E`` subgraph edges, ``T`` link-prediction facts held
out of the input, ``k`` negatives per fact. A missing modality is a ``*_present`` flag,
never a tensor of zeros that the model would read as content.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from ..modalities.base import ExtraInputs


@dataclass
class Batch:
    """One micro-batch; every field is a tensor whose first dimension is named in a comment."""

    products: Tensor  # [B] int64 product indices of the snapshot
    # text: "[CLS] title [SEP] description [SEP]"
    input_ids: Tensor  # [B, L] int64, after MLM masking
    attention_mask: Tensor  # [B, L] int64, 1 = real token
    token_type_ids: Tensor  # [B, L] int64, 0 title part, 1 description part
    text_present: Tensor  # [B] bool
    mlm_labels: Tensor  # [B, L] int64 original ids at masked positions, -100 elsewhere
    # image
    pixels: Tensor  # [B, 3, S, S] float32 normalised; rows without an image hold zeros, unread
    image_present: Tensor  # [B] bool
    patch_mask: Tensor  # [B, N] bool, patches hidden for MOM (False where no image)
    # knowledge: the product's known (attribute, value) pairs, minus held-out facts
    kv_attribute: Tensor  # [B, K] int64
    kv_value: Tensor  # [B, K] int64
    kv_mask: Tensor  # [B, K] bool, True = a real pair
    # sampled subgraph; nodes 0..B-1 are the batch's products
    node_kind: Tensor  # [n] int64 0 product, 1 value, 2 category
    node_key: Tensor  # [n] int64 category of a product (-1: none), value id, category id
    node_attribute: Tensor  # [n] int64 attribute of a value node, -1 otherwise
    edge_index: Tensor  # [2, E] int64 local source -> destination
    edge_kind: Tensor  # [E] int64
    edge_attribute: Tensor  # [E] int64, -1 for category edges
    # link prediction: facts held out of the input, with same-attribute negatives
    lpm_row: Tensor  # [T] int64 batch row of the fact's product
    lpm_attribute: Tensor  # [T] int64
    lpm_value: Tensor  # [T] int64
    lpm_negatives: Tensor  # [T, k] int64 (-1 where none)
    lpm_negative_mask: Tensor  # [T, k] bool
    # robustness bookkeeping (not model inputs)
    title_swapped: Tensor  # [B] bool
    image_swapped: Tensor  # [B] bool
    # modalities beyond K3M's three, by name ("table", "video", "audio"); empty unless configured
    extra: ExtraInputs = field(default_factory=ExtraInputs)

    @property
    def size(self) -> int:
        return int(self.products.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``."""
        return Batch(**{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)})

    def pin_memory(self) -> Batch:
        """Page-locked copy, so the DataLoader's ``pin_memory=True`` works with this type."""
        return Batch(**{f.name: getattr(self, f.name).pin_memory() for f in fields(self)})
