"""Frozen value types that cross the stages of the pipeline.

Boxes are `xyxy` in pixels of the frame they came from; cosine values are `similarity`.
Array containers check their shapes when built and can be sliced with an index or a mask,
like supervision's `Detections`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

_T = TypeVar("_T", bound="Detections")


def _as_f32(name: str, value: Any, shape_tail: tuple[int | None, ...]) -> np.ndarray:
    """`value` as a read-only float32 array of shape (N, *shape_tail); None matches any size."""
    array = np.ascontiguousarray(value, dtype=np.float32)
    if array.ndim != 1 + len(shape_tail) or any(
        want is not None and got != want
        for got, want in zip(array.shape[1:], shape_tail, strict=True)
    ):
        want = ", ".join(["N", *("K" if s is None else str(s) for s in shape_tail)])
        raise ValueError(f"{name} must have shape ({want}), got {array.shape}")
    array.setflags(write=False)
    return array


def _frozen_data(name: str, data: Mapping[str, Any], n: int) -> Mapping[str, np.ndarray]:
    """A read-only copy of a per-face `data` mapping, each value an array with `n` rows."""
    out: dict[str, np.ndarray] = {}
    for key, value in data.items():
        array = np.array(value, copy=True)
        if array.ndim < 1 or len(array) != n:
            raise ValueError(
                f"{name}[{key!r}] must have one row per face ({n}), got shape {array.shape}"
            )
        array.setflags(write=False)
        out[str(key)] = array
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class Detections:
    """Faces found in one frame, before embedding.

    Attributes:
        xyxy: (N, 4) float32 boxes, x1 y1 x2 y2 in pixels.
        scores: (N,) float32 detector confidences in [0, 1].
        landmarks: (N, K, 2) float32 points in pixels; the detector gives K = 5 (eyes, nose,
            mouth corners), which is what alignment needs.
        data: per-face extras for optional analysers, like supervision's `Detections.data`:
            name -> array with one row per face (e.g. `"live"` states, 106-point landmarks),
            sliced with the detections; read-only.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    data: Mapping[str, np.ndarray] = field(default_factory=dict, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", _as_f32("xyxy", self.xyxy, (4,)))
        object.__setattr__(self, "scores", _as_f32("scores", self.scores, ()))
        object.__setattr__(self, "landmarks", _as_f32("landmarks", self.landmarks, (None, 2)))
        n = len(self.xyxy)
        if len(self.scores) != n or len(self.landmarks) != n:
            raise ValueError(
                f"xyxy, scores and landmarks must have one row per face, got "
                f"{n}, {len(self.scores)} and {len(self.landmarks)}"
            )
        object.__setattr__(self, "data", _frozen_data("data", self.data, n))

    def with_data(self: _T, **columns: Any) -> _T:
        """A copy with `columns` (name -> one row per face) added to `data`."""
        values = {name: getattr(self, name) for name in _fields(self) if name != "data"}
        return type(self)(**values, data={**self.data, **columns})

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2)))

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def box_wh(self) -> np.ndarray:
        """(N, 2) float32 box widths and heights in pixels."""
        wh: np.ndarray = self.xyxy[:, 2:4] - self.xyxy[:, 0:2]
        return wh

    def __getitem__(self: _T, index: Any) -> _T:
        """Select faces with an integer array, a slice or a boolean mask."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        values = {name: getattr(self, name)[index] for name in _fields(self) if name != "data"}
        data = {key: value[index] for key, value in self.data.items()}
        return type(self)(**values, data=data)


@dataclass(frozen=True, slots=True)
class Faces(Detections):
    """Detected faces with their embeddings.

    Attributes (beyond `Detections`):
        embeddings: (N, D) float32 L2-normalised ArcFace embeddings (D = 512 for the
            bundled packs); cosine similarity of two faces is their dot product.
    """

    embeddings: np.ndarray

    def __post_init__(self) -> None:
        Detections.__post_init__(self)
        emb = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        if emb.ndim != 2 or len(emb) != len(self.xyxy):
            raise ValueError(f"embeddings must have shape ({len(self.xyxy)}, D), got {emb.shape}")
        emb.setflags(write=False)
        object.__setattr__(self, "embeddings", emb)

    @classmethod
    def empty(cls, dim: int = 512) -> Faces:
        return cls(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2)), np.zeros((0, dim)))

    @classmethod
    def from_detections(cls, detections: Detections, embeddings: np.ndarray) -> Faces:
        return cls(
            detections.xyxy,
            detections.scores,
            detections.landmarks,
            embeddings,
            data=detections.data,
        )


@dataclass(frozen=True, slots=True)
class Match:
    """Who one face is, by majority vote of its nearest enrolled neighbours.

    Attributes:
        name: the person's display name, or None for unknown.
        similarity: best cosine similarity among the neighbours that voted for `name`
            (for unknown: the best similarity of any neighbour, or 0.0).
        votes: neighbours that voted for `name` (0 when unknown).
        person_id: the gallery id of the person, None when unknown.
    """

    name: str | None
    similarity: float
    votes: int
    person_id: int | None = None

    @property
    def is_known(self) -> bool:
        return self.name is not None


@dataclass(frozen=True, slots=True)
class Person:
    """One enrolled person: gallery id, display name, photos stored, when first enrolled."""

    id: int
    name: str
    photos: int
    created: datetime


def _fields(obj: Detections) -> tuple[str, ...]:
    return tuple(f for f in type(obj).__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class Frame:
    """One picture from a source (camera, video, URL, image file or folder).

    Attributes:
        image: (H, W, 3) uint8 BGR pixels.
        index: frame number in the source, 0-based (gaps mean frames were dropped).
        source: the file path for image files and folders, None for cameras, videos, URLs.
        timestamp: seconds; `time.monotonic()` for live sources, the position in the file
            for videos, 0.0 for stills.
    """

    image: np.ndarray
    index: int
    source: str | None
    timestamp: float


@dataclass(frozen=True, slots=True)
class Track:
    """One labelled face in one frame, as the tracker (or a still's matcher) reports it.

    Attributes:
        id: track number, stable across frames; None for stills (no tracking).
        xyxy: box in pixels of this frame.
        landmarks: (K, 2) float32 points in pixels of this frame (K = 5 from the detector).
        name: the name the track's recent votes agree on, None for unknown.
        similarity: best cosine similarity behind `name` (for unknown: the best of any match).
        embedded: True when the face was embedded (and matched) in this frame.
        score: the detector's confidence for this face in this frame.
        embedding: (D,) float32 embedding taken in this frame, None when not embedded.
        data: this face's row of the detections' `data` (analysers' values).
    """

    id: int | None
    xyxy: tuple[float, float, float, float]
    landmarks: np.ndarray
    name: str | None
    similarity: float
    embedded: bool = True
    score: float = 0.0
    embedding: np.ndarray | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_known(self) -> bool:
        return self.name is not None


VISITOR = "visitor"  # `Track.data` key: the group id of a recurring stranger (auto-enrol)

END_LEFT = "left"  # the face left the picture (not detected for a few frames)
END_CUT = "cut"  # the shot changed: the whole picture is new
END_SOURCE = "end"  # the source ended, or the session was stopped
END_REASONS = (END_LEFT, END_CUT, END_SOURCE)


@dataclass(frozen=True, slots=True)
class TrackEnd:
    """A track that ended: everything a sighting of one face needs.

    Attributes:
        track_id: the track's id (never reused within a session).
        reason: `"left"` (left the picture), `"cut"` (shot cut) or `"end"` (source ended).
        first_index, last_index: the first and last frame index the face was seen in.
        first_time, last_time: those frames' timestamps (see `Frame.timestamp`).
        frames: frames the face was detected in.
        name: the track's final label, None for unknown.
        best_similarity: best similarity of the matches behind `name` (unknown: of any match).
        mean_similarity: mean similarity of those matches.
        crop: (H, W, 3) uint8 BGR crop of the best view (by detector score, size, sharpness),
            None when the face was never embedded.
        embedding: (D,) float32 L2-normalised mean of the track's embeddings, or None.
        embeddings: how many embeddings that mean is made of.
    """

    track_id: int
    reason: str
    first_index: int
    last_index: int
    first_time: float
    last_time: float
    frames: int
    name: str | None
    best_similarity: float
    mean_similarity: float
    crop: np.ndarray | None
    embedding: np.ndarray | None
    embeddings: int

    @property
    def is_known(self) -> bool:
        return self.name is not None

    @property
    def seconds(self) -> float:
        return self.last_time - self.first_time


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything recognized in one frame.

    Attributes:
        index: the frame's index in its source.
        source: the image path for stills, None otherwise.
        faces: one `Track` per detected face, best detector score first.
        embedded: how many faces were embedded for this frame (the rest kept their label).
        ended: tracks that ended at this frame (left the picture, or a shot cut).
        timestamp: the frame's timestamp (see `Frame.timestamp`).
    """

    index: int
    source: str | None
    faces: tuple[Track, ...]
    embedded: int
    ended: tuple[TrackEnd, ...] = ()
    timestamp: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The `--json` object: frame, source, faces (box, name, similarity, track, and
        `visitor` for a recurring stranger under `recognize --auto-enrol`)."""
        return {
            "frame": self.index,
            "source": self.source,
            "faces": [
                {
                    "box": [round(float(v)) for v in face.xyxy],
                    "name": face.name,
                    "similarity": round(float(face.similarity), 3),
                    "track": face.id,
                    **({VISITOR: int(face.data[VISITOR])} if VISITOR in face.data else {}),
                }
                for face in self.faces
            ],
        }


@dataclass(frozen=True, slots=True)
class Verification:
    """Whether two faces are the same person.

    Attributes:
        similarity: cosine similarity of the two faces' embeddings.
        same_person: `similarity >= threshold`.
        threshold: the similarity threshold used.
    """

    similarity: float
    same_person: bool
    threshold: float

    def to_json(self) -> dict[str, Any]:
        return {
            "similarity": round(self.similarity, 4),
            "same_person": self.same_person,
            "threshold": round(self.threshold, 4),
        }


@dataclass(frozen=True, slots=True)
class EmbeddedPhoto:
    """The one face picked and embedded in a photo of a batch.

    Attributes:
        path: the photo's file path.
        embedding: (D,) float32 L2-normalised, or None when no usable face (see `error`).
        xyxy: (4,) float32 box of the face, or None (in the padded copy's pixels if `padded`).
        det_score: detector confidence of the face (0.0 when none).
        padded: True when the face was only found after padding the photo with a border.
        error: why the photo gave no embedding (one sentence), else None.
    """

    path: str
    embedding: np.ndarray | None
    xyxy: np.ndarray | None
    det_score: float
    padded: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class PhotoBatch:
    """The result of embedding a list of photos: one `EmbeddedPhoto` each, in order."""

    photos: tuple[EmbeddedPhoto, ...]
    seconds: float

    @property
    def photos_per_second(self) -> float:
        return len(self.photos) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class RocCurve:
    """Receiver operating characteristic of genuine (label 1) vs impostor (label 0) scores.

    Attributes:
        fpr: (M,) false-positive rates, non-decreasing, from 0 to 1.
        tpr: (M,) true-positive rates, non-decreasing, from 0 to 1.
        thresholds: (M,) similarity thresholds, decreasing; the first is +inf.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray

    @property
    def auc(self) -> float:
        """Area under the curve (trapezoidal rule)."""
        x, y = self.fpr.astype(np.float64), self.tpr.astype(np.float64)
        return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


@dataclass(frozen=True, slots=True)
class RateAtFar:
    """A true-accept (or true-identification) rate at a target false-accept rate.

    Attributes:
        far: the target false-accept rate, e.g. 0.01.
        rate: the true rate measured at `threshold`.
        threshold: the similarity threshold that keeps the false accepts within `far`.
        impostors: how many impostor scores (stranger probes, different-person pairs) it rests on.
        supported: False when `impostors < 1 / far`: the data cannot measure a rate that low.
    """

    far: float
    rate: float
    threshold: float
    impostors: int
    supported: bool


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """How the matcher does at one similarity threshold.

    Attributes:
        threshold: the similarity threshold.
        known_correct: fraction of enrolled people's probes named correctly.
        known_wrong: fraction named as somebody else.
        known_rejected: fraction called unknown.
        strangers_accepted: fraction of stranger probes named as somebody (None: no strangers).
        pair_tar: same-person pairs accepted at this threshold.
        pair_far: different-person pairs accepted at this threshold.
    """

    threshold: float
    known_correct: float
    known_wrong: float
    known_rejected: float
    strangers_accepted: float | None
    pair_tar: float
    pair_far: float


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One way of matching a probe against the enrolled photos, on the same split.

    Attributes:
        method: "majority vote" (the matcher), "nearest neighbour" or "mean template".
        rank1: closed-set rank-1 accuracy (no threshold).
        tir_at_far: open-set true-identification rate at FAR 1% (None: no strangers).
        at_current: the result at the current threshold.
    """

    method: str
    rank1: float
    tir_at_far: RateAtFar | None
    at_current: ThresholdResult


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """Everything `face-recognizer evaluate` measures on one labelled folder.

    Attributes:
        people: identities in the folder; enrolled_people: those with an enrolled photo.
        enrol_per_person: K, the first K photos (sorted by name) enrolled per person.
        enrolled_photos: photos stored in the temporary gallery.
        rejected_enrol: enrolment photos the quality check refused, by reason.
        probes: probe photos of enrolled people that gave a face; strangers: same, of --unknowns.
        no_face: probe/stranger photos where no face was found (left out).
        padded: photos whose face was found only on a padded copy.
        photos_per_second: probe and stranger photos read, detected and embedded per second.
        rank1: closed-set rank-1 accuracy of the nearest neighbour.
        open_set: true-identification rate at FAR 10%, 1%, 0.1% (empty without strangers).
        pairs: verification TAR at FPR 0.5 ... 0.001 over same/different-person photo pairs.
        auc: ROC-AUC of those pairs; same_scores/different_scores: their similarities.
        current, suggested: the matcher at the current and the suggested threshold.
        suggested_basis: how the suggested threshold was chosen.
        methods: majority vote vs nearest neighbour vs mean template.
        skipped: (folder or photo, why) for everything left out: a folder whose name cannot
            be a person's, enrolment photos refused, probes without a usable face.
    """

    people: int
    enrolled_people: int
    enrol_per_person: int
    enrolled_photos: int
    rejected_enrol: dict[str, int]
    probes: int
    strangers: int
    no_face: int
    padded: int
    photos_per_second: float
    rank1: float
    open_set: tuple[RateAtFar, ...]
    pairs: tuple[RateAtFar, ...]
    auc: float
    same_scores: np.ndarray
    different_scores: np.ndarray
    current: ThresholdResult
    suggested: ThresholdResult
    suggested_basis: str
    methods: tuple[MethodResult, ...]
    skipped: tuple[tuple[str, str], ...] = ()
