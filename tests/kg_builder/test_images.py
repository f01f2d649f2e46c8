"""Image checks decode real files, with bounded work for huge or hostile ones."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from PIL import Image

from kg_builder.images import MAX_PIXELS, check_image, load_image


@pytest.fixture
def images(tmp_path: Path) -> Path:
    Image.new("RGB", (64, 48), (200, 10, 10)).save(tmp_path / "ok.jpg", quality=90)
    Image.new("RGBA", (32, 32), (0, 0, 255, 128)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.jpg").write_text("not an image")
    return tmp_path


def test_real_jpeg_and_png_decode(images: Path) -> None:
    jpeg = check_image("ok.jpg", images)
    assert (jpeg.status, jpeg.width, jpeg.height) == ("ok", 64, 48)
    assert jpeg.path == str(images / "ok.jpg")
    assert check_image("ok.png", images).status == "ok"
    assert load_image(images / "ok.png").mode == "RGB"


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("missing.jpg", "file not found"),
        ("truncated.jpg", "cannot decode"),
        ("text.jpg", "cannot decode"),
        ("../../etc/passwd", "outside the catalog folder"),
        ("https://example.com/a.jpg", "URL not fetched"),
    ],
)
def test_broken_references_are_missing_with_a_reason(images: Path, reference: str, reason: str) -> None:
    result = check_image(reference, images)
    assert result.status == "missing" and reason in result.reason and result.path is None


def test_no_reference_is_not_an_error(images: Path) -> None:
    assert check_image(None, images).status == "none"
    assert check_image("  ", images).status == "none"


def test_ninety_megapixel_jpeg_is_decoded_at_reduced_scale(tmp_path: Path) -> None:
    Image.new("RGB", (10_000, 9_000), (90, 120, 30)).save(tmp_path / "huge.jpg", quality=40)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = check_image("huge.jpg", tmp_path)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert (result.status, result.width, result.height) == ("ok", 10_000, 9_000)
    assert grown_mib < 100, f"decoding grew the process by {grown_mib:.0f} MiB"
    assert max(load_image(tmp_path / "huge.jpg", max_side=512).size) <= 512


def test_huge_png_is_refused_before_decoding(tmp_path: Path) -> None:
    side = int(MAX_PIXELS**0.5) + 200
    Image.new("1", (side, side)).save(tmp_path / "huge.png")  # 1-bit: small file, huge canvas
    result = check_image("huge.png", tmp_path)
    assert result.status == "missing" and "too large" in result.reason
