"""The evaluation protocol, in the spirit of K3M: every model on the same splits, in one run.

1. Hold out a seeded share of each attribute's triples (test, and validation for model
   selection and calibration); every model trains on the rest (:mod:`.splits`).
2. Train the full K3M and its variants (text only, image only, without knowledge), the
   KGE baselines, the majority-value rule and the text classifiers (:mod:`.tfidf`) on that
   training graph.
3. Rank the test triples (filtered MRR, Hits@1/3/10) and classify the probe-test products'
   top-level category with a linear probe on product vectors; then damage the products'
   modalities (missing or swapped text, photo, both) at each ratio and measure again.
   A model that does not read the damaged modality gets the clean numbers (it cannot
   notice); KGE models and the rule read neither text nor photos; the text classifiers
   read the damaged text.
4. Fit a temperature on the validation triples and measure calibration on the test
   triples (:mod:`kgmm.ranking.calibration`); the temperature is saved next to each
   K3M model, so ``kgmm complete --model DIR/models/k3m/best`` uses it.

The result is one JSON-serialisable dict (see :mod:`.report` for its tables and plots).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import torch

from graph_store import Snapshot

from ..version import __version__
from ..ranking import RankingTask, encode_products, fact_scores
from ..config import Config
from ..data.split import training_snapshot
from ..text import train_wordpiece
from ..training.distributed import choose_device, default_cpu_threads
from .ablation import AblationRow
from ..ranking.rule import MajorityPerCategory
from .calibrated import calibration_entry
from .corruption import CONDITIONS, corrupt, touches
from .k3m_variants import VARIANTS, TrainedVariant, train_variant
from .kge import KGE_MODELS, KGEConfig, train_kge
from .noise import evaluate_noise
from .probe import LinearProbe, ProbeSplit, probe_split
from .splits import HeldOutSplit, held_out_split
from .tfidf import READS as TEXT_READS
from .tfidf import evaluate_text_baseline

RATIOS = (0.0, 0.2, 0.5, 0.8, 1.0)
READS = {"k3m": "text, image, knowledge", "k3m-no-knowledge": "text, image", "text-only": "text", "image-only": "image",
         "majority": "category, knowledge", "tfidf": TEXT_READS, "frozen-text": TEXT_READS}
TARGET_RATIO = 1.1
"""The default model's Hits@1 must reach this multiple of the best baseline of the same run."""


class Progress(Protocol):
    """What the protocol tells its caller while it runs."""

    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, completed: int) -> None: ...


class _Quiet:
    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, completed: int) -> None: ...


