"""PNG plots of the evaluation: each metric against the damaged share, and reliability.

One figure per metric with one panel per kind of damage, so a reader compares models
under the same damage side by side; models that read no damaged modality are drawn
dashed (flat lines), for scale. Matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

from pathlib import Path

STYLE = {
    "k3m": ("#d62728", "-", "o"),
    "k3m-no-knowledge": ("#ff7f0e", "-", "s"),
    "text-only": ("#1f77b4", "-", "^"),
    "image-only": ("#2ca02c", "-", "v"),
    "transe": ("#7f7f7f", "--", None),
    "distmult": ("#8c564b", "--", None),
    "complex": ("#9467bd", "--", None),
    "rotate": ("#e377c2", "--", None),
    "majority": ("#17becf", ":", None),
    "tfidf": ("#bcbd22", "-.", "D"),
    "frozen-text": ("#393b79", "-.", "P"),
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(report: dict, metric: str, label: str, path: Path) -> Path | None:
    """``metric`` against the damaged share, one panel per condition; None if no model has it."""
    models = {n: m for n, m in report["models"].items() if m["clean"].get(metric) is not None}
    conditions = report["options"]["conditions"]
    if not models or not conditions:
        return None
    plt = _pyplot()
    ratios = [float(r) for r in report["options"]["ratios"]]
    cols = min(len(conditions), 3)
    rows = (len(conditions) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), sharey=True, squeeze=False)
    values = [m["conditions"][c][str(r)][metric] for m in models.values() for c in conditions for r in ratios]
    low, high = min(values), max(values)
    pad = 0.05 * max(high - low, 0.05)
    for ax, condition in zip(axes.flat, conditions):
        for name, model in models.items():
            colour, line, marker = STYLE.get(name, ("#000000", "-", "x"))
            ys = [model["conditions"][condition][str(r)][metric] for r in ratios]
            ax.plot([100 * r for r in ratios], ys, line, color=colour, marker=marker, markersize=4, linewidth=1.6, label=name)
        ax.set_title(condition.replace("_", " "))
        ax.set_xlabel("damaged products (%)")
        ax.set_xticks([100 * r for r in ratios])
        ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad))
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(label)
    for ax in list(axes.flat)[len(conditions):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    spare = list(axes.flat)[len(conditions):]
    if spare:
        spare[0].legend(handles, names, loc="center", frameon=False)
    else:
        fig.legend(handles, names, loc="lower center", ncol=min(len(names), 5), frameon=False)
    fig.suptitle(f"{label} on held-out data as modalities go missing or noisy")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(calibration: dict, path: Path) -> Path:
    """Reliability diagram of the top-1 probability on the test triples, before and after."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.4), sharey=True)
    test = calibration["test"]
    panels = (("reliability_before", "ece_before", "softmax of the scores (T = 1)"),
              ("reliability_after", "ece_after", f"temperature T = {calibration['temperature']:.2f}"))
    for ax, (bins_key, ece_key, title) in zip(axes, panels):
        bins = test[bins_key]
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        width = bins[0]["high"] - bins[0]["low"]
        accuracy = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins]
        ax.bar(centres, accuracy, width=width * 0.92, color="#1f77b4", alpha=0.8, edgecolor="white", label="accuracy in bin")
        for c, b in zip(centres, bins):
            if b["count"]:
                ax.text(c, 0.02, f"{b['count']}", ha="center", va="bottom", fontsize=7, color="white" if (b["accuracy"] or 0) > 0.08 else "black", rotation=90)
        ax.plot([0, 1], [0, 1], "--", color="#d62728", linewidth=1.2, label="perfect calibration")
        ax.set_title(f"{title}\nECE {test[ece_key]:.3f}")
        ax.set_xlabel("top-1 probability")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of top-1 values that are right")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Reliability of the full K3M on {test['facts']} test triples (bar labels: triples per bin)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_alone(report: dict, path: Path) -> Path | None:
    """Grouped bars: Hits@1 of each full model, then of the same model reading one modality
    alone (what self-distillation is meant to raise); None when no model reports it."""
    models = {n: m for n, m in report["models"].items() if m.get("alone")}
    if not models:
        return None
    streams = list(dict.fromkeys(s for m in models.values() for s in m["alone"]))
    groups = ["all", *streams]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(groups), 4.2))
    width = 0.8 / len(models)
    for i, (name, m) in enumerate(models.items()):
        values = [m["clean"]["hits@1"], *(m["alone"].get(s, {}).get("hits@1", float("nan")) for s in streams)]
        offsets = [g + (i - (len(models) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(offsets, values, width * 0.95, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), [f"{g} alone" if g != "all" else "all modalities" for g in groups])
    ax.set_ylabel("Hits@1 on held-out triples")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Each modality alone: the same trained model reading one modality")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
