"""Passive liveness: a tracked face is *live* once it has blinked.

For every face whose track is not yet live and that is big enough to judge
(`MIN_FACE_PX`), `BlinkLiveness.update` runs InsightFace's 106-point landmark model
(`Engine.landmarks_106`, one batched call per frame) and follows each eye's openness over the
track's frames. A blink is a dip of the openness well below the track's recent open level
(`DIP_RATIO`) that recovers (`RECOVER_RATIO`) within `MAX_BLINK_SECONDS`, *and* whose closed
frame really looks different around the eyes from the open frame before it, by
`EYE_CHANGE_FACTOR` times the track's usual frame-to-frame change: landmark jitter on a photo
can fake a dip in the numbers, not a closed eyelid in the pixels, and a track whose crops
barely change (a still photo, even moved around) shows no eye change out of the ordinary.
A track judged for `NO_BLINK_SECONDS` without a blink is reported as `False` ("photo?")
until it blinks; before that it is `None`.

The 106-point layout (InsightFace `2d106det`, checked by drawing the points on
`videos/references/Barack_Obama/obama.jpg`): the eye on the image's left is 33-42 with
corners 35 (outer) and 39 (inner), upper lid 41, 40, 42 over lower lid 36, 33, 37, and the
pupil 34/38; the other eye is 87-96 with corners 89 (inner) and 93 (outer), upper lid 95, 94,
96 over lower lid 90, 87, 91, pupil 88/92. The mouth is 52-71.

Openness is the mean lid gap divided by the distance from the eyes to the mouth (not by the
eye's width, as the usual eye-aspect ratio does): a photo tilted away from the camera shrinks
lid gaps and the eye-mouth distance alike, so tilting a print does not look like a blink.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from face_recognizer.engine import align_faces
from face_recognizer.quality import yaw_ratio

# -- the 106-point layout ---------------------------------------------------------------------
# (upper lid, lower lid) point pairs of each eye, and the mouth's points.
EYE_LIDS: tuple[tuple[tuple[int, int], ...], ...] = (
    ((41, 36), (40, 33), (42, 37)),
    ((95, 90), (94, 87), (96, 91)),
)
EYE_POINTS: tuple[tuple[int, ...], ...] = (tuple(range(33, 43)), tuple(range(87, 97)))
MOUTH_POINTS = tuple(range(52, 72))

# -- thresholds (measured: see bench/liveness.py and the README's Liveness section) -----------
# Smallest face (min of box width and height, frame pixels) whose eyes are judged. Obama in
# the Hamilton clip's audience shot is 63-66 px and his blink at frames 221-224 is plain in
# the openness at that size; the walkers of the pedestrians clip at 46-54 px give openness
# that swings 0.5-1.0 from frame to frame (a lid gap of 1-2 px).
MIN_FACE_PX = 60.0
# A dip: the openness of both eyes (each over its own open level), averaged, at most
# DIP_RATIO, and each eye at most EACH_EYE_RATIO (a blink closes both eyes). Obama's blink
# measures 0.54 (eyes 0.37 and 0.72); among the first 36 generated photo attack clips
# (bench/make_attacks.py) single frames of landmark jitter go down to 0.69, which the noise
# and pixel tests below reject (none of all 300 attack clips became live).
DIP_RATIO = 0.7
EACH_EYE_RATIO = 0.8
# ... and at least NOISE_K robust standard deviations (1.4826 x median absolute deviation) of
# the track's recent ratios below 1: a track whose landmarks jitter must dip deeper. Obama's
# open eyes vary by 0.03 (so 0.7 stands); a jittery print's by 0.08-0.12 (it needs < 0.4).
NOISE_K = 5.0
# ... that comes back above RECOVER_RATIO within MAX_BLINK_SECONDS of the dip's start (a
# blink is 0.1-0.4 s; Obama's: 0.13 s; eyes cast down for longer are no blink).
RECOVER_RATIO = 0.85
MAX_BLINK_SECONDS = 0.6
# The open level of each eye: this percentile of its openness over the last OPEN_SECONDS.
OPEN_PERCENTILE = 75.0
OPEN_SECONDS = 2.0
# Judged frames a track needs before a dip can count (the open level must be known).
MIN_HISTORY = 5
# The pixels must agree: at the dip's deepest frame the eye regions of the aligned crop must
# differ from the last open frame (1 - normalised correlation) by EYE_CHANGE_FACTOR times
# the track's usual frame-to-frame eye change (at least MIN_USUAL_CHANGE) and by at least
# MIN_EYE_CHANGE. Obama's closed eyes: 0.069, 14x his usual 0.005; the frames of those 36
# attack clips whose landmarks dipped below 0.8: 0.3-2.3x their usual change (a still crop
# barely changes, and a jittered one changes as much on every frame as on the "dip").
EYE_CHANGE_FACTOR = 4.0
MIN_USUAL_CHANGE = 0.005
MIN_EYE_CHANGE = 0.03
# A track judged this long without a blink is reported as `False` ("photo?"): people blink
# every 2-10 s, a photo never.
NO_BLINK_SECONDS = 10.0

CROP = 112  # aligned crop side (ArcFace template: eyes at y 52, mouth at y 92)
# The eye regions of the aligned crop: rows, and each eye's columns.
_EYES_YX = ((40, 64), ((24, 52), (60, 88)))

Landmarker = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(image, (N, 4) xyxy boxes) -> (N, 106, 2) landmarks: `Engine.landmarks_106`."""


