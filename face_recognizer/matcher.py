"""Who is this face? Majority vote of the k nearest enrolled faces.

Neighbours below the similarity threshold do not vote; the person with most votes wins (ties:
the highest similarity); no votes means unknown. `DEFAULT_THRESHOLD` is the lowest threshold
that named at most 0.1% of ~3,000 stranger photos in `bench/calibrate_threshold.py`
(leave-people-out on `lfw_dev` plus `lfw_unknowns_dev`; README, "## Gallery").

`Matcher` keeps a `VectorIndex` of one model pack's embeddings and rebuilds it when the
gallery changes, also when another process wrote to it (`refresh`, cheap when unchanged).
While a gallery server cannot be reached, `refresh` keeps the index it has (`offline` says
why) and rebuilds once the server is back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np

from face_recognizer.errors import GalleryUnavailableError
from face_recognizer.index import VectorIndex
from face_recognizer.store.base import Store
from face_recognizer.types import Match

DEFAULT_K = 5
DEFAULT_THRESHOLD = 0.36
THRESHOLD_SETTING = "threshold"


def check_threshold(threshold: float | str) -> float:
    """`threshold` as a float, or ValueError when it is not a cosine similarity."""
    value = float(threshold)
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
    return value


def vote(
    similarities: np.ndarray, labels: np.ndarray, threshold: float, names: dict[int, str]
) -> Match:
    """Majority vote for ONE query over its neighbours (`similarities`, `labels`, (k,)).

    Neighbours with label -1, below `threshold`, or whose label has no name (a person removed
    meanwhile) do not vote. Most votes wins; ties go to the highest similarity.
    """
    sims = np.asarray(similarities, dtype=np.float32).reshape(-1)
    labs = np.asarray(labels, dtype=np.int64).reshape(-1)
    valid = labs >= 0
    best_any = float(sims[valid].max()) if valid.any() else 0.0
    tally: dict[int, tuple[int, float]] = {}
    for sim, label in zip(sims.tolist(), labs.tolist(), strict=True):
        if label < 0 or sim < threshold or label not in names:
            continue
        count, best = tally.get(label, (0, -1.0))
        tally[label] = (count + 1, max(best, sim))
    if not tally:
        return Match(None, best_any, 0)
    winner, (count, best) = max(tally.items(), key=lambda item: item[1])
    return Match(names[winner], best, count, winner)


class Matcher:
    """Matches embeddings against one model pack's part of a gallery.

    Args:
        gallery: the open gallery (any `store.base.Store`).
        recognizer_id: `ModelPack.recognizer_id` of the pack that makes the query embeddings.
        k: neighbours per query (>= 1).
        threshold: minimum similarity of a voting neighbour; None: the gallery's
            "threshold" setting, else `DEFAULT_THRESHOLD`.
        on_connection: called with one sentence when the gallery's server is lost and once
            more when it is back (not per refresh); the CLI prints it.

    Raises:
        GalleryError: the gallery holds faces, but none made by this pack, or (only here,
            not in later refreshes) cannot be reached.
    """

    def __init__(
        self,
        gallery: Store,
        recognizer_id: str,
        k: int = DEFAULT_K,
        threshold: float | None = None,
        on_connection: Callable[[str], None] | None = None,
    ) -> None:
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.gallery = gallery
        self.recognizer_id = recognizer_id
        self.k = int(k)
        self._fixed_threshold = None if threshold is None else check_threshold(threshold)
        self.threshold = DEFAULT_THRESHOLD
        self.people_count = 0
        self._token: Hashable = None
        self._index = VectorIndex(np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
        self._names: dict[int, str] = {}
        self._on_connection = on_connection
        self.offline: str | None = None
        self._load(self.gallery.change_token())

    def refresh(self) -> bool:
        """Rebuild from the gallery if anything was written since the last build.

        Returns True when it rebuilt. Unchanged, it costs one `Store.change_token()`. While
        the gallery cannot be reached it returns False and keeps the index it has.
        """
        try:
            token = self.gallery.change_token()
            rebuilt = token != self._token and self._load(token)
        except GalleryUnavailableError as exc:
            if self.offline is None:
                self.offline = exc.message
                self._tell(
                    f"{exc.message} Recognizing with the {self.size} faces loaded meanwhile; "
                    "reconnecting by itself."
                )
            return False
        if self.offline is not None:
            self.offline = None
            self._tell(f"The gallery {self.gallery.location!r} is back.")
        return rebuilt

    def _tell(self, message: str) -> None:
        if self._on_connection is not None:
            self._on_connection(message)

    def _load(self, token: Hashable) -> bool:
        """Read everything first, then swap it in: a failure half-way keeps the old index."""
        labels, vectors = self.gallery.embeddings(self.recognizer_id)
        if len(labels) == 0:  # none of ours: refuse a gallery made with another pack
            self.gallery.check_pack(self.recognizer_id)
        names = self.gallery.person_names()
        if self._fixed_threshold is not None:
            threshold = self._fixed_threshold
        else:
            stored = self.gallery.get_setting(THRESHOLD_SETTING)
            threshold = DEFAULT_THRESHOLD if stored is None else check_threshold(stored)
        self._index = VectorIndex(labels, vectors)
        self._names = names
        self.people_count = len(np.unique(labels))
        self.threshold = threshold
        self._token = token
        return True

    @property
    def size(self) -> int:
        """Enrolled embeddings in the index."""
        return len(self._index)

    def match(self, embeddings: np.ndarray) -> list[Match]:
        """One `Match` per row of `embeddings` (N, D), from one index search."""
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim != 2:
            raise ValueError(f"embeddings must have shape (N, D), got {queries.shape}")
        if len(queries) == 0:
            return []
        if len(self._index) == 0:
            return [Match(None, 0.0, 0) for _ in range(len(queries))]
        sims, labels = self._index.search(queries, min(self.k, len(self._index)))
        return [
            vote(s, lab, self.threshold, self._names) for s, lab in zip(sims, labels, strict=True)
        ]
