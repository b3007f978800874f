"""Tracker: ids across frames on real detections, votes, who gets embedded when."""

from __future__ import annotations

import numpy as np
import pytest

from face_recognizer.images import read_image
from face_recognizer.samples import sample_path
from face_recognizer.tracker import Tracker, iou_matrix
from face_recognizer.types import Detections, Match


@pytest.fixture(scope="module")
def six(engine) -> Detections:  # type: ignore[no-untyped-def]
    """The six real faces of t1.jpg."""
    detections = engine.detect(read_image(sample_path("t1.jpg")))
    assert len(detections) == 6
    return detections


def _shifted(d: Detections, dx: float, order: list[int] | None = None) -> Detections:
    shift = np.array([dx, 0, dx, 0], np.float32)
    moved = Detections(d.xyxy + shift, d.scores, d.landmarks + np.array([dx, 0], np.float32))
    return moved[np.array(order)] if order is not None else moved


class Script:
    """identify(): answers from a per-face script and records which faces were asked."""

    def __init__(self, names: dict[int, list[str | None]]) -> None:
        self.names = names  # original face index -> answers, one per call
        self.asked: list[list[int]] = []
        self.order: list[int] = []

    def __call__(self, indices: np.ndarray) -> list[Match]:
        faces = [self.order[i] for i in indices]
        self.asked.append(faces)
        out = []
        for face in faces:
            answers = self.names[face]
            name = answers.pop(0) if len(answers) > 1 else answers[0]
            out.append(Match(name, 0.6 if name else 0.2, 3 if name else 0))
        return out


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert iou_matrix(a, b).tolist() == [[1.0, pytest.approx(1 / 3), 0.0]]


def test_ids_follow_faces_and_only_new_uncertain_or_stale_tracks_are_embedded(
    six: Detections,
) -> None:
    tracker = Tracker(vote_window=5, min_votes=3, refresh_every=10)
    script = Script({i: [f"P{i}"] for i in range(6)})
    ids_per_frame = []
    for frame in range(25):
        order = list(range(6)) if frame % 2 == 0 else [5, 4, 3, 2, 1, 0]  # order changes
        script.order = order
        tracks = tracker.update(_shifted(six, 2.0 * frame, order), script)
        assert [t.name for t in tracks] == [f"P{i}" for i in order]
        ids_per_frame.append({order[j]: t.id for j, t in enumerate(tracks)})
    assert all(ids == ids_per_frame[0] for ids in ids_per_frame)  # same face, same id
    assert sorted(ids_per_frame[0].values()) == [1, 2, 3, 4, 5, 6]
    embedded = [len(asked) for asked in script.asked]
    # frames 1-3: everyone (new, then until 3 votes); then only at refresh: frames 13 and 23
    assert len(script.asked) == 5
    assert embedded == [6, 6, 6, 6, 6]
    assert sum(embedded) == 30  # instead of 25 frames x 6 faces = 150


def test_one_bad_frame_does_not_change_the_label(six: Detections) -> None:
    one = six[np.array([0])]
    tracker = Tracker(vote_window=5, min_votes=3, majority=0.6, refresh_every=1)
    script = Script({0: ["Ana", "Ana", "Ana", "Bea", "Ana", "Ana"]})
    script.order = [0]
    labels = [tracker.update(_shifted(one, f), script)[0].name for f in range(6)]
    assert labels == ["Ana"] * 6


def test_unknown_stays_unknown_and_a_new_face_gets_a_new_id(six: Detections) -> None:
    tracker = Tracker()
    script = Script({0: [None], 1: ["Ana"]})
    script.order = [0]
    first = tracker.update(six[np.array([0])], script)
    assert first[0].name is None
    assert first[0].embedded
    script.order = [0, 1]
    second = tracker.update(six[np.array([0, 1])], script)
    assert second[0].id == first[0].id
    assert second[1].id not in (None, first[0].id)
    assert second[1].name == "Ana"


def test_reset_forgets_tracks_but_never_reuses_ids(six: Detections) -> None:
    tracker = Tracker()
    script = Script({0: ["Ana"]})
    script.order = [0]
    before = tracker.update(six[np.array([0])], script)[0].id
    tracker.reset()
    after = tracker.update(six[np.array([0])], script)[0].id
    assert after != before
    assert script.asked == [[0], [0]]  # embedded again after the reset


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="majority"):
        Tracker(majority=0.5)
    with pytest.raises(ValueError, match="min_votes"):
        Tracker(vote_window=2, min_votes=3)
