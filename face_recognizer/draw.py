"""Pure drawing onto a picture the caller owns: face boxes with labels (one label placer for
every window and written picture), a status line, a banner.

Text is drawn with OpenCV's built-in Unicode font (`cv2.FontFace`, OpenCV 5) so names such as
"José" or "李娜" render; with an older OpenCV the Hershey font is used and names are
transliterated to ASCII.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
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


Rect = tuple[int, int, int, int]
"""A rectangle in pixels: (x1, y1, x2, y2), x2 and y2 exclusive."""


@dataclass(frozen=True, slots=True)
class Label:
    """One face to draw: its box, the words on its tab, its colour, and optionally its
    landmarks ((K, 2) pixels; drawn under every tab) and a `picture` (BGR) shown in its tab
    beside the name (`recognize --show-match`: the enrolled photo it matched)."""

    xyxy: tuple[float, float, float, float]
    text: str
    swatch: Swatch
    landmarks: np.ndarray | None = None
    picture: np.ndarray | None = None


def intersects(a: Rect, b: Rect) -> bool:
    """True when rectangles `a` and `b` share at least one pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _overlaps(candidates: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """(C, R) pixel areas shared by each candidate and each rect (both (N, 4) xyxy)."""
    if not len(rects):
        return np.zeros((len(candidates), 0))
    c, r = candidates[:, None, :], rects[None, :, :]
    w = np.minimum(c[..., 2], r[..., 2]) - np.maximum(c[..., 0], r[..., 0])
    h = np.minimum(c[..., 3], r[..., 3]) - np.maximum(c[..., 1], r[..., 1])
    area: np.ndarray = np.clip(w, 0, None) * np.clip(h, 0, None)
    return area


def _candidates(box: Rect, size_wh: tuple[int, int], reach: int) -> np.ndarray:
    """Places for a (w, h) tab near `box`: just above it, just below it, then shifted
    further away and sideways (up to `reach` steps of half a tab)."""
    x1, y1, _, y2 = box
    w, h = size_wh
    x_step, y_step = max(4, w // 4), max(2, h // 2)
    xs = x1 + x_step * np.arange(-reach, reach + 1)
    ys = np.concatenate(
        [y1 - h - y_step * np.arange(reach + 1), y2 + y_step * np.arange(reach + 1)]
    )
    gx, gy = np.meshgrid(xs, ys)
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.int64)
    rects: np.ndarray = np.concatenate([xy, xy + np.array([w, h])], axis=1)
    return rects


def place(
    boxes: Sequence[Rect],
    sizes_wh: Sequence[tuple[int, int]],
    image_wh: tuple[int, int],
    *,
    reserved_top: int = 0,
    reserved_bottom: int = 0,
) -> list[Rect]:
    """Where to put a tab of `sizes_wh[i]` for each face box `boxes[i]`, in order (the first
    ones get the best places): just above its box, below when there is no room, else
    shifted further and sideways until it overlaps no tab placed before it, lies inside the
    picture and off the `reserved_top`/`reserved_bottom` rows (the status and key lines).
    Among the free places it takes the nearest, counting a face it would cover as a detour
    of three tab heights.

    Only when the picture has no free place left for one does its tab go to its first
    choice anyway (then it may overlap).
    """
    width, height = image_wh
    faces = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    placed: list[Rect] = []
    for box, (w, h) in zip(boxes, sizes_wh, strict=True):
        w, h = min(int(w), width), min(int(h), max(1, height - reserved_top - reserved_bottom))
        x1, y1, _, y2 = box
        found = None
        for reach in (6, 40):  # near the face first, then anywhere around it
            cand = _candidates(box, (w, h), reach)
            slide = np.clip(cand[:, 0], 0, width - w) - cand[:, 0]  # inside the picture
            cand[:, 0] += slide
            cand[:, 2] += slide
            ok = (cand[:, 1] >= reserved_top) & (cand[:, 3] <= height - reserved_bottom)
            if placed:
                ok &= ~(_overlaps(cand, np.asarray(placed)) > 0).any(axis=1)
            if not ok.any():
                continue
            cand = cand[ok]
            above = np.abs(cand[:, 1] - (y1 - h))
            below = np.abs(cand[:, 1] - y2) + h // 2  # below: a little worse than above
            detour = np.abs(cand[:, 0] - x1) + np.minimum(above, below)
            own = _overlaps(cand, np.asarray([box])).ravel()
            covered = (_overlaps(cand, faces).sum(axis=1) - own + 2 * own) / max(1, w * h)
            found = tuple(int(v) for v in cand[int(np.argmin(detour + covered * 8 * h))])
            break
        if found is None:  # no room anywhere: the first choice
            left = int(np.clip(x1, 0, width - w))
            top = int(np.clip(y1 - h, reserved_top, max(reserved_top, height - h)))
            found = (left, top, left + w, top + h)
        placed.append(found)  # type: ignore[arg-type]
    return placed


def _tab_size_px(image: np.ndarray, box: Rect) -> int:
    return int(min(_label_px(image), max(12, (box[3] - box[1]) * 0.4)))  # small faces, small tabs


def _leader(image: np.ndarray, box: Rect, rect: Rect, color: Color) -> None:
    """A thin line from a tab placed away from its face to the face's box."""
    gap_x = max(rect[0] - box[2], box[0] - rect[2], 0)
    gap_y = max(rect[1] - box[3], box[1] - rect[3], 0)
    if gap_x <= 3 and gap_y <= 3:
        return
    cx = int(np.clip((rect[0] + rect[2]) // 2, box[0], box[2]))
    cy = int(np.clip((rect[1] + rect[3]) // 2, box[1], box[3]))
    px = int(np.clip(cx, rect[0], rect[2] - 1))
    py = int(np.clip(cy, rect[1], rect[3] - 1))
    cv2.line(image, (px, py), (cx, cy), color, max(1, (rect[3] - rect[1]) // 12), cv2.LINE_AA)


def draw_labels(
    image: np.ndarray,
    labels: Sequence[Label],
    *,
    reserved_top: int = 0,
    reserved_bottom: int = 0,
) -> list[Rect]:
    """Draw every face of `labels` with the one label placer: boxes first, then landmarks,
    then the name tabs on top (placed by `place`: no two overlap, none covers the
    `reserved_top`/`reserved_bottom` rows). A label's `picture` goes into its tab, left of
    the name. Earlier labels get the best places. Returns the tabs' rectangles, in the order
    of `labels` (an empty text has no tab: (0, 0, 0, 0))."""
    h, w = image.shape[:2]
    thickness = max(2, round(min(h, w) / 300))
    boxes: list[Rect] = []
    for label in labels:
        x1, y1, x2, y2 = (round(float(v)) for v in label.xyxy)
        boxes.append((x1, y1, x2, y2))
        cv2.rectangle(image, (x1, y1), (x2, y2), label.swatch.bgr, thickness, cv2.LINE_AA)
    for label in labels:
        if label.landmarks is not None:
            radius = max(2, thickness)
            for px, py in np.asarray(label.landmarks).reshape(-1, 2):
                cv2.circle(image, (round(float(px)), round(float(py))), radius, LANDMARK.bgr, -1)
    shown = [i for i, label in enumerate(labels) if label.text]
    layouts = [_tab_layout(image, labels[i], boxes[i]) for i in shown]
    tabs = place(
        [boxes[i] for i in shown], [lay[0] for lay in layouts], (w, h),
        reserved_top=reserved_top, reserved_bottom=reserved_bottom,
    )  # fmt: skip
    out: list[Rect] = [(0, 0, 0, 0)] * len(labels)
    for i, rect in zip(shown, tabs, strict=True):
        out[i] = rect
        _leader(image, boxes[i], rect, labels[i].swatch.bgr)
    for i, rect, (_, size, side) in zip(shown, tabs, layouts, strict=True):
        swatch, label = labels[i].swatch, labels[i]
        pad = max(2, size // 6)
        cv2.rectangle(image, rect[:2], (rect[2] - 1, rect[3] - 1), swatch.bgr, -1)
        x = rect[0] + pad
        if label.picture is not None and side:
            room = min(side, rect[3] - rect[1] - 2 * pad, rect[2] - rect[0] - 2 * pad)
            if room > 0:
                photo = cv2.resize(label.picture, (room, room), interpolation=cv2.INTER_AREA)
                image[rect[1] + pad : rect[1] + pad + room, x : x + room] = photo
                x += room + pad
        baseline = (rect[1] + rect[3]) // 2 + size // 2 - size // 8
        put_text(image, label.text, (x, baseline), swatch.ink, size)
    return out


def _tab_layout(image: np.ndarray, label: Label, box: Rect) -> tuple[tuple[int, int], int, int]:
    """((width, height) of a label's tab, its text size, the side of its picture or 0)."""
    size = _tab_size_px(image, box)
    tw, th = text_size(label.text, size)
    pad = max(2, size // 6)
    if label.picture is None:
        return (tw + 2 * pad, th + pad), size, 0
    side = max(48, 3 * size)
    return (side + tw + 3 * pad, side + 2 * pad), size, side


def draw_box(
    image: np.ndarray,
    xyxy: Any,
    label: str,
    swatch: Swatch,
    *,
    landmarks: np.ndarray | None = None,
    reserved_top: int = 0,
) -> None:
    """Box one face and write `label` on a filled tab above it, or below it when there is
    no room above (the top edge, or the `reserved_top` rows a status line covers); several
    faces: `draw_labels`, so that their tabs do not overlap."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    draw_labels(
        image, [Label((x1, y1, x2, y2), label, swatch, landmarks)], reserved_top=reserved_top
    )


def status_height(image: np.ndarray) -> int:
    """Rows the status line covers at the top of `image`."""
    return int(max(12, _label_px(image) * 3 // 4) * 1.6)


def _line_size(image: np.ndarray, text: str) -> int:
    """The text size for a status or key line: smaller (down to 9 px) for a long line."""
    size = max(12, _label_px(image) * 3 // 4)
    room = image.shape[1] - 16
    while size > 9 and text_size(text, size)[0] > room:
        size -= 1
    return size


def draw_status(image: np.ndarray, text: str) -> None:
    """A dark status line across the top of the image."""
    size = _line_size(image, text)
    bar_h = status_height(image)
    _darken(image[:bar_h])
    put_text(image, text, (8, bar_h // 2 + size // 2 - size // 8), TEXT, size)


def draw_keys(image: np.ndarray, text: str) -> None:
    """The key line: a dark band across the bottom (`status_height` rows) with `text`."""
    size = _line_size(image, text)
    bar_h = status_height(image)
    h = image.shape[0]
    _darken(image[h - bar_h :])
    put_text(image, text, (8, h - bar_h // 2 + size // 2 - size // 8), TEXT, size)


def _darken(band: np.ndarray) -> None:
    band[:] = (band.astype(np.uint16) * 2 // 5 + np.array(STATUS_BG) * 3 // 5).astype(np.uint8)


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


def _note_px(image: np.ndarray) -> int:
    return int(np.clip(min(image.shape[:2]) / 24, 14, 32))


def note_height(image: np.ndarray) -> int:
    """Rows a `draw_note` tab covers (a second note goes that far above the first)."""
    size = _note_px(image)
    return text_size("", size)[1] + 2 * (size // 3)


def draw_note(image: np.ndarray, text: str, swatch: Swatch = NOTICE, *, above: int = 0) -> None:
    """A short line on a filled tab at the bottom left, or `above` rows higher."""
    h = image.shape[0] - above
    size = _note_px(image)
    tw, th = text_size(text, size)
    pad = size // 3
    top = h - th - 2 * pad
    image[top:h, : tw + 2 * pad] = swatch.bgr
    put_text(image, text, (pad, h - pad - size // 4), swatch.ink, size)