def eye_openness(points: np.ndarray) -> np.ndarray:
    """(N, 2) openness of each eye: mean lid gap / distance from the eyes to the mouth.

    `points` is (N, 106, 2) InsightFace 2d106 landmarks (or one face's (106, 2)).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 106, 2)
    eyes_centre = np.stack([pts[:, list(idx)].mean(axis=1) for idx in EYE_POINTS]).mean(axis=0)
    mouth = pts[:, list(MOUTH_POINTS)].mean(axis=1)
    scale = np.maximum(np.linalg.norm(mouth - eyes_centre, axis=1), 1e-6)
    gaps = np.stack(
        [
            np.mean([np.linalg.norm(pts[:, a] - pts[:, b], axis=1) for a, b in pairs], axis=0)
            for pairs in EYE_LIDS
        ],
        axis=1,
    )
    openness: np.ndarray = gaps / scale[:, None]
    return openness


def _grey_crop(image: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
    crop = align_faces(image, np.asarray(landmarks5, dtype=np.float32)[None], CROP)[0]
    grey: np.ndarray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return grey


def _change(a: np.ndarray, b: np.ndarray) -> float:
    """1 - normalised correlation of two equally sized grey patches (0 same, ~1 unrelated).

    Insensitive to brightness and contrast, so a flickering screen does not count as change.
    """
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return 1.0 - float((a * b).sum()) / denom if denom > 1e-6 else 0.0


def eye_change(before: np.ndarray, after: np.ndarray) -> float:
    """How much the eye regions of two aligned grey crops differ (0 same, ~1 unrelated)."""
    (y0, y1), xs = _EYES_YX
    return float(np.mean([_change(before[y0:y1, x0:x1], after[y0:y1, x0:x1]) for x0, x1 in xs]))


@dataclass(frozen=True, slots=True)
class FaceLiveness:
    """The liveness of one face in one frame.

    Attributes:
        live: True once the track blinked; False while its crops barely change (a photo?);
            None when not judged yet (too few frames, too small, or a still).
        blinks: blinks seen on the track so far.
        yaw: `quality.yaw_ratio` of the face (0 frontal, +-1 nose under an eye; positive
            when the nose is right of the eyes' middle in the image).
        openness: the eyes' openness over their open level in this frame (1.0 open), or None
            when the landmarks did not run.
    """

    live: bool | None
    blinks: int = 0
    yaw: float = 0.0
    openness: float | None = None


@dataclass
class _Track:
    history: deque[tuple[float, np.ndarray]] = field(default_factory=deque)  # (t, openness)
    eye_changes: deque[float] = field(default_factory=lambda: deque(maxlen=30))
    first_judged: float | None = None
    last_crop: np.ndarray | None = None
    open_crop: np.ndarray | None = None  # the last frame with both eyes open
    dip_start: float | None = None
    dip_min: float = 1.0
    dip_crop: np.ndarray | None = None
    dip_open_crop: np.ndarray | None = None
    blinks: int = 0
    live: bool = False
    last_seen: float = 0.0
    last_judged: float = 0.0


class BlinkLiveness:
    """Follows each track's eyes and says which tracks are live (have blinked).

    Args:
        landmarker: (image, xyxy) -> (N, 106, 2) points, e.g. `engine.landmarks_106`.
        min_face_px: smallest face side judged (the landmarks do not run on smaller faces).
        forget_seconds: a track not seen for this long is forgotten.
        judge_live: keep judging tracks that are already live (to count the blinks a
            challenge asks for); by default a live track costs nothing more.
    """

    def __init__(
        self,
        landmarker: Landmarker,
        min_face_px: float = MIN_FACE_PX,
        forget_seconds: float = 5.0,
        judge_live: bool = False,
    ) -> None:
        if min_face_px <= 0:
            raise ValueError(f"min_face_px must be > 0, got {min_face_px}")
        self.landmarker = landmarker
        self.min_face_px = min_face_px
        self.forget_seconds = forget_seconds
        self.judge_live = judge_live
        self.landmark_runs = 0  # faces the landmark model ran on (for bench/fps.py)
        self.reset()

    def reset(self) -> None:
        """Forget every track."""
        self._tracks: dict[int, _Track] = {}

    def forget(self, track_id: int) -> None:
        """Forget one track (it ended)."""
        self._tracks.pop(track_id, None)

    def is_live(self, track_id: int | None) -> bool:
        state = self._tracks.get(track_id) if track_id is not None else None
        return bool(state and state.live)

    def update(
        self,
        image: np.ndarray,
        timestamp: float,
        track_ids: Sequence[int | None],
        xyxy: np.ndarray,
        landmarks5: np.ndarray,
    ) -> tuple[FaceLiveness, ...]:
        """Judge this frame's faces; returns one `FaceLiveness` per face, in order.

        `track_ids` are the tracker's ids (None for an untracked still: never judged),
        `xyxy` the (N, 4) boxes and `landmarks5` the detector's (N, 5, 2) points.
        """
        boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        five = np.asarray(landmarks5, dtype=np.float32).reshape(-1, 5, 2)
        if not len(track_ids) == len(boxes) == len(five):
            raise ValueError(
                f"track_ids, xyxy and landmarks5 must have one row per face, got "
                f"{len(track_ids)}, {len(boxes)} and {len(five)}"
            )
        for old_id, old in list(self._tracks.items()):
            if timestamp - old.last_seen > self.forget_seconds or timestamp < old.last_seen:
                del self._tracks[old_id]
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        judge = [
            i
            for i, tid in enumerate(track_ids)
            if tid is not None
            and sides[i] >= self.min_face_px
            and (self.judge_live or not self.is_live(tid))
        ]
        openness: dict[int, float] = {}
        if judge:
            points = self.landmarker(image, boxes[judge])
            self.landmark_runs += len(judge)
            for i, pts in zip(judge, points, strict=True):
                state = self._tracks.setdefault(int(track_ids[i]), _Track())  # type: ignore[arg-type]
                openness[i] = self._step(state, timestamp, image, pts, five[i])
        out = []
        for i, tid in enumerate(track_ids):
            seen = self._tracks.get(tid) if tid is not None else None
            if seen is not None:
                seen.last_seen = timestamp
            out.append(
                FaceLiveness(
                    live=_verdict(seen),
                    blinks=seen.blinks if seen else 0,
                    yaw=yaw_ratio(five[i]),
                    openness=openness.get(i),
                )
            )
        return tuple(out)

    def _step(
        self, state: _Track, t: float, image: np.ndarray, points: np.ndarray, five: np.ndarray
    ) -> float:
        """Add one judged frame to a track; returns the openness ratio of this frame."""
        crop = _grey_crop(image, five)
        if state.last_crop is not None:
            state.eye_changes.append(eye_change(state.last_crop, crop))
        state.last_crop = crop
        if state.first_judged is None:
            state.first_judged = t
        state.last_judged = t
        eyes = eye_openness(points)[0]
        while state.history and t - state.history[0][0] > OPEN_SECONDS:
            state.history.popleft()
        state.history.append((t, eyes))
        if len(state.history) < MIN_HISTORY:
            state.open_crop = crop
            return 1.0
        level = np.percentile(np.stack([o for _, o in state.history]), OPEN_PERCENTILE, axis=0)
        level = np.maximum(level, 1e-6)
        per_eye = eyes / level
        ratio = float(np.mean(per_eye))
        if state.dip_start is None:
            recent = np.stack([o for _, o in state.history][:-1]) / level
            ratios = recent.mean(axis=1)
            noise = 1.4826 * float(np.median(np.abs(ratios - np.median(ratios))))
            closed = (
                ratio <= min(DIP_RATIO, 1.0 - NOISE_K * noise)
                and float(per_eye.max()) <= EACH_EYE_RATIO
            )
            if closed and state.open_crop is not None:
                state.dip_start, state.dip_min = t, ratio
                state.dip_crop, state.dip_open_crop = crop, state.open_crop
            elif ratio >= RECOVER_RATIO:
                state.open_crop = crop
            return ratio
        if t - state.dip_start > MAX_BLINK_SECONDS:  # closed too long: not a blink
            state.dip_start = None
        elif ratio < state.dip_min:
            state.dip_min, state.dip_crop = ratio, crop
        elif ratio >= RECOVER_RATIO:
            if self._eyes_changed(state):
                state.blinks += 1
                state.live = True
            state.dip_start = None
            state.open_crop = crop
        return ratio

    @staticmethod
    def _eyes_changed(state: _Track) -> bool:
        """Whether the eyes at the dip look different from the open eyes before it, by far
        more than they usually change from frame to frame."""
        if state.dip_crop is None or state.dip_open_crop is None:
            return False
        change = eye_change(state.dip_open_crop, state.dip_crop)
        usual = max(float(np.median(state.eye_changes)), MIN_USUAL_CHANGE)
        return change >= MIN_EYE_CHANGE and change >= EYE_CHANGE_FACTOR * usual


def _verdict(state: _Track | None) -> bool | None:
    if state is None:
        return None
    if state.live:
        return True
    if (
        state.first_judged is not None
        and state.last_judged - state.first_judged >= NO_BLINK_SECONDS
    ):
        return False
    return None
