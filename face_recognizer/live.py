"""The one live loop: source -> step -> annotate -> sinks (window, video/GIF file, JSON, server).

`run(source, step, ...)` reads a `FrameSource`, hands each frame to a `Step` (anything with
`process(frame, still=...)`, `reset()` and `finish()`), draws the result with an annotator
and a status line when something wants pictures, and passes the result, its track end
events and the drawn picture to `Sink`s. `recognize`, `verify --reference` and the server
run it; nothing here prints, and it runs without a window on any thread (`stop` ends it).

`Recognizer` is the recognition step: stills are detected, embedded and matched face by
face; video frames go through the `Tracker`, which embeds only new, uncertain or stale
tracks. A hard shot cut (the whole picture changes at once) ends every track with a "cut"
event, so a track never carries one person's name onto the next shot's face; a gallery
change re-identifies the tracks without ending them. `Verifier` is the `verify --reference`
step: every face against one reference face.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from face_recognizer.draw import (
    KNOWN,
    STRANGER,
    Label,
    Rect,
    Swatch,
    draw_labels,
    draw_status,
    status_height,
)
from face_recognizer.draw import VISITOR as VISITOR_SWATCH
from face_recognizer.errors import FaceRecognizerError
from face_recognizer.gif import GifStream
from face_recognizer.images import cut_thumbnail, is_shot_cut, thumbnail_change
from face_recognizer.sources import FrameSource
from face_recognizer.tracker import Identified, Tracker, iou_matrix, label_stills
from face_recognizer.types import (
    END_CUT,
    END_SOURCE,
    VISITOR,
    Detections,
    Frame,
    FrameResult,
    Match,
    Track,
    TrackEnd,
)
from face_recognizer.window import (
    CLOSE,
    LANDMARKS,
    LIVE_KEYS,
    MATCH,
    QUIT,
    Viewer,
    key_hints,
)
from face_recognizer.words import NO_MATCH, plural, similarity_text

if TYPE_CHECKING:
    from face_recognizer.engine import Engine
    from face_recognizer.window import Window

WINDOW_TITLE = "face-recognizer: recognize"  # + ": <source>" (`window.window_title`)
KEYS: dict[str | int, str] = {**LIVE_KEYS, "m": MATCH}  # + M: the matched enrolled photos
REFRESH_SECONDS = 1.0  # how often the gallery is checked for changes by other processes
FULL_DETECT_EVERY = 10  # video frames between two detections at the full --det-size
COARSE_MIN_FACE_PX = 24  # smallest face (detector-input pixels) that the coarse pass may carry


class Step(Protocol):
    """What the live loop runs on each frame."""

    def process(self, frame: Frame, *, still: bool = False) -> FrameResult: ...

    def reset(self) -> None: ...

    def finish(self) -> tuple[TrackEnd, ...]: ...


class GalleryMatcher(Protocol):
    """What `Recognizer` needs of a matcher (`matcher.Matcher`)."""

    threshold: float  # the similarity a neighbour needs to vote

    @property
    def people_count(self) -> int: ...

    def match(self, embeddings: np.ndarray) -> Sequence[Match]: ...

    def refresh(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Levers:
    """The speed levers of `Recognizer` on video (all on by default; off to measure each).

    Attributes:
        roi: between whole-frame scans, detect only around the tracked faces (their
            predicted boxes, tiled into one small mosaic) instead of the whole frame.
        coast: when every track is confident, predict up to `MAX_COAST` frames' boxes in a
            row from their velocity instead of detecting.
        coarse: scan the whole frame at half `--det-size` while all faces are big enough.
        close: look for a face that fills the picture on a padded, downscaled copy when the
            whole-frame scan finds none (at most every `CLOSE_EVERY` frames on video).
        sure: settle a track's label as soon as its remaining votes could not change it (two
            agreeing votes instead of three), at once on a name at least `SURE_MARGIN` above
            the threshold, and refresh such a named track half as often while it agrees.
    """

    roi: bool = True
    coast: bool = True
    coarse: bool = True
    close: bool = True
    sure: bool = True


# recognize --liveness: blinks are judged on real detections of every frame, not on predicted
# boxes or a 48 px mosaic (with those, Obama's blink in the Hamilton clip is not seen)
LIVENESS_LEVERS = Levers(roi=False, coast=False)

SCAN_EVERY = 6  # video frames between two whole-frame scans when tracking by regions
MAX_COAST = 2  # predicted frames in a row between two detections, for steady faces (else 1)
STEADY_SIDE = 40.0  # a steady face is at least this many pixels ...
STEADY_SHIFT = 0.05  # ... and its centre moves at most this share of its size per frame
COAST_MAX_DIFF = 6.0  # thumbnail change (0-255) above which a frame is detected, not predicted
ROI_SCALE = 2.2  # a region is this many times the face's box, centred on its prediction
ROI_FACE_PX = 48  # a face is scaled to about this size in its mosaic tile
ROI_TILE_MIN, ROI_TILE_MAX = 64, 160  # tile side bounds (pixels, multiples of 32)
ROI_HOLD = 0  # frames a track missed by region detection is still shown at its prediction (off:
# a sighting counts the frames its face is shown in; the next scan looks for it at once)
CLOSE_EVERY = 15  # video frames between two close-face passes while no face is seen
CLOSE_PAD = 0.5  # padding on each side, as a share of the frame, for the close-face pass
SURE_MARGIN = 0.15  # a name this far above the threshold (cosine similarity) is trusted alone


class Recognizer:
    """Labels frames with the names of the people in a matcher's gallery.

    Video frames are tracked: the whole frame is scanned every `SCAN_EVERY` frames, after a
    shot cut and while nothing is tracked; in between, faces are detected only in small
    regions around where their tracks are predicted to be (one mosaic, one detector call),
    and, when every track is confident, up to `MAX_COAST` frames in a row are predicted from
    the tracks' velocities without detecting at all; a track's label is settled by fewer votes
    when more could not change it (`levers` turns each of these off).

    Args:
        engine: an `Engine` (detect, align, embed).
        matcher: a `Matcher` (or anything with `match(embeddings) -> list[Match]`,
            `refresh()`, `people_count`).
        tracker: the tracker for video frames; a default `Tracker()` when None.
        levers: which speed levers are on (`Levers()`: all).
    """

    def __init__(
        self,
        engine: Engine,
        matcher: GalleryMatcher,
        tracker: Tracker | None = None,
        levers: Levers | None = None,
    ) -> None:
        self.engine = engine
        self.matcher = matcher
        self.levers = levers or Levers()
        self.tracker = tracker or Tracker(is_sure=self._is_sure if self.levers.sure else None)
        self.embedded_total = 0
        self._previous: np.ndarray | None = None
        self._last_refresh = time.monotonic()
        self._since_full = FULL_DETECT_EVERY  # the next video frame gets a full detection
        self._since_scan = SCAN_EVERY
        self._since_close = CLOSE_EVERY
        self._coasted = 0
        self._last_count = 0
        self.coarse_frames = 0
        self.roi_frames = 0
        self.coasted_frames = 0
        self.close_passes = 0

    def reset(self) -> None:
        """Forget tracks (without end events) and the previous frame (a new source)."""
        self.tracker.reset()
        self._restart()

    def _restart(self) -> None:
        self._previous = None
        self._since_full = FULL_DETECT_EVERY
        self._since_scan = SCAN_EVERY
        self._since_close = CLOSE_EVERY
        self._coasted = 0

    def finish(self) -> tuple[TrackEnd, ...]:
        """End every track (the source ended); returns the end events not yet reported."""
        ended = self.tracker.end_all(END_SOURCE)
        self._restart()
        return ended

    @property
    def people_count(self) -> int:
        return int(self.matcher.people_count)

    def _coast_limit(self) -> int:
        """Predicted frames allowed in a row now: `MAX_COAST` while every face is steady."""
        return MAX_COAST if self.tracker.steady(STEADY_SIDE, STEADY_SHIFT) else 1

    def _is_sure(self, name: str | None, similarity: float) -> bool:
        """A name well above the matcher's threshold. "Unknown" is never sure alone: a face
        first seen turned or blurred would stay unnamed until its next refresh."""
        return name is not None and similarity >= float(self.matcher.threshold) + SURE_MARGIN

    def _scan(self, image: np.ndarray) -> Detections:
        """Detect in the whole frame, at half the input size when the faces allow it.

        A full-size detection runs every `FULL_DETECT_EVERY` frames (new, small faces are
        found there) and whenever the half-size pass finds fewer faces than the frame before
        or a face too small for it, so no face is lost to the cheaper pass.
        """
        full = self.engine.det_size
        coarse = max(160, full // 64 * 32)
        scale = coarse / max(image.shape[:2])

        def fits_coarse(detections: Detections) -> bool:
            return not len(detections) or (
                float(detections.box_wh.min()) * scale >= COARSE_MIN_FACE_PX
            )

        if self.levers.coarse and self._since_full < FULL_DETECT_EVERY and coarse < full:
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

    def _detect_video(self, image: np.ndarray) -> tuple[Detections, int]:
        """Scan the whole frame when due, else detect around the tracked faces.

        Returns the detections and how many frames a missed track may be held (see
        `Tracker.update`): region detection may miss a face the next scan finds again.
        """
        boxes = self.tracker.predicted_boxes()
        if self.levers.roi and len(boxes) and self._since_scan < SCAN_EVERY:
            self._since_scan += 1
            self.roi_frames += 1
            found = detect_regions(self.engine, image, boxes)
            if len(found) < len(boxes):  # a face was missed: held this frame, scan the next
                self._since_scan = SCAN_EVERY
            return found, ROI_HOLD
        self._since_scan = 0
        detections = self._scan(image)
        if len(detections) or not self.levers.close:
            self._since_close = CLOSE_EVERY
            return detections, 0
        # nothing found: a face too close for a scan, right away while one is tracked,
        # else at most every CLOSE_EVERY frames
        self._since_close += 1
        if not len(boxes) and self._since_close < CLOSE_EVERY:
            return detections, 0
        self._since_close = 0
        self.close_passes += 1
        return detect_close(self.engine, image), 0

    def _identify(
        self, image: np.ndarray, detections: Detections, indices: np.ndarray
    ) -> Identified:
        subset = detections[indices]
        faces = self.engine.embed(image, subset)
        self.embedded_total += len(subset)
        return Identified(list(self.matcher.match(faces.embeddings)), faces.embeddings)

    def _refresh_gallery(self) -> None:
        now = time.monotonic()
        if now - self._last_refresh >= REFRESH_SECONDS:
            self._last_refresh = now
            if self.matcher.refresh():
                self.tracker.reidentify()  # names may have changed: vote afresh, same tracks

    def detect_still(self, image: np.ndarray) -> Detections:
        """The faces of an independent picture; a face that fills it is found on a padded copy."""
        detections = self.engine.detect(image)
        if not len(detections) and self.levers.close:
            self.close_passes += 1
            detections = detect_close(self.engine, image)
        return detections

    def process(self, frame: Frame, *, still: bool = False) -> FrameResult:
        """Detect, track and label the faces of one frame."""
        self._refresh_gallery()
        image = frame.image
        if still:
            detections = self.detect_still(image)
            found = self._identify(image, detections, np.arange(len(detections)))
            faces: tuple[Track, ...] = label_stills(detections, found.matches, found.embeddings)
            return FrameResult(
                frame.index, frame.source, faces, len(detections), timestamp=frame.timestamp
            )
        thumb = cut_thumbnail(image)
        change = thumbnail_change(self._previous, thumb)  # inf on the first frame: detect
        self._previous = thumb
        cut: tuple[TrackEnd, ...] = ()
        if is_shot_cut(change):
            cut = self.tracker.end_all(END_CUT)
            self._since_full = FULL_DETECT_EVERY
            self._since_scan = SCAN_EVERY
        if (
            self.levers.coast
            and not cut
            and self._coasted < self._coast_limit()
            and change <= COAST_MAX_DIFF
            and self.tracker.active
            and self.tracker.can_coast()
        ):
            self._coasted += 1
            self.coasted_frames += 1
            faces = self.tracker.coast(index=frame.index, timestamp=frame.timestamp)
            return FrameResult(
                frame.index,
                frame.source,
                faces,
                0,
                ended=self.tracker.take_ended(),
                timestamp=frame.timestamp,
            )
        self._coasted = 0
        detections, hold = self._detect_video(image)
        before = self.embedded_total
        faces = self.tracker.update(
            detections,
            lambda idx: self._identify(image, detections, idx),
            index=frame.index,
            timestamp=frame.timestamp,
            image=image,
            hold=hold,
        )
        return FrameResult(
            frame.index,
            frame.source,
            faces,
            self.embedded_total - before,
            ended=cut + self.tracker.take_ended(),
            timestamp=frame.timestamp,
        )


def _ceil32(value: float) -> int:
    return int(np.ceil(value / 32.0)) * 32


def detect_regions(engine: Engine, image: np.ndarray, boxes: np.ndarray) -> Detections:
    """Faces near `boxes` (predicted face boxes): each region around a box is scaled into
    one tile of a mosaic, the mosaic is detected in one call, and the faces are mapped back
    to `image` (duplicates from overlapping regions removed).

    A region is `ROI_SCALE` times its box, square, centred on it; what lies outside the
    frame is black (so a face that fills the frame still gets the context the detector
    needs). Its face is scaled to about `ROI_FACE_PX` pixels (never enlarged beyond the
    region's own size).
    """
    h, w = image.shape[:2]
    regions = []
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float32):
        face = max(float(x2 - x1), float(y2 - y1), 8.0)
        side = int(ROI_SCALE * face)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        regions.append((round(float(cx) - side / 2), round(float(cy) - side / 2), side))
    want = max(min(side, ROI_SCALE * ROI_FACE_PX) for _, _, side in regions)
    tile = int(np.clip(_ceil32(want), ROI_TILE_MIN, ROI_TILE_MAX))
    cols = int(np.ceil(np.sqrt(len(regions))))
    rows = int(np.ceil(len(regions) / cols))
    mosaic = np.zeros((rows * tile, cols * tile, 3), np.uint8)
    for i, (left, top, side) in enumerate(regions):
        r, c = divmod(i, cols)
        ix0, iy0 = max(0, left), max(0, top)  # the part of the region inside the frame
        ix1, iy1 = min(w, left + side), min(h, top + side)
        if ix1 <= ix0 or iy1 <= iy0:
            continue
        scale = tile / side
        tx0, ty0 = round((ix0 - left) * scale), round((iy0 - top) * scale)
        tx1, ty1 = round((ix1 - left) * scale), round((iy1 - top) * scale)
        if tx1 <= tx0 or ty1 <= ty0:
            continue
        # area averaging only where it matters (>= 2x smaller): it costs 3-7x a bilinear resize
        interp = cv2.INTER_AREA if side >= 2 * tile else cv2.INTER_LINEAR
        y, x = r * tile, c * tile
        mosaic[y + ty0 : y + ty1, x + tx0 : x + tx1] = cv2.resize(
            image[iy0:iy1, ix0:ix1], (tx1 - tx0, ty1 - ty0), interpolation=interp
        )
    found = engine.detect(mosaic, det_size=max(mosaic.shape[:2]))
    if not len(found):
        return found
    # each region answers for its own face: the detection in its tile nearest the prediction
    predicted = np.asarray(boxes, dtype=np.float32)
    centres = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
    tiles_c, tiles_r = (centres[:, 0] // tile).astype(int), (centres[:, 1] // tile).astype(int)
    xyxy, landmarks, scores = [], [], []
    for i, (left, top, side) in enumerate(regions):
        r, c = divmod(i, cols)
        mine = np.flatnonzero((tiles_c == c) & (tiles_r == r))
        if not len(mine):
            continue
        origin = np.array([c * tile, r * tile], np.float32)
        scale = side / tile
        boxes_i = (
            np.clip(found.xyxy[mine].reshape(-1, 2, 2), origin, origin + tile) - origin
        ) * scale + np.array([left, top], np.float32)
        boxes_i = boxes_i.reshape(-1, 4)
        overlap = iou_matrix(predicted[i : i + 1], boxes_i)[0]
        best = int(np.argmax(overlap))
        if overlap[best] < 0.2:
            continue
        j = mine[best]
        xyxy.append(boxes_i[best])
        landmarks.append((found.landmarks[j] - origin) * scale + np.array([left, top], np.float32))
        scores.append(found.scores[j])
    if not xyxy:
        return Detections.empty()
    mapped = np.stack(xyxy)
    mapped[:, 0::2] = np.clip(mapped[:, 0::2], 0, w - 1)
    mapped[:, 1::2] = np.clip(mapped[:, 1::2], 0, h - 1)
    return _suppress_duplicates(Detections(mapped, np.array(scores), np.stack(landmarks)))


def _suppress_duplicates(detections: Detections, iou: float = 0.4) -> Detections:
    """Best score first, without boxes that overlap a better one by more than `iou`."""
    order = np.argsort(-detections.scores, kind="stable")
    ranked = detections[order]
    overlap = iou_matrix(ranked.xyxy, ranked.xyxy)
    keep: list[int] = []
    for i in range(len(ranked)):
        if all(overlap[i, k] <= iou for k in keep):
            keep.append(i)
    return ranked[np.asarray(keep, dtype=np.int64)]


def detect_close(engine: Engine, image: np.ndarray) -> Detections:
    """Faces that fill the picture: detected on a copy padded by `CLOSE_PAD` of its size on
    each side (the detector needs context around a face), mapped back to `image`."""
    h, w = image.shape[:2]
    dy, dx = int(h * CLOSE_PAD), int(w * CLOSE_PAD)
    padded = cv2.copyMakeBorder(image, dy, dy, dx, dx, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    found = engine.detect(padded)
    if not len(found):
        return found
    shift = np.array([dx, dy], np.float32)
    xyxy = (found.xyxy.reshape(-1, 2, 2) - shift).reshape(-1, 4)
    xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, w - 1)
    xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, h - 1)
    return Detections(xyxy, found.scores, found.landmarks - shift)


class Verifier:
    """The `verify --reference` step: every face of a frame against one reference face.

    A face is labelled `label` when its similarity to `reference` (an L2-normalised
    embedding) is at least `threshold`, else unknown; stills and video frames alike.
    """

    def __init__(self, engine: Engine, reference: np.ndarray, threshold: float, label: str) -> None:
        self.engine = engine
        self.reference = np.asarray(reference, dtype=np.float32)
        self.threshold = float(threshold)
        self.label = label

    def process(self, frame: Frame, *, still: bool = False) -> FrameResult:
        from face_recognizer.verify import verify_faces

        faces = self.engine.analyze(frame.image)
        verdicts = verify_faces(faces, self.reference, self.threshold)
        tracks = tuple(
            Track(
                id=None,
                xyxy=(float(x1), float(y1), float(x2), float(y2)),
                landmarks=faces.landmarks[i],
                name=self.label if v.same_person else None,
                similarity=v.similarity,
                score=float(faces.scores[i]),
                embedding=faces.embeddings[i],
            )
            for i, ((x1, y1, x2, y2), v) in enumerate(zip(faces.xyxy, verdicts, strict=True))
        )
        return FrameResult(frame.index, frame.source, tracks, len(faces), timestamp=frame.timestamp)

    def reset(self) -> None:
        """Nothing to forget: every frame is judged on its own."""

    def finish(self) -> tuple[TrackEnd, ...]:
        return ()


Labeler = Callable[[Track], tuple[str, Swatch]]
"""A face's label text and box colour."""


def name_label(face: Track) -> tuple[str, Swatch]:
    """`recognize`'s label: the name and similarity (`KNOWN`), a returning stranger's
    "Visitor N" (`VISITOR`) or "Unknown" (`STRANGER`)."""
    if face.is_known:
        return f"{face.name} {similarity_text(face.similarity)}", KNOWN
    if VISITOR in face.data:  # a recurring stranger (`recognize --auto-enrol`)
        return f"Visitor {face.data[VISITOR]}", VISITOR_SWATCH
    return "Unknown", STRANGER


def verdict_label(face: Track) -> tuple[str, Swatch]:
    """`verify --reference`'s label: "same 0.61" (`KNOWN`) or "different 0.12" (`STRANGER`);
    a similarity at or below 0 reads plain "different" (no number)."""
    if face.is_known:
        return f"same {similarity_text(face.similarity)}", KNOWN
    shown = similarity_text(face.similarity)
    return ("different" if shown == NO_MATCH else f"different {shown}"), STRANGER


class MatchedPhotos:
    """The enrolled photo most like each named face (`recognize --show-match`).

    A person's stored crops are read (`photos_of(name)`) and embedded once, the first time
    they are named; a face's photo is the crop most similar to its embedding. A tracked face
    keeps its photo between the frames it is embedded in.

    Args:
        engine: the `Engine` that embeds the live faces (it embeds the crops too).
        photos_of: the gallery's `Store.photos_of`.
    """

    def __init__(self, engine: Engine, photos_of: Callable[[str], Sequence[Any]]) -> None:
        self.engine = engine
        self._photos_of = photos_of
        self._people: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name: (crops, embeddings)
        self._by_track: dict[int, tuple[str, np.ndarray]] = {}

    def _person(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._people:
            try:
                crops = np.stack([photo.crop for photo in self._photos_of(name)])
            except (FaceRecognizerError, ValueError):  # removed meanwhile, or no crop
                crops = np.zeros((0, 112, 112, 3), np.uint8)
            self._people[name] = (crops, self.engine.embed_crops(crops))
        return self._people[name]

    def photo(self, face: Track) -> np.ndarray | None:
        """The enrolled crop (BGR) of `face.name` most like `face`, None for an unknown face."""
        if face.name is None:
            return None
        kept = self._by_track.get(face.id) if face.id is not None else None
        if face.embedding is None:
            return kept[1] if kept is not None and kept[0] == face.name else None
        crops, embeddings = self._person(face.name)
        if not len(crops):
            return None
        best: np.ndarray = crops[int(np.argmax(embeddings @ face.embedding))]
        if face.id is not None:
            self._by_track[face.id] = (face.name, best)
        return best


def annotate(
    image: np.ndarray,
    result: FrameResult,
    *,
    landmarks: bool = False,
    status: str | None = None,
    label: Labeler = name_label,
    reserved_top: int = 0,
    reserved_bottom: int = 0,
    picture: Callable[[Track], np.ndarray | None] | None = None,
) -> list[Rect]:
    """Draw every face of `result` (its `label`; `picture(face)`, when given, in its tab) and
    a status line, with the one label placer (`draw.draw_labels`): known faces get the best
    places, no two tabs overlap, none covers the status line (nor `reserved_top` /
    `reserved_bottom` rows). Returns the name tabs' rectangles, in `result.faces` order."""
    if status:
        reserved_top = max(reserved_top, status_height(image))
    order = sorted(
        range(len(result.faces)),
        key=lambda i: (not result.faces[i].is_known, result.faces[i].xyxy[1]),
    )
    labels = []
    for i in order:
        face = result.faces[i]
        text, swatch = label(face)
        points = face.landmarks if landmarks else None
        shown = picture(face) if picture is not None else None
        labels.append(Label(face.xyxy, text, swatch, points, shown))
    placed = draw_labels(image, labels, reserved_top=reserved_top, reserved_bottom=reserved_bottom)
    if status:
        draw_status(image, status)
    tabs: list[Rect] = [(0, 0, 0, 0)] * len(result.faces)
    for i, rect in zip(order, placed, strict=True):
        tabs[i] = rect
    return tabs


class Sink:
    """Receives what the live loop produces; override what you need (all do nothing here).

    `on_frame(frame, result, image)` gets every frame's result, with the annotated picture
    when `wants_image` is True (else None); `on_track_end(ended)` every track end event
    (also those at the end of the source); `close()` is called once when the loop ends.
    """

    wants_image = False

    def on_frame(self, frame: Frame, result: FrameResult, image: np.ndarray | None) -> None:
        """One frame's result."""

    def on_track_end(self, ended: TrackEnd) -> None:
        """One track's end."""

    def close(self) -> None:
        """The loop ended."""


class CallbackSink(Sink):
    """A `Sink` made of functions: `on_result(result)` and `on_track_end(ended)`."""

    def __init__(
        self,
        on_result: Callable[[FrameResult], None] | None = None,
        on_track_end: Callable[[TrackEnd], None] | None = None,
    ) -> None:
        self._on_result = on_result
        self._on_track_end = on_track_end

    def on_frame(self, frame: Frame, result: FrameResult, image: np.ndarray | None) -> None:
        if self._on_result is not None:
            self._on_result(result)

    def on_track_end(self, ended: TrackEnd) -> None:
        if self._on_track_end is not None:
            self._on_track_end(ended)


class VideoOutput(Sink):
    """Writes annotated frames to an .mp4, .avi or .gif file.

    GIF frames are scaled to at most `GIF_MAX_SIDE` pixels on the long side and appended to
    the file as they arrive (`gif.GifStream`: memory stays flat however long the run).
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
        self._gif: GifStream | None = None
        self._suffix = suffix

    wants_image = True

    def on_frame(self, frame: Frame, result: FrameResult, image: np.ndarray | None) -> None:
        if image is not None:
            self.write(image)

    def write(self, image: np.ndarray) -> None:
        self.frames += 1
        if self._suffix == ".gif":  # every frame on the first frame's canvas, scaled down
            if self._gif is None:
                h, w = image.shape[:2]
                scale = min(1.0, self.GIF_MAX_SIDE / max(h, w))
                canvas_wh = (max(1, round(w * scale)), max(1, round(h * scale)))
                self._gif = GifStream(self.path, canvas_wh, self.fps)
            self._gif.write(_fit(image, self._gif.size_wh))
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
        if self._gif is not None:
            self._gif.close()
            self._gif = None


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
    """What a `run` did: frames processed, faces embedded, why it stopped, snapshots saved,
    tracks that ended."""

    frames: int = 0
    embedded: int = 0
    dropped: int = 0
    stopped_by: str = "end"  # "end", "quit", "close", "stop", "interrupt"
    snapshots: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    tracks_ended: int = 0


def status_text(
    fps: float | None, faces: int, people: int, device: str, dropped: int | None = None
) -> str:
    """ "12.3 FPS | 2 faces | 5 people | CPU" (no FPS when `fps` is None or 0: stills, the
    first frame; dropped frames when given)."""
    parts = [] if not fps else [f"{fps:.1f} FPS"]  # none yet after one frame
    parts += [plural(faces, "face"), plural(people, "person"), device]
    if dropped is not None:
        parts.append(f"{dropped} dropped")
    return " | ".join(parts)


def still_text(result: FrameResult, source: FrameSource) -> str:
    """A still's place in its source: "beach.jpg | 3 of 120" (one picture: its name)."""
    name = Path(result.source).name if result.source else source.spec
    total = source.total
    return f"{name} | {result.index + 1} of {total}" if total and total > 1 else name


Status = Callable[[float, FrameResult, FrameSource], str]
"""The status line for a frame: (FPS smoothed over about a second, result, source) -> text."""


@dataclass(frozen=True, slots=True)
class View:
    """How a frame is drawn: with landmarks, with the matched enrolled photo in each named
    face's tab (`recognize --show-match`), and the rows at the top and bottom that the
    status and key lines cover, where no name tab may go."""

    landmarks: bool = False
    show_match: bool = False
    reserved_top: int = 0
    reserved_bottom: int = 0


Annotator = Callable[[np.ndarray, FrameResult, View], None]
"""Draws a result's faces onto a picture in place."""


def recognizer_status(recognizer: Recognizer, device_label: str) -> Status:
    """`recognize`'s status line: FPS (stills: the file and "k of n"), faces, people,
    device, dropped frames (live only)."""

    def status(fps: float, result: FrameResult, source: FrameSource) -> str:
        dropped = source.dropped if source.is_live else None
        people = recognizer.people_count
        if source.is_stills:
            counts = status_text(None, len(result.faces), people, device_label)
            text = f"{still_text(result, source)} | {counts}"
        else:
            text = status_text(fps, len(result.faces), people, device_label, dropped)
        # a shared gallery's server away: recognizing with the index loaded (matcher.offline)
        return text + " | gallery offline" if getattr(recognizer.matcher, "offline", None) else text

    return status


def _annotated(
    image: np.ndarray,
    result: FrameResult,
    status: str,
    draw: Annotator,
    reserved_bottom: int,
    toggles: Mapping[str, bool],
) -> np.ndarray:
    """A copy of `image` with `result` and the status line drawn on it."""
    drawn: np.ndarray = image.copy()
    view = View(
        landmarks=toggles.get(LANDMARKS, False),
        show_match=toggles.get(MATCH, False),
        reserved_top=status_height(drawn) if status else 0,
        reserved_bottom=reserved_bottom,
    )
    draw(drawn, result, view)
    if status:
        draw_status(drawn, status)
    return drawn


def name_annotator(photos: MatchedPhotos | None = None, label: Labeler = name_label) -> Annotator:
    """`recognize`'s annotator: each face's `label` (names by default; `--liveness` adds the
    state), and with `View.show_match` the enrolled photo each named face matched, in its tab
    beside the name."""

    def draw(image: np.ndarray, result: FrameResult, view: View) -> None:
        annotate(
            image, result, landmarks=view.landmarks, label=label,
            reserved_top=view.reserved_top, reserved_bottom=view.reserved_bottom,
            picture=photos.photo if photos is not None and view.show_match else None,
        )  # fmt: skip

    return draw


DRAW_NAMES = name_annotator()  # `run`'s default: names, no matched photos


FPS_SECONDS = 1.0  # the status line's FPS is the frame rate over about this long


class _Rate:
    """Frames per second over the last `FPS_SECONDS` (a steady number, not the last frame's)."""

    def __init__(self) -> None:
        self._times: collections.deque[float] = collections.deque()

    def tick(self, now: float) -> float:
        self._times.append(now)
        while len(self._times) > 2 and now - self._times[0] > FPS_SECONDS:
            self._times.popleft()
        span = now - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


def _fit_still(
    frame: Frame, result: FrameResult, canvas_wh: tuple[int, int]
) -> tuple[Frame, FrameResult]:
    """A still scaled to fill `canvas_wh` (aspect kept, centred on black), its faces with it."""
    h, w = frame.image.shape[:2]
    cw, ch = canvas_wh
    scale = min(cw / w, ch / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    x0, y0 = (cw - nw) // 2, (ch - nh) // 2
    canvas = np.zeros((ch, cw, 3), np.uint8)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(
        frame.image, (nw, nh), interpolation=interpolation
    )
    offset = np.array([x0, y0], np.float32)

    def moved(face: Track) -> Track:
        x1, y1, x2, y2 = (float(v) * scale for v in face.xyxy)
        points = np.asarray(face.landmarks, np.float32) * scale + offset
        return replace(face, xyxy=(x1 + x0, y1 + y0, x2 + x0, y2 + y0), landmarks=points)

    fitted = replace(result, faces=tuple(moved(f) for f in result.faces))
    return replace(frame, image=canvas), fitted


STILL_CANVAS_WH = (1280, 800)  # stills in a window fill this (or the screen, if smaller)


def _still_canvas(first_wh: tuple[int, int], window: Window) -> tuple[int, int]:
    """The one size every still of a folder is shown at: the first one's aspect, as large
    as `STILL_CANVAS_WH` and the screen allow (small photos are enlarged)."""
    scale = window.scale_for(STILL_CANVAS_WH)
    room_w, room_h = STILL_CANVAS_WH[0] * scale, STILL_CANVAS_WH[1] * scale
    w, h = first_wh
    fit = min(room_w / w, room_h / h)
    return max(1, round(w * fit)), max(1, round(h * fit))


def run(
    source: FrameSource,
    step: Step,
    *,
    sinks: Iterable[Sink] = (),
    annotator: Annotator = DRAW_NAMES,
    status: Status | None = None,
    window: Window | None = None,
    keys: Mapping[str | int, str] = KEYS,
    landmarks: bool = False,
    show_match: bool | None = None,
    snapshot_dir: Path = Path("."),
    snapshot_prefix: str = "snapshot",
    stop: threading.Event | None = None,
) -> SessionReport:
    """Run `step` on every frame of `source` until it ends, `stop` is set or the user quits.

    Each result goes to every sink (with the annotated picture for sinks that want one),
    each track end event to `on_track_end`, also the events of the tracks still alive when
    the loop ends. Pictures are drawn only for a window or a sink that wants them. In a
    window, `keys` are hinted along the bottom; stills are fitted to one canvas and wait for
    a key; a video file that ends holds its last frame until a key ("end: press any key");
    S saves snapshots into `snapshot_dir`; L toggles landmarks and, unless `show_match` is
    None, M the matched photos. Sinks are closed when the loop ends (also on an error).
    """
    sinks = list(sinks)
    report = SessionReport()
    viewer = None
    toggles = {LANDMARKS: landmarks}
    if show_match is not None:
        toggles[MATCH] = show_match
    if window is not None:
        hint_keys = {k: a for k, a in keys.items() if a != MATCH or show_match is not None}
        hints = key_hints(
            hint_keys,
            still=source.is_stills,
            video=not source.is_live and not source.is_stills,
        )
        viewer = Viewer(
            window, toggles=toggles, snapshot_dir=snapshot_dir, prefix=snapshot_prefix, hints=hints
        )
        report.snapshots = viewer.snapshots
    wants_image = viewer is not None or any(sink.wants_image for sink in sinks)
    started = time.perf_counter()
    rate = _Rate()
    # a video file in a window plays at its own frame rate (F: as fast as possible)
    paced = viewer is not None and not source.is_live and not source.is_stills
    clock: tuple[float, float] | None = None  # (wall time, frame time) of the pacing origin
    canvas_wh: tuple[int, int] | None = None  # stills in a window: every one at this size
    last: tuple[Frame, FrameResult, str] | None = None  # what the window shows

    def ended(events: Iterable[TrackEnd]) -> None:
        for event in events:
            report.tracks_ended += 1
            for sink in sinks:
                sink.on_track_end(event)

    def drawer(
        frame: Frame, result: FrameResult, text: str
    ) -> Callable[[Mapping[str, bool]], np.ndarray]:
        bottom = status_height(frame.image) if viewer is not None else 0
        return functools.partial(_annotated, frame.image, result, text, annotator, bottom)

    try:
        for frame in source:
            if stop is not None and stop.is_set():
                report.stopped_by = "stop"
                break
            if source.is_stills:
                step.reset()
            result = step.process(frame, still=source.is_stills)
            fps = rate.tick(time.perf_counter())
            report.frames += 1
            report.embedded += result.embedded
            image = None
            draw = None
            if wants_image:
                text = status(fps, result, source) if status is not None else ""
                shown_frame, shown_result = frame, result
                if window is not None and source.is_stills:
                    if canvas_wh is None:
                        canvas_wh = _still_canvas(frame.image.shape[1::-1], window)
                    shown_frame, shown_result = _fit_still(frame, result, canvas_wh)
                elif window is not None:
                    scale = window.scale_for((frame.image.shape[1], frame.image.shape[0]))
                    if scale < 1.0:
                        text = f"{text} | shown at {scale:.0%}" if text else f"{scale:.0%}"
                draw = drawer(shown_frame, shown_result, text)
                image = draw(toggles if viewer is None else viewer.toggles)
                last = (shown_frame, shown_result, text)
            for sink in sinks:
                sink.on_frame(frame, result, image if sink.wants_image else None)
            ended(result.ended)
            if viewer is None or image is None or draw is None:
                continue
            wait_ms = 1
            if paced and not viewer.fast:
                now = time.perf_counter()
                if clock is None or frame.timestamp < clock[1]:
                    clock = (now, frame.timestamp)
                due = clock[0] + (frame.timestamp - clock[1])
                wait_ms = max(1, round((due - now) * 1000))
            else:
                clock = None
            action = viewer.present(image, draw, still=source.is_stills, wait_ms=wait_ms)
            if action in (QUIT, CLOSE):
                report.stopped_by = action
                break
        ended(step.finish())
        if (
            viewer is not None
            and last is not None
            and report.stopped_by == "end"
            and not source.is_stills
        ):
            # a finished video stays until it has been seen
            frame_, result_, text = last
            ending = f"end: press any key | {text}" if text else "end: press any key"
            viewer.hold(drawer(frame_, result_, ending)(viewer.toggles))
    except KeyboardInterrupt:  # Ctrl-C: the tracks still open end too (sightings keep them)
        report.stopped_by = "interrupt"
        ended(step.finish())
        raise
    finally:
        report.seconds = time.perf_counter() - started
        report.dropped = source.dropped
        for sink in sinks:
            sink.close()
    return report
