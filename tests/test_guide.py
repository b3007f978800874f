"""Guided enrolment (`register --auto`, issue 19): the pose measures on real photos, and the
real window under Xvfb taking one photo per asked pose by itself from a video file made of
real LFW photos in those poses (nothing pressed but Q); with --liveness, a photo held up is
never taken by itself."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from desktop import press, screenshot, screenshots_dir, wait_for_screen, wait_for_window
from test_liveness_window import attack_clip
from test_register import finish, pixels, start

from face_recognizer.engine import Engine
from face_recognizer.guide import (
    AUTO_MIN_FACE_PX,
    POSES,
    STRAIGHT_PITCH,
    TILT_PITCH,
    TURN_YAW,
    Guide,
    face_pose,
    pitch_ratio,
)
from face_recognizer.images import read_image
from face_recognizer.quality import PhotoCheck, check_photo
from face_recognizer.register import ASKING, GOOD
from face_recognizer.samples import sample_path
from face_recognizer.store.sqlite import DB_FILE

CLIP_WH = (640, 360)
SEGMENT = 30  # frames per photo in the clip (3 s at 10 fps)
LEAD = 20  # frames without a face before the first photo


def on_canvas(image: np.ndarray) -> np.ndarray:
    """The photo scaled to the clip's height, centred on a grey 640x360 frame."""
    w, h = CLIP_WH
    scale = (h - 20) / image.shape[0]
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    canvas = np.full((h, w, 3), 40, np.uint8)
    y, x = (h - image.shape[0]) // 2, (w - image.shape[1]) // 2
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
    return canvas


def measured(engine: Engine, frame: np.ndarray) -> tuple[PhotoCheck, np.ndarray | None]:
    detections = engine.detect(frame)
    check = check_photo(frame, detections)
    return check, None if check.face is None else detections.landmarks[check.face]


def pose_frames(engine: Engine, folder: Path) -> dict[str, np.ndarray]:
    """A clip frame per pose of `POSES` from `folder`'s photos, each half a step beyond the
    guide's limits from the straight one, big and usable."""
    seen = []
    for path in sorted(folder.iterdir())[:80]:
        frame = on_canvas(read_image(path))
        check, landmarks = measured(engine, frame)
        if check.usable and landmarks is not None and check.face_px >= AUTO_MIN_FACE_PX * 1.2:
            seen.append((face_pose(landmarks), frame))
    middle = sum(STRAIGHT_PITCH) / 2
    straight = [(p, f) for p, f in seen if abs(p.yaw) < 0.05 and abs(p.pitch - middle) < 0.04]
    assert straight, f"no straight photo in {folder.name}"
    base, first = straight[0]
    fits = {
        "left": lambda p: p.yaw >= base.yaw + TURN_YAW * 1.5,
        "right": lambda p: p.yaw <= base.yaw - TURN_YAW * 1.5,
        "up": lambda p: p.pitch <= base.pitch - TILT_PITCH * 1.5 and abs(p.yaw) < 0.15,
        "down": lambda p: p.pitch >= base.pitch + TILT_PITCH * 1.5 and abs(p.yaw) < 0.15,
    }
    picks = {"straight": first}
    for pose, fit in fits.items():
        found = [f for p, f in seen if fit(p)]
        assert found, f"no {pose} photo in {folder.name}"
        picks[pose] = found[0]
    return picks


@pytest.fixture(scope="module")
def blair_poses(engine: Engine, datasets: Path) -> dict[str, np.ndarray]:
    return pose_frames(engine, datasets / "lfw_dev" / "Tony_Blair")


def test_pitch_ratio_follows_the_nose_not_roll_or_size() -> None:
    straight = np.array([[40, 50], [80, 50], [60, 72], [45, 90], [75, 90]], np.float64)
    assert pitch_ratio(straight) == pytest.approx(22 / 40)
    up, down = straight.copy(), straight.copy()
    up[2, 1] = 62  # the nose nearer the eyes: the chin raised
    down[2, 1] = 82
    assert pitch_ratio(up) < pitch_ratio(straight) < pitch_ratio(down)
    angle = np.deg2rad(30)  # rolled 30 degrees, twice the size, moved: the same ratio
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    assert pitch_ratio(2 * straight @ turn.T + 7) == pytest.approx(22 / 40)
    assert np.isnan(pitch_ratio(np.zeros((5, 2))))


def test_guide_asks_each_pose_in_turn_on_real_photos(
    engine: Engine, blair_poses: dict[str, np.ndarray]
) -> None:
    guide = Guide()
    assert guide.ask() == "Pose 1 of 5: straight (look straight at the camera)"
    check, landmarks = measured(engine, blair_poses["left"])
    assert guide.verdict(check, landmarks) == "Look straight at the camera"
    for pose in POSES:
        assert guide.current == pose
        if pose != "straight":  # the straight face is not taken for a turned pose
            check, landmarks = measured(engine, blair_poses["straight"])
            assert guide.verdict(check, landmarks) is not None, pose
        check, landmarks = measured(engine, blair_poses[pose])
        assert landmarks is not None
        assert guide.verdict(check, landmarks) is None, pose
        guide.taken(landmarks)
        if guide.current == "left":
            assert guide.ask() == "Pose 2 of 5: a little left (turn your head to your left)"
    assert guide.current is None
    assert guide.ask() == "All 5 poses taken: Q stores them"

    small = cv2.resize(blair_poses["straight"], None, fx=0.4, fy=0.4)
    check, landmarks = measured(engine, small)
    assert check.usable  # enrollable by hand, but too small to be taken by itself
    assert Guide().verdict(check, landmarks) == "Come closer"
    blurred = cv2.GaussianBlur(blair_poses["straight"], (0, 0), 2.5)
    check, landmarks = measured(engine, blurred)
    assert Guide().verdict(check, landmarks) in ("Hold still", "too blurred")


