"""K3M: knowledge-perceived multimodal pretraining for products, in one readable file.

    text   [B, L] --TextEncoder (BERT)----------------> [B, L, d] --+
    pixels [B, 3, S, S] --ImageEncoder (timm CNN)-----> [B, N, d] --+--> interaction layers
    (attr, value) pairs [B, K] --pair tokens----------> [B, K, d] --+    (co-attention, the
    subgraph --relational GNN--> graph token [B, 1, d] -------------+     streams stay separate)
                                                                         |
      pooled streams --modality importance (absent: weight 0)--> fused [B, d]
      fused --structure aggregation over the (attr, value) pairs--> product [B, d]

Heads: MLM on the text stream, MOM on masked image patches, LPM scores (product,
attribute, value) with a selectable score function. A missing text or image is a learned
placeholder token plus an attention mask; its encoder does not run on that row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..config import Config
from ..data.batch import Batch
from ..registry import FUSIONS, GNNS, SCORES, TEXT_ENCODERS
from .aggregation import ModalityPooling, StructureAggregation
from .fusion import InteractionLayer
from .image_encoder import PIXEL_PATCH, ImageEncoder
from .knowledge import KnowledgeEncoder
from .text_encoder import TextEncoder

MODALITIES = ("text", "image", "knowledge")


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


@dataclass
class K3MOutput:
    """What one forward pass produces (heads only where their targets exist)."""

    product: Tensor  # [B, d] after structure aggregation: the LPM head
    fused: Tensor  # [B, d] before it
    modality_weights: Tensor  # [B, 3] importance of text, image, knowledge (0 if absent)
    mlm_logits: Tensor | None  # [M, vocab] at the masked text positions, row-major order
    mom_prediction: Tensor | None  # [Q, 48] at the masked patches
    mom_target: Tensor | None  # [Q, 48] their normalised pixels
    lpm_scores: Tensor | None  # [T, 1+k] held-out fact, then its negatives


class K3M(nn.Module):
    """The knowledge-aware multimodal product model.

    Args:
        config: the full config (model, encoders, objectives).
        dims: data-dependent sizes.
        text_transformer: an already built BERT-family model (from a checkpoint); built
            from ``config.text`` when omitted.
    """

    def __init__(self, config: Config, dims: ModelDims, text_transformer: nn.Module | None = None) -> None:
        super().__init__()
        self.config, self.dims = config, dims
        self.tokenizer = None  # kept with the model so save_pretrained writes it
        self.id_maps: dict[str, list] = {}
        self.snapshot_hash: str | None = None
        m, d = config.model, config.model.hidden
        if text_transformer is None:
            text_transformer = TEXT_ENCODERS.get(config.text.encoder)(config.text, dims.vocab_size, dims.pad_id)
        self.text = TextEncoder(text_transformer, d)
        self.image = ImageEncoder(config.image.backbone, d, config.image.size, config.image.weights)
        gnn = GNNS.get(config.knowledge.gnn)(d, config.knowledge.gnn_layers, m.heads, m.dropout)
        self.knowledge = KnowledgeEncoder(dims.num_attributes, dims.num_values, dims.num_categories, d, gnn)
        self.text_missing = nn.Parameter(torch.randn(d) * 0.02)  # placeholder token of an absent text
        self.image_missing = nn.Parameter(torch.randn(d) * 0.02)  # ... of an absent image
        fusion = FUSIONS.get(m.fusion)
        self.interaction = nn.ModuleList(InteractionLayer(d, m.heads, m.dropout, fusion, m.gumbel_tau) for _ in range(m.interaction_layers))
        self.pooling = ModalityPooling(d)
        self.structure = StructureAggregation(d, m.heads, m.dropout)
        self.scorer = SCORES.get(m.score)(dims.num_attributes, d)
        self.value_bias = nn.Parameter(torch.zeros(max(dims.num_values, 1)))  # how common a value is, a prior
        self.mlm_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d), nn.Linear(d, dims.vocab_size))
        self.mom_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d), nn.Linear(d, 3 * PIXEL_PATCH**2))

    @property
    def num_patches(self) -> int:
        return self.image.num_patches

    # -- forward -----------------------------------------------------------------

    def forward(self, batch: Batch, heads: bool = True) -> K3MOutput:
        """Encode a batch; ``heads=False`` skips the MLM, MOM and LPM heads (evaluation, completion)."""
        text, text_pad = self._text_stream(batch)  # [B, L, d], [B, L]
        image, image_pad = self._image_stream(batch)  # [B, N, d], [B, N]
        pairs = self.knowledge.pair_tokens(batch.kv_attribute, batch.kv_value)  # [B, K, d]
        graph = self.knowledge.graph_tokens(
            batch.node_kind, batch.node_key, batch.node_attribute, batch.edge_index, batch.edge_kind, batch.edge_attribute, batch.size
        )  # [B, d]
        knowledge = torch.cat([graph.unsqueeze(1).to(pairs.dtype), pairs], dim=1)  # [B, 1+K, d]
        knowledge_pad = torch.cat([batch.kv_mask.new_zeros(batch.size, 1), ~batch.kv_mask], dim=1)  # [B, 1+K]

        streams = {"text": (text, text_pad), "image": (image, image_pad), "knowledge": (knowledge, knowledge_pad)}
        for layer in self.interaction:
            streams = layer(streams)
        text, image, knowledge = streams["text"][0], streams["image"][0], streams["knowledge"][0]

        keep = (~image_pad).unsqueeze(-1).to(image.dtype)  # [B, N, 1]
        pooled = torch.stack([text[:, 0], (image * keep).sum(1) / keep.sum(1), knowledge[:, 0]], dim=1)  # [B, 3, d]
        present = torch.stack([batch.text_present, batch.image_present, torch.ones_like(batch.text_present)], dim=1)
        fused, weights = self.pooling(pooled, present)  # [B, d], [B, 3]
        product = self.structure(fused, pairs, batch.kv_mask)  # [B, d]

        mlm_logits = mom_prediction = mom_target = lpm_scores = None
        if heads:
            selected = batch.mlm_labels != -100  # [B, L]; only rows with text have labels
            if selected.any():
                mlm_logits = self.mlm_head(text[selected])  # [M, vocab]
            if batch.patch_mask.any():
                rows = batch.image_present.nonzero().squeeze(1)
                masked = batch.patch_mask[rows]  # [p, N]
                mom_prediction = self.mom_head(image[rows][masked])  # [Q, 48]
                mom_target = self.image.patch_pixels(batch.pixels[rows])[masked]  # [Q, 48]
            if batch.lpm_row.numel():  # scored inside forward, so DDP sees the scorer's use
                candidates = torch.cat([batch.lpm_value.unsqueeze(1), batch.lpm_negatives], dim=1)  # [T, 1+k]
                lpm_scores = self.score(product[batch.lpm_row], batch.lpm_attribute, candidates)
        return K3MOutput(product, fused, weights, mlm_logits, mom_prediction, mom_target, lpm_scores)

    def _text_stream(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """BERT states for rows with text; the placeholder (one valid token) for the rest."""
        size, length = batch.input_ids.shape
        d = self.config.model.hidden
        rows = batch.text_present.nonzero().squeeze(1)  # [p]
        pad = torch.ones(size, length, dtype=torch.bool, device=batch.input_ids.device)
        pad[:, 0] = False
        if rows.numel() == 0:
            return self.text_missing.view(1, 1, d).expand(size, length, d), pad
        states = self.text(batch.input_ids[rows], batch.attention_mask[rows], batch.token_type_ids[rows])  # [p, L, d]
        tokens = self.text_missing.to(states.dtype).view(1, 1, d).expand(size, length, d).clone()
        tokens[rows] = states
        pad[rows] = batch.attention_mask[rows] == 0
        return tokens, pad

    def _image_stream(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Patch tokens for rows with an image; the placeholder for the rest."""
        size, patches, d = batch.size, self.num_patches, self.config.model.hidden
        rows = batch.image_present.nonzero().squeeze(1)  # [p]
        pad = torch.ones(size, patches, dtype=torch.bool, device=batch.pixels.device)
        pad[:, 0] = False
        if rows.numel() == 0:
            return self.image_missing.view(1, 1, d).expand(size, patches, d), pad
        states = self.image(batch.pixels[rows], batch.patch_mask[rows])  # [p, N, d]
        tokens = self.image_missing.to(states.dtype).view(1, 1, d).expand(size, patches, d).clone()
        tokens[rows] = states
        pad[rows] = False
        return tokens, pad

    # -- link prediction ---------------------------------------------------------------

    def score(self, product: Tensor, attribute: Tensor, values: Tensor) -> Tensor:
        """Plausibility of ``values`` [N, M] for (product [N, d], attribute [N]) -> [N, M]."""
        values = values.clamp(min=0)
        tails = self.knowledge.value_embedding(values)  # [N, M, d]
        return self.scorer(product, attribute, tails.to(product.dtype)) + self.value_bias[values].to(product.dtype)

    # -- persistence ---------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config, weights, tokenizer and id maps; :meth:`from_pretrained` reads them back."""
        from .io import save_model

        return save_model(self, Path(directory))

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> K3M:
        """Rebuild a model saved by :meth:`save_pretrained`, exactly.

        Raises:
            CheckpointError: missing, corrupt or foreign files.
        """
        from .io import load_model

        return load_model(cls, Path(directory), map_location)

    def dims_dict(self) -> dict:
        return asdict(self.dims)
