"""Still images on disk: reading them into BGR arrays, writing them, hashing them, and the
`DIR/<person>/<photos>` layout that `import` and `evaluate` read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from face_recognizer.errors import FaceRecognizerError, ImageReadError

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


def write_image(image: np.ndarray, path: str | Path) -> Path:
    """Write `image` in the format its suffix names (.png, .jpg, ...); folders are created.

    Paths with non-ASCII characters work (encoded in memory, unlike `cv2.imwrite`). Raises
    `FaceRecognizerError` when the file cannot be written.
    """
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(out.suffix, image)
        if not ok:
            raise OSError(f"OpenCV could not encode the picture as {out.suffix}")
        data.tofile(out)
    except (OSError, cv2.error) as exc:
        raise FaceRecognizerError(f"Could not write {out}: {exc}.") from exc
    return out


def file_sha256(path: str | Path) -> str:
    """sha256 hex of a file's bytes (read in chunks): the key that stops a photo being
    enrolled twice."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pixels_sha256(image: np.ndarray) -> str:
    """sha256 hex of an image's pixels: the dedup key of a frame that has no file."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def person_folders(root: Path) -> dict[str, list[Path]]:
    """`root/<person>/<photos>` as {sub-folder name: its image files}, both sorted by name.

    Hidden sub-folders are skipped; a sub-folder without images maps to an empty list.
    """
    return {
        folder.name: sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))
        for folder in sorted(p for p in Path(root).iterdir() if p.is_dir())
        if not folder.name.startswith(".")
    }
