"""`kgmm evaluate`: the K3M evaluation protocol against baselines, on one catalog or store."""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from graph_store import open_store
from kg_builder import ColumnMapping, build_graph, open_catalog, open_pairs
from kg_builder.readers import FORMATS, PRESETS

from .errors import fail, guarded
from .options import DatabaseOption, OptionalStoreOption, PasswordOption, UserOption, store_spec
from .pretrain import _domain_errors
from .render import console, render_rows

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
QUICK = {"max_steps": 6, "kge_epochs": 2, "ratios": (0.0, 0.5, 1.0)}


class _Bar:
    """The protocol's progress as one rich bar per phase."""

    def __init__(self, quiet: bool) -> None:
        self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=stderr, disable=quiet, transient=True)
        self.task = None

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def phase(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(name, total=total)

    def advance(self, completed: int) -> None:
        self.progress.update(self.task, completed=completed)


@guarded
@_domain_errors
def evaluate(
    catalog: Annotated[Optional[Path], typer.Argument(help="Catalog file to evaluate on (built into a temporary embedded store); or use --store.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for report.json, report.md, plots/, reliability.png and models/.")] = Path("runs/evaluate"),
    store: OptionalStoreOption = None,
    format: Annotated[str, typer.Option("--format", help=f"Catalog format: {' | '.join(FORMATS)}.")] = "auto",
    preset: Annotated[Optional[str], typer.Option("--preset", help=f"Named catalog format: {', '.join(sorted(PRESETS))}.")] = None,
    mapping: Annotated[Optional[Path], typer.Option("--mapping", help="YAML column mapping for CSV catalogs.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="K3M config for every variant (default: the tiny CPU model).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Training steps per K3M variant (overrides train.max_steps; default: sized by the catalog, with early stopping).")] = None,
    kge_epochs: Annotated[Optional[int], typer.Option("--kge-epochs", min=1, help="Epochs per KGE baseline (default 80).")] = None,
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.0, max=0.9, help="Share of each attribute's triples held out for testing.")] = 0.1,
    val_fraction: Annotated[float, typer.Option("--val-fraction", min=0.0, max=0.9, help="Share held out for validation (model selection, calibration).")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the splits, the damage and training.")] = 0,
    behaviour: Annotated[list[Path], typer.Option("--behaviour", help="Pairs CSV (product_a, product_b[, weight][, kind]) loaded with the catalog as behaviour edges; repeatable.")] = [],  # noqa: B006
    ablation: Annotated[Optional[Path], typer.Option("--ablation", help="YAML of row name -> config changes: each row trains the full K3M on the same splits (the ablation table).")] = None,
    ratios: Annotated[Optional[str], typer.Option("--ratios", help="Comma-separated damaged shares (default 0,0.2,0.5,0.8,1).")] = None,
    models: Annotated[Optional[str], typer.Option("--models", help="Comma-separated subset: k3m, k3m-no-knowledge, text-only, image-only, transe, distmult, complex, rotate, majority, tfidf, frozen-text (default: all; frozen-text when text.pretrained is set).")] = None,
    noise: Annotated[float, typer.Option("--noise", min=0.0, max=0.5, help="Share of catalog facts replaced (and brands swapped) in a copy of the graph to measure the noise flags; 0: off (also off with --quick).")] = 0.02,
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run: 6 steps per K3M variant, 2 KGE epochs, damage at 0/50/100% only.")] = False,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps (overrides train.device).")] = None,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Hold out attribute triples, train K3M, its variants and the baselines on the rest, and
    measure value prediction (filtered MRR, Hits@1/3/10) and category classification with
    text and photos missing or swapped at 0-100%, plus calibration of the probabilities."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=FutureWarning)
    from kgmm.config import load_config
    from kgmm.evaluation.protocol import run_protocol
    from kgmm.evaluation.report import write_report

    if (catalog is None) == (store is None):
        raise fail("give either a CATALOG file or --store STORE to evaluate")
    options = _options(load_config(config), max_steps, kge_epochs, test_fraction, val_fraction, seed, models, quick, device, ratios, ablation,
                       noise)
    if behaviour and catalog is None:
        raise fail("--behaviour loads pairs with a CATALOG file; a --store already holds its behaviour edges")
    pairs = [open_pairs(path) for path in behaviour]  # a bad pairs file stops before any training
    command = "kgmm " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    with tempfile.TemporaryDirectory(prefix="kgmm-evaluate-") as tmp:
        if catalog is not None:
            mapped = ColumnMapping.from_yaml(mapping) if mapping is not None else None
            source = open_catalog(catalog, format=format, preset=preset, mapping=mapped)
            with open_store(str(Path(tmp) / "graph.db"), create=True) as graph:
                built = build_graph(source, graph, behaviour=pairs)
                _report_rejections(built)
                snapshot = graph.snapshot(include_predicted=False)
        else:
            with store_spec(store, user, password, database).open() as graph:
                snapshot = graph.snapshot(include_predicted=False)
        if snapshot.num_products == 0:
            raise fail(f"{catalog or store} holds no products")
        out.mkdir(parents=True, exist_ok=True)
        with _Bar(quiet) as bar:
            try:
                report = run_protocol(snapshot, options, out, bar)
            except ValueError as err:
                raise fail(str(err)) from None
    report["source"] = str(catalog) if catalog is not None else store
    paths = write_report(report, out, command)
    _summary(report, paths)


def _options(config, max_steps, kge_epochs, test_fraction, val_fraction, seed, models, quick, device, ratios=None, ablation=None, noise=0.0):
    from dataclasses import replace

    from kgmm.evaluation.ablation import load_ablation

    from kgmm.evaluation.corruption import CONDITIONS
    from kgmm.evaluation.k3m_variants import VARIANTS
    from kgmm.evaluation.kge import KGE_MODELS, KGEConfig
    from kgmm.evaluation.protocol import RATIOS, ProtocolOptions
    from kgmm.evaluation.tfidf import TEXT_BASELINES

    steps = max_steps or (QUICK["max_steps"] if quick else config.train.max_steps)
    train = {"max_steps": steps, "eval_every": max(1, steps // 6) if steps else config.train.eval_every,
             "checkpoint_every": steps or config.train.checkpoint_every, "keep_checkpoints": 1,
             "seed": seed, "log_every": max(1, min(config.train.log_every, steps or config.train.log_every))}
    if device:
        train["device"] = device
    config = config.replace("train", **train)
    known = (*VARIANTS, *KGE_MODELS, "majority", *TEXT_BASELINES)
    chosen = [m.strip() for m in models.split(",") if m.strip()] if models is not None else [m for m in known if m != "frozen-text" or config.text.pretrained]
    unknown = [m for m in chosen if m not in known]
    if unknown:
        raise fail(f"--models: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    if "frozen-text" in chosen and not config.text.pretrained:
        raise fail("--models frozen-text needs a pretrained text encoder: set text.pretrained (a local directory) in --config")
    epochs = kge_epochs or (QUICK["kge_epochs"] if quick else KGEConfig.epochs)
    return ProtocolOptions(
        config=config, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed,
        ratios=_ratios(ratios) if ratios else (QUICK["ratios"] if quick else RATIOS), conditions=CONDITIONS,
        variants=tuple(m for m in VARIANTS if m in chosen), kge_models=tuple(m for m in KGE_MODELS if m in chosen),
        kge=replace(KGEConfig(), epochs=epochs, eval_every=max(1, min(5, epochs)), seed=seed), majority="majority" in chosen,
        text_baselines=tuple(m for m in TEXT_BASELINES if m in chosen),
        ablation=tuple(load_ablation(ablation, config)) if ablation is not None else (),
        noise=0.0 if quick else noise,
    )


def _report_rejections(built) -> None:
    """Rows the temporary build rejected are left out of the evaluation: say so, with the first few."""
    problems = [p for p in [*built.problems, *(q for b in built.behaviour for q in b.problems)] if p.severity == "rejected"]
    if not problems:
        return
    stderr.print(f"note: {len(problems):,} rows rejected and left out of the evaluation (kgmm build-kg lists them all), e.g.:", markup=False)
    for problem in problems[:3]:
        stderr.print(f"  {problem}", markup=False)


def _ratios(text: str) -> tuple[float, ...]:
    try:
        values = sorted({float(r) for r in text.split(",") if r.strip()} | {0.0})
    except ValueError:
        raise fail(f"--ratios: expected comma-separated numbers in [0, 1], got {text!r}") from None
    if not all(0 <= r <= 1 for r in values):
        raise fail(f"--ratios: every share must lie in [0, 1], got {text!r}")
    return tuple(values)


def _summary(report: dict, paths: dict) -> None:
    split = report["split"]
    console.print(f"Evaluated on {split['test']:,} held-out test triples ({split['val']:,} validation) in {report['seconds'] / 60:.1f} min", markup=False)
    rows = [{"model": n, "reads": m["reads"], **{k: m["clean"].get(k) for k in ("mrr", "hits@1", "hits@3", "hits@10", "accuracy")}}
            for n, m in report["models"].items()]
    render_rows(rows, ("model", "reads", "mrr", "hits@1", "hits@3", "hits@10", "accuracy"), "table", title="without damage")
    calibration = report["models"].get("k3m", {}).get("calibration")
    if calibration:
        console.print(f"  calibration of k3m: temperature {calibration['temperature']:.2f}, expected calibration error on test "
                      f"{calibration['test']['ece_before']:.3f} -> {calibration['test']['ece_after']:.3f}", markup=False)
        if calibration.get("warning"):
            console.print(f"  warning: {calibration['warning']}", markup=False)
    for target in report.get("targets", {}).values():
        console.print(f"  target {'met' if target['met'] else 'NOT met'}: {target['goal']}", markup=False)
    console.print(f"  report {paths['markdown']}   {paths['json']}   plots {paths['markdown'].parent / 'plots'}", markup=False)
