"""Extra modalities (SCALE): the table sequence, video frames from a GIF or a folder, audio
spectrograms from a WAV, all on media written here, and a model with them that saves and
loads exactly."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.kgmm.k3m_testing import one_thread_per_module, example_snapshot, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)

from kgmm.data.batches import batch_generator
from kgmm.modalities.media import (
    MEL_BINS,
    SAMPLE_RATE,
    load_frames,
    load_wav,
    log_mel,
    read_media_table,
)
from kgmm.errors import ConfigError, DataError
from kgmm.model import K3M
from kgmm.objectives import compute_losses


def write_gif(path: Path, colours: list[tuple[int, int, int]], side: int = 40) -> Path:
    frames = [Image.new("RGB", (side, side), colour) for colour in colours]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def write_wav(path: Path, hertz: float, seconds: float, rate: int = 8000, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        samples = [int(12000 * math.sin(2 * math.pi * hertz * i / rate)) for i in range(int(seconds * rate))]
        handle.writeframes(b"".join(struct.pack("<" + "h" * channels, *([s] * channels)) for s in samples))
    return path


def test_gif_frames_are_spread_over_the_clip(tmp_path: Path) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (0, 0, 0), (255, 255, 255)]
    frames = load_frames(write_gif(tmp_path / "clip.gif", colours), 4, 32)
    assert frames.shape == (4, 3, 32, 32)
    assert all(not torch.allclose(frames[i], frames[i + 1]) for i in range(3))  # four different frames
    short = load_frames(write_gif(tmp_path / "short.gif", colours[:2]), 4, 32)
    assert short.shape == (2, 3, 32, 32)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, colour in enumerate(colours[:3]):
        Image.new("RGB", (20, 30), colour).save(folder / f"{i:03d}.jpg")
    assert load_frames(folder, 4, 32).shape == (3, 3, 32, 32)


def test_wav_becomes_a_log_mel_spectrogram(tmp_path: Path) -> None:
    waveform = load_wav(write_wav(tmp_path / "tone.wav", 440, 1.0, rate=8000, channels=2), seconds=4)
    assert abs(waveform.numel() - SAMPLE_RATE) <= 1 and waveform.abs().max() <= 1.0
    spectrum = log_mel(waveform)
    assert spectrum.shape == (MEL_BINS, 1 + SAMPLE_RATE // 160)
    low, high = spectrum[: MEL_BINS // 3].mean(), spectrum[-MEL_BINS // 3 :].mean()
    assert low > high + 5  # a 440 Hz tone: energy in the low mel bands
    assert load_wav(write_wav(tmp_path / "long.wav", 440, 3.0), seconds=1).numel() == SAMPLE_RATE  # clipped


def test_media_table_reads_paths_and_refuses_unknown_modalities(tmp_path: Path) -> None:
    (tmp_path / "media.csv").write_text("product_id,modality,path\na,video,clips/a.gif\nzz,audio,x.wav\nb,audio,b.wav\n")
    table = read_media_table(tmp_path / "media.csv", ["a", "b"])
    assert table["video"] == [str(tmp_path / "clips" / "a.gif"), None] and table["audio"] == [None, str(tmp_path / "b.wav")]
    (tmp_path / "bad.csv").write_text("product_id,modality,path\na,smell,x\n")
    with pytest.raises(DataError, match="unknown modality 'smell'"):
        read_media_table(tmp_path / "bad.csv", ["a"])
    with pytest.raises(ConfigError, match="need modality.media"):
        tiny_config().replace("model", extra_modalities=["video"])
    with pytest.raises(ConfigError, match="unknown modality 'smell'"):
        tiny_config().replace("model", extra_modalities=["smell"])


def test_table_sequence_holds_exactly_the_visible_pairs_never_a_held_out_fact() -> None:
    config = tiny_config().replace("model", extra_modalities=["table"])
    _, data, _ = tiny_setup(config)
    table = data.inputs["table"]
    sep = data.special.sep
    for seed in range(3):
        batch = data.build(torch.arange(seed * 16, seed * 16 + 16), batch_generator(0, seed), train=True)
        inputs = batch.extra["table"]
        assert batch.lpm_row.numel() > 0
        for row in range(batch.size):
            ids = inputs.data[row][inputs.mask[row]].tolist()
            assert ids[0] == data.special.cls
            segments, current = [], []
            for token in ids[1:]:
                if token == sep:
                    segments.append(current)
                    current = []
                else:
                    current.append(token)
            visible = batch.kv_value[row][batch.kv_mask[row]].tolist()
            assert segments == [table.pieces[v] for v in visible][: len(segments)]  # in order, truncated at max_length
            assert bool(inputs.present[row]) == bool(visible)
            for value in batch.lpm_value[batch.lpm_row == row].tolist():
                assert table.pieces[value] not in segments or value in visible  # a held-out fact never appears


@pytest.fixture(scope="module")
def media_config(tmp_path_factory):
    """The tiny config with table, video and audio; media for about half the products."""
    folder = tmp_path_factory.mktemp("media")
    products = example_snapshot().product_ids
    rows = ["product_id,modality,path"]
    for i, product in enumerate(products[:24]):
        if i % 2 == 0:
            write_gif(folder / f"{i}.gif", [(i * 10 % 255, 0, 0), (0, i * 10 % 255, 0), (0, 0, 200)])
            rows.append(f"{product},video,{i}.gif")
        if i % 3 == 0:
            write_wav(folder / f"{i}.wav", 200 + 20 * i, 0.5)
            rows.append(f"{product},audio,{i}.wav")
    (folder / "broken.gif").write_bytes(b"GIF89a not really")
    rows.append(f"{products[1]},video,broken.gif")  # undecodable: counts as missing
    (folder / "media.csv").write_text("\n".join(rows) + "\n")
    return tiny_config().replace("modality", media=str(folder / "media.csv")).replace("model", extra_modalities=["table", "video", "audio"])


def test_a_model_with_every_extra_modality_trains_saves_and_loads_exactly(media_config, tmp_path: Path) -> None:
    config = media_config.replace("objectives", distill=1.0, contrastive=1.0, importance_weighting=True)
    model, data, _ = tiny_setup(config)
    batch = data.build(torch.arange(12), batch_generator(0, 1), train=True)
    video, audio = batch.extra["video"], batch.extra["audio"]
    assert video.data.shape[:2] == (12, 4) and video.present.tolist() == [i % 2 == 0 for i in range(12)]
    assert audio.data.shape[:2] == (12, MEL_BINS) and audio.present.tolist() == [i % 3 == 0 for i in range(12)]
    assert model.stream_names == ("text", "image", "knowledge", "table", "video", "audio")
    assert not any("_shared" in key for key in model.state_dict())  # shared backbones are saved once

    out = model.train()(batch)
    assert out.modality_weights.shape == (12, 6)
    absent = ~out.present
    assert torch.equal(out.modality_weights[absent], torch.zeros(int(absent.sum())))  # no media: weight exactly 0
    losses = compute_losses(model, out, batch, config)
    assert {"distill", "contrastive"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    assert model.extras["audio"].proj.weight.grad is not None and model.extras["table"].proj.weight.grad is not None
    assert model.extras["video"].time.grad is not None
    model.zero_grad(set_to_none=True)

    model.save_pretrained(tmp_path / "m")
    loaded = K3M.from_pretrained(tmp_path / "m")
    own, other = model.state_dict(), loaded.state_dict()
    assert own.keys() == other.keys() and all(torch.equal(own[k], other[k]) for k in own)
    assert loaded.config == model.config
    model.eval(), loaded.eval()
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
        assert torch.equal(a.product, b.product) and torch.equal(a.lpm_scores, b.lpm_scores)
        for name in model.stream_names:  # and each modality alone
            assert torch.isfinite(loaded(batch, modalities=(name,)).product).all()
