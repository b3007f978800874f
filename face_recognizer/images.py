"""Still images on disk: reading them into BGR arrays, writing them, hashing them, and the
`DIR/<person>/<photos>` layout that `import` and `evaluate` read; and the grey thumbnail of a
video frame that tells a shot cut (the live loop and the liveness step share it)."""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from face_recognizer.errors import FaceRecognizerError, ImageReadError, ImageTooLargeError

_In = TypeVar("_In")
_Out = TypeVar("_Out")

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"}
)


SHOT_CUT_DIFF = 20.0  # mean |difference| (0-255) of 32x18 grey thumbnails that means a new shot


def cut_thumbnail(image: np.ndarray) -> np.ndarray:
    """A 32x18 grey thumbnail of a video frame, for `thumbnail_change` and `is_shot_cut`."""
    h, w = image.shape[:2]
    step = max(1, min(h, w) // 144)  # subsample first: the thumbnail needs no detail
    grey = cv2.cvtColor(np.ascontiguousarray(image[::step, ::step]), cv2.COLOR_BGR2GRAY)
    small: np.ndarray = cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA)
    return small.astype(np.int16)


def thumbnail_change(previous: np.ndarray | None, thumb: np.ndarray) -> float:
    """Mean |difference| (0-255) between two `cut_thumbnail`s: infinite when there is no
    previous one (nothing to compare with), 255 when the frame size changed."""
    if previous is None:
        return float("inf")
    if previous.shape != thumb.shape:
        return 255.0
    return float(np.abs(thumb - previous).mean())


def is_shot_cut(change: float) -> bool:
    """Whether a `thumbnail_change` means the whole picture changed at once (a new shot); the
    first frame (infinite change) is not a cut."""
    return SHOT_CUT_DIFF < change < float("inf")


# Pictures above this many pixels are refused before they are decoded: a 30000x30000 PNG of
# ~100 KB (a "decompression bomb") would otherwise take gigabytes of memory. 50 megapixels
# is a 8660x5773 photo, above what phone and DSLR cameras take (a 45 MP camera still passes).
MAX_PIXELS = 50_000_000


def is_image_path(path: Path) -> bool:
    """True when the file name has a still-image suffix that OpenCV decodes."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as a BGR uint8 array of shape (H, W, 3).

    Greyscale and 4-channel files are converted to 3-channel BGR. Raises `ImageReadError`
    for a missing, unreadable or undecodable file, and for a picture of more than
    `MAX_PIXELS` pixels (refused from its header, before decoding). Paths with non-ASCII
    characters work (the bytes are decoded in memory rather than by `cv2.imread`).
    """
    return decode_image(read_image_bytes(path), f"Image {str(path)!r}")


def read_image_bytes(path: str | Path) -> bytes:
    """The bytes of an image file; `ImageReadError` when it is missing or cannot be read."""
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"Image {str(p)!r} does not exist or is not a file.")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ImageReadError(f"Image {str(p)!r} could not be read ({exc.strerror}).") from exc


def decode_image(data: bytes, what: str = "The image") -> np.ndarray:
    """Decode an encoded picture (the bytes of a JPEG, PNG, ... file) to BGR uint8 (H, W, 3).

    `what` names the picture in errors ("Image 'a.jpg'", "Upload 2"). Raises `ImageReadError`
    when the bytes are not a picture OpenCV decodes, or when the header announces more than
    `MAX_PIXELS` pixels (checked before anything is decoded). Formats whose header is not
    parsed here (see `image_size`) are refused as well: their size cannot be checked.
    """
    size = image_size(data)
    if size is None:
        raise ImageReadError(
            f"{what} is not a picture in a format that can be read "
            "(JPEG, PNG, BMP, WebP, TIFF, PGM/PPM/PBM)."
        )
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError(
            f"{what} is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} "
            "megapixels that can be read safely; scale it down first."
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    except cv2.error:
        image = None
    if image is None:
        raise ImageReadError(f"{what} is not a picture OpenCV can decode.")
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


def photo_tree(root: str | Path, what: str = "The folder") -> dict[str, list[Path]]:
    """`root/<person>/<photos>` as {person: sorted image files}; people without photos left out.

    `what` names the folder in errors. Raises `FaceRecognizerError` when `root` is not a
    folder or has no sub-folder with photos.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise FaceRecognizerError(
            f"{what} {str(folder)!r} is not a folder.",
            hint="Give a folder with one sub-folder of photos per person.",
        )
    people = {name: photos for name, photos in person_folders(folder).items() if photos}
    if not people:
        raise FaceRecognizerError(
            f"{what} {str(folder)!r} has no sub-folders with photos.",
            hint="Lay it out as <folder>/<person name>/<photos>, one sub-folder per person.",
        )
    return people


def prefetch(load: Callable[[_In], _Out], items: Iterable[_In], workers: int = 2) -> Iterator[_Out]:
    """`load(item)` for each item, in order, run up to `4 * workers` items ahead on threads
    (reading and decoding photos while the caller detects faces). `load` must not raise."""
    ahead = max(1, 4 * workers)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="read") as pool:
        queue: deque[Future[_Out]] = deque()
        for item in items:
            queue.append(pool.submit(load, item))
            if len(queue) >= ahead:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


# -- picture sizes from file headers, without decoding -------------------------------------
def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a JPEG, PNG, BMP, WebP, TIFF or PNM file's bytes;
    None when the format is not one of those or its header is cut short."""
    try:
        for sniff, parse in _PARSERS:
            if sniff(data):
                return parse(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        if marker in (0xD9, 0xDA) or length < 2:  # end of image / start of scan before SOF
            return None
        pos += 2 + length
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return abs(int(width)), abs(int(height))


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset : offset + 2])
    found: dict[int, int] = {}
    for i in range(count):
        entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            fmt = order + ("H" if kind == 3 else "I")
            found[tag] = int(struct.unpack(fmt, entry[8 : 8 + struct.calcsize(fmt)])[0])
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    tokens: list[int] = []
    for line in data[2:512].split(b"\n"):
        for token in line.split(b"#", 1)[0].split():
            tokens.append(int(token))
            if len(tokens) == 2:
                return tokens[0], tokens[1]
    return None


_PARSERS = (
    (lambda d: d[:8] == b"\x89PNG\r\n\x1a\n", _png_size),
    (lambda d: d[:2] == b"\xff\xd8", _jpeg_size),
    (lambda d: d[:2] == b"BM", _bmp_size),
    (lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp_size),
    (lambda d: d[:4] in (b"II*\x00", b"MM\x00*"), _tiff_size),
    (
        lambda d: len(d) > 2 and d[:1] == b"P" and d[1:2] in b"123456" and d[2:3].isspace(),
        _pnm_size,
    ),
)
