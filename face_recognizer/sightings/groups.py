"""Recurring strangers: the unknown sightings grouped by face, with ids that stay put.

`regroup` clusters every stranger's sighting (`cluster.cluster`), gives the groups the ids
their sightings had before (`cluster.stable_ids`) and stores them. Sightings of faces smaller
than the enrolment minimum (`quality.MIN_FACE_PX`) take no part: at that size the embedding
is too noisy to tell strangers apart (on the sample team photo, faces of 13-39 px of
different players reach the grouping cut). `contact_sheet` draws a group's crops in a grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from face_recognizer.quality import MIN_FACE_PX
from face_recognizer.sightings.cluster import DEFAULT_MIN_SIMILARITY, cluster, stable_ids
from face_recognizer.store.base import Sighting, Store

SHEET_TILE = 112
SHEET_COLUMNS = 6


@dataclass(frozen=True, slots=True)
class Group:
    """A group of sightings of one stranger.

    Attributes:
        id: stable group id (also the "Visitor N" number).
        sighting_ids: its sightings, oldest first.
        days: on how many different local calendar days it was seen.
        first, last: when its first sighting started and its last one ended.
    """

    id: int
    sighting_ids: tuple[int, ...]
    days: int
    first: datetime
    last: datetime

    @property
    def sightings(self) -> int:
        return len(self.sighting_ids)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sightings": self.sightings,
            "days": self.days,
            "first": self.first.astimezone().isoformat(timespec="seconds"),
            "last": self.last.astimezone().isoformat(timespec="seconds"),
            "sighting_ids": list(self.sighting_ids),
        }


def regroup(
    store: Store, recognizer_id: str, min_similarity: float = DEFAULT_MIN_SIMILARITY
) -> list[Group]:
    """Cluster the strangers' sightings again, keep the ids groups had, store and list them
    (biggest first)."""
    ids, vectors = store.unknown_embeddings(recognizer_id)
    unknown = store.sightings(unknown=True)
    by_id = {s.id: s for s in unknown}
    usable = np.array([by_id[int(i)].face_px >= MIN_FACE_PX for i in ids], dtype=bool)
    keys = ids[usable].tolist() if len(ids) else []
    previous = {s.id: s.group_id for s in unknown if s.group_id is not None}
    result = cluster(vectors[usable] if len(keys) else np.zeros((0, 1)), min_similarity)
    mapping, _ = stable_ids(
        keys, result, {k: int(g) for k, g in previous.items()}, store.next_group_id()
    )
    changes: dict[int, int | None] = {
        s.id: mapping.get(s.id) for s in unknown if mapping.get(s.id) != s.group_id
    }
    if changes:
        store.set_sighting_groups(changes)
    members: dict[int, list[Sighting]] = {}
    for s in unknown:
        group = mapping.get(s.id)
        if group is not None:
            members.setdefault(group, []).append(s)
    return sorted(
        (_group(g, rows) for g, rows in members.items()), key=lambda g: (-g.sightings, g.id)
    )


def _group(group_id: int, rows: Sequence[Sighting]) -> Group:
    rows = sorted(rows, key=lambda s: (s.started, s.id))
    days = {s.started.astimezone().date() for s in rows}
    return Group(
        group_id,
        tuple(s.id for s in rows),
        len(days),
        rows[0].started,
        max(s.ended for s in rows),
    )


def best_crops(store: Store, group: Group, count: int) -> list[tuple[int, np.ndarray]]:
    """Up to `count` (sighting id, crop) of a group, the largest faces first."""
    rows = store.sightings(ids=list(group.sighting_ids))
    order = sorted(rows, key=lambda s: (-s.face_px, s.id))
    crops = store.sighting_crops([s.id for s in order])
    return [(s.id, crops[s.id]) for s in order if s.id in crops][:count]


def contact_sheet(crops: Sequence[np.ndarray], title: str) -> np.ndarray:
    """A BGR image: `title` above the crops, each scaled into a 112 px square, 6 a row."""
    tile, cols = SHEET_TILE, SHEET_COLUMNS
    rows = max(1, -(-len(crops) // cols))
    width = tile * min(cols, max(1, len(crops)))
    header = 28
    sheet = np.full((header + rows * tile, max(width, 240), 3), 255, np.uint8)
    cv2.putText(sheet, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for i, crop in enumerate(crops):
        h, w = crop.shape[:2]
        scale = tile / max(h, w)
        small = cv2.resize(crop, (max(1, round(w * scale)), max(1, round(h * scale))))
        y = header + (i // cols) * tile + (tile - small.shape[0]) // 2
        x = (i % cols) * tile + (tile - small.shape[1]) // 2
        sheet[y : y + small.shape[0], x : x + small.shape[1]] = small
    return sheet
