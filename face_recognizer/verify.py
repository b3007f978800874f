"""Same person or not: one photo against another, or the faces of a frame against a reference.

A face's embedding is compared with cosine similarity (a dot product of L2-normalised
embeddings); `same_person` is `similarity >= threshold`. The threshold comes from
`--threshold`, else the gallery's stored "threshold" setting (written by
`evaluate --apply`), else `matcher.DEFAULT_THRESHOLD`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from face_recognizer.errors import FaceCountError
from face_recognizer.evaluation.batch import detect_padded
from face_recognizer.images import read_image
from face_recognizer.quality import Pick, pick_face
from face_recognizer.types import Faces, Verification

if TYPE_CHECKING:
    from face_recognizer.engine import Engine


@dataclass(frozen=True, slots=True)
class ReferenceFace:
    """The face of a photo chosen for comparison: its embedding and box in the photo."""

    embedding: np.ndarray
    xyxy: np.ndarray


def reference_face(
    engine: Engine,
    image: np.ndarray,
    *,
    pick: Pick = "only",
    label: str = "The photo",
    pad: bool = True,
) -> ReferenceFace:
    """Embed the one face of `image` (with `pick="largest"`: the largest of several).

    Raises `FaceCountError` naming `label` when there is no face, or several with `only`.
    Tightly cropped faces are found by padding (see `batch.detect_padded`).
    """
    source, detections = detect_padded(engine, image, pad)
    try:
        index = pick_face(detections, pick, (source.shape[1], source.shape[0]))
    except FaceCountError as exc:
        if len(detections) == 0:
            raise FaceCountError(
                f"{label} holds no face that the detector can find.",
                hint="Use a sharper, frontal photo where the face is at least 40 pixels wide.",
            ) from exc
        raise FaceCountError(
            f"{label} holds {len(detections)} faces, so it is unclear which one to compare.",
            hint="Crop it to one person, or take the largest face.",
            param="pick",
            value="largest",
        ) from exc
    face = detections[index]
    embedding = engine.embed(source, face).embeddings[0]
    return ReferenceFace(embedding, face.xyxy[0].copy())


def compare(first: np.ndarray, second: np.ndarray, threshold: float) -> Verification:
    """Verification of two L2-normalised embeddings at `threshold`."""
    similarity = float(np.dot(np.asarray(first, np.float32), np.asarray(second, np.float32)))
    return Verification(similarity, similarity >= threshold, float(threshold))


def verify_photos(
    engine: Engine, first: str | Path, second: str | Path, threshold: float, pick: Pick = "only"
) -> Verification:
    """Whether the faces in two photo files are the same person."""
    a = reference_face(engine, read_image(first), pick=pick, label=f"{Path(first).name}")
    b = reference_face(engine, read_image(second), pick=pick, label=f"{Path(second).name}")
    return compare(a.embedding, b.embedding, threshold)


def verify_faces(faces: Faces, reference: np.ndarray, threshold: float) -> list[Verification]:
    """One `Verification` per face of a frame against the reference embedding."""
    similarities = faces.embeddings @ np.asarray(reference, dtype=np.float32)
    return [Verification(float(s), bool(s >= threshold), float(threshold)) for s in similarities]


def resolve_threshold(threshold: float | None, db: str | Path | None) -> tuple[float, str]:
    """The threshold to use and where it came from ("--threshold", "gallery", "default").

    `threshold` (from --threshold) wins; else the "threshold" setting of the gallery at `db`
    (read only, never created); else `matcher.DEFAULT_THRESHOLD`.
    """
    from face_recognizer.matcher import DEFAULT_THRESHOLD, THRESHOLD_SETTING, check_threshold
    from face_recognizer.store import gallery_exists, open_store

    if threshold is not None:
        return check_threshold(threshold), "--threshold"
    if gallery_exists(db):
        with open_store(db, create=False) as gallery:
            stored = gallery.get_setting(THRESHOLD_SETTING)
        if stored is not None:
            return check_threshold(float(stored)), "gallery"
    return DEFAULT_THRESHOLD, "default"
