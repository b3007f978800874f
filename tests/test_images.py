"""Reading pictures: sizes from headers, and decompression bombs refused before decoding."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recognizer.errors import ImageReadError
from face_recognizer.images import MAX_PIXELS, decode_image, image_size, read_image
from face_recognizer.samples import sample_path


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_bomb_png(path: Path, side: int = 30000) -> Path:
    """A side x side 1-bit black PNG: ~110 KB on disk, 2.7 GB as a decoded BGR array."""
    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp", ".tif", ".pgm", ".ppm"])
def test_image_size_reads_the_header_of_each_format(suffix: str) -> None:
    image = cv2.imread(str(sample_path("yaoming.jpg")))
    h, w = image.shape[:2]
    if suffix == ".pgm":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    ok, data = cv2.imencode(suffix, image)
    assert ok
    assert image_size(data.tobytes()) == (w, h)
    assert decode_image(data.tobytes()).shape == (h, w, 3)


def test_progressive_jpeg_size() -> None:
    image = cv2.imread(str(sample_path("yaoming.jpg")))
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    assert image_size(data.tobytes()) == (image.shape[1], image.shape[0])


def test_text_and_truncated_files_are_not_pictures(tmp_path: Path) -> None:
    assert image_size(b"hello, world") is None
    assert image_size(b"\x89PNG\r\n\x1a\n\x00") is None
    note = tmp_path / "note.jpg"
    note.write_text("not a picture")
    with pytest.raises(ImageReadError, match="not a picture"):
        read_image(note)


def test_decompression_bomb_refused_with_one_sentence(tmp_path: Path) -> None:
    bomb = write_bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200_000
    assert image_size(bomb.read_bytes()) == (30000, 30000)
    with pytest.raises(ImageReadError) as err:
        read_image(bomb)
    message = str(err.value)
    assert "30000x30000" in message
    assert f"{MAX_PIXELS // 1_000_000} megapixels" in message
    assert message.count(". ") == 0
    assert message.endswith(".")


def test_decompression_bomb_uses_little_memory(tmp_path: Path) -> None:
    """In a fresh process, refusing the 30000x30000 PNG raises the peak memory by under
    100 MB (decoding it would take 2.7 GB)."""
    bomb = write_bomb_png(tmp_path / "bomb.png")
    script = (
        "import resource, sys\n"
        "from face_recognizer.errors import ImageReadError\n"
        "from face_recognizer.images import read_image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    read_image(sys.argv[1])\n"
        "except ImageReadError:\n"
        "    pass\n"
        "else:\n"
        "    sys.exit('not refused')\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(bomb)], capture_output=True, text=True, check=True
    )
    grown_kb = int(out.stdout.strip())
    assert grown_kb < 100_000, f"peak memory grew by {grown_kb} KB"


def test_picture_just_under_the_limit_is_read() -> None:
    side = 1000
    ok, data = cv2.imencode(".png", np.zeros((side, side), np.uint8))
    assert ok
    assert decode_image(data.tobytes(), "Upload 1").shape == (side, side, 3)