def asks(image: np.ndarray) -> bool:
    """The blue tab at the bottom left (the pose asked, or the liveness prompt) is on screen."""
    return pixels(image[-60:], ASKING) > 2000


def banner(image: np.ndarray) -> bool:
    """A 'Photo N taken: POSE' flash (a green band across the middle) is on screen."""
    h = image.shape[0]
    return pixels(image[h // 3 : 2 * h // 3], GOOD) > 8000


def wait_or_keep(
    display: str, window: int, predicate: Callable[[np.ndarray], bool], what: str, keep: Path
) -> np.ndarray:
    """`wait_for_screen` with a generous limit (a loaded machine plays the clip slowly); when
    it fails, the last screenshot is kept as `keep` to look at."""
    try:
        return wait_for_screen(display, window, predicate, 180, what)
    except AssertionError:
        cv2.imwrite(str(keep), screenshot(display, window))
        raise


def test_auto_register_takes_one_photo_per_pose_by_itself(
    xdisplay: str, blair_poses: dict[str, np.ndarray], tmp_path: Path
) -> None:
    frames = [np.full((CLIP_WH[1], CLIP_WH[0], 3), 40, np.uint8)] * LEAD
    for pose in POSES:  # each photo held for SEGMENT frames, moving a pixel a frame
        frames += [np.roll(blair_poses[pose], i - SEGMENT // 2, axis=1) for i in range(SEGMENT)]
    clip = tmp_path / "poses.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, CLIP_WH)
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    db = tmp_path / "db"
    proc = start(xdisplay, "-n", "Tony Blair", "--auto", "--source", str(clip), "--db", str(db))
    window = wait_for_window(xdisplay, "face-recognizer: register: Tony Blair", proc=proc)
    first = wait_or_keep(xdisplay, window, asks, "the first pose asked", tmp_path / "first.png")
    cv2.imwrite(str(tmp_path / "no_face_yet.png"), first)
    # The straight photo is taken on its first frame; then, with no flash left, the second
    # pose is asked while the straight face is still in view: the picture for the README.
    second = wait_or_keep(
        xdisplay,
        window,
        lambda im: asks(im) and pixels(im, GOOD) > 300 and not banner(im),
        "a pose asked of a face in view",
        tmp_path / "second.png",
    )
    cv2.imwrite(str(screenshots_dir(tmp_path) / "register-auto.png"), second)
    # The clip plays once (slower when detection lags), then holds its last frame: wait until
    # the picture stops changing, with no key pressed.
    last, deadline = screenshot(xdisplay, window), time.monotonic() + 180
    while time.monotonic() < deadline:
        time.sleep(1.5)
        shot = screenshot(xdisplay, window)
        if np.array_equal(shot, last):
            break
        last = shot
    else:
        raise AssertionError("the clip did not end within 180 s")
    cv2.imwrite(str(tmp_path / "done.png"), last)
    assert asks(last)  # "All 5 poses taken: Q stores them"
    press(xdisplay, window, "q")
    code, out, err = finish(proc)
    assert code == 0, err
    assert out == "Registered Tony Blair: 5 photos\n"
    with contextlib.closing(sqlite3.connect(db / DB_FILE)) as conn:
        sources = [row[0] for row in conn.execute("SELECT source FROM faces ORDER BY id")]
    # one photo from each pose's stretch of the clip, in the order asked
    assert len(sources) == len(POSES)
    assert [(int(s.rsplit(" ", 1)[1]) - LEAD) // SEGMENT for s in sources] == [0, 1, 2, 3, 4]


def test_auto_with_liveness_never_takes_a_photo_held_up(xdisplay: str, tmp_path: Path) -> None:
    """The liveness challenge comes before the poses: a photo held up to the camera, usable
    and straight, is not taken by itself."""
    clip = attack_clip(tmp_path / "photo.avi", sample_path("yaoming.jpg"), "handheld", 6.0)
    db = tmp_path / "db"
    args = ("-n", "Yao Ming", "--auto", "--liveness", "--source", str(clip), "--db", str(db))
    proc = start(xdisplay, *args)
    window = wait_for_window(xdisplay, "face-recognizer: register: Yao Ming", proc=proc)
    shot = wait_or_keep(xdisplay, window, asks, "the liveness prompt", tmp_path / "first.png")
    assert pixels(shot, GOOD) > 300  # a usable face: the green box says "liveness check first"
    last, deadline = shot, time.monotonic() + 120
    while time.monotonic() < deadline:  # the clip plays to its end and holds
        time.sleep(1.5)
        now = screenshot(xdisplay, window)
        if np.array_equal(now, last):
            break
        last = now
    cv2.imwrite(str(tmp_path / "held_up.png"), last)
    press(xdisplay, window, "q")
    code, out, err = finish(proc)
    assert code == 1
    assert out == ""
    assert err.startswith("Error: No photo of Yao Ming was taken; nothing was stored.")
    assert not (db / DB_FILE).exists()
