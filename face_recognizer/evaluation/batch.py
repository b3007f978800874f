"""Embedding many photos efficiently: reading on threads, embedding in batches.

`embed_photos` reads and decodes images on a small thread pool while the main thread detects
faces, picks one per photo and embeds the picked faces in batches across photos (one recognizer
call per `batch_faces` faces).

Tightly cropped faces (a 150x150 crop that is all face) and small photos (92x112) give the
SCRFD detector nothing to find: its anchors expect some context around a face. With `pad`
(the default) such a photo is retried on a black border (`quality.detect_for_enrolment`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from face_recognizer.errors import FaceCountError, FaceRecognizerError
from face_recognizer.images import prefetch, read_image
from face_recognizer.quality import Pick, detect_for_enrolment, pick_face
from face_recognizer.types import Detections, EmbeddedPhoto, PhotoBatch

if TYPE_CHECKING:
    from face_recognizer.engine import Engine

DEFAULT_BATCH_FACES = 32


def detect_padded(
    engine: Engine, image: np.ndarray, pad: bool = True
) -> tuple[np.ndarray, Detections]:
    """Faces in `image`; when none are found and `pad`, faces found on a padded copy.

    Returns the image the detections refer to (the padded copy when that found them), to be
    aligned from. The padding is GALLERY's `quality.detect_for_enrolment`, which register and
    import use too.
    """
    if not pad:
        return image, engine.detect(image)
    return detect_for_enrolment(engine, image)


def embed_photos(
    engine: Engine,
    paths: Sequence[Path],
    *,
    pick: Pick = "center",
    pad: bool = True,
    batch_faces: int = DEFAULT_BATCH_FACES,
    read_workers: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> PhotoBatch:
    """Detect, pick and embed one face in each photo of `paths`, in order.

    Photos that cannot be read or hold no usable face come back with `embedding=None` and the
    reason in `error`; they never stop the batch. `on_progress(n)` is called after every n photos
    (n = 1 here), from the calling thread.
    """
    if batch_faces < 1:
        raise ValueError(f"batch_faces must be >= 1, got {batch_faces}")
    start = time.perf_counter()
    results: list[EmbeddedPhoto | None] = [None] * len(paths)
    pending: list[tuple[int, np.ndarray, Detections, bool]] = []  # (slot, crop, face, padded)

    def flush() -> None:
        if not pending:
            return
        embeddings = engine.embed_crops(np.stack([crop for _, crop, _, _ in pending]))
        for (slot, _, face, padded), embedding in zip(pending, embeddings, strict=True):
            results[slot] = EmbeddedPhoto(
                str(paths[slot]), embedding, face.xyxy[0], float(face.scores[0]), padded, None
            )
        pending.clear()

    for slot, image in enumerate(read_ahead(paths, read_workers)):
        path = str(paths[slot])
        if isinstance(image, FaceRecognizerError):
            results[slot] = EmbeddedPhoto(path, None, None, 0.0, False, str(image))
        else:
            source, detections = detect_padded(engine, image, pad)
            padded = source is not image
            try:
                index = pick_face(detections, pick, (image.shape[1], image.shape[0]))
            except FaceCountError as exc:
                results[slot] = EmbeddedPhoto(path, None, None, 0.0, padded, exc.message)
            else:
                face = detections[index]
                crop = engine.align(source, face.landmarks)[0]
                pending.append((slot, crop, face, padded))
                if len(pending) >= batch_faces:
                    flush()
        if on_progress is not None:
            on_progress(1)
    flush()
    done = [r for r in results if r is not None]
    return PhotoBatch(tuple(done), time.perf_counter() - start)


def read_ahead(paths: Iterable[Path], workers: int) -> Iterable[np.ndarray | FaceRecognizerError]:
    """Decoded images in order, read up to `4 * workers` photos ahead on a thread pool."""

    def load(path: Path) -> np.ndarray | FaceRecognizerError:
        try:
            return read_image(path)
        except FaceRecognizerError as exc:
            return exc

    return prefetch(load, paths, workers)
