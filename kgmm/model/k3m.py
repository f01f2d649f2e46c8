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

Beyond K3M, each off by default (off: K3M's parameters and outputs, bit for bit):
``model.extra_modalities`` adds streams through :mod:`kgmm.modalities` (table,
video, audio); ``forward(batch, modalities=("text",))`` reads one modality alone (the
others shown as absent). The forward computes the model only; objectives
(:mod:`kgmm.objectives`) read its output, and the ones that need more ask for it through
:meth:`K3M.branch` (one stream alone, the distillation students) and
:meth:`K3M.stream_vector`, and add their own parameters (``make_head``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..config import Config
from ..data.batch import Batch
from ..data.evidence import NAME as EVIDENCE
from ..modalities import CORE
from ..modalities.image import PIXEL_PATCH
from ..objectives import IGNORE, build_objectives
from ..registry import FUSIONS, GNNS, MODALITIES, SCORES
from ..schema import num_edge_kinds
from .aggregation import ModalityPooling, StructureAggregation
from .dims import ModelDims
from .evidence import Evidence, ProductEvidence, evidence_of
from .fusion import InteractionLayer
from .io import load_model, save_model
from .knowledge import KnowledgeEncoder

STREAMS = (*CORE, "knowledge")
"""K3M's own streams; the configured extra modalities follow them."""
HEADS = ("mlm", "mom", "lpm")


@dataclass
class K3MOutput:
    """What one forward pass produces (heads only where their targets exist)."""

    product: Tensor  # [B, d] after structure aggregation: the LPM head
    fused: Tensor  # [B, d] before it
    modality_weights: Tensor  # [B, M] importance of text, image, knowledge (, extras) (0 if absent)
    mlm_logits: Tensor | None  # [M, vocab] at the masked text positions, row-major order
    mom_prediction: Tensor | None  # [Q, 48] at the masked patches
    mom_target: Tensor | None  # [Q, 48] their normalised pixels
    lpm_scores: Tensor | None  # [T, 1+k] held-out fact, then its negatives
    lpm_deep: Tensor | None = None  # [T, 1+k] the same without the evidence terms (model.evidence), for objectives.lpm_deep
    present: Tensor | None = None  # [B, M] bool, which streams each row read (M = 3 + extra modalities)
    encoded: tuple | None = None  # training forward of every stream: (streams, present, pairs, kv_mask) before interaction
    evidence: ProductEvidence | None = None  # what the link score's evidence terms read (model.evidence)

    def products(self) -> EncodedProducts:
        """The product vectors with their evidence: what :meth:`K3M.score` reads."""
        return EncodedProducts(self.product.float(), self.evidence)


@dataclass
class EncodedProducts:
    """Product vectors [B, d] and, row-aligned, their evidence (None: the model has none)."""

    vector: Tensor
    evidence: ProductEvidence | None = None

    def __len__(self) -> int:
        return int(self.vector.shape[0])

    def __getitem__(self, row: int) -> EncodedProducts:
        return self.select(slice(row, row + 1))

    def select(self, rows: Tensor | slice) -> EncodedProducts:
        """The rows ``rows`` (an index tensor or a slice), vectors and evidence alike."""
        return EncodedProducts(self.vector[rows], self.evidence.select(rows) if self.evidence is not None else None)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @staticmethod
    def cat(parts: list[EncodedProducts]) -> EncodedProducts:
        evidence = [p.evidence for p in parts]
        return EncodedProducts(torch.cat([p.vector for p in parts]),
                               ProductEvidence.cat(evidence) if evidence and evidence[0] is not None else None)


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
        shared = {"transformer": text_transformer, "dims": dims}  # what a modality's encoder may build on
        self.text = MODALITIES.get("text").encoder(d, config, shared)
        self.image = MODALITIES.get("image").encoder(d, config, shared)
        shared.update(text=self.text, image=self.image)
        kinds = num_edge_kinds(config.knowledge.behaviour)
        gnn = GNNS.get(config.knowledge.gnn)(d, config.knowledge.gnn_layers, m.heads, m.dropout, kinds=kinds)
        self.knowledge = KnowledgeEncoder(dims.num_attributes, dims.num_values, dims.num_categories, d, gnn, kinds)
        self.text_missing = nn.Parameter(torch.randn(d) * 0.02)  # placeholder token of an absent text
        self.image_missing = nn.Parameter(torch.randn(d) * 0.02)  # ... of an absent image
        # further modalities (model.extra_modalities): one encoder each, sharing the backbones above
        self.extras = nn.ModuleDict({name: MODALITIES.get(name).encoder(d, config, shared) for name in m.extra_modalities})
        fusion = FUSIONS.get(m.fusion)
        streams = STREAMS + tuple(m.extra_modalities)
        self.interaction = nn.ModuleList(
            InteractionLayer(d, m.heads, m.dropout, fusion, m.gumbel_tau, streams) for _ in range(m.interaction_layers)
        )
        self.pooling = ModalityPooling(d)
        self.structure = StructureAggregation(d, m.heads, m.dropout)
        self.scorer = SCORES.get(m.score)(dims.num_attributes, d)
        self.value_bias = nn.Parameter(torch.zeros(max(dims.num_values, 1)))  # how common a value is, a prior
        self.evidence = Evidence(dims.num_attributes, dims.num_values, dims.num_categories) if m.evidence else None
        self.mlm_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d), nn.Linear(d, dims.vocab_size))
        self.mom_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d), nn.Linear(d, 3 * PIXEL_PATCH**2))
        for objective in build_objectives(config):  # parameters of active objectives (none for K3M's three)
            head = objective.make_head(self)
            if head is not None:
                self.add_module(objective.head_name, head)

    @property
    def num_patches(self) -> int:
        return self.image.num_patches

    # -- forward -----------------------------------------------------------------

    @property
    def stream_names(self) -> tuple[str, ...]:
        """K3M's three streams, then the configured extra modalities."""
        return STREAMS + tuple(self.extras)

    def forward(self, batch: Batch, heads: bool | Collection[str] = True, modalities: Sequence[str] | None = None) -> K3MOutput:
        """Encode a batch and compute the heads asked for, where the batch has their targets.

        ``heads``: True for every head (:data:`HEADS`), False for none (evaluation,
        completion), or the names of some. ``modalities`` reads only those streams (e.g.
        ``("text",)``: each modality alone); the others are shown as absent, exactly as a
        product that lacks them. ``None`` reads all; a training forward of all streams keeps
        the encoded streams in ``output.encoded`` for the objectives.
        """
        read = self.stream_names if modalities is None else tuple(modalities)
        unknown = sorted(set(read) - set(self.stream_names))
        if unknown:
            raise ValueError(f"unknown modality {', '.join(unknown)}; this model reads {', '.join(self.stream_names)}")
        wanted = frozenset(HEADS if heads is True else heads or ())
        streams, present, pairs, kv_mask = self._encode(batch, read)
        out = self._decode(batch, streams, present, pairs, kv_mask, wanted, self._evidence(batch, read))
        if self.training and modalities is None:
            out.encoded = (streams, present, pairs, kv_mask)
        return out

    def branch(self, batch: Batch, output: K3MOutput, name: str) -> K3MOutput:
        """Stream ``name`` alone, from a training output's already encoded streams (every
        head): the same as ``forward(batch, modalities=(name,))`` without re-encoding."""
        return self._decode(batch, *self._alone(batch, name, *output.encoded), frozenset(HEADS), self._evidence(batch, (name,)))

    def stream_vector(self, name: str, tokens: Tensor, pad: Tensor) -> Tensor:
        """A stream's pooled vector [B, d] (see :func:`pooled_stream`)."""
        return pooled_stream(name, tokens, pad)

    def _encode(self, batch: Batch, read: Sequence[str]) -> tuple[dict, dict, Tensor, Tensor]:
        """Each stream's tokens before interaction: (streams, present [B] per stream, pairs, kv_mask).

        Every modality's stream comes from its encoder (:mod:`kgmm.modalities`); an unread
        stream is its placeholder (:meth:`_placeholder`) and counts as absent.
        """
        size = batch.size
        streams: dict[str, tuple[Tensor, Tensor]] = {}
        present: dict[str, Tensor] = {}
        none = torch.zeros(size, dtype=torch.bool, device=batch.text_present.device)

        def encode(name: str) -> None:
            encoder = self.stream_encoder(name)
            streams[name] = encoder.stream(batch, self.missing_token(name)) if name in read else self._placeholder(name, size)
            present[name] = encoder.present(batch) if name in read else none

        for name in CORE:
            encode(name)  # [B, L, d] text, [B, N, d] image, with [B, L] / [B, N] padding
        pairs = self.knowledge.pair_tokens(batch.kv_attribute, batch.kv_value)  # [B, K, d]
        kv_mask = batch.kv_mask if "knowledge" in read else torch.zeros_like(batch.kv_mask)
        for name in self.extras:
            encode(name)
        if "knowledge" in read:
            graph = self.knowledge.graph_tokens(
                batch.node_kind, batch.node_key, batch.node_attribute, batch.edge_index, batch.edge_kind, batch.edge_attribute, batch.size
            )  # [B, d]
            knowledge = torch.cat([graph.unsqueeze(1).to(pairs.dtype), pairs], dim=1)  # [B, 1+K, d]
            knowledge_pad = torch.cat([batch.kv_mask.new_zeros(batch.size, 1), ~batch.kv_mask], dim=1)  # [B, 1+K]
            streams["knowledge"] = (knowledge, knowledge_pad)
            present["knowledge"] = torch.ones_like(batch.text_present)
        else:  # absent; still the product vector of rows that read nothing else, so never NaN
            streams["knowledge"] = self._placeholder("knowledge", size)
            present["knowledge"] = ~torch.stack([p for n, p in present.items() if n != "knowledge"], 1).any(1)
        return {name: streams[name] for name in self.stream_names}, present, pairs, kv_mask

    def _evidence(self, batch: Batch, read: Sequence[str]) -> ProductEvidence | None:
        """What the evidence terms read of the batch's products (text terms only when text is read,
        the category only when knowledge is)."""
        if self.evidence is None or EVIDENCE not in batch.extra:
            return None
        return evidence_of(batch.extra[EVIDENCE], batch.node_key[: batch.size], "text" in read, "knowledge" in read)

    def stream_encoder(self, name: str) -> nn.Module:
        """The encoder of modality ``name`` (``text``, ``image`` or an extra one)."""
        return {"text": self.text, "image": self.image}.get(name) or self.extras[name]

    def missing_token(self, name: str) -> Tensor:
        """The learned [d] token an absent modality ``name`` shows the other streams."""
        token = {"text": self.text_missing, "image": self.image_missing}.get(name)
        return token if token is not None else self.extras[name].missing

    def _alone(self, batch: Batch, name: str, streams: dict, present: dict, pairs: Tensor, kv_mask: Tensor):
        """The inputs of stream ``name`` alone, from already encoded streams (a distillation
        student): the same as ``forward(batch, modalities=(name,))`` without re-encoding."""
        size = batch.size
        alone = {n: s if n == name else self._placeholder(n, size) for n, s in streams.items()}
        flags = {n: p if n == name else torch.zeros_like(p) for n, p in present.items()}
        if name != "knowledge":
            flags["knowledge"] = ~flags[name]
            kv_mask = torch.zeros_like(kv_mask)
        return alone, flags, pairs, kv_mask

    def _placeholder(self, name: str, size: int) -> tuple[Tensor, Tensor]:
        """What an absent stream shows the others: one learned token [B, 1, d] (pad [B, 1] False).

        Knowledge's is the graph token of an empty subgraph without category: what the
        model already sees for a product whose every fact was dropped.
        """
        d = self.config.model.hidden
        device = self.text_missing.device
        pad = torch.zeros(size, 1, dtype=torch.bool, device=device)
        if name == "knowledge":
            empty = torch.zeros(size, dtype=torch.long, device=device)
            none = torch.zeros(0, dtype=torch.long, device=device)
            graph = self.knowledge.graph_tokens(empty, empty - 1, empty - 1, none.view(2, 0), none, none, size)  # [B, d]
            return graph.unsqueeze(1), pad
        return self.missing_token(name).view(1, 1, d).expand(size, 1, d), pad

    def _decode(self, batch: Batch, streams: dict, present: dict, pairs: Tensor, kv_mask: Tensor, heads: frozenset,
                evidence: ProductEvidence | None = None) -> K3MOutput:
        """Interaction, modality pooling, structure aggregation and the heads."""
        for layer in self.interaction:
            streams = layer(streams)
        text, image = streams["text"][0], streams["image"][0]
        pooled = torch.stack([pooled_stream(name, *streams[name]) for name in self.stream_names], dim=1)  # [B, M, d]
        flags = torch.stack([present[name] for name in self.stream_names], dim=1)  # [B, M]
        fused, weights = self.pooling(pooled, flags)  # [B, d], [B, M]
        product = self.structure(fused, pairs, kv_mask)  # [B, d]

        mlm_logits = mom_prediction = mom_target = lpm_scores = lpm_deep = rows = None
        if "mlm" in heads:
            selected = (batch.mlm_labels != IGNORE) & present["text"].unsqueeze(1)  # [B, L]; only rows with text have labels
            if selected.any():
                mlm_logits = self.mlm_head(text[selected])  # [M, vocab]
        if "mom" in heads and batch.patch_mask.any() and present["image"].any():
            rows = batch.image_present.nonzero().squeeze(1)
            masked = batch.patch_mask[rows]  # [p, N]
            mom_prediction = self.mom_head(image[rows][masked])  # [Q, 48]
            mom_target = self.image.patch_pixels(batch.pixels[rows])[masked]  # [Q, 48]
        if "lpm" in heads and batch.lpm_row.numel():  # scored inside forward, so DDP sees the scorer's use
            candidates = torch.cat([batch.lpm_value.unsqueeze(1), batch.lpm_negatives], dim=1)  # [T, 1+k]
            rows = evidence.select(batch.lpm_row) if evidence is not None else None
            lpm_scores, lpm_deep = self.score(product[batch.lpm_row], batch.lpm_attribute, candidates, rows, exclude=batch.lpm_value,
                                              parts=True)
        return K3MOutput(product, fused, weights, mlm_logits, mom_prediction, mom_target, lpm_scores,
                         lpm_deep=lpm_deep if "lpm" in heads and rows is not None else None, present=flags, evidence=evidence)

    # -- link prediction ---------------------------------------------------------------

    def score(self, product: Tensor, attribute: Tensor, values: Tensor, evidence: ProductEvidence | None = None,
              exclude: Tensor | None = None, parts: bool = False, check: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Plausibility of ``values`` [N, M] for (product [N, d], attribute [N]) -> [N, M]; with
        ``evidence`` (the products' rows of :attr:`K3MOutput.evidence`) its terms are added
        (``exclude``: the training facts being scored, left out of the category prior), every
        part scaled by its row of ``evidence.blend`` (:func:`kgmm.training.blend.fit_blend`). ``parts``:
        also the deep score alone (the score function plus the value bias), what
        ``objectives.lpm_deep`` trains. ``check``: score catalog values the model was trained
        on with the blend's check row (:data:`kgmm.model.evidence.BLEND_ROWS`)."""
        if evidence is None or self.evidence is None:
            scores = self._deep(product, attribute, values).sum(-1)
            return (scores, scores) if parts else scores
        memorising = not check or self.evidence.check_reads_products()  # else the check row scales them by 0: not computed
        terms = self.score_terms(product, attribute, values, evidence, exclude, memorising)  # [N, M, len(BLEND)]
        scores = (terms * self.evidence.blend_for(evidence.text, check).unsqueeze(1).to(terms.dtype)).sum(-1)
        return (scores, terms[..., 0] + terms[..., 1]) if parts else scores

    def score_terms(self, product: Tensor, attribute: Tensor, values: Tensor, evidence: ProductEvidence,
                    exclude: Tensor | None = None, memorising: bool = True) -> Tensor:
        """The link score's parts [N, M, len(BLEND)] before blending (model.evidence only): the
        deep score, the value bias, each evidence feature's weighted term, the lexical score;
        without ``memorising`` the deep score and the lexical score are 0, not computed."""
        deep = self._deep(product, attribute, values, memorising)
        features = self.evidence.features(evidence, attribute, values, exclude)
        evidence_terms = self.evidence.parts(features, evidence, attribute, values, lexical=memorising)
        return torch.cat([deep, evidence_terms.to(deep.dtype)], -1)

    def _deep(self, product: Tensor, attribute: Tensor, values: Tensor, score_function: bool = True) -> Tensor:
        """The score function's and the value bias's parts [N, M, 2] (the first two of :data:`BLEND`;
        without ``score_function`` its part is 0)."""
        values = values.clamp(min=0)
        bias = self.value_bias[values].to(product.dtype)
        if not score_function:
            return torch.stack([torch.zeros_like(bias), bias], -1)
        deep = self.scorer(product, attribute, self.knowledge.value_embedding(values).to(product.dtype))
        return torch.stack([deep, bias.to(deep.dtype)], -1)

    # -- persistence ---------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config, weights, tokenizer and id maps; :meth:`from_pretrained` reads them back."""
        return save_model(self, Path(directory))

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> K3M:
        """Rebuild a model saved by :meth:`save_pretrained`, exactly, in eval mode (as
        ``transformers`` does: call ``.train()`` to fine-tune it).

        Raises:
            CheckpointError: missing, corrupt or foreign files.
        """
        return load_model(cls, Path(directory), map_location).eval()

    def dims_dict(self) -> dict:
        return asdict(self.dims)


def pooled_stream(name: str, tokens: Tensor, pad: Tensor) -> Tensor:
    """A stream's vector [B, d]: the first token of text ([CLS]) and knowledge (the graph
    token), the mean of the real tokens of the others (image patches, frames, ...)."""
    if name in ("text", "knowledge"):
        return tokens[:, 0]
    keep = (~pad).unsqueeze(-1).to(tokens.dtype)  # [B, T, 1]
    return (tokens * keep).sum(1) / keep.sum(1)
