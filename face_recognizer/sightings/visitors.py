"""`recognize --auto-enrol N`: strangers seen in N sightings get a stable "Visitor 7" label.

`Visitors` keeps, for every group of recurring strangers with at least N sightings, the mean
of its sightings' embeddings; the sightings writer refreshes it after each batch it stores
(on its own thread, `regroup` included), the live loop only reads it. `VisitorStep` wraps the
recognition step: an unknown face whose track's mean embedding is close enough to a visitor
gets `data["visitor"]` (the group id), which the window shows as "Visitor 7" and `--json`
as `"visitor": 7`. Naming the group later (`unknowns name`) makes its sightings the person's.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

from face_recognizer.sightings.cluster import DEFAULT_MIN_SIMILARITY
from face_recognizer.sightings.groups import regroup
from face_recognizer.store.base import Store
from face_recognizer.types import VISITOR, Frame, FrameResult, TrackEnd


class Visitors:
    """Recurring strangers for the live loop: the groups with at least `min_sightings`
    sightings, each as the mean of its embeddings. `update` (on the sightings writer's thread)
    swaps in a new table; `identify` (on the live loop's thread) only reads it."""

    def __init__(self, min_sightings: int, min_similarity: float = DEFAULT_MIN_SIMILARITY) -> None:
        if min_sightings < 1:
            raise ValueError(f"--auto-enrol must be at least 1, got {min_sightings}")
        self.min_sightings = min_sightings
        self.min_similarity = min_similarity
        self._lock = threading.Lock()
        self._ids = np.zeros(0, np.int64)
        self._centroids = np.zeros((0, 0), np.float32)
        self.version = 0

    def update(self, store: Store, recognizer_id: str) -> None:
        groups = [
            g
            for g in regroup(store, recognizer_id, self.min_similarity)
            if g.sightings >= self.min_sightings
        ]
        ids, vectors = store.unknown_embeddings(recognizer_id)
        row_of = {int(i): r for r, i in enumerate(ids.tolist())}
        centroids = []
        for g in groups:
            mean = vectors[[row_of[i] for i in g.sighting_ids if i in row_of]].mean(axis=0)
            centroids.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        with self._lock:
            self._ids = np.array([g.id for g in groups], np.int64)
            self._centroids = (
                np.array(centroids, np.float32) if centroids else np.zeros((0, 0), np.float32)
            )
            self.version += 1

    def identify(self, embedding: np.ndarray) -> int | None:
        """The visitor number of the group whose mean is most similar to `embedding`, if at
        least `min_similarity`; else None."""
        with self._lock:
            ids, centroids = self._ids, self._centroids
        if len(ids) == 0 or centroids.shape[1] != embedding.shape[-1]:
            return None
        sims = centroids @ np.asarray(embedding, np.float32)
        best = int(np.argmax(sims))
        return int(ids[best]) if sims[best] >= self.min_similarity else None


class VisitorStep:
    """The recognition step, with recurring strangers labelled (see the module doc).

    Anything else (`people_count`, `tracker`, ...) is the wrapped step's.
    """

    def __init__(self, step: Any, visitors: Visitors) -> None:
        self.step = step
        self.visitors = visitors
        self._sums: dict[int, np.ndarray] = {}
        self._labels: dict[int, tuple[int, int | None]] = {}  # track -> (version, visitor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.step, name)

    def _visitor(self, track: int, embedding: np.ndarray | None) -> int | None:
        if embedding is not None:
            vector = np.asarray(embedding, np.float32)
            self._sums[track] = self._sums.get(track, 0) + vector
            self._labels.pop(track, None)
        cached = self._labels.get(track)
        if cached is not None and cached[0] == self.visitors.version:
            return cached[1]
        total = self._sums.get(track)
        if total is None:
            return None
        visitor = self.visitors.identify(total / max(float(np.linalg.norm(total)), 1e-12))
        self._labels[track] = (self.visitors.version, visitor)
        return visitor

    def process(self, frame: Frame, *, still: bool = False) -> FrameResult:
        result: FrameResult = self.step.process(frame, still=still)
        faces = list(result.faces)
        for i, face in enumerate(faces):
            if face.name is not None:
                continue
            if face.id is None:
                visitor = None if face.embedding is None else self.visitors.identify(face.embedding)
            else:
                visitor = self._visitor(face.id, face.embedding)
            if visitor is not None:
                faces[i] = dataclasses.replace(face, data={**face.data, VISITOR: visitor})
        self._forget(result.ended)
        return dataclasses.replace(result, faces=tuple(faces))

    def _forget(self, ended: tuple[TrackEnd, ...]) -> None:
        for event in ended:
            self._sums.pop(event.track_id, None)
            self._labels.pop(event.track_id, None)

    def reset(self) -> None:
        self._sums.clear()
        self._labels.clear()
        self.step.reset()

    def finish(self) -> tuple[TrackEnd, ...]:
        ended: tuple[TrackEnd, ...] = self.step.finish()
        self._forget(ended)
        return ended
