"""Majority vote, threshold, index recall and live refresh, with real embeddings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np
import pytest

from face_recognizer.enrol import EnrolFace, enrol_face
from face_recognizer.errors import GalleryError
from face_recognizer.images import read_image
from face_recognizer.index import VectorIndex
from face_recognizer.matcher import DEFAULT_K, DEFAULT_THRESHOLD, Matcher, vote
from face_recognizer.samples import sample_path
from face_recognizer.store.sqlite import Gallery

RID = "testpack00000001"


def _face(engine, image, source) -> EnrolFace:
    face, check = enrol_face(engine, image, source)
    assert face is not None, check
    return face


@pytest.fixture(scope="module")
def yao(engine) -> dict[str, EnrolFace]:
    """Yao Ming: the portrait, variants of it, and his face cut from the team photo."""
    image = read_image(sample_path("yaoming.jpg"))
    players = read_image(sample_path("players.jpg"))
    team = engine.analyze(players)
    portrait = _face(engine, image, "yaoming.jpg")
    best = int(np.argmax(team.embeddings @ portrait.embedding))
    x1, y1, x2, y2 = team.xyxy[best].astype(int)
    h, w = y2 - y1, x2 - x1
    crop = players[max(0, y1 - h) : y2 + h, max(0, x1 - w) : x2 + w].copy()
    return {
        "portrait": portrait,
        "resized": _face(engine, cv2.resize(image, None, fx=0.9, fy=0.9), "resized"),
        "flipped": _face(engine, cv2.flip(image, 1), "flipped"),
        "darker": _face(engine, cv2.convertScaleAbs(image, alpha=0.6, beta=0), "darker"),
        "team": _face(engine, crop, "players.jpg"),
    }


@pytest.fixture(scope="module")
def spurs(engine) -> list[EnrolFace]:
    image = read_image(sample_path("gdp.jpg"))
    faces = engine.analyze(image)
    crops = engine.align(image, faces.landmarks)
    return [
        EnrolFace(faces.embeddings[i], crops[i], f"gdp#{i}", f"gdp{i}", 0.9, 90.0, 90.0)
        for i in range(3)
    ]


def test_majority_beats_a_single_closer_outlier(tmp_path, yao):
    query = yao["portrait"].embedding
    sims = {k: float(v.embedding @ query) for k, v in yao.items()}
    # The mislabelled near-copy is closer to the query than any of the three real photos.
    assert sims["resized"] > max(sims["flipped"], sims["darker"], sims["team"])
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Yao Ming", [yao["flipped"], yao["darker"], yao["team"]], RID)
        gallery.add_faces("Impostor", [yao["resized"]], RID)
        matcher = Matcher(gallery, RID, k=4, threshold=0.2)
        (match,) = matcher.match(query[None])
    assert match.name == "Yao Ming"
    assert match.votes == 3
    assert match.similarity == pytest.approx(max(sims["flipped"], sims["darker"], sims["team"]))
    assert match.similarity < sims["resized"]


def test_stranger_below_threshold_is_unknown(tmp_path, yao, spurs):
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Yao Ming", [yao["portrait"], yao["flipped"], yao["team"]], RID)
        matcher = Matcher(gallery, RID)
        assert (matcher.k, matcher.threshold, matcher.people_count) == (
            DEFAULT_K,
            DEFAULT_THRESHOLD,
            1,
        )
        matches = matcher.match(np.stack([s.embedding for s in spurs] + [yao["darker"].embedding]))
    assert len(matches) == 4
    for stranger in matches[:3]:
        assert not stranger.is_known
        assert (stranger.votes, stranger.person_id) == (0, None)
        assert 0.0 <= stranger.similarity < DEFAULT_THRESHOLD
    assert matches[3].name == "Yao Ming"
    assert matches[3].votes == 3


def test_vote_rules():
    names = {1: "Ana", 2: "Bo"}
    # Tie 1-1: the higher similarity wins.
    m = vote(np.array([0.6, 0.7, 0.1]), np.array([1, 2, 1]), 0.5, names)
    assert (m.name, m.votes, m.person_id) == ("Bo", 1, 2)
    assert m.similarity == pytest.approx(0.7)
    # Below threshold: unknown, with the best similarity of any neighbour.
    m = vote(np.array([0.3, 0.2]), np.array([1, 2]), 0.5, names)
    assert (m.name, m.votes) == (None, 0)
    assert m.similarity == pytest.approx(0.3)
    # Missing neighbours (-1) and removed people do not vote.
    m = vote(np.array([0.9, 0.8, 0.0]), np.array([7, 1, -1]), 0.5, names)
    assert (m.name, m.votes) == ("Ana", 1)
    assert vote(np.zeros(3), np.full(3, -1), 0.5, names).similarity == 0.0


def test_empty_gallery_and_other_pack(tmp_path, yao):
    with Gallery(tmp_path) as gallery:
        matcher = Matcher(gallery, RID)
        assert matcher.match(yao["portrait"].embedding[None])[0].name is None
        assert matcher.match(np.zeros((0, 512), np.float32)) == []
        gallery.add_faces("Yao", [yao["portrait"]], RID)
        with pytest.raises(GalleryError, match="face-recognizer reindex"):
            Matcher(gallery, "someotherpack000")


def test_threshold_from_gallery_setting(tmp_path, yao):
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Yao", [yao["portrait"]], RID)
        gallery.set_setting("threshold", "0.95")
        matcher = Matcher(gallery, RID)
        assert matcher.threshold == pytest.approx(0.95)
        assert not matcher.match(yao["team"].embedding[None])[0].is_known
        assert Matcher(gallery, RID, threshold=0.3).threshold == pytest.approx(0.3)
        with pytest.raises(ValueError, match="threshold"):
            Matcher(gallery, RID, threshold=2.0)


def test_hnsw_recall_against_exact():
    """Approximate index: same nearest person as the exact one for >= 99% of queries."""
    rng = np.random.default_rng(1)
    people, per, dim = 1000, 5, 512
    centres = rng.standard_normal((people, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(people), per)
    vectors = centres[labels] + 0.045 * rng.standard_normal((people * per, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    who = rng.integers(0, people, 300)
    queries = centres[who] + 0.045 * rng.standard_normal((300, dim))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    flat = VectorIndex(labels, vectors, kind="flat")
    hnsw = VectorIndex(labels, vectors, kind="hnsw")
    assert (flat.kind, hnsw.kind, len(hnsw)) == ("flat", "hnsw", 5000)
    flat_sims, flat_labels = flat.search(queries, 5)
    hnsw_sims, hnsw_labels = hnsw.search(queries, 5)
    assert (flat_labels[:, 0] == who).mean() == 1.0
    assert (hnsw_labels[:, 0] == flat_labels[:, 0]).mean() >= 0.99
    assert np.abs(hnsw_sims[:, 0] - flat_sims[:, 0]).max() < 1e-4


def test_index_pads_missing_neighbours():
    v = np.eye(4, dtype=np.float32)[:2]
    sims, labels = VectorIndex(np.array([5, 6]), v).search(v, 3)
    assert labels.tolist() == [[5, 6, -1], [6, 5, -1]]
    assert sims[:, 0].tolist() == [1.0, 1.0]
    empty = VectorIndex(np.zeros(0), np.zeros((0, 4)))
    assert empty.search(v, 2)[1].tolist() == [[-1, -1], [-1, -1]]


def test_another_process_adding_and_removing_is_seen(tmp_path, yao, spurs):
    """A Matcher here sees a person that a second process adds, then removes, within seconds."""
    db = tmp_path / "db"
    np.savez(tmp_path / "face.npz", embedding=spurs[0].embedding, crop=spurs[0].crop)
    script = textwrap.dedent(
        f"""
        import sys, time, numpy as np
        from face_recognizer.enrol import EnrolFace
        from face_recognizer.store.sqlite import Gallery
        data = np.load({str(tmp_path / "face.npz")!r})
        face = EnrolFace(data["embedding"], data["crop"], "other", "h0", 0.9, 90.0, 90.0)
        with Gallery({str(db)!r}) as g:
            time.sleep(0.5)
            g.add_faces("Tim Duncan", [face], {RID!r})
            print("added", flush=True)
            sys.stdin.readline()
            g.remove_person("Tim Duncan")
            print("removed", flush=True)
        """
    )
    with Gallery(db) as gallery:
        gallery.add_faces("Yao Ming", [yao["portrait"]], RID)
        matcher = Matcher(gallery, RID)
        query = spurs[0].embedding[None]
        assert not matcher.match(query)[0].is_known
        assert matcher.refresh() is False
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "added"  # committed by now
            seen = _poll(matcher, query, lambda m: m.name == "Tim Duncan")
            assert seen < 5.0
            assert matcher.people_count == 2
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            gone = _poll(matcher, query, lambda m: not m.is_known)
            assert gone < 5.0
            assert matcher.people_count == 1
        finally:
            assert proc.wait(timeout=30) == 0


def _poll(matcher: Matcher, query: np.ndarray, done) -> float:
    """Seconds until `done(match)` holds, refreshing like a recognizer loop would."""
    start = time.monotonic()
    while time.monotonic() - start < 20:
        matcher.refresh()
        if done(matcher.match(query)[0]):
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError("the matcher never saw the other process's change")
