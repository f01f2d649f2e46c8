"""Checking product images without trusting them.

A catalog image may be absent, a URL, a path that escapes the catalog's folder, a
truncated file, or a 90-megapixel photo. Each check here bounds the work it does:
JPEGs are decoded at a reduced scale (libjpeg's DCT scaling via ``Image.draft``),
other formats are refused above a pixel budget before any pixel is decoded.
"""

from __future__ import annotations

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


def resolve_reference(reference: str, base: Path) -> Path | str:
    """The file an image reference points to, or a reason why it is not loaded.

    Relative paths must stay inside ``base`` (the catalog's folder); absolute paths and
    ``file://`` URIs are the user's explicit choice and are accepted; other URLs are never
    fetched.
    """
    parsed = urlparse(reference)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive
        return f"URL not fetched ({parsed.scheme}://)"
    path = Path(reference)
    if path.is_absolute():
        return path
    base = base.resolve()
    resolved = (base / path).resolve()
    if not resolved.is_relative_to(base):
        return f"path escapes the catalog folder {base}"
    return resolved


def check_image(reference: str | None, base: Path) -> ImageCheck:
    """Check that an image exists and decodes, within bounded memory."""
    if reference is None or not reference.strip():
        return NO_IMAGE
    target = resolve_reference(reference.strip(), base)
    if isinstance(target, str):
        return ImageCheck(None, "missing", target)
    if not target.is_file():
        return ImageCheck(None, "missing", f"file not found: {target}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(target) as image:
                return _decode_bounded(image, target)
    except Image.DecompressionBombError as err:
        return ImageCheck(None, "missing", f"too large to decode safely: {err}")
    except (OSError, SyntaxError, ValueError) as err:
        return ImageCheck(None, "missing", f"cannot decode {target.name}: {err}")


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
