"""Image references are confined to the catalog's folder whatever their spelling.

Real JPEG files inside and outside the folder, real symlinks (to files, out of the folder, in
a loop) and a real directory: no mocks, the checks touch the filesystem as a build does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from kg_builder.images import OUTSIDE, check_image


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    catalog = tmp_path / "catalog"
    (catalog / "images").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.new("RGB", (16, 12), (10, 200, 10)).save(catalog / "images" / "in.jpg")
    Image.new("RGB", (16, 12), (200, 10, 10)).save(outside / "secret.jpg")
    (catalog / "images" / "link-out.jpg").symlink_to(outside / "secret.jpg")
    (catalog / "images" / "link-in.jpg").symlink_to(catalog / "images" / "in.jpg")
    (catalog / "images" / "loop-a.jpg").symlink_to(catalog / "images" / "loop-b.jpg")
    (catalog / "images" / "loop-b.jpg").symlink_to(catalog / "images" / "loop-a.jpg")
    (catalog / "images" / "folder.jpg").mkdir()
    return {"catalog": catalog, "outside": outside}


def test_image_inside_the_folder_by_relative_absolute_and_file_uri_is_ok(layout: dict[str, Path]) -> None:
    catalog = layout["catalog"]
    for reference in ("images/in.jpg", str(catalog / "images" / "in.jpg"), (catalog / "images" / "in.jpg").as_uri(),
                      "images/../images/in.jpg", "images/link-in.jpg"):
        assert check_image(reference, catalog).status == "ok", reference


@pytest.mark.parametrize(
    "spelling",
    ["absolute", "file_uri", "dotdot", "symlink_out", "etc_shadow", "etc_missing", "file_uri_host"],
)
def test_image_outside_the_catalog_folder_is_refused_without_saying_whether_it_exists(
    layout: dict[str, Path], spelling: str
) -> None:
    secret = layout["outside"] / "secret.jpg"
    reference = {
        "absolute": str(secret),
        "file_uri": secret.as_uri(),
        "dotdot": "../elsewhere/secret.jpg",
        "symlink_out": "images/link-out.jpg",
        "etc_shadow": "/etc/shadow",
        "etc_missing": "/etc/no-such-file-anywhere",
        "file_uri_host": "file://otherhost/etc/passwd",
    }[spelling]
    result = check_image(reference, layout["catalog"])
    assert (result.status, result.reason, result.path) == ("missing", OUTSIDE, None)


def test_image_that_is_a_symlink_loop_is_a_broken_image_not_a_crash(layout: dict[str, Path]) -> None:
    result = check_image("images/loop-a.jpg", layout["catalog"])
    assert result.status == "missing" and result.reason.startswith("symlink loop")


def test_image_that_is_a_directory_says_so(layout: dict[str, Path]) -> None:
    result = check_image("images/folder.jpg", layout["catalog"])
    assert result.status == "missing" and result.reason.startswith("is a directory")


def test_image_that_is_a_fifo_is_not_opened(layout: dict[str, Path]) -> None:
    os.mkfifo(layout["catalog"] / "images" / "pipe.jpg")
    result = check_image("images/pipe.jpg", layout["catalog"])
    assert result.status == "missing" and result.reason.startswith("not a regular file")


def test_image_reference_with_a_nul_byte_is_refused(layout: dict[str, Path]) -> None:
    assert check_image("images/in\x00.jpg", layout["catalog"]).status == "missing"
