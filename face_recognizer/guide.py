"""Guided enrolment (`register --auto`): ask for a few poses in turn, snap by itself.

A door camera sees people from the side and from above as often as straight on, so a person is
enrolled from the angles it sees: looking straight, a little to their left, to their right, up
and down. The pose comes from the detector's 5 landmarks (`face_pose`): the yaw is where the
nose sits between the eyes along the eye line (`quality.yaw_ratio`), the pitch where it sits
between the eye line and the mouth, across it (`pitch_ratio`). Turns are judged against the
person's own straight snap, so a face that looks a little up by nature is not asked to look
further up.

`Guide.ask` says which pose is asked and how far the person is ("Pose 2 of 5: a little left
(turn your head to your left)"); `Guide.verdict` says, for one analysed frame, whether it may
be taken for that pose (None) or what to do ("Come closer", "Turn more to your left");
`Guide.taken` moves on to the next pose. Nothing here draws or prints: `register.LiveSession`
shows the words.

Signs, looked at on LFW photos: a positive yaw is a face turned to the person's own left
(towards the right of an unmirrored camera picture); a smaller pitch ratio is a face looking
up, a larger one looking down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face_recognizer.quality import MIN_BLUR, PhotoCheck, yaw_ratio

POSES: tuple[str, ...] = ("straight", "left", "right", "up", "down")
# Each pose in words: its short name (flashed when taken, "Photo 2 taken: a little left") and
# what the person is asked to do.
NAMES: dict[str, str] = {
    "straight": "straight",
    "left": "a little left",
    "right": "a little right",
    "up": "a little up",
    "down": "a little down",
}
ASK: dict[str, str] = {
    "straight": "look straight at the camera",
    "left": "turn your head to your left",
    "right": "turn your head to your right",
    "up": "tilt your head up",
    "down": "tilt your head down",
}
# An automatic snap wants a clearer face than the photo checks' minimum (40 px, blur 25).
AUTO_MIN_FACE_PX = 80.0
AUTO_MIN_BLUR = 2 * MIN_BLUR
# Straight: the nose within 0.15 of the eyes' midpoint (yaw ratio) and the pitch ratio inside
# LFW's middle band (p5-p95 of 154 photos: 0.35-0.72, median 0.54).
STRAIGHT_YAW = 0.15
STRAIGHT_PITCH = (0.42, 0.66)
# A turn: the yaw ratio at least this far from the straight snap's, towards the side asked
# (LFW's middle half spans -0.25..0.15; 3/4 views reach 0.5-1.0, profiles are refused at 1.0).
TURN_YAW = 0.3
# A tilt: the pitch ratio at least this far from the straight snap's.
TILT_PITCH = 0.1


def pitch_ratio(landmarks: np.ndarray) -> float:
    """Where the nose sits from the eye line (0) to the mouth line (1), measured across the
    eye line: about 0.54 looking straight, smaller looking up, larger looking down.

    `landmarks` is one face's (5, 2) points (left eye, right eye, nose, mouth corners);
    independent of roll and size. NaN when the mouth is on the eye line (no face).
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left, right, nose = points[0], points[1], points[2]
    axis = right - left
    norm = float(np.hypot(*axis))
    if norm <= 1e-9:
        return float("nan")
    across = np.array([-axis[1], axis[0]]) / norm
    eyes = (left + right) / 2.0
    mouth = (points[3] + points[4]) / 2.0
    depth = float((mouth - eyes) @ across)
    if abs(depth) <= 1e-9:
        return float("nan")
    return float((nose - eyes) @ across / depth)


@dataclass(frozen=True, slots=True)
class Pose:
    """A face's pose from its landmarks: `yaw` (`quality.yaw_ratio`, + = the person's left)
    and `pitch` (`pitch_ratio`, smaller = looking up)."""

    yaw: float
    pitch: float


def face_pose(landmarks: np.ndarray) -> Pose:
    return Pose(yaw_ratio(landmarks), pitch_ratio(landmarks))


class Guide:
    """Which pose is asked now, and whether a frame shows it.

    Args:
        poses: the poses to ask for, in order (names from `POSES`).
    """

    def __init__(self, poses: tuple[str, ...] = POSES) -> None:
        unknown = [p for p in poses if p not in NAMES]
        if unknown or not poses:
            raise ValueError(f"poses must be some of {POSES}, got {poses}")
        self.poses = poses
        self.done: list[str] = []
        self.straight: Pose | None = None

    @property
    def current(self) -> str | None:
        """The pose asked now; None once every pose is taken."""
        return self.poses[len(self.done)] if len(self.done) < len(self.poses) else None

    def ask(self) -> str:
        """What the window asks, with the progress, e.g. "Pose 2 of 5: a little left (turn
        your head to your left)"; "All 5 poses taken: Q stores them" at the end."""
        pose = self.current
        if pose is None:
            return f"All {len(self.poses)} poses taken: Q stores them"
        return f"Pose {len(self.done) + 1} of {len(self.poses)}: {NAMES[pose]} ({ASK[pose]})"

    def verdict(self, check: PhotoCheck, landmarks: np.ndarray | None) -> str | None:
        """None when this frame may be snapped for the pose asked now, else what to do.

        `check` is the frame's `quality.check_photo`; `landmarks` its face's (5, 2) points.
        """
        pose = self.current
        if pose is None:
            return "Q stores the photos"
        if not check.usable or landmarks is None:
            return check.reason or "no face"
        if check.face_px < AUTO_MIN_FACE_PX:
            return "Come closer"
        if check.blur < AUTO_MIN_BLUR:
            return "Hold still"
        seen = face_pose(landmarks)
        base = self.straight or Pose(0.0, sum(STRAIGHT_PITCH) / 2)
        if pose == "straight":
            if abs(seen.yaw) > STRAIGHT_YAW:
                return "Look straight at the camera"
            low, high = STRAIGHT_PITCH
            if not low <= seen.pitch <= high:
                return "Tilt your head down a little" if seen.pitch < low else "Lift your chin"
            return None
        if pose == "left":
            return None if seen.yaw >= base.yaw + TURN_YAW else "Turn more to your left"
        if pose == "right":
            return None if seen.yaw <= base.yaw - TURN_YAW else "Turn more to your right"
        if pose == "up":
            return None if seen.pitch <= base.pitch - TILT_PITCH else "Tilt your head up more"
        return None if seen.pitch >= base.pitch + TILT_PITCH else "Tilt your head down more"

    def taken(self, landmarks: np.ndarray) -> None:
        """The frame for the current pose was snapped: move on to the next pose."""
        pose = self.current
        if pose is None:
            return
        if pose == "straight":
            self.straight = face_pose(landmarks)
        self.done.append(pose)
