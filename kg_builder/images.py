"""Checking product images without trusting them.

A catalog image may be absent, a URL, a path that escapes the catalog's folder, a
truncated file, or a 90-megapixel photo. Each check here bounds the work it does:
JPEGs are decoded at a reduced scale (libjpeg's DCT scaling via ``Image.draft``),
other formats are refused above a pixel budget before any pixel is decoded.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image

MAX_DECODE_SIDE = 1024
"""JPEGs are decoded at the smallest DCT scale whose sides are still at least this."""
MAX_PIXELS = 40_000_000
"""Images of other formats above this many pixels are recorded as missing, not decoded."""
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"}


@dataclass(frozen=True)
class ImageCheck:
    """Outcome of checking one image reference."""

    path: str | None  # absolute path when status is "ok"
    status: str  # "ok", "missing" or "none"
    reason: str | None = None
    width: int | None = None
    height: int | None = None


NO_IMAGE = ImageCheck(None, "none")


OUTSIDE = "outside the catalog folder"
"""The one reason given for any reference outside the folder, whether or not the file exists."""


def resolve_reference(reference: str, base: Path) -> Path | str:
    """The file an image reference points to, or a reason why it is not loaded.

    Every spelling (relative, absolute, ``file://``, ``..``) must land inside ``base``, the
    catalog's folder, both as written and after resolving symlinks; URLs are never fetched.
    A reference outside gets the same reason whether or not its file exists, and the
    filesystem outside the folder is never touched, so a catalog cannot probe the machine.
    """
    parsed = urlparse(reference)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            return OUTSIDE
        reference = unquote(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive
        return f"URL not fetched ({parsed.scheme}://)"
    if "\x00" in reference:
        return "invalid path (NUL byte)"
    try:
        root = Path(os.path.realpath(base))
        lexical = Path(os.path.normpath(os.path.join(os.path.abspath(base), reference)))
        if not (lexical.is_relative_to(os.path.abspath(base)) or lexical.is_relative_to(root)):
            return OUTSIDE
        resolved = Path(os.path.realpath(lexical, strict=False))
    except (OSError, RuntimeError, ValueError) as err:
        if isinstance(err, RuntimeError) or getattr(err, "errno", None) == errno.ELOOP:
            return f"symlink loop: {reference}"
        return f"invalid path: {reference}"
    if not resolved.is_relative_to(root):
        return OUTSIDE
    return resolved


def check_image(reference: str | None, base: Path) -> ImageCheck:
    """Check that an image exists inside the catalog folder and decodes, within bounded memory.

    Never raises: any failure is an image recorded as missing with its reason.
    """
    if reference is None or not reference.strip():
        return NO_IMAGE
    try:
        target = resolve_reference(reference.strip(), base)
        if isinstance(target, str):
            return ImageCheck(None, "missing", target)
        problem = _not_a_file(target, reference.strip())
        if problem is not None:
            return ImageCheck(None, "missing", problem)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(target) as image:
                return _decode_bounded(image, target)
    except Image.DecompressionBombError as err:
        return ImageCheck(None, "missing", f"too large to decode safely: {err}")
    except Exception as err:  # noqa: BLE001 - a hostile file must not stop the build
        name = target.name if isinstance(target, Path) else reference
        return ImageCheck(None, "missing", f"cannot decode {name}: {type(err).__name__}: {err}")


def _not_a_file(target: Path, reference: str) -> str | None:
    """Why ``target`` cannot be opened as an image file, or None when it is a regular file."""
    try:
        mode = os.stat(target).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f"symlink loop: {reference}"
        return f"file not found: {target}"
    if stat.S_ISDIR(mode):
        return f"is a directory: {target}"
    if not stat.S_ISREG(mode):
        return f"not a regular file: {target}"  # a FIFO or device would block or never end
    return None


def _decode_bounded(image: Image.Image, target: Path) -> ImageCheck:
    width, height = image.size
    if image.format not in ALLOWED_FORMATS:
        return ImageCheck(None, "missing", f"unsupported image format {image.format}")
    if image.format == "JPEG":
        image.draft("RGB", (MAX_DECODE_SIDE, MAX_DECODE_SIDE))
    decoded_pixels = image.size[0] * image.size[1]
    if decoded_pixels > MAX_PIXELS:
        return ImageCheck(None, "missing", f"too large to decode safely ({width}x{height} pixels)")
    image.load()
    return ImageCheck(str(target), "ok", None, width, height)


def load_image(path: str | Path, max_side: int = MAX_DECODE_SIDE) -> Image.Image:
    """Decode an already checked image as RGB with bounded memory (for the model's loaders)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))
            elif image.size[0] * image.size[1] > MAX_PIXELS:
                raise ValueError(f"{path}: too large to decode safely ({image.size[0]}x{image.size[1]})")
            rgb = image.convert("RGB")
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side))
    return rgb
