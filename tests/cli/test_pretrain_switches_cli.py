"""`kgmm pretrain` with the beyond-K3M switches on: distillation, SCALE, video and audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli.helpers import ROOT, kgmm
from tests.kgmm.k3m_testing import build_store, example_snapshot


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return build_store(tmp_path_factory.mktemp("store") / "kgmm.db")


def train_terms(run: Path) -> set[str]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {key for r in records if r["kind"] == "train" for key in r}


@pytest.mark.parametrize(("example", "terms", "streams"), [
    ("distill.yaml", {"distill"}, ["text", "image", "knowledge"]),
    ("scale.yaml", {"contrastive"}, ["text", "image", "knowledge", "table"]),
])
def test_each_example_switch_trains_from_the_cli(store: str, tmp_path: Path, example: str, terms: set[str], streams: list[str]) -> None:
    run = tmp_path / "run"
    done = kgmm("pretrain", "--store", store, "--config", str(ROOT / "examples" / example), "--max-steps", "3", "--out", str(run), "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert terms | {"mlm", "mom", "lpm", "loss"} <= train_terms(run)
    summary = json.loads((run / "summary.json").read_text())
    assert list(summary["link_alone"]) == streams and all(0 < m["val_mrr"] <= 1 for m in summary["link_alone"].values())
    assert (run / "model" / "model.safetensors").is_file()


def test_video_and_audio_from_a_media_table_train_from_the_cli(store: str, tmp_path: Path) -> None:
    from PIL import Image

    from tests.kgmm.model.test_modalities import write_wav

    rows = ["product_id,modality,path"]
    for i, product in enumerate(example_snapshot().product_ids[:40]):
        frames = [Image.new("RGB", (24, 24), (i * 6 % 255, c, 90)) for c in (0, 120, 240)]
        frames[0].save(tmp_path / f"{i}.gif", save_all=True, append_images=frames[1:])
        write_wav(tmp_path / f"{i}.wav", 150 + 25 * i, 0.3)
        rows += [f"{product},video,{i}.gif", f"{product},audio,{i}.wav"]
    (tmp_path / "media.csv").write_text("\n".join(rows) + "\n")
    config = yaml.safe_load((ROOT / "examples" / "tiny.yaml").read_text())
    config["model"]["extra_modalities"] = ["video", "audio"]
    config["modality"]["media"] = str(tmp_path / "media.csv")
    config["objectives"].update(contrastive=0.5, importance_weighting=True)
    (tmp_path / "media.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    done = kgmm("pretrain", "--store", store, "--config", str(tmp_path / "media.yaml"), "--max-steps", "2", "--out", str(run), "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "contrastive" in train_terms(run)
    assert list(json.loads((run / "summary.json").read_text())["link_alone"]) == ["text", "image", "knowledge", "video", "audio"]
