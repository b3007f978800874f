"""Pure drawing onto a picture the caller owns: face boxes with labels, a status line, a banner.

Text is drawn with OpenCV's built-in Unicode font (`cv2.FontFace`, OpenCV 5) so names such as
"José" or "李娜" render; with an older OpenCV the Hershey font is used and names are
transliterated to ASCII.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

Color = tuple[int, int, int]
"""A colour as OpenCV takes it: (blue, green, red), 0-255."""
FONT_WEIGHT = 500  # semi-bold: readable over busy backgrounds


@dataclass(frozen=True, slots=True)
class Swatch:
    """One colour of the palette and the one thing it means, in every window, written
    picture and plot. The state is always written in words too (a name, "Unknown",
    "same"), so nobody has to tell colours apart.

    Attributes:
        meaning: what the colour says, in words (for legends and documents).
        hex: "#RRGGBB" (matplotlib, HTML).
    """

    meaning: str
    hex: str

    @property
    def rgb(self) -> Color:
        """(red, green, blue), 0-255."""
        return (int(self.hex[1:3], 16), int(self.hex[3:5], 16), int(self.hex[5:7], 16))

    @property
    def bgr(self) -> Color:
        """(blue, green, red), 0-255: what OpenCV draws with."""
        r, g, b = self.rgb
        return (b, g, r)

    @property
    def rgb01(self) -> tuple[float, float, float]:
        """(red, green, blue), 0-1: what matplotlib takes."""
        r, g, b = self.rgb
        return (r / 255, g / 255, b / 255)

    @property
    def ink(self) -> Color:
        """BGR of the text written on this colour: black on light colours, else white."""
        r, g, b = self.rgb
        return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


# Okabe & Ito's colour-blind-safe palette (https://jfly.uni-koeln.de/color/): eight colours
# that people with any of the common colour vision deficiencies tell apart.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
# One meaning per colour, named here once.
KNOWN = Swatch("a known person; the same person", OKABE_ITO["bluish green"])
STRANGER = Swatch("nobody in the gallery; a different person", OKABE_ITO["vermillion"])
VISITOR = Swatch("a stranger who came back (a visitor)", OKABE_ITO["reddish purple"])
PROBLEM = Swatch("cannot be used, with the reason", OKABE_ITO["orange"])
NOTICE = Swatch("a message: saved, mode changed", OKABE_ITO["blue"])
LANDMARK = Swatch("face landmarks", OKABE_ITO["yellow"])
THRESHOLD = Swatch("the decision threshold", OKABE_ITO["sky blue"])
IGNORED = Swatch("a face that does not count (too small, not chosen)", "#969696")
TEXT: Color = (255, 255, 255)
STATUS_BG: Color = (32, 32, 32)
PALETTE = (KNOWN, STRANGER, VISITOR, PROBLEM, NOTICE, LANDMARK, THRESHOLD, IGNORED)


@functools.lru_cache(maxsize=1)
def _font_face() -> Any | None:
    face_cls = getattr(cv2, "FontFace", None)
    if face_cls is None:
        return None
    try:
        return face_cls("sans")
    except cv2.error:  # pragma: no cover - OpenCV built without the font
        return None


def ascii_text(text: str) -> str:
    """`text` with accents stripped and other non-ASCII characters replaced by '?'."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.encode("ascii", "replace").decode("ascii")


def text_size(text: str, size_px: int) -> tuple[int, int]:
    """(width, height) in pixels that `put_text` will use for `text` at `size_px`."""
    face = _font_face()
    if face is not None:
        rect = cv2.getTextSize((0, 0), text, (0, 0), face, size_px, FONT_WEIGHT)
        return int(rect[2]), int(size_px * 1.25)
    scale = size_px / 22.0
    (w, _), _ = cv2.getTextSize(ascii_text(text), cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return int(w), int(size_px * 1.25)


def put_text(
    image: np.ndarray, text: str, org: tuple[int, int], color: Color, size_px: int
) -> None:
    """Draw `text` with its baseline-left corner at `org` (x, y)."""
    face = _font_face()
    x, y = int(org[0]), int(org[1])
    if face is not None:
        cv2.putText(image, text, (x, y), color, face, size_px, FONT_WEIGHT)
        return
    scale = size_px / 22.0
    thickness = max(1, round(scale * 1.5))
    cv2.putText(
        image, ascii_text(text), (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness,
        cv2.LINE_AA,
    )  # fmt: skip


def _label_px(image: np.ndarray) -> int:
    return int(np.clip(min(image.shape[:2]) / 24, 12, 32))


def draw_box(
    image: np.ndarray,
    xyxy: Any,
    label: str,
    swatch: Swatch,
    *,
    landmarks: np.ndarray | None = None,
    reserved_top: int = 0,
) -> None:
    """Box a face and write `label` on a filled tab above it, or below it when there is no
    room above (the top edge, or the `reserved_top` rows a status line covers)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in xyxy)
    thickness = max(2, round(min(h, w) / 300))
    color = swatch.bgr
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
    if landmarks is not None:
        radius = max(2, thickness)
        for px, py in np.asarray(landmarks).reshape(-1, 2):
            cv2.circle(image, (round(float(px)), round(float(py))), radius, LANDMARK.bgr, -1)
    if not label:
        return
    size = int(min(_label_px(image), max(12, (y2 - y1) * 0.4)))  # small faces, small labels
    tw, th = text_size(label, size)
    pad = max(2, size // 6)
    tab_h = th + pad
    top = y1 - tab_h if y1 - tab_h >= reserved_top else min(max(y2, reserved_top), h - tab_h)
    left = min(max(0, x1 - thickness // 2), max(0, w - tw - 2 * pad))
    cv2.rectangle(image, (left, top), (left + tw + 2 * pad, top + tab_h), color, -1)
    put_text(image, label, (left + pad, top + tab_h - pad - size // 5), swatch.ink, size)


def status_height(image: np.ndarray) -> int:
    """Rows the status line covers at the top of `image`."""
    return int(max(12, _label_px(image) * 3 // 4) * 1.6)


def draw_status(image: np.ndarray, text: str) -> None:
    """A dark status line across the top of the image."""
    size = max(12, _label_px(image) * 3 // 4)
    bar_h = status_height(image)
    top = image[:bar_h]
    top[:] = (top.astype(np.uint16) * 2 // 5 + np.array(STATUS_BG) * 3 // 5).astype(np.uint8)
    put_text(image, text, (8, bar_h - size // 2 + 1), TEXT, size)


def draw_banner(image: np.ndarray, text: str, swatch: Swatch = NOTICE) -> None:
    """A centred flash message on a filled band."""
    h, w = image.shape[:2]
    size = int(np.clip(min(h, w) / 14, 16, 48))
    tw, th = text_size(text, size)
    pad = size // 2
    x = max(0, (w - tw) // 2)
    y = (h - th) // 2
    cv2.rectangle(image, (x - pad, y - pad), (x + tw + pad, y + th + pad), swatch.bgr, -1)
    put_text(image, text, (x, y + th - size // 4), swatch.ink, size)
