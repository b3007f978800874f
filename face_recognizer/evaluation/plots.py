"""PNG plots for evaluation reports, drawn with OpenCV and numpy (no matplotlib).

`roc_plot` draws the ROC curve on a log false-accept axis; `histogram_plot` draws the
similarity histograms of same-person and different-person pairs with thresholds marked.
Both return a BGR uint8 image (`images.write_image` writes one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike

from face_recognizer.draw import KNOWN, STRANGER, THRESHOLD
from face_recognizer.types import RocCurve

# The drawing module's palette (Okabe-Ito, colour-blind safe), each colour with its one meaning:
# same-person pairs in the "same person" colour, different-person pairs in the "different
# person" colour, thresholds in the threshold colour (the one in use solid, the suggested one
# dashed or hollow). Every curve and mark is also named in words.
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = (225, 225, 225)
SAME = KNOWN.bgr
DIFFERENT = STRANGER.bgr
THRESHOLD_COLOR = THRESHOLD.bgr
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MARGIN = (80, 70, 30, 60)  # left, top, right, bottom


class _Axes:
    """Maps data coordinates to pixels inside the plot area of a canvas."""

    def __init__(
        self,
        canvas: np.ndarray,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        log_x: bool = False,
    ) -> None:
        self.canvas = canvas
        h, w = canvas.shape[:2]
        left, top, right, bottom = _MARGIN
        self.x0, self.x1, self.y0, self.y1 = left, w - right, h - bottom, top
        self.log_x = log_x
        self.xr = tuple(math.log10(v) for v in x_range) if log_x else x_range
        self.yr = y_range

    def px(self, x: ArrayLike, y: ArrayLike) -> np.ndarray:
        xv = np.asarray(x, dtype=np.float64)
        if self.log_x:
            xv = np.log10(np.maximum(xv, 10 ** self.xr[0]))
        fx = (xv - self.xr[0]) / (self.xr[1] - self.xr[0])
        fy = (np.asarray(y, dtype=np.float64) - self.yr[0]) / (self.yr[1] - self.yr[0])
        return np.stack(
            [self.x0 + fx * (self.x1 - self.x0), self.y0 + fy * (self.y1 - self.y0)], axis=-1
        )

    def frame(self, x_ticks: Sequence[float], y_ticks: Sequence[float], fmt_x: str) -> None:
        for x in x_ticks:
            ((px, _),) = self.px([x], [self.yr[0]])
            cv2.line(self.canvas, (int(px), self.y1), (int(px), self.y0), GRID, 1)
            label = format(x, fmt_x) if fmt_x else f"{x:g}"
            _text(self.canvas, label, (int(px) - 12, self.y0 + 20), 0.45)
        for y in y_ticks:
            ((_, py),) = self.px([10 ** self.xr[0] if self.log_x else self.xr[0]], [y])
            cv2.line(self.canvas, (self.x0, int(py)), (self.x1, int(py)), GRID, 1)
            _text(self.canvas, f"{y:g}", (self.x0 - 45, int(py) + 5), 0.45)
        cv2.rectangle(self.canvas, (self.x0, self.y1), (self.x1, self.y0), BLACK, 1)

    def polyline(
        self, x: np.ndarray, y: np.ndarray, color: tuple[int, int, int], width: int = 2
    ) -> None:
        points = np.round(self.px(x, y)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(self.canvas, [points], False, color, width, cv2.LINE_AA)

    def vline(self, x: float, *, dashed: bool = False) -> None:
        """A threshold line at `x`, solid or dashed (named in the legend, `_legend_line`)."""
        ((px, _),) = self.px([x], [self.yr[0]])
        _dash(self.canvas, (int(px), self.y1), (int(px), self.y0), dashed)


def _dash(canvas: np.ndarray, start: tuple[int, int], end: tuple[int, int], dashed: bool) -> None:
    """A straight threshold-coloured line, in 7-pixel dashes when `dashed`."""
    (x0, y0), (x1, y1) = start, end
    length = max(1, int(math.hypot(x1 - x0, y1 - y0)))
    pieces = range(0, length, 12) if dashed else range(1)
    for a in pieces:
        b = min(length, a + 7) if dashed else length
        p0 = (round(x0 + (x1 - x0) * a / length), round(y0 + (y1 - y0) * a / length))
        p1 = (round(x0 + (x1 - x0) * b / length), round(y0 + (y1 - y0) * b / length))
        cv2.line(canvas, p0, p1, THRESHOLD_COLOR, 3, cv2.LINE_AA)


def _legend_line(canvas: np.ndarray, org: tuple[int, int], dashed: bool, text: str) -> None:
    """A short sample of a threshold line followed by its name, baseline at `org`."""
    x, y = org
    _dash(canvas, (x, y - 5), (x + 26, y - 5), dashed)
    _text(canvas, text, (x + 32, y), 0.45)


def _mark(canvas: np.ndarray, center: tuple[int, int], hollow: bool) -> None:
    """A threshold's dot: filled for the threshold in use, a ring for the suggested one."""
    if hollow:
        cv2.circle(canvas, center, 6, WHITE, -1, cv2.LINE_AA)
        cv2.circle(canvas, center, 6, THRESHOLD_COLOR, 3, cv2.LINE_AA)
    else:
        cv2.circle(canvas, center, 6, THRESHOLD_COLOR, -1, cv2.LINE_AA)
    cv2.circle(canvas, center, 7, BLACK, 1, cv2.LINE_AA)


def _text(
    canvas: np.ndarray,
    text: str,
    origin: tuple[int, int],
    scale: float = 0.5,
    color: tuple[int, int, int] = BLACK,
) -> None:
    cv2.putText(canvas, text, origin, _FONT, scale, color, 1, cv2.LINE_AA)


