"""Blink liveness and the active challenge, on real photos and clips with the real models."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recognizer.analysers.challenge import PROMPTS, TURN_DELTA, TURN_FRAMES, Challenge
from face_recognizer.analysers.liveness import (
    EYE_POINTS,
    MIN_FACE_PX,
    BlinkLiveness,
    FaceLiveness,
    eye_openness,
)
from face_recognizer.engine import Engine
from face_recognizer.images import read_image
from face_recognizer.models import landmark_106_model
from face_recognizer.samples import sample_path
from face_recognizer.sources import open_source
from face_recognizer.tracker import Tracker
from face_recognizer.types import Match

REPO = Path(__file__).resolve().parents[1]
HAMILTON = "videos/hamilton_whitehouse_short.mp4"


def bench_module(name: str):  # the attack generator lives in bench/, beside the benchmark
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_liveness(engine: Engine, frames, fps: float):
    """Track every frame (no gallery: every face unknown) and judge it; per track, the frame
    indices it was seen in and the first frame it was live in."""
    tracker, liveness = Tracker(), BlinkLiveness(engine.landmarks_106)
    seen: dict[int, list[int]] = {}
    live_at: dict[int, int] = {}
    previous = None
    for index, image in enumerate(frames):
        thumb = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (32, 18)).astype(float)
        if previous is not None and np.abs(thumb - previous).mean() > 20:  # a shot cut
            tracker.reset()
        previous = thumb
        detections = engine.detect(image)
        tracks = tracker.update(detections, lambda idx: [Match(None, 0.0, 0)] * len(idx))
        states = liveness.update(
            image, index / fps, [t.id for t in tracks], detections.xyxy, detections.landmarks
        )
        for track, state in zip(tracks, states, strict=True):
            assert track.id is not None
            seen.setdefault(track.id, []).append(index)
            if state.live and track.id not in live_at:
                live_at[track.id] = index
    return seen, live_at, liveness


def test_landmark_model_is_found_through_package_metadata():
    path = landmark_106_model()
    assert path.name == "2d106det.onnx"
    assert path.is_file()


def test_106_points_put_the_eyes_where_the_detector_does(engine):
    image = read_image(sample_path("yaoming.jpg"))
    detections = engine.detect(image)
    assert len(detections) == 1
    points = engine.landmarks_106(image, detections.xyxy)
    assert points.shape == (1, 106, 2)
    width = float(detections.box_wh[0, 0])
    # the 106 layout's eye contours (EYE_POINTS) surround the detector's two eye points
    for eye, indices in enumerate(EYE_POINTS):
        centre = points[0, list(indices)].mean(axis=0)
        assert np.linalg.norm(centre - detections.landmarks[0, eye]) < 0.06 * width
    openness = eye_openness(points)
    assert openness.shape == (1, 2)
    assert (openness > 0.05).all()  # open eyes: a lid gap of more than 5% of eyes-to-mouth


def test_no_boxes_give_no_points_and_bad_input_is_refused(engine):
    image = read_image(sample_path("yaoming.jpg"))
    assert engine.landmarks_106(image, np.zeros((0, 4))).shape == (0, 106, 2)
    with pytest.raises(ValueError, match="BGR"):
        engine.landmarks_106(image[..., 0], np.zeros((0, 4)))
    liveness = BlinkLiveness(engine.landmarks_106)
    with pytest.raises(ValueError, match="one row per face"):
        liveness.update(image, 0.0, [1, 2], np.zeros((1, 4)), np.zeros((1, 5, 2)))


def test_obama_blinks_in_the_hamilton_clip_and_nobody_else_becomes_live(engine, datasets):
    """Seen by eye, frame by frame: Obama (audience shot, frames 211-274, face ~65 px) closes
    his eyes at frames 221-224 and 247-250; Lin-Manuel Miranda (82-210) does not blink."""
    with open_source(str(datasets / HAMILTON)) as source:
        frames = [frame.image for frame in source]
    assert len(frames) == 275
    first = 82  # from Lin-Manuel Miranda's shot on (index 0 below is frame 82)
    seen, live_at, liveness = run_liveness(engine, frames[first:], fps=29.97)
    assert len(seen) >= 5
    obama = [t for t in live_at if seen[t][0] >= 211 - first and seen[t][-1] == 274 - first]
    assert len(live_at) == 1, f"live tracks: {live_at}"
    assert obama == list(live_at)
    assert 224 <= first + live_at[obama[0]] <= 230  # the first blink, once the eyes reopened
    lin = [t for t, frames_seen in seen.items() if frames_seen[0] == 0]
    assert len(lin) == 1
    assert len(seen[lin[0]]) >= 120
    assert lin[0] not in live_at
    assert liveness.landmark_runs > 0


@pytest.mark.parametrize("attack", ["still", "handheld", "bent", "screen"])
def test_a_photo_held_up_never_becomes_live(engine, attack):
    make_attacks = bench_module("make_attacks")
    photo = read_image(sample_path("yaoming.jpg"))
    rng = np.random.default_rng(7)
    frames = make_attacks.render_clip(photo, attack, seconds=3.0, fps=15.0, rng=rng)
    assert len(frames) == 45
    seen, live_at, liveness = run_liveness(engine, frames, fps=15.0)
    longest = max(seen.values(), key=len)
    assert len(longest) >= 40  # the face was followed through the clip ...
    assert liveness.landmark_runs >= 40  # ... and judged on (nearly) every frame
    assert live_at == {}


def test_faces_too_small_or_untracked_are_not_judged(engine):
    image = read_image(sample_path("yaoming.jpg"))
    detections = engine.detect(image)
    small = cv2.resize(image, None, fx=0.25, fy=0.25)
    small_det = engine.detect(small)
    assert float(small_det.box_wh.min()) < MIN_FACE_PX
    liveness = BlinkLiveness(engine.landmarks_106)
    state = liveness.update(small, 0.0, [1], small_det.xyxy, small_det.landmarks)
    assert state[0].live is None
    assert state[0].openness is None
    state = liveness.update(image, 0.1, [None], detections.xyxy, detections.landmarks)
    assert state[0].openness is None
    assert liveness.landmark_runs == 0


def _face(yaw: float = 0.0, blinks: int = 0) -> FaceLiveness:
    return FaceLiveness(live=blinks > 0 or None, blinks=blinks, yaw=yaw)


def test_challenge_passes_when_one_track_blinks_and_turns_in_the_asked_order():
    challenge = Challenge(rng=random.Random(3))
    assert sorted(challenge.steps) == ["blink", "left", "right"]
    t, blinks, yaw0 = 0.0, 0, 0.05
    state = challenge.update(t, [(4, 120.0, _face(yaw0))])
    assert state.track == 4
    assert state.prompt != "Passed"
    for step in challenge.steps:
        assert state.prompt == PROMPTS[step]
        t += 1.0
        state = challenge.update(t, [(4, 120.0, _face(yaw0, blinks))])
        assert state.prompt == PROMPTS[step]  # nothing done yet for this step
        if step == "blink":
            blinks += 1
            state = challenge.update(t + 0.1, [(4, 120.0, _face(yaw0, blinks))])
            continue
        turned = yaw0 + (TURN_DELTA + 0.05) * (1 if step == "left" else -1)
        for i in range(TURN_FRAMES):  # a turn counts when held for TURN_FRAMES frames
            assert state.prompt == PROMPTS[step]
            state = challenge.update(t + 0.1 * (i + 1), [(4, 120.0, _face(turned, blinks))])
    assert state.passed
    assert state.prompt == "Passed"


def test_a_turn_must_be_held_and_go_the_asked_way():
    challenge = Challenge(steps=["left"])
    challenge.update(0.0, [(1, 120.0, _face(0.0))])
    jitter = [0.0, TURN_DELTA + 0.1, 0.0, TURN_DELTA + 0.1, 0.0, TURN_DELTA + 0.1]
    for i, yaw in enumerate(jitter):  # single frames beyond the threshold: landmark jitter
        state = challenge.update(0.1 * (i + 1), [(1, 120.0, _face(yaw))])
    assert not state.passed
    for i in range(TURN_FRAMES):  # held to the person's right: the wrong way
        state = challenge.update(1.0 + 0.1 * i, [(1, 120.0, _face(-TURN_DELTA - 0.1))])
    assert not state.passed
    for i in range(TURN_FRAMES):
        state = challenge.update(2.0 + 0.1 * i, [(1, 120.0, _face(TURN_DELTA + 0.1))])
    assert state.passed


def test_challenge_refuses_a_photo_another_track_and_slowness():
    # a photo: its yaw never moves and it never blinks, however long it is shown
    photo = Challenge(time_limit=5.0)
    for i in range(100):
        state = photo.update(i * 0.1, [(1, 120.0, _face(0.1 + 0.02 * np.sin(i)))])
    assert state.failed
    assert not state.passed
    assert state.prompt == "Too slow"
    # a step met by another face than the one followed does not count
    swap = Challenge(steps=["blink"])
    swap.update(0.0, [(1, 150.0, _face()), (2, 80.0, _face())])
    state = swap.update(0.5, [(1, 150.0, _face()), (2, 80.0, _face(blinks=1))])
    assert state.track == 1
    assert not state.passed
    # the followed face leaves: the challenge starts over with the next one
    state = swap.update(1.0, [(2, 80.0, _face(blinks=1))])
    assert state.track == 2
    assert state.step == 0
    state = swap.update(1.5, [(2, 80.0, _face(blinks=2))])
    assert state.passed
    with pytest.raises(ValueError, match="unknown challenge steps"):
        Challenge(steps=["smile"])
