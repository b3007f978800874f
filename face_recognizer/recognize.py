"""The recognition session: source -> detect -> track -> embed when needed -> match -> draw.

`Recognizer.process(frame)` labels one frame: stills are detected, embedded and matched face by
face; video frames go through the `Tracker`, which embeds only new, uncertain or stale tracks.
A hard shot cut (the whole picture changes at once) resets the tracker so a track never
carries one person's name onto the next shot's face.

`run(...)` is the loop the `recognize` and `demo` commands run: it reads a `FrameSource`,
draws the labels and a status line, and hands the result to a window, a video/GIF writer and
a callback (the CLI prints `--json` lines there). Nothing here prints.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from face_recognizer.draw import COLORS, draw_box, draw_status
from face_recognizer.errors import FaceRecognizerError
from face_recognizer.sources import FrameSource
from face_recognizer.tracker import Tracker, label_stills
from face_recognizer.types import Frame, FrameResult, Match, Track
from face_recognizer.window import CLOSE, LIVE_KEYS, QUIT, Viewer

WINDOW_TITLE = "face-recognizer"
KEYS = LIVE_KEYS  # Q or Esc quit, S saves a snapshot, L toggles landmarks
SHOT_CUT_DIFF = 20.0  # mean |difference| (0-255) of 32x18 grey thumbnails that means a new shot
REFRESH_SECONDS = 1.0  # how often the gallery is checked for changes by other processes
FULL_DETECT_EVERY = 10  # video frames between two detections at the full --det-size
COARSE_MIN_FACE_PX = 24  # smallest face (detector-input pixels) that the coarse pass may carry


def _thumbnail(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    step = max(1, min(h, w) // 144)  # subsample first: the thumbnail needs no detail
    grey = cv2.cvtColor(np.ascontiguousarray(image[::step, ::step]), cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA).astype(np.int16)


class Recognizer:
    """Labels frames with the names of the people in a matcher's gallery.

    Args:
        engine: an `Engine` (detect, align, embed).
        matcher: a `Matcher` (or anything with `match(embeddings) -> list[Match]`,
            `refresh()`, `people_count`).
        tracker: the tracker for video frames; a default `Tracker()` when None.
    """

    def __init__(self, engine: Any, matcher: Any, tracker: Tracker | None = None) -> None:
        self.engine = engine
        self.matcher = matcher
        self.tracker = tracker or Tracker()
        self.embedded_total = 0
        self._previous: np.ndarray | None = None
        self._last_refresh = time.monotonic()
        self._since_full = FULL_DETECT_EVERY  # the next video frame gets a full detection
        self._last_count = 0
        self.coarse_frames = 0

    def reset(self) -> None:
        """Forget tracks and the previous frame (a new source)."""
        self.tracker.reset()
        self._previous = None
        self._since_full = FULL_DETECT_EVERY

    def _detect_video(self, image: np.ndarray) -> Any:
        """Detect at half the input size when the faces in view are big enough for it.

        A full-size detection runs every `FULL_DETECT_EVERY` frames (new, small faces are
        found there) and whenever the half-size pass finds fewer faces than the frame before
        or a face too small for it, so no face is lost to the cheaper pass.
        """
        full = self.engine.det_size
        coarse = max(160, full // 64 * 32)
        scale = coarse / max(image.shape[:2])

        def fits_coarse(detections: Any) -> bool:
            return not len(detections) or (
                float(detections.box_wh.min()) * scale >= COARSE_MIN_FACE_PX
            )

        if self._since_full < FULL_DETECT_EVERY and coarse < full:
            detections = self.engine.detect(image, det_size=coarse)
            if fits_coarse(detections) and len(detections) >= self._last_count:
                self._since_full += 1
                self._last_count = len(detections)
                self.coarse_frames += 1
                return detections
        detections = self.engine.detect(image)
        # with a face too small for the coarse pass in view, stay at full size
        self._since_full = 0 if fits_coarse(detections) else FULL_DETECT_EVERY
        self._last_count = len(detections)
        return detections

    def _identify(self, image: np.ndarray, detections: Any, indices: np.ndarray) -> list[Match]:
        subset = detections[indices]
        faces = self.engine.embed(image, subset)
        self.embedded_total += len(subset)
        return list(self.matcher.match(faces.embeddings))

    def _refresh_gallery(self) -> None:
        now = time.monotonic()
        if now - self._last_refresh >= REFRESH_SECONDS:
            self._last_refresh = now
            if self.matcher.refresh():
                self.tracker.reset()  # names may have changed: vote afresh

    def process(self, frame: Frame, *, still: bool = False) -> FrameResult:
        """Detect, track and label the faces of one frame."""
        self._refresh_gallery()
        image = frame.image
        if still:
            detections = self.engine.detect(image)
            matches = self._identify(image, detections, np.arange(len(detections)))
            faces: tuple[Track, ...] = label_stills(detections, matches)
            return FrameResult(frame.index, frame.source, faces, len(detections))
        thumb = _thumbnail(image)
        if self._previous is not None and (
            self._previous.shape != thumb.shape
            or float(np.abs(thumb - self._previous).mean()) > SHOT_CUT_DIFF
        ):
            self.tracker.reset()
            self._since_full = FULL_DETECT_EVERY
        self._previous = thumb
        detections = self._detect_video(image)
        before = self.embedded_total
        faces = self.tracker.update(detections, lambda idx: self._identify(image, detections, idx))
        return FrameResult(frame.index, frame.source, faces, self.embedded_total - before)


def annotate(
    image: np.ndarray, result: FrameResult, *, landmarks: bool = False, status: str | None = None
) -> None:
    """Draw every face of `result` (name and similarity, or Unknown) and a status line."""
    for face in sorted(result.faces, key=lambda f: f.is_known):  # names drawn on top
        if face.is_known:
            label, color = f"{face.name} {face.similarity:.2f}", COLORS["known"]
        else:
            label, color = "Unknown", COLORS["unknown"]
        draw_box(image, face.xyxy, label, color, landmarks=face.landmarks if landmarks else None)
    if status:
        draw_status(image, status)


def _annotated(image: np.ndarray, result: FrameResult, status: str, landmarks: bool) -> np.ndarray:
    """A copy of `image` with `result` and the status line drawn on it."""
    drawn: np.ndarray = image.copy()
    annotate(drawn, result, landmarks=landmarks, status=status)
    return drawn


class VideoOutput:
    """Writes annotated frames to an .mp4, .avi or .gif file.

    GIFs are written by OpenCV's animation encoder when closed (frames are kept in memory,
    scaled to at most `GIF_MAX_SIDE` pixels on the long side).
    """

    SUFFIXES = (".mp4", ".avi", ".gif")
    GIF_MAX_SIDE = 480

    def __init__(self, path: Path, fps: float | None) -> None:
        suffix = path.suffix.lower()
        if suffix not in self.SUFFIXES:
            raise FaceRecognizerError(
                f"--output {str(path)!r} must end in .mp4, .avi or .gif (or .png/.jpg for one "
                "picture)."
            )
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fps = fps if fps and 1.0 <= fps <= 120.0 else 10.0
        self.frames = 0
        self._writer: Any = None
        self._gif: list[np.ndarray] = []
        self._canvas_wh = (0, 0)
        self._suffix = suffix

    def write(self, image: np.ndarray) -> None:
        self.frames += 1
        if self._suffix == ".gif":  # every frame on the first frame's canvas, scaled down
            if not self._gif:
                h, w = image.shape[:2]
                scale = min(1.0, self.GIF_MAX_SIDE / max(h, w))
                self._canvas_wh = (max(1, round(w * scale)), max(1, round(h * scale)))
            self._gif.append(_fit(image, self._canvas_wh))
            return
        if self._writer is None:
            fourcc = cv2.VideoWriter.fourcc(*("mp4v" if self._suffix == ".mp4" else "MJPG"))
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise FaceRecognizerError(f"OpenCV cannot write the video {str(self.path)!r}.")
        self._writer.write(image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._gif:
            animation = cv2.Animation()
            animation.frames = self._gif
            animation.durations = [round(1000 / self.fps)] * len(self._gif)
            animation.loop_count = 0
            ok = cv2.imwriteanimation(str(self.path), animation)
            self._gif = []
            if not ok:
                raise FaceRecognizerError(f"OpenCV cannot write the GIF {str(self.path)!r}.")


def _fit(image: np.ndarray, canvas_wh: tuple[int, int]) -> np.ndarray:
    """`image` scaled to fit `canvas_wh` (aspect kept), centred on black."""
    cw, ch = canvas_wh
    h, w = image.shape[:2]
    if (w, h) == (cw, ch):
        same: np.ndarray = image.copy()
        return same
    scale = min(cw / w, ch / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((ch, cw, 3), np.uint8)
    x, y = (cw - nw) // 2, (ch - nh) // 2
    canvas[y : y + nh, x : x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return canvas


@dataclass
class SessionReport:
    """What a `run` did: frames processed, faces embedded, why it stopped, snapshots saved."""

    frames: int = 0
    embedded: int = 0
    dropped: int = 0
    stopped_by: str = "end"  # "end", "quit", "close"
    snapshots: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def status_text(fps: float, faces: int, people: int, device: str, dropped: int | None) -> str:
    parts = [f"{fps:.1f} FPS", f"{faces} faces", f"{people} people", device]
    if dropped is not None:
        parts.append(f"{dropped} dropped")
    return " | ".join(parts)


def run(
    source: FrameSource,
    recognizer: Recognizer,
    *,
    window: Any = None,
    output: VideoOutput | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    landmarks: bool = False,
    snapshot_dir: Path = Path("."),
    device_label: str = "CPU",
) -> SessionReport:
    """Recognise every frame of `source` until it ends or the user quits the window.

    `window` is a `Window` (or None), `output` a `VideoOutput`, `on_result(result)` gets
    each result. Frames are drawn only for a window or an output. Still images wait for a
    key in the window; S saves snapshots into `snapshot_dir`.
    """
    report = SessionReport()
    viewer = None
    if window is not None:
        viewer = Viewer(window, landmarks=landmarks, snapshot_dir=snapshot_dir)
        report.snapshots = viewer.snapshots
    started = time.perf_counter()
    fps = 0.0
    last = started
    try:
        for frame in source:
            if source.is_stills:
                recognizer.reset()
            result = recognizer.process(frame, still=source.is_stills)
            now = time.perf_counter()
            dt = now - last
            last = now
            if dt > 0:
                fps = 1.0 / dt if fps == 0.0 else 0.9 * fps + 0.1 / dt
            report.frames += 1
            report.embedded += result.embedded
            if on_result is not None:
                on_result(result)
            if window is None and output is None:
                continue
            dropped = source.dropped if source.is_live else None
            status = status_text(
                fps,
                len(result.faces),
                int(recognizer.matcher.people_count),
                device_label,
                dropped,
            )
            draw = functools.partial(_annotated, frame.image, result, status)
            image = draw(landmarks if viewer is None else viewer.landmarks)
            if output is not None:
                output.write(image)
            if viewer is None:
                continue
            action = viewer.present(image, draw, still=source.is_stills)
            if action in (QUIT, CLOSE):
                report.stopped_by = action
                return report
    finally:
        report.seconds = time.perf_counter() - started
        report.dropped = source.dropped
        if output is not None:
            output.close()
    return report
