"""The engine on real photos with the real built-in models."""

from __future__ import annotations

import numpy as np
import pytest

from face_recognizer.engine import Engine, align_faces, detector_input_size
from face_recognizer.errors import ImageReadError
from face_recognizer.images import read_image
from face_recognizer.samples import sample_path
from face_recognizer.types import Detections, Faces

# InsightFace's t1.jpg: six people in a row, boxes read off the built-in pack at det-size 640.
T1_BOXES = np.array(
    [
        [745, 342, 847, 480],
        [463, 266, 572, 415],
        [55, 260, 168, 397],
        [906, 59, 1011, 206],
        [1130, 272, 1227, 400],
        [270, 144, 371, 270],
    ],
    dtype=np.float32,
)


def _match_rows(found: np.ndarray, expected: np.ndarray, tol: float) -> list[int]:
    """For each expected box, the index of the found box within `tol` pixels on every side."""
    matches = []
    for box in expected:
        diffs = np.abs(found - box).max(axis=1)
        assert diffs.min() <= tol, (
            f"no face near {box.tolist()}: closest is {diffs.min():.1f}px off"
        )
        matches.append(int(diffs.argmin()))
    return matches


def test_t1_has_six_faces_with_pinned_boxes(engine: Engine) -> None:
    faces = engine.analyze(read_image(sample_path("t1.jpg")))
    assert len(faces) == 6
    assert sorted(_match_rows(faces.xyxy, T1_BOXES, tol=6.0)) == list(range(6))
    assert faces.scores.min() > 0.6
    assert faces.embeddings.shape == (6, 512)
    np.testing.assert_allclose(np.linalg.norm(faces.embeddings, axis=1), 1.0, atol=1e-5)
    # every landmark lies inside its face box
    inside = (faces.landmarks >= faces.xyxy[:, None, :2]) & (
        faces.landmarks <= faces.xyxy[:, None, 2:]
    )
    assert inside.all()


def test_yao_ming_is_most_similar_to_exactly_one_player(engine: Engine) -> None:
    yao = engine.analyze(read_image(sample_path("yaoming.jpg")))
    players = engine.analyze(read_image(sample_path("players.jpg")))
    assert len(yao) == 1
    assert len(players) >= 15
    similarity = players.embeddings @ yao.embeddings[0]
    order = np.argsort(-similarity)
    best, runner_up = similarity[order[0]], similarity[order[1]]
    # shirt 13, centre of the back row
    x1, y1, x2, y2 = players.xyxy[order[0]]
    assert 700 < (x1 + x2) / 2 < 790
    assert 120 < (y1 + y2) / 2 < 210
    assert best > 0.5
    assert best - runner_up > 0.3, f"best {best:.2f} vs runner-up {runner_up:.2f}"


def test_picture_without_face_gives_empty_result(engine: Engine) -> None:
    faces = engine.analyze(read_image(sample_path("mask_white.jpg")))
    assert len(faces) == 0
    assert faces.embeddings.shape == (0, 512)


def test_blank_frame_gives_empty_result(engine: Engine) -> None:
    assert len(engine.analyze(np.full((360, 640, 3), 127, dtype=np.uint8))) == 0


def test_batched_embedding_equals_one_by_one(engine: Engine) -> None:
    image = read_image(sample_path("t1.jpg"))
    detections = engine.detect(image)
    crops = engine.align(image, detections.landmarks)
    batched = engine.embed_crops(crops)
    single = np.stack([engine.embed_crops(crops[i : i + 1])[0] for i in range(len(crops))])
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_unreadable_file_is_a_clear_error(tmp_path) -> None:
    bogus = tmp_path / "not-a-photo.jpg"
    bogus.write_bytes(b"this is not a jpeg")
    with pytest.raises(ImageReadError, match="not a picture"):
        read_image(bogus)
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "missing.jpg")


def test_greyscale_and_unicode_paths_are_read(tmp_path) -> None:
    import cv2

    grey = cv2.cvtColor(read_image(sample_path("yaoming.jpg")), cv2.COLOR_BGR2GRAY)
    path = tmp_path / "Zoë 李雷.png"
    ok, encoded = cv2.imencode(".png", grey)
    assert ok
    encoded.tofile(path)
    image = read_image(path)
    assert image.shape == (*grey.shape, 3)


def test_detector_input_keeps_aspect() -> None:
    assert detector_input_size((640, 360), 640) == (640, 384)
    assert detector_input_size((1920, 1080), 320) == (320, 192)
    assert detector_input_size((360, 640), 320) == (192, 320)


def test_alignment_puts_landmarks_on_the_arcface_template(engine: Engine) -> None:
    image = read_image(sample_path("yaoming.jpg"))
    detections = engine.detect(image)
    crop = align_faces(image, detections.landmarks)
    assert crop.shape == (1, 112, 112, 3)
    assert crop.mean() > 40  # a face, not the black border


def test_value_types_check_shapes() -> None:
    with pytest.raises(ValueError, match="xyxy must have shape"):
        Detections(np.zeros((2, 3)), np.zeros(2), np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="one row per face"):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros((2, 5, 2)))
    faces = Faces(np.ones((3, 4)), np.arange(3), np.zeros((3, 5, 2)), np.eye(3, 512))
    picked = faces[faces.scores > 0.5]
    assert len(picked) == 2
    assert picked.embeddings.shape == (2, 512)
    with pytest.raises(ValueError, match="read-only"):
        faces.xyxy[0, 0] = 5


def test_engine_rejects_bad_settings() -> None:
    from face_recognizer.models import find_pack

    with pytest.raises(ValueError, match="det_size"):
        Engine(find_pack(), ctx=-1, det_size=333)
    with pytest.raises(ValueError, match="ctx"):
        Engine(find_pack(), ctx=-2)
