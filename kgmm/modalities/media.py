"""Raw media for the extra modalities: a side table of paths, video frames, audio spectrograms.

A graph snapshot holds titles, descriptions and one photo per product. Videos and audio
clips come from a side table (``modality.media``), a CSV with the columns
``product_id,modality,path`` (relative paths are read from the CSV's folder), so the graph
store stays as it is. Decoding is bounded like the photos': a few frames of an animated
GIF/WebP (or of a folder of JPEG frames) at the training size, a few seconds of a WAV.
Anything that does not decode counts as missing, never as an error mid-run.
"""

from __future__ import annotations

import csv
import math
import wave
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageSequence
from torch import Tensor

from ..errors import DataError
from .photos import MEAN, STD

MEDIA_KINDS = ("video", "audio")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
SAMPLE_RATE = 16_000  # audio is resampled to this rate
N_FFT, HOP = 400, 160  # 25 ms windows every 10 ms
MEL_BINS = 32


def read_media_table(path: str | Path, product_ids: list[str]) -> dict[str, list[str | None]]:
    """``modality -> path per product index`` from a ``product_id,modality,path`` CSV.

    Rows naming an unknown product are skipped (the catalog may be a subset); an unknown
    modality or a missing column is a :class:`DataError`.
    """
    path = Path(path)
    index = {pid: i for i, pid in enumerate(product_ids)}
    table: dict[str, list[str | None]] = {kind: [None] * len(product_ids) for kind in MEDIA_KINDS}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"product_id", "modality", "path"} <= set(reader.fieldnames):
                raise DataError(f"{path}: media table needs the columns product_id, modality, path")
            for line, row in enumerate(reader, start=2):
                kind = (row["modality"] or "").strip()
                if kind not in table:
                    raise DataError(f"{path}:{line}: unknown modality {kind!r}; known: {', '.join(MEDIA_KINDS)}")
                if row["product_id"] in index and row["path"]:
                    table[kind][index[row["product_id"]]] = str((path.parent / row["path"]).resolve())
    except OSError as err:
        raise DataError(f"cannot read media table {path}: {err.strerror or err}") from None
    return table


def load_frames(path: str | Path, frames: int, size: int) -> Tensor:
    """``frames`` evenly spaced frames [F', 3, S, S] (normalised, F' <= frames) of a video.

    ``path``: an animated GIF/WebP (every format Pillow reads as a sequence), or a folder
    of still frames taken in name order.

    Raises:
        OSError, ValueError: the media cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        picked = [files[i] for i in _spread(len(files), frames)]
        images = []
        for file in picked:
            with Image.open(file) as image:
                images.append(_frame_tensor(image, size))
    else:
        with Image.open(path) as image:
            count = getattr(image, "n_frames", 1)
            wanted = set(_spread(count, frames))
            images = [_frame_tensor(frame, size) for i, frame in enumerate(ImageSequence.Iterator(image)) if i in wanted]
    if not images:
        raise ValueError(f"{path}: no frames")
    return torch.stack(images)


def _spread(count: int, wanted: int) -> list[int]:
    """Up to ``wanted`` indices spread evenly over ``range(count)``."""
    if count <= wanted:
        return list(range(count))
    return sorted({int(i * count / wanted) for i in range(wanted)})


def _frame_tensor(frame: Image.Image, size: int) -> Tensor:
    rgb = frame.convert("RGB").resize((size, size), Image.BILINEAR)
    pixels = torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255  # [3, S, S]
    return (pixels - MEAN) / STD


def load_wav(path: str | Path, seconds: float) -> Tensor:
    """Mono waveform [n] in [-1, 1] at :data:`SAMPLE_RATE`, at most ``seconds`` long.

    Reads 8/16/32-bit PCM WAV with the standard library (no audio codec dependency).

    Raises:
        OSError, wave.Error, ValueError: not a readable PCM WAV.
    """
    with wave.open(str(path), "rb") as handle:
        rate, channels, width = handle.getframerate(), handle.getnchannels(), handle.getsampwidth()
        raw = handle.readframes(min(handle.getnframes(), math.ceil(seconds * rate)))
    kinds = {1: np.uint8, 2: np.int16, 4: np.int32}
    if width not in kinds or rate <= 0:
        raise ValueError(f"{path}: unsupported WAV ({8 * width}-bit, {rate} Hz)")
    samples = np.frombuffer(raw, dtype=kinds[width]).astype(np.float32)
    if width == 1:
        samples = samples - 128.0
    samples = samples / float(2 ** (8 * width - 1))
    wave_ = torch.from_numpy(samples).view(-1, channels).mean(1)  # [n] mono
    if rate != SAMPLE_RATE and wave_.numel() > 1:
        length = max(1, round(wave_.numel() * SAMPLE_RATE / rate))
        wave_ = F.interpolate(wave_.view(1, 1, -1), size=length, mode="linear", align_corners=False).view(-1)
    return wave_


def log_mel(waveform: Tensor, mels: int = MEL_BINS) -> Tensor:
    """Log-mel spectrogram [mels, T] of a 16 kHz waveform (STFT via torch, no torchaudio)."""
    if waveform.numel() < N_FFT:
        waveform = F.pad(waveform, (0, N_FFT - waveform.numel()))
    spectrum = torch.stft(waveform, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True).abs() ** 2  # [F, T]
    return torch.log(mel_filters(mels) @ spectrum + 1e-6)  # [mels, T]


def mel_filters(mels: int, n_fft: int = N_FFT, rate: int = SAMPLE_RATE) -> Tensor:
    """Triangular mel filterbank [mels, n_fft // 2 + 1] (HTK mel scale)."""
    def to_mel(hz: Tensor) -> Tensor:
        return 2595 * torch.log10(1 + hz / 700)

    edges_mel = torch.linspace(0, float(to_mel(torch.tensor(rate / 2))), mels + 2)
    edges = 700 * (10 ** (edges_mel / 2595) - 1)  # [mels + 2] Hz
    freqs = torch.linspace(0, rate / 2, n_fft // 2 + 1)  # [F]
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - low) / (centre - low)
    falling = (high - freqs) / (high - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0)


class CachedMediaInput:
    """Base of the media-file inputs (video, audio): each product's file decoded once, by
    :meth:`decode`, and cached; a file that fails with one of :attr:`unreadable` counts as missing.

    Args (of subclasses' constructors): ``media``, the media table, gives ``paths`` for :attr:`name`.
    """

    name = ""
    unreadable: tuple[type[BaseException], ...] = (OSError, ValueError)

    def __init__(self, snapshot, media: dict | None) -> None:
        self.paths = (media or {}).get(self.name) or [None] * snapshot.num_products
        self.cache: dict[int, Tensor | None] = {}

    def decode(self, path: str) -> Tensor:
        raise NotImplementedError

    def load(self, product: int) -> Tensor | None:
        if product not in self.cache:
            path = self.paths[product]
            try:
                self.cache[product] = self.decode(path) if path else None
            except self.unreadable:
                self.cache[product] = None
        return self.cache[product]

    def build(self, parts, data, generator: torch.Generator) -> None:
        parts.extra[self.name] = self.make([self.load(p) for p in parts.rows])

    def make(self, clips: list[Tensor | None]):
        raise NotImplementedError
