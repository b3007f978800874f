"""Photo checks on real photos: each reason comes from a real picture."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recognizer.images import is_image_path, read_image
from face_recognizer.quality import (
    MAX_YAW_RATIO,
    MIN_BLUR,
    MIN_FACE_PX,
    blur_score,
    check_photo,
    detect_for_enrolment,
    yaw_ratio,
)
from face_recognizer.samples import sample_path


def _check(engine, image):
    return check_photo(*detect_for_enrolment(engine, image))


def test_one_sharp_frontal_face_is_usable(engine):
    image = read_image(sample_path("yaoming.jpg"))
    check = _check(engine, image)
    assert check.usable
    assert check.reason is None
    assert check.face == 0
    assert check.face_px == pytest.approx(105.4, abs=3)
    assert check.blur > 4 * MIN_BLUR
    assert abs(check.yaw) < 0.15


def test_no_face_and_several_faces(engine):
    assert _check(engine, read_image(sample_path("mask_white.jpg"))).reason == "no face"
    several = _check(engine, read_image(sample_path("t1.jpg")))
    assert (several.usable, several.reason, several.face) == (False, "several faces", None)


def test_blurred_photo_is_rejected(engine):
    image = cv2.GaussianBlur(read_image(sample_path("yaoming.jpg")), (0, 0), 2.0)
    check = _check(engine, image)
    assert check.face == 0  # still found
    assert check.reason == "too blurred"
    assert check.blur < MIN_BLUR


def test_small_face_is_rejected(engine):
    image = read_image(sample_path("yaoming.jpg"))
    small = cv2.resize(image, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    check = _check(engine, small)
    assert check.reason == "face too small"
    assert check.face_px < MIN_FACE_PX


def test_yaw_ratio_geometry(engine):
    image = read_image(sample_path("yaoming.jpg"))
    landmarks = engine.detect(image).landmarks[0]
    assert abs(yaw_ratio(landmarks)) < 0.15
    turned = landmarks.copy()
    turned[2, 0] = landmarks[1, 0] + 5  # nose past the right eye: a profile
    assert yaw_ratio(turned) > MAX_YAW_RATIO
    mirrored = landmarks.copy()
    mirrored[2, 0] = landmarks[0, 0] - 5
    assert yaw_ratio(mirrored) < -MAX_YAW_RATIO
    # Rolling the whole face by 30 degrees does not change it.
    centre = landmarks.mean(axis=0)
    a = np.deg2rad(30)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    assert yaw_ratio((landmarks - centre) @ rot.T + centre) == pytest.approx(
        yaw_ratio(landmarks), abs=1e-6
    )


def test_blur_score_is_lower_when_blurred():
    image = read_image(sample_path("yaoming.jpg"))
    box = np.array([71.5, 73.3, 177.0, 212.0])
    sharp = blur_score(image, box)
    assert sharp == pytest.approx(152.0, rel=0.05)
    assert blur_score(cv2.GaussianBlur(image, (0, 0), 3.0), box) < sharp / 5
    assert blur_score(image, np.array([10, 10, 10, 10])) == 0.0


def test_profile_photo_is_turned_too_far(engine, datasets):
    check = _check(engine, read_image(datasets / "celeb5_kaggle/Ben_Affleck/train_5.jpg"))
    assert check.reason == "turned too far"
    assert check.yaw == pytest.approx(-1.66, abs=0.1)


@pytest.mark.parametrize("subset", ["att_orl", "bbt8_faceapi"])
def test_tight_crops_and_low_resolution_pass(engine, datasets, subset):
    """ORL (92x112 grey) and bbt8 tight crops: found on a padded copy, and usable."""
    folders = sorted(p for p in (datasets / subset).iterdir() if p.is_dir())[:4]
    paths = [p for folder in folders for p in sorted(folder.iterdir()) if is_image_path(p)]
    assert len(paths) >= 20
    checks = [_check(engine, read_image(p)) for p in paths]
    found = [c for c in checks if c.face is not None]
    assert len(found) == len(paths)
    assert [c.reason for c in found if not c.usable] == []


def test_check_is_pure(engine):
    path = Path(sample_path("yaoming.jpg"))
    image = read_image(path)
    before = image.copy()
    detections = engine.detect(image)
    assert check_photo(image, detections) == check_photo(image, detections)
    assert np.array_equal(image, before)


def test_full_profile_with_both_eyes_on_one_point_is_turned_too_far(engine):
    """Both eyes detected on one point (a full profile) used to give yaw 1.0, which passed
    the `abs(yaw) > MAX_YAW_RATIO` check."""
    from face_recognizer.types import Detections

    image = read_image(sample_path("yaoming.jpg"))
    found = engine.detect(image)
    assert len(found) == 1
    landmarks = found.landmarks.copy()
    landmarks[0, 1] = landmarks[0, 0]  # the right eye drawn onto the left one
    assert yaw_ratio(landmarks[0]) > MAX_YAW_RATIO
    profile = Detections(found.xyxy, found.scores, landmarks)
    check = check_photo(image, profile)
    assert check.reason == "turned too far"
    assert not check.usable
