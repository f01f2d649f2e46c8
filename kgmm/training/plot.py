"""The loss curve: each loss term against the step, validation MRR on a second axis."""

from __future__ import annotations

from pathlib import Path

from .metrics import loss_terms, read_metrics


def plot_losses(metrics_path: Path, out_path: Path) -> Path | None:
    """Write ``out_path`` (PNG) from ``metrics_path``; None when there is nothing to plot."""
    records = read_metrics(metrics_path) if metrics_path.exists() else []
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    terms = list(dict.fromkeys(term for r in train for term in loss_terms(r)))  # every objective's, in logged order
    for term in terms:
        points = [(r["step"], r[term]) for r in train if r.get(term) is not None]
        if points:
            ax.plot(*zip(*points), label=term, linewidth=2 if term == "loss" else 1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if evals:
        ax2 = ax.twinx()
        line = ax2.plot([r["step"] for r in evals], [r["val_mrr"] for r in evals], "k--o", markersize=3, label="val MRR")
        ax2.set_ylabel("validation MRR")
        ax2.set_ylim(0, 1)
        handles += line
        labels += ["val MRR"]
    ax.legend(handles, labels, loc="upper right", fontsize=8)
    ax.set_title("kgmm pretrain")
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
