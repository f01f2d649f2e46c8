"""`kgmm pretrain` as a user runs it: the README's first command, Flipkart with resume, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, kgmm

TINY = str(ROOT / "examples" / "tiny.yaml")


def readme_first_command() -> str:
    block = re.search(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert block, "README has no bash block"
    return block.group(1).strip()


@pytest.mark.slow
def test_readme_first_command_builds_pretrains_and_says_what_was_learned(tmp_path: Path) -> None:
    command = readme_first_command()
    assert command.startswith("pip install -e . && ") and "kgmm pretrain" in command
    local = command.removeprefix("pip install -e . && ").replace("kgmm ", f"{sys.executable} -m cli.main ")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {"PYTHONPATH": str(ROOT), "COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "-c", local], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)  # a hang guard, not a speed target
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert re.search(r"Pretrained \d+ steps", out) and "link prediction on" in out and "MRR" in out  # steps sized by the catalog
    assert "stage 0: the evidence terms alone" in out + done.stderr
    assert "most common value in the category" in out  # kgmm complete shows the rule's values beside the model's
    assert "predicted values for attributes these products lack:" in out
    assert (tmp_path / "runs" / "pretrain" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "runs" / "pretrain" / "loss.png").is_file()
    shown_last = out[out.rindex("Wrote "):]  # the product again, after kgmm complete
    assert " model " in shown_last or "│ model" in shown_last, "the README's product shows no predicted value after kgmm complete"


@pytest.mark.slow
def test_flipkart_pretrains_and_resumes(flipkart_csv: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "flipkart.db")
    assert kgmm("build-kg", str(flipkart_csv), "--preset", "flipkart", "--store", store, "-q").returncode in (0, 3)
    run = tmp_path / "run"
    first = kgmm("pretrain", "--store", store, "--config", TINY, "--max-steps", "4", "--out", str(run), "-q")
    assert first.returncode == 0, first.stderr
    assert (run / "checkpoints" / "step-000004" / "training_state.pt").is_file()
    second = kgmm("pretrain", "--store", store, "--resume", str(run), "--max-steps", "6", "-q")
    assert second.returncode == 0, second.stderr
    assert "Pretrained 6 steps" in second.stdout and "resumed from step 4" in second.stdout
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert steps == sorted(set(steps)) and steps[-1] == 6


def one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip() and "Warning" not in line and "warnings.warn" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bad_input_gives_one_clear_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    assert kgmm("build-kg", str(ROOT / "examples" / "catalog.csv"), "--mapping", str(ROOT / "examples" / "mapping.yaml"), "--store", str(tmp_path / "s.db"), "-q").returncode == 0
    subprocess.run([sys.executable, "-c", f"from graph_store import open_store; open_store({str(empty)!r}, create=True).close()"], cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT)})
    one_line_error(kgmm("pretrain", "--store", str(empty)), "holds no products", "kgmm build-kg")
    config = tmp_path / "bad.yaml"
    config.write_text("text:\n  encoder: gpt2\n")
    one_line_error(kgmm("pretrain", "--store", str(tmp_path / "s.db"), "--config", str(config)), "unknown text encoder 'gpt2'", "known: bert, pretrained")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}")
    one_line_error(kgmm("pretrain", "--store", str(tmp_path / "s.db"), "--resume", str(foreign)), "not a kgmm checkpoint")
    assert "--resume" in kgmm("pretrain", "--help").stdout


def test_the_progress_bar_shows_stage_zero_on_a_bar_of_its_own_until_it_ends() -> None:
    from cli import pretrain as pretrain_cli

    bar = pretrain_cli.ProgressBar(quiet=True)  # the same tasks, nothing drawn
    with bar:
        bar.on_stage("stage 0", 1, 2, 0.75)
        [stage] = bar.progress.tasks
        assert (stage.description, stage.completed, stage.total) == ("stage 0", 1, 2)
        assert "loss 0.750" in stage.fields["terms"]
        bar.on_stage("stage 0", 2, 2, 0.5)
        assert bar.progress.tasks == [] and bar.stage is None  # ended: the trainer's bar comes next
        bar.on_start(0, 10)
        assert [task.description for task in bar.progress.tasks] == ["pretraining"]
