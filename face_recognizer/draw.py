"""Pure drawing onto a picture the caller owns: face boxes with labels, a status line, a banner.

Text is drawn with OpenCV's built-in Unicode font (`cv2.FontFace`, OpenCV 5) so names such as
"José" or "李娜" render; with an older OpenCV the Hershey font is used and names are
transliterated to ASCII.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

import cv2
import numpy as np

Color = tuple[int, int, int]
FONT_WEIGHT = 500  # semi-bold: readable over busy backgrounds

# BGR
COLORS: dict[str, Color] = {
    "known": (60, 200, 40),  # green
    "unknown": (30, 90, 240),  # orange-red
    "landmark": (0, 230, 255),  # yellow
    "text": (255, 255, 255),
    "status_bg": (32, 32, 32),
    "banner": (200, 120, 0),  # blue
}


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
    color: Color,
    *,
    landmarks: np.ndarray | None = None,
    reserved_top: int = 0,
) -> None:
    """Box a face and write `label` on a filled tab above it, or below it when there is no
    room above (the top edge, or the `reserved_top` rows a status line covers)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in xyxy)
    thickness = max(2, round(min(h, w) / 300))
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
    if landmarks is not None:
        radius = max(2, thickness)
        for px, py in np.asarray(landmarks).reshape(-1, 2):
            cv2.circle(image, (round(float(px)), round(float(py))), radius, COLORS["landmark"], -1)
    if not label:
        return
    size = int(min(_label_px(image), max(12, (y2 - y1) * 0.4)))  # small faces, small labels
    tw, th = text_size(label, size)
    pad = max(2, size // 6)
    tab_h = th + pad
    top = y1 - tab_h if y1 - tab_h >= reserved_top else min(max(y2, reserved_top), h - tab_h)
    left = min(max(0, x1 - thickness // 2), max(0, w - tw - 2 * pad))
    cv2.rectangle(image, (left, top), (left + tw + 2 * pad, top + tab_h), color, -1)
    put_text(image, label, (left + pad, top + tab_h - pad - size // 5), COLORS["text"], size)


def status_height(image: np.ndarray) -> int:
    """Rows the status line covers at the top of `image`."""
    return int(max(12, _label_px(image) * 3 // 4) * 1.6)


def draw_status(image: np.ndarray, text: str) -> None:
    """A dark status line across the top of the image."""
    size = max(12, _label_px(image) * 3 // 4)
    bar_h = status_height(image)
    top = image[:bar_h]
    top[:] = (top.astype(np.uint16) * 2 // 5 + np.array(COLORS["status_bg"]) * 3 // 5).astype(
        np.uint8
    )
    put_text(image, text, (8, bar_h - size // 2 + 1), COLORS["text"], size)


def draw_banner(image: np.ndarray, text: str, color: Color) -> None:
    """A centred flash message on a filled band."""
    h, w = image.shape[:2]
    size = int(np.clip(min(h, w) / 14, 16, 48))
    tw, th = text_size(text, size)
    pad = size // 2
    x = max(0, (w - tw) // 2)
    y = (h - th) // 2
    cv2.rectangle(image, (x - pad, y - pad), (x + tw + pad, y + th + pad), color, -1)
    put_text(image, text, (x, y + th - size // 4), COLORS["text"], size)
