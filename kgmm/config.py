"""The pretraining config: dataclasses with defaults, loaded from YAML, hashed.

One section per concern, so a YAML file reads like the model: ``text``, ``image``,
``knowledge`` (the three encoders), ``model`` (interaction, aggregation, scoring),
``objectives`` (loss weights and masking), ``modality`` (dropout and noise during
training) and ``train`` (optimisation and bookkeeping). Components are named by strings
that :mod:`kgmm.registry` resolves, so an unknown name fails when the config is loaded,
not an hour into training.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


@dataclass
class TextConfig:
    """Text encoder: a BERT-family transformer over "title [SEP] description"."""

    encoder: str = "bert"  # "bert": built from this config; "pretrained": a local directory
    pretrained: str | None = None  # directory with config.json, weights and tokenizer files
    vocab_size: int = 3000  # WordPiece vocabulary trained on the catalog (encoder "bert")
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    intermediate: int = 128
    max_length: int = 64  # tokens, [CLS] and [SEP]s included
    dropout: float = 0.1


@dataclass
class ImageConfig:
    """Image encoder: a timm CNN whose last feature map becomes patch tokens."""

    backbone: str = "mobilenetv3_small_050"
    weights: str | None = None  # local .safetensors / .pth state dict for the backbone
    size: int = 128  # pixels per side after cropping
    augment: bool = True  # random resized crop, flip and colour jitter while training


@dataclass
class KnowledgeConfig:
    """Knowledge encoder: (attribute, value) tokens plus a relational GNN."""

    gnn: str = "rgcn"  # "rgcn", "transformer" or "none"
    gnn_layers: int = 2
    fanout: list[int] = field(default_factory=lambda: [8, 4])  # neighbours per hop
    max_pairs: int = 24  # (attribute, value) tokens per product
    behaviour: bool = False  # sample behaviour (product-product) edges as a seventh GNN edge kind


@dataclass
class ModelConfig:
    """Interaction, structure aggregation and link scoring."""

    hidden: int = 64
    heads: int = 2
    interaction_layers: int = 1
    fusion: str = "gated"  # "mean", "gated" or "gumbel"
    gumbel_tau: float = 1.0
    score: str = "distmult"  # "distmult", "transe", "rotate", "bilinear" or "mlp"
    dropout: float = 0.1
    extra_modalities: list[str] = field(default_factory=list)  # streams beyond K3M's three: "table", "video", "audio"
    evidence: bool = True  # category prior, value mentions and a lexical classifier in the link score (kgmm.model.evidence)


@dataclass
class ObjectiveConfig:
    """Loss weights (0 turns an objective off) and how each objective masks."""

    mlm: float = 1.0
    mom: float = 1.0
    lpm: float = 1.0
    mlm_probability: float = 0.15  # of text tokens; 80% [MASK], 10% random, 10% kept
    mom_probability: float = 0.25  # of image patches, hidden in pixels and in features
    mom_target: str = "pixels"  # "pixels": reconstruct the patch; "nce": classify it
    lpm_positives: int = 2  # facts held out of the input per product and batch
    lpm_negatives: int = 16  # same-attribute negatives per held-out fact
    lpm_all_values: bool = True  # 1-N: every value of the attribute (other true ones masked) instead of lpm_negatives samples
    lpm_deep: float = 1.0  # with model.evidence: weight of LPM on the deep score alone, beside the whole score (kgmm.objectives.lpm)
    behaviour_temperature: float = 0.1  # InfoNCE temperature of stage 1 (train.behaviour_steps)
    distill: float = 0.0  # MBSD self-distillation: fused teacher -> each modality alone (0: off)
    distill_temperature: float = 2.0  # softens teacher and student distributions
    contrastive: float = 0.0  # SCALE: InfoNCE between the modality views of a product (0: off)
    contrastive_temperature: float = 0.1
    importance_weighting: bool = False  # scale MLM / MOM / LPM by their modality's learned importance


@dataclass
class ModalityConfig:
    """Robustness training: drop or swap modalities at these per-product rates."""

    drop_text: float = 0.1
    drop_image: float = 0.1
    drop_knowledge: float = 0.05
    swap_title: float = 0.05  # title replaced by another product's
    swap_image: float = 0.05  # image replaced by another product's
    media: str | None = None  # CSV "product_id,modality,path" for the video / audio streams


@dataclass
class TrainConfig:
    """Optimisation, evaluation and bookkeeping."""

    seed: int = 0
    batch_size: int = 16  # products per device and micro-batch
    grad_accumulation: int = 1
    max_steps: int = 0  # optimizer steps; 0: sized by the catalog (train.epochs, at most train.auto_step_limit)
    epochs: float = 4.0  # passes over the products when max_steps is 0
    auto_step_limit: int = 600  # the most steps a catalog-sized budget takes (10 minutes on 2 CPU cores)
    lr: float = 1e-3
    evidence_lr_scale: float = 20.0  # the link score's evidence terms learn this many times faster (kgmm.model.evidence)
    weight_decay: float = 0.01
    warmup_steps: int = 20
    schedule: str = "cosine"  # "cosine", "linear" or "constant" after warm-up
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:N" or "mps"
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA), "bf16" or "fp32"
    num_workers: int = 0  # DataLoader worker processes
    cpu_threads: int = 0  # torch threads on a CPU; 0: half the cores (see distributed.py)
    log_every: int = 5
    eval_every: int = 0  # steps between validations; 0: twice per epoch
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    patience: int = 3  # evaluations without a better validation MRR before stopping; 0: never stop early
    val_fraction: float = 0.1  # of products, one held-out fact each (at least min_val when the catalog allows)
    min_val: int = 200
    max_val: int = 1000
    eval_batch_size: int = 64
    evidence_epochs: int = 10  # stage 0: passes of the link score's evidence terms alone over the training facts (0: off)
    evidence_facts: int = 100_000  # stage 0: at most this many training facts, an even sample beyond (0: all of them)
    evidence_category_dropout: float = 0.0  # stage 0: share of facts whose prior is not told the category (kgmm.training.evidence_stage)
    behaviour_steps: int = 0  # MBSD stage 1: contrastive steps on behaviour pairs before the objectives


SECTIONS: dict[str, type] = {
    "text": TextConfig,
    "image": ImageConfig,
    "knowledge": KnowledgeConfig,
    "model": ModelConfig,
    "objectives": ObjectiveConfig,
    "modality": ModalityConfig,
    "train": TrainConfig,
}

HASH_VERSION = 3
"""What :meth:`Config.hash` covers. Version 1 (kgmm 0.1 before this field) hashed every
field except a hand-kept list of later additions; version 2 hashes only what differs from
the defaults. Version 3 is version 2 after the defaults changed (``model.evidence`` and
``objectives.lpm_all_values`` on, the training budget sized by the catalog). Hashes carry
it as a prefix (``v3-...``), so a checkpoint whose hash was computed another way is recognised and refused with a clear message, never mistaken for a
config change (see :func:`hash_version_of`)."""

RUN_ONLY_FIELDS = {
    "train": {"max_steps", "epochs", "auto_step_limit", "log_every", "checkpoint_every", "keep_checkpoints", "num_workers", "cpu_threads",
              "device", "patience"}
}
"""Fields that change how long or where a run goes, not what it computes per step."""


@dataclass
class Config:
    """The whole pretraining config."""

    text: TextConfig = field(default_factory=TextConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objectives: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    modality: ModalityConfig = field(default_factory=ModalityConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, source: str = "config") -> Config:
        """Build a config from nested dicts; unknown sections or keys are errors."""
        data = data or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"{source}: unknown section {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
        sections = {name: _section(kind, data.get(name), f"{source}: {name}") for name, kind in SECTIONS.items()}
        config = cls(**sections)
        validate(config, source)
        return config

    def sized(self, num_products: int) -> Config:
        """This config with a catalog-sized budget resolved: ``train.max_steps`` 0 becomes
        ``train.epochs`` passes over ``num_products`` (at most ``train.auto_step_limit`` steps)
        and ``train.eval_every`` 0 twice per epoch. Why: a fixed 200 steps is three passes over
        a thousand products and a fraction of one over a million; early stopping on the
        validation MRR (``train.patience``) ends a run that stopped improving."""
        t = self.train
        per_epoch = max(1, math.ceil(num_products / (t.batch_size * t.grad_accumulation)))
        changes = {}
        if t.max_steps == 0:
            changes["max_steps"] = max(1, min(t.auto_step_limit, math.ceil(t.epochs * per_epoch)))
        if t.eval_every == 0:
            changes["eval_every"] = max(10, per_epoch // 2)
        return self.replace("train", **changes) if changes else self

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some fields of one section changed (validated)."""
        data = self.to_dict()
        data[section].update(changes)
        return Config.from_dict(data)

    def hash(self, training_only: bool = False) -> str:
        """``v2-`` and the SHA-256 of the fields that differ from their defaults.

        Only what differs from :class:`Config()` is hashed, so adding a field with a default
        changes no existing hash (old checkpoints still resume) without any list to keep.
        The flip side: changing a default changes the hash of every config that spells out
        the old value, so a default is changed only with a new :data:`HASH_VERSION`.
        ``training_only`` also leaves out the run-length fields (:data:`RUN_ONLY_FIELDS`):
        resuming compares that hash, so ``--max-steps`` can extend a run while any change
        to what a step computes is refused.
        """
        data, defaults = self.to_dict(), Config().to_dict()
        differs = {
            section: {name: value for name, value in values.items() if value != defaults[section][name]}
            for section, values in data.items()
        }
        if training_only:
            for section, names in RUN_ONLY_FIELDS.items():
                for name in names:
                    differs[section].pop(name, None)
        differs = {section: values for section, values in differs.items() if values}
        digest = hashlib.sha256(json.dumps(differs, sort_keys=True).encode()).hexdigest()
        return f"v{HASH_VERSION}-{digest}"


