"""Liveness in the live loop: a step that wraps `Recognizer` or `Verifier` and writes each
face's liveness into its `data`.

`LivenessStep(step, landmarker)` runs the wrapped step, then `BlinkLiveness` on its tracks
(steps that do not track, like `Verifier`, get track ids from a `Tracker` here), and returns
the same `FrameResult` with `data["live"]` (True, False or None, see `FaceLiveness.live`) on
every face. With `require_live`, a face that is not live has its name withheld
(`data["withheld"]` is True): a door opens only for a live face. With a `Challenge`, a face
counts as live only once its track met the challenge (and `challenge_state` says what to
ask); the challenge starts over by itself when time runs out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import numpy as np

from face_recognizer.analysers.challenge import Challenge, ChallengeState
from face_recognizer.analysers.liveness import BlinkLiveness, FaceLiveness, Landmarker
from face_recognizer.draw import PROBLEM, Swatch
from face_recognizer.images import cut_thumbnail, is_shot_cut, thumbnail_change
from face_recognizer.tracker import Tracker
from face_recognizer.types import Detections, Frame, FrameResult, Match, Track, TrackEnd

LIVE_TEXT = {True: "live", False: "photo?", None: "not yet"}


class Step(Protocol):
    """What the live loop runs on each frame (`live.Step`)."""

    def process(self, frame: Frame, *, still: bool = False) -> FrameResult: ...

    def reset(self) -> None: ...

    def finish(self) -> tuple[TrackEnd, ...]: ...


class LivenessStep:
    """Wraps a live-loop step and adds each face's liveness (see the module docstring).

    Args:
        step: the step to wrap (`Recognizer`, `Verifier`).
        landmarker: (image, xyxy) -> (N, 106, 2), e.g. `engine.landmarks_106`.
        require_live: withhold the names of faces that are not live.
        challenge: an active challenge; faces are live only once they met it.
    """

    def __init__(
        self,
        step: Step,
        landmarker: Landmarker,
        *,
        require_live: bool = False,
        challenge: Challenge | None = None,
    ) -> None:
        self.step = step
        self.require_live = require_live
        self.challenge = challenge
        self.liveness = BlinkLiveness(landmarker, judge_live=challenge is not None)
        self.challenge_state: ChallengeState | None = None
        self._tracker = Tracker()  # for steps whose faces carry no track id
        self._previous: np.ndarray | None = None  # and the last frame's thumbnail, for cuts

    def reset(self) -> None:
        self.step.reset()
        self.liveness.reset()
        self._tracker.reset()
        self._previous = None

    def finish(self) -> tuple[TrackEnd, ...]:
        return self.step.finish()

    def process(self, frame: Frame, *, still: bool = False) -> FrameResult:
        result = self.step.process(frame, still=still)
        for ended in result.ended:
            self.liveness.forget(ended.track_id)
        faces = result.faces
        if still:  # one picture cannot blink
            return dataclasses.replace(result, faces=tuple(self._mark(f, None) for f in faces))
        thumb = cut_thumbnail(frame.image)
        # no track of ours goes on into another shot
        if is_shot_cut(thumbnail_change(self._previous, thumb)):
            self._tracker.reset()
        self._previous = thumb
        ids = [f.id for f in faces]
        if faces and any(i is None for i in ids):
            ids = self._track_ids(faces)
            faces = tuple(dataclasses.replace(f, id=i) for f, i in zip(faces, ids, strict=True))
        xyxy = np.array([f.xyxy for f in faces], dtype=np.float32).reshape(-1, 4)
        five = np.array([f.landmarks for f in faces], dtype=np.float32).reshape(-1, 5, 2)
        states = self.liveness.update(frame.image, frame.timestamp, ids, xyxy, five)
        live = [s.live for s in states]
        if self.challenge is not None:
            live = self._challenge(frame.timestamp, faces, xyxy, states)
        faces = tuple(self._mark(f, v) for f, v in zip(faces, live, strict=True))
        return dataclasses.replace(result, faces=faces)

    def _challenge(
        self,
        timestamp: float,
        faces_in: tuple[Track, ...],
        xyxy: np.ndarray,
        states: tuple[FaceLiveness, ...],
    ) -> list[bool | None]:
        if self.challenge is None:
            return [s.live for s in states]
        ids = [f.id for f in faces_in]
        sides = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        # the face of the person sought (named) first, then the biggest
        rank = [float(sides[i]) + (1e6 if faces_in[i].name else 0.0) for i in range(len(ids))]
        faces = [(ids[i], rank[i], states[i]) for i in range(len(ids))]
        state = self.challenge.update(timestamp, faces)
        if state.failed:
            self.challenge.restart()
            state = self.challenge.update(timestamp, faces)
        self.challenge_state = state
        return [True if state.passed and i == state.track else None for i in ids]

    def _track_ids(self, faces: tuple[Track, ...]) -> list[int | None]:
        detections = Detections(
            np.array([f.xyxy for f in faces]),
            np.array([f.score for f in faces]),
            np.array([f.landmarks for f in faces]),
        )
        matches = [Match(f.name, f.similarity, 1 if f.name else 0) for f in faces]
        tracks = self._tracker.update(detections, lambda idx: [matches[i] for i in idx])
        return [t.id for t in tracks]

    def _mark(self, face: Track, live: bool | None) -> Track:
        withheld = self.require_live and live is not True and face.name is not None
        data = {**face.data, "live": live, "withheld": withheld}
        name = None if withheld else face.name
        return dataclasses.replace(face, name=name, data=data)


Labeler = Callable[[Track], tuple[str, Swatch]]


def liveness_label(base: Labeler) -> Labeler:
    """`base`'s label with the face's liveness after it ("Ana 0.61 | live"); a withheld name
    reads "Unknown (not live)"."""

    def label(face: Track) -> tuple[str, Swatch]:
        if face.data.get("withheld"):
            return "Unknown (not live)", PROBLEM  # known, but cannot be used: not live
        text, color = base(face)
        return f"{text} | {LIVE_TEXT[face.data.get('live')]}", color

    return label
