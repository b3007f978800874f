"""Is a photo good enough to enrol? Pure checks on the detector's output.

`check_photo` looks at one image and its `Detections` and says whether it holds exactly one
usable face, and if not, why: "no face", "several faces", "face too small", "too blurred" or
"turned too far". The thresholds were chosen on real photos (the bundled samples and the
shared datasets, see `bench/quality_figures.py` in the README's "## Gallery" section): every
face the detector finds in AT&T/ORL (92x112 grey) and the bbt8 tight crops passes (the
detector finds those only on a padded copy: `detect_for_enrolment`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import cv2
import numpy as np

from face_recognizer.errors import FaceCountError
from face_recognizer.types import Detections

# Smallest face side (min of box width and height) in pixels worth enrolling. ORL's faces
# are ~55-75 px and still embed well; below ~40 px ArcFace embeddings get unreliable.
MIN_FACE_PX = 40.0
# Laplacian variance of the face, resized to BLUR_SIDE x BLUR_SIDE grey. Sharp faces measure
# ~100-2000; a Gaussian blur with sigma 3 brings a 250 px LFW face to ~10.
MIN_BLUR = 25.0
BLUR_SIDE = 112
# |yaw_ratio| above this: the nose is outside the eyes, a profile view (3/4 views pass).
MAX_YAW_RATIO = 1.0
# A second face counts as "several faces" only when it is at least this fraction of the
# largest face's side (small faces in the background of a portrait are ignored).
SECOND_FACE_FRACTION = 0.5


class Detector(Protocol):
    """Anything that finds faces (an `Engine`)."""

    def detect(self, image: np.ndarray) -> Detections: ...


Pick = Literal["only", "largest", "center"]
PICKS: tuple[str, ...] = ("only", "largest", "center")

REASONS = ("no face", "several faces", "face too small", "too blurred", "turned too far")
# Tight crops (AT&T/ORL, bbt8) leave the detector no context: it finds them only on a border.
PAD_FRACTION = 0.5


@dataclass(frozen=True, slots=True)
class PhotoCheck:
    """Verdict on one photo.

    Attributes:
        usable: True when the photo holds exactly one face good enough to enrol.
        reason: one of `REASONS` when not usable, else None.
        face: index into the `Detections` of the face to use (or that failed), None for
            "no face" and "several faces".
        face_px: min(box width, height) of that face in pixels (0.0 when none).
        blur: Laplacian variance of that face (0.0 when none); higher is sharper.
        yaw: `yaw_ratio` of that face (0.0 when none).
    """

    usable: bool
    reason: str | None
    face: int | None
    face_px: float = 0.0
    blur: float = 0.0
    yaw: float = 0.0


def yaw_ratio(landmarks: np.ndarray) -> float:
    """Where the nose sits between the eyes, along the eye line: 0 frontal, +-1 under an eye,
    `inf` for a full profile (both eyes on one point).

    `landmarks` is one face's (5, 2) points (left eye, right eye, nose, mouth corners). The
    projection onto the eye axis makes it independent of roll and of the face's size.
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left, right, nose = points[0], points[1], points[2]
    axis = right - left
    half = float(axis @ axis) / 2.0
    if half <= 1e-9:
        return math.inf  # eyes on one point: a full profile, beyond any limit
    return float((nose - (left + right) / 2.0) @ axis / half)


def blur_score(image: np.ndarray, xyxy: np.ndarray) -> float:
    """Laplacian variance of the face box resized to BLUR_SIDE px grey; higher is sharper."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in np.asarray(xyxy).reshape(4))
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(w, x2), min(h, y2)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    face = image[y1:y2, x1:x2]
    grey = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY) if face.ndim == 3 else face
    grey = cv2.resize(grey, (BLUR_SIDE, BLUR_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def pad_for_detection(image: np.ndarray) -> np.ndarray:
    """`image` on a black border of PAD_FRACTION of its size on each side (for tight crops)."""
    h, w = image.shape[:2]
    dy, dx = int(h * PAD_FRACTION), int(w * PAD_FRACTION)
    return cv2.copyMakeBorder(image, dy, dy, dx, dx, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def detect_for_enrolment(engine: Detector, image: np.ndarray) -> tuple[np.ndarray, Detections]:
    """Detect faces in a photo to enrol; retry on a padded copy when none is found.

    Returns the image the detections refer to (the padded copy on a retry) and the faces.
    `engine` is an `Engine` (anything with `detect(image) -> Detections`).
    """
    detections = engine.detect(image)
    if len(detections) == 0:
        padded = pad_for_detection(image)
        retry = engine.detect(padded)
        if len(retry):
            return padded, retry
    return image, detections


def big_faces(detections: Detections) -> list[int]:
    """Indices of the faces that count: at least `SECOND_FACE_FRACTION` of the largest face's
    side (small faces in the background of a portrait do not), largest first."""
    if len(detections) == 0:
        return []
    sides = detections.box_wh.min(axis=1)
    order = np.argsort(-sides, kind="stable")
    return [int(i) for i in order if sides[i] >= SECOND_FACE_FRACTION * float(sides[order[0]])]


def check_face(image: np.ndarray, detections: Detections, index: int) -> PhotoCheck:
    """Whether face `index` of `image` is big, sharp and frontal enough to enrol."""
    side = float(detections.box_wh[index].min())
    blur = blur_score(image, detections.xyxy[index])
    yaw = yaw_ratio(detections.landmarks[index])
    reason = None
    if side < MIN_FACE_PX:
        reason = "face too small"
    elif blur < MIN_BLUR:
        reason = "too blurred"
    elif abs(yaw) > MAX_YAW_RATIO:
        reason = "turned too far"
    return PhotoCheck(reason is None, reason, index, side, blur, yaw)


def check_photo(image: np.ndarray, detections: Detections) -> PhotoCheck:
    """Whether `image` holds exactly one face good enough to enrol, and which one."""
    faces = big_faces(detections)
    if not faces:
        return PhotoCheck(False, "no face", None)
    if len(faces) > 1:
        return PhotoCheck(False, "several faces", None)
    return check_face(image, detections, faces[0])


def pick_face(detections: Detections, pick: Pick, image_wh: tuple[int, int]) -> int:
    """Index of the face to use when the caller says which.

    `only`: the photo must hold exactly one face; `largest`: the largest box; `center`: the
    largest box among those holding the photo's centre (else the one nearest to it).
    Raises `FaceCountError` (param "pick") for no face, or several with `only`.
    """
    n = len(detections)
    if n == 0:
        raise FaceCountError("No face was found.")
    if n == 1:
        return 0
    if pick == "only":
        raise FaceCountError(
            f"{n} faces were found where one was expected.",
            hint="Crop the photo to one person, or take the largest face.",
            param="pick",
            value="largest",
        )
    area = np.prod(detections.box_wh, axis=1)
    if pick == "largest":
        return int(np.argmax(area))
    if pick != "center":
        raise ValueError(f"pick must be one of {PICKS}, got {pick!r}")
    cx, cy = image_wh[0] / 2.0, image_wh[1] / 2.0
    x1, y1, x2, y2 = detections.xyxy.T
    holds = (x1 <= cx) & (cx <= x2) & (y1 <= cy) & (cy <= y2)
    if holds.any():
        return int(np.argmax(np.where(holds, area, -1.0)))
    dist = np.hypot((x1 + x2) / 2 - cx, (y1 + y2) / 2 - cy)
    return int(np.argmin(dist))