class _TrainerProgress:
    """Adapts the trainer's callbacks to :class:`Progress`."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def on_start(self, start_step: int, max_steps: int) -> None: ...

    def on_step(self, step: int) -> None:
        self.progress.advance(step)

    def on_log(self, record: dict) -> None: ...

    def on_eval(self, record: dict) -> None: ...


@dataclass
class ProtocolOptions:
    """Everything that defines an evaluation run.

    Attributes:
        config: the K3M config, the same for every variant (``train.max_steps`` is the budget).
        test_fraction, val_fraction: shares of each attribute's triples held out.
        probe_fraction: share of each category's products the probe is scored on.
        seed: seeds the splits, the damage and (through ``config.train.seed``) training.
        ratios: shares of damaged products.
        conditions: kinds of damage (:data:`kgmm.evaluation.corruption.CONDITIONS`).
        variants: K3M variants to train (keys of :data:`VARIANTS`; ``k3m`` is the full model).
        kge_models: KGE baselines (:data:`KGE_MODELS`).
        kge: their training settings.
        majority: include the majority-value-per-category rule.
        text_baselines: per-attribute text classifiers (:data:`kgmm.evaluation.tfidf.TEXT_BASELINES`;
            ``frozen-text`` needs ``config.text.pretrained``).
        ablation: full-K3M rows trained with config changes (:mod:`.ablation`), after the variants.
        noise: share of catalog facts replaced in a copy of the graph to measure the noise
            flags (:mod:`.noise`; 0: off); needs the ``k3m`` variant.
    """

    config: Config = field(default_factory=Config)
    test_fraction: float = 0.1
    val_fraction: float = 0.1
    probe_fraction: float = 0.3
    seed: int = 0
    ratios: tuple[float, ...] = RATIOS
    conditions: tuple[str, ...] = CONDITIONS
    variants: tuple[str, ...] = tuple(VARIANTS)
    kge_models: tuple[str, ...] = KGE_MODELS
    kge: KGEConfig = field(default_factory=KGEConfig)
    majority: bool = True
    text_baselines: tuple[str, ...] = ("tfidf",)
    ablation: tuple[AblationRow, ...] = ()
    noise: float = 0.0

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["config"] = self.config.to_dict()
        return data


@dataclass
class Prepared:
    """The splits and tables every model shares (what the leak test inspects)."""

    snapshot: Snapshot
    split: HeldOutSplit
    train_snapshot: Snapshot
    test: RankingTask
    val: RankingTask
    probe: ProbeSplit


def prepare(snapshot: Snapshot, options: ProtocolOptions) -> Prepared:
    """Split once; every model reads ``train_snapshot`` and is scored on ``test``."""
    split = held_out_split(snapshot, options.test_fraction, options.val_fraction, options.seed)
    return Prepared(
        snapshot=snapshot,
        split=split,
        train_snapshot=training_snapshot(snapshot, split.train_mask),
        test=RankingTask.build(snapshot, split.test),
        val=RankingTask.build(snapshot, split.val),
        probe=probe_split(snapshot, options.probe_fraction, options.seed),
    )


def run_protocol(snapshot: Snapshot, options: ProtocolOptions, out_dir: Path, progress: Progress | None = None) -> dict:
    """Run the whole protocol on ``snapshot``; models go to ``out_dir/models``. Returns the report."""
    progress = progress or _Quiet()
    start = time.perf_counter()
    threads = torch.get_num_threads()
    options = dataclasses.replace(options, config=options.config.sized(snapshot.num_products))
    config = options.config
    device = choose_device(config.train.device)
    if device.type == "cpu":
        torch.set_num_threads(config.train.cpu_threads or default_cpu_threads())
    try:
        prepared = prepare(snapshot, options)
        if len(prepared.test) == 0:
            raise ValueError("no triple could be held out (attributes need two values and values two triples)")
        report = _header(prepared, options)
        models: dict[str, dict] = {}
        tokenizer = train_wordpiece([t for pair in zip(snapshot.titles, snapshot.descriptions) for t in pair], config.text.vocab_size)
        for name in options.variants:
            models[name] = _k3m(name, prepared, options, tokenizer, out_dir, device, progress)
        for row in options.ablation:
            models[row.name] = _k3m("k3m", prepared, options, tokenizer, out_dir, device, progress, row.apply(options.config), row.name)
            models[row.name]["changes"] = row.describe()
        for name in options.kge_models:
            models[name] = _kge(name, prepared, options, progress)
        if options.majority:
            progress.phase("majority rule")
            rule = MajorityPerCategory(prepared.train_snapshot)
            clean = prepared.test.metrics(rule.scores(prepared.test)) | {"accuracy": None}
            models["majority"] = _flat("rule", READS["majority"], clean, options, {"seconds": 0.0})
        for name in options.text_baselines:
            progress.phase(f"training {name}", 1 + len(options.conditions) * len(options.ratios))
            models[name] = evaluate_text_baseline(
                name, snapshot, prepared.train_snapshot, prepared.val, prepared.test, conditions=options.conditions, ratios=options.ratios,
                seed=options.seed, split_seed=prepared.split.seed, pretrained=config.text.pretrained, max_length=config.text.max_length,
                advance=progress.advance)
        if options.noise > 0 and "k3m" in options.variants:
            progress.phase("training k3m on planted noise", config.train.max_steps)
            report["noise"] = evaluate_noise(snapshot, config, tokenizer, out_dir, options.noise, options.seed, [_TrainerProgress(progress)])
        report["models"] = models
        report["targets"] = targets(models)
        report["seconds"] = round(time.perf_counter() - start, 1)
        return report
    finally:
        torch.set_num_threads(threads)


def _header(prepared: Prepared, options: ProtocolOptions) -> dict:
    s = prepared.snapshot
    return {
        "kgmm_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "graph": {"products": s.num_products, "triples": s.num_edges, "attributes": len(s.attributes), "values": len(s.values),
                  "categories": len(s.categories), "snapshot_hash": s.content_hash()},
        "split": prepared.split.describe(s) | {"probe_train": int(prepared.probe.train.size), "probe_test": int(prepared.probe.test.size),
                                               "probe_classes": prepared.probe.classes},
        "options": options.to_json(),
        "random": prepared.test.random_metrics(),
    }


def _flat(kind: str, reads: str, clean: dict, options: ProtocolOptions, train: dict) -> dict:
    """A model that reads neither text nor photos: the same numbers under every damage."""
    return {"kind": kind, "reads": reads, "train": train, "clean": clean,
            "conditions": {c: {str(r): clean for r in options.ratios} for c in options.conditions}}


def _k3m(name: str, prepared: Prepared, options: ProtocolOptions, tokenizer, out_dir: Path, device: torch.device,
         progress: Progress, config: Config | None = None, label: str | None = None) -> dict:
    """Train variant ``name`` (with ``config``, default the run's) and measure it; ``label``
    names an ablation row (its models go to ``models/<slug of label>``)."""
    config = config or options.config
    label = label or name
    progress.phase(f"training {label}", config.train.max_steps)
    trained = train_variant(name, prepared.train_snapshot, prepared.snapshot, tokenizer, config, out_dir / "models" / _slug(label),
                            prepared.val, [_TrainerProgress(progress)])
    batch = config.train.eval_batch_size
    progress.phase(f"evaluating {name}", 1 + len(options.conditions) * len(options.ratios))
    probe_data = trained.data.with_view(dataclasses.replace(trained.view, hide_category=True))
    probe = LinearProbe().fit(encode_products(trained.model, probe_data, prepared.probe.train.tolist(), device, batch).vector,
                              torch.from_numpy(prepared.probe.labels[prepared.probe.train]))
    test_labels = torch.from_numpy(prepared.probe.labels[prepared.probe.test])

    def measure(data, probe_view_data) -> tuple[dict, list]:
        scores = fact_scores(trained.model, data, prepared.test, device, batch)
        vectors = encode_products(trained.model, probe_view_data, prepared.probe.test.tolist(), device, batch).vector
        return prepared.test.metrics(scores) | {"accuracy": probe.accuracy(vectors, test_labels)}, scores

    clean, clean_scores = measure(trained.data, probe_data)
    done = 1
    progress.advance(done)
    conditions: dict[str, dict] = {}
    for condition in options.conditions:
        conditions[condition] = {}
        for ratio in options.ratios:
            if ratio <= 0 or not touches(trained.view, condition):
                conditions[condition][str(ratio)] = clean
            else:
                damaged = corrupt(trained.data, condition, ratio, options.seed)
                conditions[condition][str(ratio)] = measure(damaged, damaged.with_view(probe_data.view))[0]
            done += 1
            progress.advance(done)
    calibration = _calibration(trained, prepared, clean_scores, device, batch)
    streams = tuple(getattr(trained.model, "stream_names", ()))
    alone = {}
    if name == "k3m" and len(streams) > 1:  # each modality alone: what MBSD's distillation is meant to raise
        alone = {stream: prepared.test.metrics(fact_scores(trained.model, trained.data, prepared.test, device, batch, modalities=(stream,)))
                 for stream in streams}
    reads = ", ".join(streams) if name == "k3m" and streams else READS[name]
    return {"kind": "k3m", "reads": reads, "model_dir": str(trained.run_dir),
            "train": {"steps": trained.steps, "seconds": round(trained.seconds, 1), "best_step": trained.best_step,
                      "best_val_mrr": trained.best_val_mrr, **trained.extra},
            "clean": clean, "conditions": conditions, "calibration": calibration, "alone": alone}


def _slug(label: str) -> str:
    """A directory name for a row label: ``+ distillation`` -> ``distillation``."""
    slug = "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")
    return "-".join(part for part in slug.split("-") if part) or "row"


def _calibration(trained: TrainedVariant, prepared: Prepared, test_scores: list, device: torch.device, batch: int) -> dict:
    """Fit the temperature on validation triples, save it with the model, measure it on test triples."""
    val_scores = fact_scores(trained.model, trained.data, prepared.val, device, batch)
    fitted, entry = calibration_entry(val_scores, prepared.val, test_scores, prepared.test,
                                      f"{len(prepared.val)} validation triples of kgmm evaluate (seed {prepared.split.seed})",
                                      prepared.snapshot.content_hash())
    fitted.save(trained.run_dir)
    return entry


def _kge(name: str, prepared: Prepared, options: ProtocolOptions, progress: Progress) -> dict:
    """A KGE baseline: one model for link prediction (every category triple), one for the
    probe (without the probe-test products' category triples)."""
    epochs = options.kge.epochs
    progress.phase(f"training {name}", 2 * epochs)
    result = train_kge(name, prepared.train_snapshot, prepared.val, options.kge, progress=lambda e, _: progress.advance(e))
    clean = prepared.test.metrics(result.scores(prepared.test))
    hidden = prepared.probe.hidden_mask(prepared.snapshot.num_products)
    for_probe = train_kge(name, prepared.train_snapshot, prepared.val, options.kge, hidden, progress=lambda e, _: progress.advance(epochs + e))
    vectors, labels = for_probe.product_embeddings(), torch.from_numpy(prepared.probe.labels)
    train_index, test_index = torch.from_numpy(prepared.probe.train), torch.from_numpy(prepared.probe.test)
    probe = LinearProbe().fit(vectors[train_index], labels[train_index])
    clean["accuracy"] = probe.accuracy(vectors[test_index], labels[test_index])
    train = {"epochs": epochs, "seconds": round(result.seconds + for_probe.seconds, 1), "best_epoch": result.best_epoch,
             "best_val_mrr": result.best_val_mrr}
    return _flat("kge", "knowledge, category", clean, options, train)


def targets(models: dict[str, dict]) -> dict:
    """The issue's two targets, with the measured figures.

    The baselines are every model of the run that is not K3M: the majority rule, the KGE
    models and the text classifiers (``tfidf``, ``frozen-text``), i.e. what a practitioner
    would use instead of kgmm.
    """
    out: dict[str, dict] = {}
    baselines = {n: m["clean"]["hits@1"] for n, m in models.items() if m["kind"] != "k3m"}
    if "k3m" in models and baselines:
        best = max(baselines, key=baselines.get)
        full = models["k3m"]["clean"]["hits@1"]
        ratio = full / baselines[best] if baselines[best] else float("inf")
        out["hits1_vs_best_baseline"] = {
            "goal": f"full K3M Hits@1 >= {TARGET_RATIO} x the best baseline of the run ({', '.join(baselines)}; no damage)",
            "k3m": full, "best_baseline": best, "best_baseline_hits@1": baselines[best], "baselines": baselines,
            "ratio": ratio, "met": ratio >= TARGET_RATIO}
    if "k3m" in models and "text-only" in models:
        def loss(model: str) -> float | None:
            clean = models[model]["clean"]["hits@1"]
            damaged = models[model]["conditions"].get("missing_text", {}).get("0.5")
            return None if damaged is None or not clean else (clean - damaged["hits@1"]) / clean
        full, text = loss("k3m"), loss("text-only")
        if full is not None and text is not None:
            out["missing_text_50"] = {"goal": "at 50% missing text the full K3M loses at most half as much Hits@1, relatively, as the text-only model",
                                      "k3m_relative_loss": full, "text_only_relative_loss": text, "met": full <= 0.5 * text}
    return out
