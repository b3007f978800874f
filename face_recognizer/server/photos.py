"""Uploaded photos: bytes -> BGR pixels, refusing what could hurt the server.

Limits are checked before any pixel is decoded: the byte size (a larger upload is refused
with 413 before it is parsed, see `app.BodyLimit`) and the pixel count read from the file's
header (a 30000x30000 PNG of 100 KB would need 2.7 GB decoded). Pillow reads the header and
decodes; a truncated or damaged file is an error rather than a half-grey picture (OpenCV's
decoder returns those silently).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MAX_UPLOAD_MB = 10.0
DEFAULT_MAX_MEGAPIXELS = 50.0
# What browsers, phones and cameras send; Pillow's other plugins (EPS, PSD, ...) stay off.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "PPM")
FORMAT_NAMES = "JPEG, PNG, WebP, BMP, TIFF, GIF or PPM"


class PhotoError(Exception):
    """A photo that cannot be used; `status` is the HTTP status it earns (400, 413, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded photo: a label for messages (its file name, or "photo 2") and its bytes."""

    label: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Limits:
    """Upload limits: bytes per photo and decoded pixels per photo."""

    max_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1_000_000)
    max_pixels: int = int(DEFAULT_MAX_MEGAPIXELS * 1_000_000)

    def check_size(self, upload: Upload) -> None:
        """PhotoError 413 when the photo is larger than `max_bytes`."""
        if len(upload.data) > self.max_bytes:
            raise PhotoError(
                413,
                f"{upload.label} is {len(upload.data) / 1e6:.1f} MB, more than the "
                f"{self.max_bytes / 1e6:g} MB a photo may have.",
            )


def decode_photo(upload: Upload, limits: Limits) -> np.ndarray:
    """The photo as a BGR uint8 array (H, W, 3).

    Raises PhotoError: 413 over the byte limit, 422 over the pixel limit (checked from the
    header, before decoding), 400 for anything that is not a whole picture in a known format.
    """
    from PIL import Image, UnidentifiedImageError

    limits.check_size(upload)
    if not upload.data:
        raise PhotoError(400, f"{upload.label} is empty.")
    Image.MAX_IMAGE_PIXELS = None  # the limit is ours, checked below with a clear message
    try:
        with Image.open(io.BytesIO(upload.data), formats=FORMATS) as img:
            w, h = img.size
            if w * h > limits.max_pixels:
                raise PhotoError(
                    422,
                    f"{upload.label} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels), more "
                    f"than the {limits.max_pixels / 1e6:g} megapixels a photo may have.",
                )
            img.load()  # a truncated file raises here
            pixels = _to_bgr(img)
    except UnidentifiedImageError:
        raise PhotoError(400, f"{upload.label} is not a picture ({FORMAT_NAMES}).") from None
    except PhotoError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).rstrip(".") or type(exc).__name__
        raise PhotoError(
            400, f"{upload.label} could not be decoded ({reason}); it may be truncated or damaged."
        ) from None
    return pixels


def _to_bgr(img: Image.Image) -> np.ndarray:
    """Any Pillow image mode as 3-channel BGR uint8 (16-bit and float stretched to 0..255)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        grey = np.asarray(img, dtype=np.float32)
        peak = float(grey.max()) or 1.0
        grey8 = np.clip(grey * (255.0 / peak), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[:, :, None], 3, axis=2))
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])
