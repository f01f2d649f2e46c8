"""`kgmm evaluate --ablation`: rows of config changes, checked when read, each trained as the
full K3M on the same splits and reported side by side with each modality alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import kgmm
from tests.kgmm.k3m_testing import TINY

from kgmm.config import load_config
from kgmm.errors import ConfigError
from kgmm.evaluation.ablation import load_ablation


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ablation.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_apply_their_changes_and_only_theirs(tmp_path: Path) -> None:
    base = load_config(TINY)
    rows = load_ablation(write(tmp_path, "K3M: {}\n+ distillation:\n  objectives: {distill: 1.0}\n"), base)
    assert [r.name for r in rows] == ["K3M", "+ distillation"]
    assert rows[0].apply(base).hash() == base.hash() and rows[0].describe() == "base config"
    changed = rows[1].apply(base)
    assert changed.objectives.distill == 1.0 and changed.replace("objectives", distill=0.0).hash() == base.hash()
    assert rows[1].describe() == "objectives.distill=1.0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: {optimiser: {lr: 1}}\n", "row 'a': unknown section optimiser"),
        ("a: {train: {learning_rate: 1}}\n", "row 'a'"),
        ("a: {train: {max_steps: -3}}\n", "row 'a'"),
        ("a: [1, 2]\n", "row 'a': expected section"),
        ("- just a list\n", "expected a mapping"),
        ("a: {train: {max_steps: 3}\n", "cannot read the ablation file"),
    ],
)
def test_a_bad_row_is_named_with_its_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_ablation(path, load_config(TINY))
    assert str(path) in str(err.value) and expected in str(err.value)


@pytest.mark.slow
def test_evaluate_ablation_trains_each_row_on_the_same_splits(tmp_path: Path) -> None:
    path = write(tmp_path, "K3M: {}\n+ behaviour:\n  knowledge: {behaviour: true}\n  train: {behaviour_steps: 3}\n")
    out = tmp_path / "eval"
    done = kgmm("evaluate", "examples/catalog.jsonl", "--behaviour", "examples/behaviour.csv", "--config", str(TINY), "--ablation", str(path),
                "--models", "", "--max-steps", "2", "--ratios", "0.5", "--out", str(out), "-q", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert list(report["models"]) == ["K3M", "+ behaviour"]
    base, behaviour = report["models"]["K3M"], report["models"]["+ behaviour"]
    assert base["changes"] == "base config" and "knowledge.behaviour=True" in behaviour["changes"]
    assert "behaviour_steps" not in base["train"] and behaviour["train"]["behaviour_steps"] == 3
    assert set(base["alone"]) == {"text", "image", "knowledge"}
    assert all(0 <= m["hits@1"] <= 1 and m["count"] == report["split"]["test"] for m in base["alone"].values())
    assert set(base["conditions"]["missing_text"]) == {"0.0", "0.5"}
    markdown = (out / "report.md").read_text()
    assert "## Ablation" in markdown and "| + behaviour | knowledge.behaviour=True, train.behaviour_steps=3 |" in markdown
    assert (out / "models" / "behaviour" / "best").is_dir() and (out / "models" / "k3m" / "best").is_dir()
    assert (out / "plots" / "alone.png").stat().st_size > 5_000 and "![each modality alone](plots/alone.png)" in markdown


def test_evaluate_refuses_bad_ratios_and_pairs_without_a_catalog(tmp_path: Path) -> None:
    bad = kgmm("evaluate", "examples/catalog.jsonl", "--ratios", "0.5,2", "--out", str(tmp_path / "e"))
    assert bad.returncode == 1 and "--ratios" in bad.stderr and "Traceback" not in bad.stderr
    store = kgmm("evaluate", "--store", str(tmp_path / "none.db"), "--behaviour", "examples/behaviour.csv", "--out", str(tmp_path / "e"))
    assert store.returncode == 1 and "Traceback" not in store.stderr