def hash_version_of(config_hash: str) -> int:
    """The :data:`HASH_VERSION` a hash from :meth:`Config.hash` was made with (1: a bare digest)."""
    version, sep, _ = config_hash.partition("-")
    if sep and version[:1] == "v" and version[1:].isdigit():
        return int(version[1:])
    return 1


@functools.cache
def field_types(kind: type) -> dict[str, Any]:
    """The real type of each field of a config section (its annotations are strings here)."""
    return typing.get_type_hints(kind)


def _section(kind: type, data: Any, where: str) -> Any:
    if data is None:
        return kind()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key {', '.join(unknown)}; known: {', '.join(known)}")
    values = {}
    hints = field_types(kind)
    for name, value in data.items():
        values[name] = _coerce(value, hints[name], f"{where}.{name}")
    return kind(**values)


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Check ``value`` against a field's type ``kind`` (bool, int, float, str, list[int],
    list[str], or one of those ``| None``) and return it in that type."""
    optional = typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind)
    if optional:
        (kind,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: a value is required")
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind == list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of names, got {value!r}")
        return list(value)
    if kind == list[int]:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{where}: expected a list of integers, got {value!r}")
        return list(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: config fields of type {kind!r} are not supported")


def validate(config: Config, source: str = "config") -> None:
    """Range checks and component names (so a typo fails before any work)."""
    from . import registry

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {message}")

    registry.TEXT_ENCODERS.check(config.text.encoder)
    registry.GNNS.check(config.knowledge.gnn)
    registry.FUSIONS.check(config.model.fusion)
    registry.SCORES.check(config.model.score)
    registry.MOM_TARGETS.check(config.objectives.mom_target)
    registry.check_image_backbone(config.image.backbone)
    need(config.text.encoder != "pretrained" or bool(config.text.pretrained), "text.encoder 'pretrained' needs text.pretrained (a local directory)")
    t, m, o, tr = config.text, config.model, config.objectives, config.train
    for section, kind in SECTIONS.items():  # nan or inf passes no range check below as intended
        for name, annotation in field_types(kind).items():
            value = getattr(getattr(config, section), name)
            if annotation is float and isinstance(value, float):
                need(math.isfinite(value), f"{section}.{name} must be a finite number, got {value}")

    def at_least(low: float, *keys: str) -> None:
        for key in keys:
            section, name = key.split(".")
            value = getattr(getattr(config, section), name)
            need(value >= low, f"{key} must be >= {low:g}, got {value}")

    at_least(1, "text.hidden", "text.heads", "text.layers", "text.intermediate", "model.hidden", "model.heads", "knowledge.max_pairs")
    at_least(0, "model.interaction_layers", "knowledge.gnn_layers", "train.weight_decay", "train.grad_clip", "train.patience", "train.max_val")
    for key in ("text.dropout", "model.dropout"):
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        need(0 <= value < 1, f"{key} must lie in [0, 1), got {value}")
    need(m.gumbel_tau > 0, f"model.gumbel_tau must be > 0, got {m.gumbel_tau}")
    need(t.hidden % t.heads == 0, f"text.hidden ({t.hidden}) must be a multiple of text.heads ({t.heads})")
    need(m.hidden % m.heads == 0, f"model.hidden ({m.hidden}) must be a multiple of model.heads ({m.heads})")
    need(m.score != "rotate" or m.hidden % 2 == 0, "model.score 'rotate' needs an even model.hidden")
    need(t.max_length >= 8, "text.max_length must be at least 8")
    need(t.vocab_size >= 100, "text.vocab_size must be at least 100")
    need(config.image.size >= 32, "image.size must be at least 32")
    need(len(config.knowledge.fanout) >= 1 and all(k != 0 for k in config.knowledge.fanout), "knowledge.fanout needs at least one hop, no zeros")
    for name in ("mlm", "mom", "lpm"):
        need(getattr(o, name) >= 0, f"objectives.{name} must be >= 0")
    need(o.mlm + o.mom + o.lpm > 0, "at least one objective needs a positive weight")
    need(0 < o.mlm_probability < 1 and 0 < o.mom_probability < 1, "masking probabilities must lie in (0, 1)")
    need(o.lpm_negatives >= 1 and o.lpm_positives >= 1, "objectives.lpm_positives and lpm_negatives must be >= 1")
    need(o.distill >= 0 and o.contrastive >= 0, "objectives.distill and contrastive must be >= 0")
    need(o.distill_temperature > 0 and o.contrastive_temperature > 0, "objectives.distill_temperature and contrastive_temperature must be > 0")
    need(o.behaviour_temperature > 0 and config.train.behaviour_steps >= 0, "objectives.behaviour_temperature must be > 0 and train.behaviour_steps >= 0")
    for name in m.extra_modalities:
        registry.MODALITIES.check(name)
        need(name not in ("text", "image"), f"model.extra_modalities: {name!r} is read by every model; list only extra ones")
    need(len(set(m.extra_modalities)) == len(m.extra_modalities), "model.extra_modalities names a modality twice")
    need(
        not {"video", "audio"} & set(m.extra_modalities) or bool(config.modality.media),
        "model.extra_modalities 'video' / 'audio' need modality.media (a CSV of product_id,modality,path)",
    )
    for f in fields(ModalityConfig):
        if field_types(ModalityConfig)[f.name] is not float:
            continue
        rate = getattr(config.modality, f.name)
        need(0 <= rate < 1, f"modality.{f.name} must lie in [0, 1)")
    need(tr.batch_size >= 1 and tr.grad_accumulation >= 1, "train.batch_size and grad_accumulation must be >= 1")
    need(tr.max_steps >= 0 and tr.eval_every >= 0, "train.max_steps and eval_every must be >= 0 (0: sized by the catalog)")
    need(0 <= tr.evidence_category_dropout <= 1, "train.evidence_category_dropout must be in [0, 1]")
    need(tr.epochs > 0 and tr.auto_step_limit >= 1 and tr.evidence_epochs >= 0 and tr.evidence_facts >= 0,
         "train.epochs must be > 0, train.auto_step_limit >= 1, train.evidence_epochs >= 0 and train.evidence_facts >= 0")
    need(0 <= tr.min_val <= tr.max_val, "train.min_val must lie in [0, train.max_val]")
    need(tr.lr > 0 and tr.warmup_steps >= 0 and tr.evidence_lr_scale > 0, "train.lr and evidence_lr_scale must be > 0 and warmup_steps >= 0")
    need(tr.schedule in ("cosine", "linear", "constant"), f"train.schedule {tr.schedule!r}: known: cosine, linear, constant")
    need(tr.precision in ("auto", "bf16", "fp32"), f"train.precision {tr.precision!r}: known: auto, bf16, fp32")
    need(0 <= tr.val_fraction < 1, "train.val_fraction must lie in [0, 1)")
    need(tr.num_workers >= 0 and tr.cpu_threads >= 0, "train.num_workers and cpu_threads must be >= 0")
    need(min(tr.log_every, tr.checkpoint_every, tr.keep_checkpoints, tr.eval_batch_size) >= 1, "train.log_every, checkpoint_every, keep_checkpoints and eval_batch_size must be >= 1")


def load_config(path: str | Path | None) -> Config:
    """Read a YAML config; ``None`` gives the defaults (the tiny CPU model)."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return Config.from_dict(data, source=str(path))


def save_config(config: Config, path: str | Path) -> None:
    """Write a config as YAML (loadable by :func:`load_config`)."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
