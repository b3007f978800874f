"""Enrolling one person: a live session (S snaps, Q finishes, Esc cancels) or photo files.

Live: every frame is detected and checked with `quality.check_photo`; the face is boxed green
when the frame is usable and red with the reason otherwise. S keeps the shown frame's aligned
face crop (only when usable); Q, or closing the window, embeds all kept crops in one batch and
stores them with `Gallery.add_faces` in one transaction. A video file plays once, every frame in
order at its own frame rate (slower when detection cannot keep up), then holds its last frame.
A camera that stops sending frames leaves a message on screen: Q still stores what was kept.

Guided (`register --auto`, a `guide.Guide`): a blue tab at the bottom asks for a few poses in
turn, with the progress ("Pose 2 of 5: a little left (turn your head to your left)"), and the
frame is taken by itself when the face is usable, big and sharp enough and in the asked pose;
the face's tab says what is still missing ("Turn more to your left"). S takes the shown frame
for the asked pose by hand. With `--liveness` as well, the challenge comes first (its prompt
in that tab), then the poses, all of the face that passed it.

Files go through `enrol.enrol_files`, which says for each photo `ok` or why not, and stores
the usable ones. Snaps are `enrol.AlignedFace`s, embedded in batches by `enrol.embed_faces`.
Nothing here prints; `cli/register.py` does.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from face_recognizer.draw import (
    IGNORED,
    KNOWN,
    NOTICE,
    PROBLEM,
    Swatch,
    draw_banner,
    draw_box,
    draw_note,
    draw_status,
    note_height,
)
from face_recognizer.enrol import AlignedFace, align_face, photo_from_array
from face_recognizer.errors import FaceRecognizerError
from face_recognizer.guide import NAMES, Guide
from face_recognizer.images import is_image_path
from face_recognizer.quality import PhotoCheck, check_photo
from face_recognizer.store import AddResult, gallery_exists, open_store
from face_recognizer.store.base import EnrolFace, SimilarFace
from face_recognizer.types import Detections, Frame
from face_recognizer.words import plural

if TYPE_CHECKING:
    from face_recognizer.analysers.challenge import ChallengeSession, ChallengeState
    from face_recognizer.engine import Engine
    from face_recognizer.sources import FrameSource
    from face_recognizer.window import Window

GOOD = KNOWN  # usable face
BAD = PROBLEM  # not usable, with the reason
OTHER = IGNORED  # small background faces that do not count
CHALLENGE = NOTICE  # the liveness prompt
ASKING = NOTICE  # the guided pose asked now (a message to the person, like the prompt)
KEYS: dict[str | int, str] = {"s": "snap", "q": "finish", 27: "cancel"}
FLASH_SECONDS = 1.0
HOLD_WAIT_MS = 40  # key polling while a finished video holds its last frame
NOT_LIVE = "liveness check not passed"


@dataclass(frozen=True, slots=True)
class LiveOutcome:
    """How a live session ended: the kept snaps, S presses refused (by reason), and whether
    the user cancelled with Esc."""

    snaps: tuple[AlignedFace, ...]
    refused: tuple[tuple[str, int], ...]
    cancelled: bool
    source_error: str | None = None


def make_snap(
    engine: Engine, image: np.ndarray, detections: Detections, check: PhotoCheck, source: str
) -> AlignedFace:
    """The aligned crop and metadata of the usable face that `check` chose in a frame."""
    return align_face(engine, photo_from_array(image, source), image, detections, check)


def image_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders expanded to their image files (sorted, not recursive)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.is_file() and is_image_path(p)))
        else:
            out.append(path)
    return out


def existing_photos(db: str | Path, name: str, recognizer_id: str) -> int:
    """Photos `name` already has in the gallery at `db` (0 when new or no gallery yet).

    Raises GalleryError now, before any photo is taken, when the gallery cannot take this
    pack's embeddings.
    """
    if not gallery_exists(db):
        return 0
    with open_store(db, create=False) as gallery:
        gallery.check_pack(recognizer_id)
        return next((p.photos for p in gallery.people() if p.name == name), 0)


class GalleryAt:
    """The gallery at `db` (a folder or a URL), created only when a face is stored: an
    `enrol.FaceStore` for `register`, which must leave no empty gallery behind when nothing
    was usable."""

    def __init__(self, db: str | Path) -> None:
        self.db = db

    def source_hashes(self, name: str) -> set[str]:
        if not gallery_exists(self.db):
            return set()
        with open_store(self.db, create=False) as gallery:
            return gallery.source_hashes(name)

    def check_pack(self, recognizer_id: str, faces: Sequence[EnrolFace] = ()) -> None:
        if gallery_exists(self.db):
            with open_store(self.db, create=False) as gallery:
                gallery.check_pack(recognizer_id, faces)

    def add_faces(
        self,
        name: str,
        faces: Sequence[EnrolFace],
        recognizer_id: str,
        *,
        same_photo_ok: bool = False,
    ) -> AddResult:
        with open_store(self.db) as gallery:
            return gallery.add_faces(name, faces, recognizer_id, same_photo_ok=same_photo_ok)

    def similar_faces(
        self, name: str, faces: Sequence[EnrolFace], recognizer_id: str, threshold: float
    ) -> list[SimilarFace]:
        if not gallery_exists(self.db):
            return []
        with open_store(self.db, create=False) as gallery:
            return gallery.similar_faces(name, faces, recognizer_id, threshold)

    def embeddings(self, recognizer_id: str) -> tuple[np.ndarray, np.ndarray]:
        if not gallery_exists(self.db):
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        with open_store(self.db, create=False) as gallery:
            return gallery.embeddings(recognizer_id)

    def person_names(self) -> dict[int, str]:
        if not gallery_exists(self.db):
            return {}
        with open_store(self.db, create=False) as gallery:
            return gallery.person_names()


def source_label(spec: str) -> str:
    """How snaps from `spec` are named: "camera:0" for a camera index, else the spec itself."""
    text = str(spec).strip()
    return f"camera:{text}" if text.isdigit() else text


@dataclass
class _View:
    """What the window shows for the current frame."""

    frame: Frame | None = None
    detections: Detections = field(default_factory=Detections.empty)
    check: PhotoCheck = field(default_factory=lambda: PhotoCheck(False, "no face", None))
    track_ids: tuple[int | None, ...] = ()  # with --liveness: each detection's track


class LiveSession:
    """The register window for one person; `run()` returns how it ended.

    Args:
        engine: detects and aligns.
        name: the person (already normalised).
        source: frames to show (camera, URL or video file).
        window: where to show them (keys: `KEYS`).
        label: how snaps are named (see `source_label`).
        stored: photos the person already has (shown on screen).
        challenge: with `register --liveness`: snaps are refused until this liveness
            challenge is passed, and then taken only of the face that passed it.
        guide: with `register --auto`: ask for poses in turn and snap each by itself; None:
            S only.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        source: FrameSource,
        window: Window,
        label: str,
        stored: int = 0,
        challenge: ChallengeSession | None = None,
        guide: Guide | None = None,
    ) -> None:
        self.engine = engine
        self.challenge = challenge
        self._challenge_state: ChallengeState | None = None
        self.name = name
        self.source = source
        self.window = window
        self.label = label
        self.stored = stored
        self.guide = guide
        self.hint: str | None = None  # what the guide still misses in the shown frame
        self.snaps: list[AlignedFace] = []
        self.refused: Counter[str] = Counter()
        self._hashes: set[str] = set()
        self._view = _View()
        self._flash: tuple[str, Swatch, float] | None = None
        self._ended = False
        self._error: str | None = None

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> LiveOutcome:
        frames = iter(self.source)
        paced = not self.source.is_live and not self.source.is_stills
        start: float | None = None
        while True:
            wait_ms = HOLD_WAIT_MS
            if not self._ended:
                frame = self._next(frames)
                if frame is not None:
                    self._analyse(frame)
                    wait_ms = 1
                    if paced:  # a video file plays at its own frame rate, every frame
                        now = time.monotonic()
                        start = now - frame.timestamp if start is None else start
                        wait_ms = max(1, round((start + frame.timestamp - now) * 1000))
            action = self.window.show(self._render(), wait_ms=wait_ms)
            if action == "snap":
                self._snap()
            elif action in ("finish", "close"):
                return self._outcome(cancelled=False)
            elif action == "cancel":
                return self._outcome(cancelled=True)

    def _next(self, frames: Iterator[Frame]) -> Frame | None:
        try:
            return next(frames)
        except StopIteration:
            self._ended = True
        except FaceRecognizerError as exc:
            self._ended = True
            self._error = str(exc)
        return None

    def _analyse(self, frame: Frame) -> None:
        detections = self.engine.detect(frame.image)
        ids: tuple[int | None, ...] = ()
        if self.challenge is not None:
            state, ids = self.challenge.update(frame.image, frame.timestamp, detections)
            if state.failed:
                self.challenge.restart()
                self._flash_message("Too slow: try again", BAD)
            self._challenge_state = state
        self._view = _View(frame, detections, check_photo(frame.image, detections), ids)
        if self.guide is not None and self.guide.current is not None:
            self.hint = self._not_live(self._view) or self.guide.verdict(
                self._view.check, self._landmarks()
            )
            if self.hint is None:
                self._snap()

    def _landmarks(self) -> np.ndarray | None:
        face = self._view.check.face
        return None if face is None else self._view.detections.landmarks[face]

    def _not_live(self, view: _View) -> str | None:
        """Why a usable face may not be snapped yet under --liveness, or None."""
        state = self._challenge_state
        if self.challenge is None:
            return None
        if state is None or not state.passed:
            return "Not taken: not live yet"
        if view.check.face is None or view.track_ids[view.check.face] != state.track:
            return "Not taken: another face"
        return None

    def _snap(self) -> None:
        view = self._view
        if self._error is not None:
            return
        if view.frame is None:
            self._flash_message("No picture yet", BAD)
            return
        if not view.check.usable:
            reason = view.check.reason or "not usable"
            self.refused[reason] += 1
            self._flash_message(f"Not taken: {reason}", BAD)
            return
        not_live = self._not_live(view)
        if not_live is not None:
            self.refused[NOT_LIVE] += 1
            self._flash_message(not_live, BAD)
            return
        source = f"{self.label} frame {view.frame.index}"
        snap = make_snap(self.engine, view.frame.image, view.detections, view.check, source)
        if snap.source_hash in self._hashes:
            self.refused["same frame twice"] += 1
            self._flash_message("Already taken: wait for a new frame", BAD)
            return
        self._hashes.add(snap.source_hash)
        self.snaps.append(snap)
        pose = self.guide.current if self.guide is not None else None
        landmarks = self._landmarks()
        if self.guide is not None and pose is not None and landmarks is not None:
            self.guide.taken(landmarks)  # a usable frame always has its face's landmarks
            self.hint = None
        taken = f"Photo {len(self.snaps)} taken"
        self._flash_message(taken if pose is None else f"{taken}: {NAMES[pose]}", GOOD)

    def _flash_message(self, text: str, color: Swatch) -> None:
        self._flash = (text, color, time.monotonic() + FLASH_SECONDS)

    def _outcome(self, *, cancelled: bool) -> LiveOutcome:
        return LiveOutcome(
            tuple(self.snaps), tuple(self.refused.most_common()), cancelled, self._error
        )

    # -- drawing ---------------------------------------------------------------------------
    def status_text(self) -> str:
        """The status line, e.g. `Ana: 3 photos  S snap  Q finish`."""
        count = len(self.snaps)
        text = f"{self.name}: {plural(count, 'photo')}"
        if self.stored:
            text += f" (+{self.stored} stored)"
        if self.guide is not None:
            text += f"  auto: {len(self.guide.done)} of {len(self.guide.poses)} poses"
        text += "  S snap  Q finish  Esc cancel"
        if self.challenge is not None:
            passed = self._challenge_state is not None and self._challenge_state.passed
            text += "  live: passed" if passed else "  live: not yet"
        if self._ended and self._error is None:
            text += "  (video ended)"
        return text

    def _render(self) -> np.ndarray:
        view = self._view
        if view.frame is None:
            image = np.zeros((480, 640, 3), np.uint8)
        elif self._error is not None:  # the picture is stale: dim it, no boxes
            image = view.frame.image // 3
        else:
            image = view.frame.image.copy()
            self._draw_faces(image, view)
        draw_status(image, self.status_text())
        if self._error is not None:
            count = len(self.snaps)
            draw_banner(image, self._error, BAD)
            draw_note(image, f"Q keeps the {plural(count, 'photo')}, Esc discards", BAD)
            return image
        if self._flash is not None:
            text, color, until = self._flash
            if time.monotonic() < until:
                draw_banner(image, text, color)
                return image
            self._flash = None
        if self._challenge_state is not None and not self._challenge_state.passed:
            draw_note(image, self.challenge_text(), CHALLENGE)
        elif self.guide is not None:
            draw_note(image, self.guide.ask(), ASKING)
        return image

    def challenge_text(self) -> str:
        """The liveness prompt, e.g. `Blink (1/3, 14 s)`."""
        from face_recognizer.analysers.challenge import prompt_text

        state = self._challenge_state
        return "" if state is None else prompt_text(state)

    def _draw_faces(self, image: np.ndarray, view: _View) -> None:
        check, detections = view.check, view.detections
        if check.reason == "no face":
            if self.guide is None:
                draw_note(image, "No face in view", BAD)
            else:  # the bottom row is the pose asked: this goes just above it
                draw_note(image, "No face in view", BAD, above=note_height(image))
            return
        if check.reason == "several faces":
            order = np.argsort(-detections.box_wh.min(axis=1))
            for rank, i in enumerate(order):
                draw_box(image, detections.xyxy[i], "several faces" if rank == 0 else "", BAD)
            return
        for i in range(len(detections)):
            if i != check.face:
                draw_box(image, detections.xyxy[i], "", OTHER)
        if check.face is not None:
            label = "OK: press S" if check.usable else str(check.reason)
            if check.usable and self._not_live(view) is not None:
                label = "liveness check first"
            elif check.usable and self.guide is not None and self.guide.current is not None:
                label = self.hint or "OK: hold still"
            draw_box(image, detections.xyxy[check.face], label, GOOD if check.usable else BAD)
