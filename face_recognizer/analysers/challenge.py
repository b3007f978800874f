"""The active liveness challenge: blink and turn the head left and right, in a random order.

`Challenge.update(timestamp, faces)` follows one track (the first-ranked face when it starts) and
moves to the next step when the current one is met: "blink" by a new blink of that track
(`BlinkLiveness` with `judge_live=True` counts them), "left"/"right" by the head's yaw moving
`TURN_DELTA` from where it was when the challenge started. A still photo, moved around as
much as one likes, keeps its yaw (the nose stays where it is between the eyes under any
turn or tilt of a flat picture) and never blinks. The challenge passes when every step is
met by the same track within `time_limit` of its first frame; when the track is lost it
starts over with the next face, and when time runs out it fails (`restart()` gives a new
order).

Left and right are the person's own: a camera image is not mirrored, so a head turned to the
person's left shows its nose right of the eyes' middle (`quality.yaw_ratio` > 0).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from face_recognizer.analysers.liveness import BlinkLiveness, FaceLiveness, Landmarker
from face_recognizer.tracker import Tracker
from face_recognizer.types import Detections, Match

STEPS = ("blink", "left", "right")
PROMPTS = {"blink": "Blink", "left": "Turn your head left", "right": "Turn your head right"}
# How far the yaw ratio must move from where the head was when the challenge started (0 is
# frontal, 1 the nose under an eye, ~45 degrees), on TURN_FRAMES frames in a row: 0.45 is a
# turn of roughly 25 degrees (Lin-Manuel Miranda's turn in the Hamilton clip: 1.06). Single
# frames of landmark jitter move a photo's yaw by up to 0.33 (300 generated attacks,
# bench/liveness.py); held over 3 frames, see the README's Liveness table.
TURN_DELTA = 0.45
TURN_FRAMES = 3
# With a turn to do, the head must start roughly frontal, so that both turns can be asked.
MAX_START_YAW = 0.5
CHALLENGE_SECONDS = 20.0


def held_turn(yaws: Sequence[float], yaw0: float, frames: int = TURN_FRAMES) -> float:
    """The turn (yaw ratio change from `yaw0`; > 0 to the person's left) that the last
    `frames` yaws all reach; 0.0 while there are fewer, or when they disagree in direction."""
    if len(yaws) < frames:
        return 0.0
    last = [y - yaw0 for y in list(yaws)[-frames:]]
    if min(last) > 0:
        return min(last)
    if max(last) < 0:
        return max(last)
    return 0.0


@dataclass(frozen=True, slots=True)
class ChallengeState:
    """Where a challenge stands.

    Attributes:
        prompt: what to show ("Blink", "Turn your head left", ...), or the outcome.
        step: index of the current step (== len(steps) once passed).
        steps: the steps in this challenge's order.
        passed: every step was met by one track in time.
        failed: time ran out (restart to try again).
        track: the track being followed, or None when no face is judged yet.
        seconds_left: time left, in seconds.
    """

    prompt: str
    step: int
    steps: tuple[str, ...]
    passed: bool
    failed: bool
    track: int | None
    seconds_left: float


def prompt_text(state: ChallengeState) -> str:
    """What to show: the prompt with the step and the seconds left, e.g. `Blink (1/3, 14 s)`."""
    if state.track is None or state.passed or state.failed:
        return state.prompt
    return f"{state.prompt} ({state.step + 1}/{len(state.steps)}, {state.seconds_left:.0f} s)"


class Challenge:
    """One active liveness challenge (see the module docstring).

    Args:
        steps: the steps to ask for; default all of `STEPS` in a random order.
        time_limit: seconds from the first face to the last step.
        rng: where the random order comes from.
    """

    def __init__(
        self,
        steps: Sequence[str] | None = None,
        time_limit: float = CHALLENGE_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        if time_limit <= 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {time_limit}")
        unknown = [s for s in steps or () if s not in STEPS]
        if unknown:
            raise ValueError(f"unknown challenge steps {unknown}; use some of {STEPS}")
        self._rng = rng or random.Random()
        self._fixed = tuple(steps) if steps else None
        self.time_limit = time_limit
        self.restart()

    def restart(self) -> None:
        """Start over with a new random order (or the fixed steps)."""
        if self._fixed:
            self.steps = self._fixed
        else:
            order = list(STEPS)
            self._rng.shuffle(order)
            self.steps = tuple(order)
        self._track: int | None = None
        self._start: float | None = None
        self._step = 0
        self._yaw0 = 0.0
        self._yaws: deque[float] = deque(maxlen=TURN_FRAMES)
        self._blinks0 = 0
        self._failed = False
        self._now = 0.0

    @property
    def passed(self) -> bool:
        return self._step >= len(self.steps)

    def update(
        self, timestamp: float, faces: Sequence[tuple[int | None, float, FaceLiveness]]
    ) -> ChallengeState:
        """Feed one frame: (track id, rank, liveness) for each face in view. A new challenge
        follows the face of highest rank (its size in pixels; `LivenessStep` puts faces that
        match the person sought first)."""
        self._now = timestamp
        if self.passed or self._failed:
            return self.state()
        if self._start is not None and timestamp - self._start > self.time_limit:
            self._failed = True
            return self.state()
        followed = [f for f in faces if f[0] is not None and f[0] == self._track]
        if self._track is not None and not followed:  # lost: start over with the next face
            self._track, self._step = None, 0
        if self._track is None:
            turns = any(step != "blink" for step in self.steps)
            candidates = [
                f
                for f in faces
                if f[0] is not None and (not turns or abs(f[2].yaw) <= MAX_START_YAW)
            ]
            if not candidates:
                return self.state()
            track, _, live = max(candidates, key=lambda f: f[1])
            self._track, self._yaw0, self._blinks0 = track, live.yaw, live.blinks
            self._yaws.clear()
            self._start = timestamp  # each face gets the whole time limit
            return self.state()
        live = followed[0][2]
        self._yaws.append(live.yaw)
        step = self.steps[self._step]
        turned = held_turn(self._yaws, self._yaw0)
        met = (
            (step == "blink" and live.blinks > self._blinks0)
            or (step == "left" and turned >= TURN_DELTA)
            or (step == "right" and -turned >= TURN_DELTA)
        )
        if met:
            self._step += 1
            self._blinks0 = live.blinks
            self._yaws.clear()
        return self.state()

    def state(self) -> ChallengeState:
        left = self.time_limit - (self._now - self._start) if self._start is not None else 0.0
        if self.passed:
            prompt = "Passed"
        elif self._failed:
            prompt = "Too slow"
        elif self._track is None:
            prompt = "Look at the camera"
        else:
            prompt = PROMPTS[self.steps[self._step]]
        return ChallengeState(
            prompt=prompt,
            step=self._step,
            steps=self.steps,
            passed=self.passed,
            failed=self._failed,
            track=self._track,
            seconds_left=max(0.0, left if self._start is not None else self.time_limit),
        )


class ChallengeSession:
    """A challenge on raw detections, for loops that do not track faces themselves
    (`register`, `verify --reference`): follows the faces with a `Tracker`, judges their
    blinks with a `BlinkLiveness` that keeps counting after the first, and feeds `Challenge`.

    Args:
        landmarker: (image, xyxy) -> (N, 106, 2) points, e.g. `engine.landmarks_106`.
        challenge: the challenge to run; a random-order `Challenge()` when None.
    """

    def __init__(self, landmarker: Landmarker, challenge: Challenge | None = None) -> None:
        self.challenge = challenge or Challenge()
        self.liveness = BlinkLiveness(landmarker, judge_live=True)
        self.tracker = Tracker()

    def update(
        self, image: np.ndarray, timestamp: float, detections: Detections
    ) -> tuple[ChallengeState, tuple[int | None, ...]]:
        """The challenge's state after this frame, and each detection's track id."""
        tracks = self.tracker.update(detections, lambda idx: [Match(None, 0.0, 0)] * len(idx))
        ids = tuple(t.id for t in tracks)
        states = self.liveness.update(image, timestamp, ids, detections.xyxy, detections.landmarks)
        sides = detections.box_wh.min(axis=1) if len(detections) else np.zeros(0)
        faces = [(ids[i], float(sides[i]), states[i]) for i in range(len(ids))]
        return self.challenge.update(timestamp, faces), ids

    def restart(self) -> None:
        """A new challenge (new order), forgetting the faces followed so far."""
        self.challenge.restart()
        self.liveness.reset()
        self.tracker.reset()
