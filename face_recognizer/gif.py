"""An animated GIF written frame by frame: memory stays flat however long the clip.

OpenCV's `imwriteanimation` needs every frame at once (825 frames of 640x360 held 961 MB).
Here each frame is encoded on its own by OpenCV's GIF encoder (`imencode(".gif")`, its own
256-colour palette) and its image block appended to the open file, with that palette as the
frame's local colour table; the file is closed with the GIF trailer.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from face_recognizer.errors import FaceRecognizerError

__all__ = ["GifStream"]

_TRAILER = b"\x3b"
_LOOP_FOREVER = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"


def _skip_blocks(data: bytes, pos: int) -> int:
    """Position after a run of GIF data sub-blocks (length byte + bytes, ended by 0)."""
    while data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _frame_block(gif: bytes) -> tuple[bytes, int, bytes]:
    """(colour table, its size bits, LZW image data with its sub-blocks) of a one-frame GIF."""
    flags = gif[10]
    pos = 13
    table = b""
    bits = 0
    if flags & 0x80:
        bits = flags & 0x07
        size = 3 << (bits + 1)
        table, pos = gif[pos : pos + size], pos + size
    while gif[pos] == 0x21:  # extensions: skipped (ours are written per frame)
        pos = _skip_blocks(gif, pos + 2)
    if gif[pos] != 0x2C:
        raise ValueError("no image block in the encoded GIF frame")
    local = gif[pos + 9]
    pos += 10
    if local & 0x80:  # the frame's own table wins
        bits = local & 0x07
        size = 3 << (bits + 1)
        table, pos = gif[pos : pos + size], pos + size
    if not table:
        raise ValueError("the encoded GIF frame has no colour table")
    start = pos
    end = _skip_blocks(gif, pos + 1)  # after the LZW minimum code size byte
    return table, bits, gif[start:end]


class GifStream:
    """Appends (H, W, 3) uint8 BGR frames of one size to an animated GIF file, looping forever.

    Raises `FaceRecognizerError` when the file cannot be written or a frame not encoded.
    """

    def __init__(self, path: Path, size_wh: tuple[int, int], fps: float) -> None:
        self.path = Path(path)
        self.size_wh = size_wh
        self.delay_cs = max(2, round(100.0 / fps))  # browsers treat 0-1 cs as 10 cs
        self.frames = 0
        try:
            self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - kept open
            w, h = size_wh
            # logical screen: no global colour table (each frame brings its own)
            self._file.write(b"GIF89a" + struct.pack("<HHBBB", w, h, 0x70, 0, 0))
            self._file.write(_LOOP_FOREVER)
        except OSError as exc:
            raise FaceRecognizerError(f"Cannot write the GIF {str(self.path)!r}: {exc}") from exc

    def write(self, image: np.ndarray) -> None:
        if self._file is None:
            raise ValueError("the GIF is closed")
        h, w = image.shape[:2]
        if (w, h) != self.size_wh:
            raise ValueError(f"frame is {w}x{h}, the GIF {self.size_wh[0]}x{self.size_wh[1]}")
        ok, encoded = cv2.imencode(".gif", np.ascontiguousarray(image))
        if not ok:
            raise FaceRecognizerError(f"OpenCV cannot encode a frame of {str(self.path)!r}.")
        table, bits, pixels = _frame_block(encoded.tobytes())
        control = b"\x21\xf9\x04" + struct.pack("<BHBB", 0x04, self.delay_cs, 0, 0)
        descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0x80 | bits)
        try:
            self._file.write(control + descriptor + table + pixels)
        except OSError as exc:
            raise FaceRecognizerError(f"Cannot write the GIF {str(self.path)!r}: {exc}") from exc
        self.frames += 1

    def close(self) -> None:
        """Write the trailer and close the file (a second call does nothing)."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.write(_TRAILER)
        finally:
            file.close()
