"""`kgmm pretrain --max-steps N` with `train.behaviour_steps` larger than N (issue 13, item 16):
stage 1 is capped at N steps too, so a short run stays short."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import ROOT, kgmm


def test_behaviour_steps_100_under_max_steps_3_runs_3_stage1_steps(tmp_path: Path) -> None:
    store = str(tmp_path / "g.db")
    built = kgmm("build-kg", "examples/catalog.jsonl", "--behaviour", "examples/behaviour.csv", "--store", store, "-q")
    assert built.returncode == 0, built.stderr
    run = tmp_path / "run"
    done = kgmm("pretrain", "--store", store, "--config", str(ROOT / "examples" / "behaviour.yaml"), "--max-steps", "3",
                "--out", str(run), "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    stage1 = [r["step"] for r in records if r["kind"] == "behaviour"]
    stage2 = [r["step"] for r in records if r["kind"] == "train"]
    assert stage1 and max(stage1) == 3 and max(stage2) == 3
    assert "stage 1: 3 behaviour contrastive steps (train.behaviour_steps 100 capped at max_steps)" in done.stderr
