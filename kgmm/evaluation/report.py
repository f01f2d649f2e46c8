"""The evaluation report as files: ``report.json``, ``report.md`` and the plots.

The markdown holds the tables people read (clean results, each damage at each ratio,
calibration, the targets); the JSON holds every number, including the reliability bins.
"""

from __future__ import annotations

import json
from pathlib import Path

from .plots import plot_alone, plot_metrics, plot_reliability

METRICS = ("mrr", "hits@1", "hits@3", "hits@10", "accuracy")
LABELS = {"mrr": "MRR", "hits@1": "Hits@1", "hits@3": "Hits@3", "hits@10": "Hits@10", "accuracy": "category accuracy"}


def write_report(report: dict, out_dir: Path, command: str | None = None) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``plots/*.png`` and ``reliability.png``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if command:
        report["command"] = command
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(exist_ok=True)
    for metric in METRICS:
        path = plot_metrics(report, metric, LABELS[metric], plots_dir / f"{metric.replace('@', '')}.png")
        if path is not None:
            paths[metric] = path
    alone = plot_alone(report, plots_dir / "alone.png")
    if alone is not None:
        paths["alone"] = alone
    calibrated = report["models"].get("k3m", {}).get("calibration")
    if calibrated:
        paths["reliability"] = plot_reliability(calibrated, out_dir / "reliability.png")
    report["files"] = {k: str(v.relative_to(out_dir)) for k, v in paths.items()}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(report), encoding="utf-8")
    return paths


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(report: dict, image_dir: str = "plots", reliability_png: str = "reliability.png") -> str:
    """The report's tables as markdown; images are linked under ``image_dir`` and ``reliability_png``."""
    models, split, graph = report["models"], report["split"], report["graph"]
    options = report["options"]
    lines = [
        "# kgmm evaluate",
        "",
        f"Graph: {graph['products']:,} products, {graph['triples']:,} triples, {graph['attributes']:,} attributes, "
        f"{graph['values']:,} values. Held out per attribute (seed {split['seed']}): {split['test']:,} test and "
        f"{split['val']:,} validation triples ({split['test_attributes']} attributes, {split['test_products']} products); "
        f"{split['train']:,} triples train every model. Category probe: {split['probe_train']} / {split['probe_test']} products, "
        f"{len(split['probe_classes'])} top-level categories. K3M budget: {options['config']['train']['max_steps']} steps of "
        f"{options['config']['train']['batch_size']} products per model; KGE: {options['kge']['epochs']} epochs. "
        f"Run time {report['seconds'] / 60:.1f} min.",
        "",
    ]
    if report.get("command"):
        lines += ["```bash", report["command"], "```", ""]
    lines += ["## Without damage", "", "| model | reads | MRR | Hits@1 | Hits@3 | Hits@10 | category accuracy | train time |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, m in models.items():
        c = m["clean"]
        lines.append(f"| {name} | {m['reads']} | {_num(c['mrr'])} | {_num(c['hits@1'])} | {_num(c['hits@3'])} | {_num(c['hits@10'])} "
                     f"| {_num(c.get('accuracy'))} | {m['train'].get('seconds', 0):.0f} s |")
    r = report["random"]
    lines += [f"| random ranking | – | {_num(r['mrr'])} | {_num(r['hits@1'])} | {_num(r['hits@3'])} | {_num(r['hits@10'])} | "
              f"{_num(1 / max(len(split['probe_classes']), 1))} | – |", ""]
    lines += _ablation_section(report)
    lines += _alone_section(models)
    if "alone" in report.get("files", {}):
        lines += [f"![each modality alone]({image_dir}/{Path(report['files']['alone']).name})", ""]
    lines += _damage_tables(report, image_dir)
    lines += _calibration_section(models, reliability_png)
    lines += _noise_section(report.get("noise"))
    lines += _targets_section(report.get("targets", {}))
    return "\n".join(lines) + "\n"


def _ablation_section(report: dict) -> list[str]:
    """The ablation rows (full K3M under config changes) side by side."""
    models = report["models"]
    rows = [(n, m) for n, m in models.items() if "changes" in m]
    if not rows:
        return []
    streams = list(dict.fromkeys(s for _, m in rows for s in m.get("alone", {})))
    half = "0.5"
    lines = ["## Ablation", "",
             "The full K3M trained with each row's config changes, same splits, seed and step budget. *alone*: Hits@1 of "
             "the same model reading that one modality only; *50% text missing*: Hits@1 with half the products' text removed.", "",
             "| row | changes | MRR | Hits@1 | Hits@10 | category accuracy | 50% text missing | "
             + " | ".join(f"{s} alone" for s in streams) + (" | " if streams else "") + "train time |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | " + "".join("---: | " for _ in streams) + "---: |"]
    for name, m in rows:
        c = m["clean"]
        missing = m["conditions"].get("missing_text", {}).get(half)
        alone = [_num(m.get("alone", {}).get(s, {}).get("hits@1")) for s in streams]
        lines.append(f"| {name} | {m['changes']} | {_num(c['mrr'])} | {_num(c['hits@1'])} | {_num(c['hits@10'])} | {_num(c.get('accuracy'))} | "
                     f"{_num(missing['hits@1'] if missing else None)} | " + "".join(f"{a} | " for a in alone)
                     + f"{m['train'].get('seconds', 0):.0f} s |")
    return lines + [""]


def _alone_section(models: dict) -> list[str]:
    """Hits@1 of each full model reading one modality at a time (ablation rows are in their table)."""
    rows = [(n, m) for n, m in models.items() if m.get("alone") and "changes" not in m]
    if not rows:
        return []
    streams = list(dict.fromkeys(s for _, m in rows for s in m["alone"]))
    lines = ["## Each modality alone", "",
             "Hits@1 of the full model, then of the same model reading a single modality (the others absent).", "",
             "| model | all | " + " | ".join(streams) + " |", "| --- | ---: | " + " | ".join("---:" for _ in streams) + " |"]
    for name, m in rows:
        lines.append(f"| {name} | {_num(m['clean']['hits@1'])} | " + " | ".join(_num(m["alone"].get(s, {}).get("hits@1")) for s in streams) + " |")
    return lines + [""]


def _damage_tables(report: dict, image_dir: str) -> list[str]:
    models, options = report["models"], report["options"]
    ratios = [str(r) for r in options["ratios"]]
    lines = ["## Missing and noisy modalities", "",
             "Hits@1 (and category accuracy) with a share of the products damaged; *missing*: the text (title and "
             "description) or photo removed, *noise*: replaced by another product's. KGE models and the rule read no "
             "text or photo, so their numbers do not move; they are listed once above. The text classifiers (tfidf, "
             "frozen-text) read the same damaged text as K3M.", ""]
    learned = [n for n, m in models.items() if m["kind"] in ("k3m", "text")]  # the models that read text or photos
    for condition in options["conditions"]:
        lines += [f"### {condition.replace('_', ' ')}", "",
                  "| model | " + " | ".join(f"{float(r):.0%}" for r in ratios) + " | accuracy at " + " / ".join(f"{float(r):.0%}" for r in ratios) + " |",
                  "| --- | " + " | ".join("---:" for _ in ratios) + " | ---: |"]
        for name in learned:
            cells = models[name]["conditions"][condition]
            lines.append(f"| {name} | " + " | ".join(_num(cells[r]["hits@1"]) for r in ratios) + " | "
                         + " / ".join(_num(cells[r].get("accuracy"), 2) for r in ratios) + " |")
        lines.append("")
    files = report.get("files", {})
    plots = [f"![{key}]({image_dir}/{Path(path).name})" for key, path in files.items() if key not in ("json", "markdown", "reliability", "alone")]
    if plots:
        lines += ["Plots of each metric against the damaged share:", "", *plots, ""]
    return lines


def _calibration_section(models: dict, reliability_png: str) -> list[str]:
    rows = [(n, m["calibration"]) for n, m in models.items() if m.get("calibration")]
    if not rows:
        return []
    lines = ["## Calibration", "",
             "Temperature fitted on the validation triples (minimum NLL); expected calibration error (10 bins) of the "
             "top-1 probability on the test triples before and after; and, after, how many test triples reach each "
             "`--min-score` and how many of those are right.", "",
             "| model | temperature | ECE val before / after | ECE test before / after | >= 0.5: n, right | >= 0.7: n, right | >= 0.9: n, right |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, c in rows:
        at = {p["min_score"]: p for p in c["test"]["precision_at"]}
        cells = [f"{at[t]['count']}, {_num(at[t]['accuracy'], 2)}" if t in at else "–" for t in (0.5, 0.7, 0.9)]
        lines.append(f"| {name} | {c['temperature']:.2f} | {_num(c['val']['ece_before'])} / {_num(c['val']['ece_after'])} | "
                     f"{_num(c['test']['ece_before'])} / {_num(c['test']['ece_after'])} | " + " | ".join(cells) + " |")
    return lines + ["", f"![reliability]({reliability_png})", ""]


def _noise_section(noise: dict | None) -> list[str]:
    """Planted errors and how well the flags find them (:mod:`.noise`)."""
    if not noise:
        return []
    planted = ", ".join(f"{n} {kind}" for kind, n in noise["planted"].items())
    caught = ", ".join(f"{n} {kind}" for kind, n in noise["caught_by_k3m"].items())
    t = noise["thresholds"]
    rule = (f"P(wrong) at least {t['flag_min']} with {t['error_rate']:.0%} of the catalog assumed wrong"
            if "flag_min" in t else f"catalog value below {t.get('noise_threshold')}, another value at least {t.get('suggestion_min')}")
    lines = ["## Planted noise", "",
             f"{noise['rate']:.0%} of the catalog facts replaced in a copy of the graph ({planted}); K3M trained on it "
             f"({noise['train_steps']} steps). Flags at the default thresholds ({rule}); average precision ranks every checked "
             f"value by the detector's likelihood ratio (learnt from errors planted in a sample of the catalog, "
             f"`kgmm/completion/detector.py`; `tfidf`: the same detector on the tfidf classifier's probabilities; `*_hand_rule`: "
             f"the earlier rule, the log-odds of the probability plus what the text says; `tfidf_probability_only`: the log-odds "
             f"alone; `tfidf_low_probability`: ranked by the probability alone, every value judged; `text_alone`: the text's "
             f"word alone, a rule that ranks and never flags). "
             f"Flagged planted errors by kind: {caught}.", "",
             "| model | average precision | flags | planted among them | precision | recall | values checked |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = {"k3m": noise.get("k3m"), **{f"k3m at error rate {r}": m for r, m in noise.get("k3m_error_rate", {}).items()}}
    rows |= {name: noise.get(name) for name in ("k3m_hand_rule", "tfidf", "tfidf_hand_rule", "tfidf_probability_only", "tfidf_low_probability",
                                                  "text_alone")}
    for name, m in rows.items():
        if m is None:  # a report written before that row existed
            continue
        lines.append(f"| {name} | {m['average_precision']:.3f} | {m['flags']} | {m['flagged_planted']} | {m['precision']:.3f} | "
                     f"{m['recall']:.3f} | {m['checked']} |")
    return lines + [""]


def _targets_section(targets: dict) -> list[str]:
    if not targets:
        return []
    lines = ["## Targets", ""]
    t = targets.get("hits1_vs_best_baseline")
    if t:
        lines.append(f"- {t['goal']}: K3M {t['k3m']:.3f} vs {t['best_baseline']} {t['best_baseline_hits@1']:.3f} = "
                     f"{t['ratio']:.2f}x: **{'met' if t['met'] else 'not met'}**")
    t = targets.get("missing_text_50")
    if t:
        lines.append(f"- {t['goal']}: K3M loses {t['k3m_relative_loss']:.1%}, text-only {t['text_only_relative_loss']:.1%}: "
                     f"**{'met' if t['met'] else 'not met'}**")
    return lines + [""]
