"""Reading still images from disk into BGR arrays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from face_recognizer.errors import ImageReadError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"}
)


def is_image_path(path: Path) -> bool:
    """True when the file name has a still-image suffix that OpenCV decodes."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as a BGR uint8 array of shape (H, W, 3).

    Greyscale and 4-channel files are converted to 3-channel BGR. Raises `ImageReadError`
    for a missing, unreadable or undecodable file. Paths with non-ASCII characters work
    (the bytes are decoded in memory rather than by `cv2.imread`).
    """
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"Image {str(p)!r} does not exist or is not a file.")
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"Image {str(p)!r} could not be read ({exc.strerror}).") from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ImageReadError(f"Image {str(p)!r} is not a picture OpenCV can decode.")
    if image.dtype != np.uint8:
        peak = float(image.max()) or 1.0  # 16-bit or float files: stretch to 0..255
        image = np.clip(image.astype(np.float32) * (255.0 / peak), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)