def _canvas(size_wh: tuple[int, int], title: str, x_label: str, y_label: str) -> np.ndarray:
    w, h = size_wh
    canvas = np.full((h, w, 3), 255, dtype=np.uint8)
    _text(canvas, title, (10, 24), 0.6)
    _text(canvas, x_label, (w // 2 - 60, h - 15), 0.5)
    _text(canvas, y_label, (8, _MARGIN[1] - 8), 0.45)
    return canvas


def roc_plot(
    roc: RocCurve,
    *,
    impostors: int | None = None,
    marks: Sequence[tuple[float, str]] = (),
    title: str = "ROC: same vs different person pairs",
    size_wh: tuple[int, int] = (720, 520),
) -> np.ndarray:
    """The ROC curve on a log false-accept axis from 1 / `impostors` to 1.

    `impostors` different-person scores cannot resolve a false-accept rate below 1 /
    `impostors`, so the axis starts there and the plot says so (default: the size the curve's
    smallest step implies). `marks` are (threshold, label) pairs, each drawn as a dot where
    the curve meets it.
    """
    positive_fpr = roc.fpr[roc.fpr > 0]
    if impostors is None:
        impostors = round(1 / float(positive_fpr.min())) if positive_fpr.size else 1
    low = 1.0 / max(1, impostors)
    if low >= 1.0:
        raise ValueError(f"a ROC needs at least 2 impostor scores, got {impostors}")
    canvas = _canvas(size_wh, title, "false-accept rate (log)", "true-accept rate")
    axes = _Axes(canvas, (low, 1.0), (0.0, 1.0), log_x=True)
    x_ticks = [10.0**e for e in range(math.ceil(math.log10(low) - 1e-9), 1)]
    axes.frame(x_ticks, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "")
    keep = roc.fpr > 0
    # Start the curve at the left edge with the TPR reached before the first false accept.
    first_tpr = float(roc.tpr[~keep].max()) if (~keep).any() else 0.0
    xs = np.r_[low, roc.fpr[keep]]
    ys = np.r_[first_tpr, roc.tpr[keep]]
    axes.polyline(xs, ys, BLACK)
    for row, (threshold, label) in enumerate(marks):
        i = int(np.searchsorted(-roc.thresholds, -threshold, side="right")) - 1
        i = max(0, min(i, roc.fpr.size - 1))
        ((px, py),) = axes.px([max(roc.fpr[i], low)], [roc.tpr[i]])
        _mark(canvas, (int(px), int(py)), hollow=row > 0)
        y = axes.y0 - 20 - 22 * row
        _mark(canvas, (axes.x0 + 160, y - 4), hollow=row > 0)
        text = f"{label} {threshold:.3f}: TAR {roc.tpr[i]:.3f} at FAR {roc.fpr[i]:.4f}"
        _text(canvas, text, (axes.x0 + 175, y), 0.45)
    _text(canvas, f"AUC {roc.auc:.4f}", (axes.x0 + 10, axes.y0 - 20), 0.5)
    note = f"starts at FAR {low:.2g}: {impostors} different-person pairs resolve no lower"
    _text(canvas, note, (10, 44), 0.45)
    return canvas


def histogram_plot(
    same: np.ndarray,
    different: np.ndarray,
    *,
    marks: Sequence[tuple[float, str]] = (),
    bins: int = 50,
    title: str = "Similarity of same-person and different-person pairs",
    size_wh: tuple[int, int] = (720, 520),
) -> np.ndarray:
    """Both similarity histograms (each normalised to its own total) with thresholds marked."""
    same = np.asarray(same, dtype=np.float64).ravel()
    different = np.asarray(different, dtype=np.float64).ravel()
    both = np.r_[same, different]
    lo = math.floor(min(both.min(), 0.0) * 10) / 10 if both.size else -0.2
    hi = math.ceil(max(both.max(), 0.0) * 10) / 10 if both.size else 1.0
    if hi <= lo:
        hi = lo + 0.1
    edges = np.linspace(lo, hi, bins + 1)
    fractions = []
    for values in (same, different):
        counts = np.histogram(values, bins=edges)[0].astype(np.float64)
        fractions.append(counts / max(1.0, counts.sum()))
    top = max(0.05, max(float(f.max()) for f in fractions) * 1.1)
    canvas = _canvas(size_wh, title, "cosine similarity", "fraction of pairs")
    axes = _Axes(canvas, (lo, hi), (0.0, top))
    step = 0.2 if hi - lo > 1.0 else 0.1
    x_ticks = np.round(np.arange(lo, hi + 1e-9, step), 2)
    y_step = 10 ** math.floor(math.log10(top / 2))
    y_ticks = np.round(np.arange(0.0, top, y_step * (2 if top / y_step > 6 else 1)), 4)
    axes.frame(list(x_ticks), list(y_ticks), ".1f")
    for values, color in zip(fractions, (SAME, DIFFERENT), strict=True):
        xs = np.repeat(edges, 2)[1:-1]
        ys = np.repeat(values, 2)
        axes.polyline(np.r_[edges[0], xs, edges[-1]], np.r_[0.0, ys, 0.0], color)
    _text(canvas, f"same person: {same.size} pairs", (axes.x1 - 250, 24), 0.45, SAME)
    _text(canvas, f"different people: {different.size} pairs", (axes.x1 - 250, 44), 0.45, DIFFERENT)
    for row, (threshold, label) in enumerate(marks):
        axes.vline(threshold, dashed=row > 0)
        _legend_line(canvas, (170 + 190 * row, 60), row > 0, f"{label} {threshold:.3f}")
    return canvas
