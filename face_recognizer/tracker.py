"""Faces followed across frames, with a name voted over each track's recent frames.

`Tracker.update(detections, identify)` links this frame's detections to the tracks of the
previous frames (greedy on box overlap, then on centre distance for fast moves), asks
`identify` to embed and match only the faces that need it, and returns one `Track` per
detection. A face needs embedding when its track is new, when its label is uncertain (too
few votes, or no clear majority), or when it has not been embedded for `refresh_every`
frames. A track's label is the majority of its last `vote_window` matches, so one bad frame
does not change it. With `is_sure` (a named match far above the threshold), a track's label is
settled as soon as the votes still to come could not change it (two agreeing votes of three),
or at once by sure votes that all agree, and a named refresh that agrees surely doubles the wait
before the next one.

Tracks end with a `TrackEnd` event, collected by `take_ended()`: when the face has not been
seen for `max_missing` frames ("left"), at a shot cut (`end_all("cut")`) and when the source
ends (`end_all("end")`). The event carries what a sighting needs: first/last frame and time,
the final name, best and mean similarity, the best crop and the mean embedding. A gallery
change calls `reidentify()`: every track keeps its id and is embedded and voted afresh.
`reset()` forgets every track without events (a new, unrelated source).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from face_recognizer.types import END_LEFT, END_REASONS, Detections, Match, Track, TrackEnd


@dataclass(frozen=True, slots=True)
class Identified:
    """What `identify` returns when it has embeddings: the matches and (N, D) embeddings."""

    matches: Sequence[Match]
    embeddings: np.ndarray


Identify = Callable[[np.ndarray], "Sequence[Match] | Identified"]
"""Embeds and matches the detections at the given indices (an int array), in that order."""

IsSure = Callable[[str | None, float], bool]
"""Whether a vote (name or None, similarity) is sure enough to be trusted alone."""

COAST_MIN_DETECTIONS = 3  # detections a track needs before its next frame may be predicted
SURE_REFRESH_FACTOR = 2  # a surely agreeing refresh waits this many times `refresh_every`

MAX_EMBEDDINGS = 64  # embeddings a track keeps (the latest); its mean uses all of them
CROP_MARGIN = 0.2  # crops are the box grown by this share of its size on each side


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection-over-union of two sets of xyxy boxes."""
    a = np.asarray(a_xyxy, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float32).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def _box(xyxy: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return (x1, y1, x2, y2)


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of a BGR crop's grey levels (higher is sharper)."""
    if image.size == 0:
        return 0.0
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def crop_box(image: np.ndarray, xyxy: np.ndarray, margin: float = CROP_MARGIN) -> np.ndarray:
    """A copy of the box `xyxy` of `image`, grown by `margin` of its size on each side."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    crop: np.ndarray = image[top:bottom, left:right].copy()
    return crop


def view_quality(score: float, xyxy: np.ndarray, crop: np.ndarray) -> float:
    """How good a view of a face is: detector score x size (up to 112 px) x sharpness."""
    side = float(min(xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]))
    sharp = sharpness(crop)
    return float(score) * min(1.0, side / 112.0) * (sharp / (sharp + 50.0))


@dataclass
class _TrackState:
    id: int
    xyxy: np.ndarray
    votes: deque[tuple[str | None, float]]
    last_embedded: int = -(10**9)  # frame count when last embedded
    last_seen: int = 0
    label: tuple[str | None, float] = (None, 0.0)
    confident: bool = False
    first_index: int = 0
    last_index: int = 0
    first_time: float = 0.0
    last_time: float = 0.0
    frames: int = 0
    matches: list[tuple[str | None, float]] = field(default_factory=list)
    embeddings: deque[np.ndarray] = field(default_factory=lambda: deque(maxlen=MAX_EMBEDDINGS))
    embedding_sum: np.ndarray | None = None
    embedding_count: int = 0
    best_crop: np.ndarray | None = None
    best_quality: float = -1.0
    # constant-velocity motion model: the last detected box, when, and its speed per frame
    anchor_xyxy: np.ndarray | None = None
    anchor_frame: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    landmarks: np.ndarray | None = None
    score: float = 0.0
    data: dict[str, object] = field(default_factory=dict)
    held: int = 0  # frames in a row reported at the predicted box while not detected
    refresh_every: int = 0  # frames until the next refresh embedding (set by the tracker)
    detected: int = 0  # frames in which this face was detected (not predicted)

    def observe(self, xyxy: np.ndarray, frame: int) -> None:
        """A detection of this face at `frame`: update the box and the velocity."""
        if self.anchor_xyxy is not None and frame > self.anchor_frame:
            step = (xyxy - self.anchor_xyxy) / float(frame - self.anchor_frame)
            self.velocity = (0.5 * self.velocity + 0.5 * step).astype(np.float32)
        self.anchor_xyxy, self.anchor_frame = xyxy, frame
        self.xyxy = xyxy
        self.detected += 1

    def predict(self, frame: int) -> np.ndarray:
        """Where the box should be at `frame` (constant velocity from the last detection)."""
        if self.anchor_xyxy is None:
            return self.xyxy
        predicted: np.ndarray = self.anchor_xyxy + self.velocity * float(frame - self.anchor_frame)
        return predicted

    def add_embedding(self, embedding: np.ndarray) -> None:
        vector = np.asarray(embedding, dtype=np.float32)
        self.embeddings.append(vector)
        self.embedding_sum = (
            vector.copy() if self.embedding_sum is None else (self.embedding_sum + vector)
        )
        self.embedding_count += 1

    def ended(self, reason: str) -> TrackEnd:
        name = self.label[0]
        sims = [sim for n, sim in self.matches if n == name] or [sim for _, sim in self.matches]
        mean = None
        if self.embedding_sum is not None:
            norm = float(np.linalg.norm(self.embedding_sum))
            mean = (self.embedding_sum / max(norm, 1e-12)).astype(np.float32)
            mean.setflags(write=False)
        return TrackEnd(
            track_id=self.id,
            reason=reason,
            first_index=self.first_index,
            last_index=self.last_index,
            first_time=self.first_time,
            last_time=self.last_time,
            frames=self.frames,
            name=name,
            best_similarity=max(sims, default=0.0),
            mean_similarity=float(np.mean(sims)) if sims else 0.0,
            crop=self.best_crop,
            embedding=mean,
            embeddings=self.embedding_count,
        )

    def decide(self, min_votes: int, majority: float, is_sure: IsSure | None = None) -> None:
        """Update `label` from the votes, and whether it is `confident`: `min_votes` votes with
        a `majority` share for the leader; with `is_sure`, also as soon as the votes still
        missing to `min_votes` could not change the leader or its majority, or when every vote
        agrees and is sure."""
        if not self.votes:
            self.label = (None, 0.0)
            self.confident = False
            return
        counts = Counter(name for name, _ in self.votes)
        # most votes first; ties go to the name voted most recently
        recency = {name: i for i, (name, _) in enumerate(self.votes)}
        name, count = max(counts.items(), key=lambda item: (item[1], recency[item[0]]))
        similarity = max(sim for n, sim in self.votes if n == name)
        if name is None:  # unknown: report the best similarity seen, for information
            similarity = max(sim for _, sim in self.votes)
        self.label = (name, similarity)
        by_majority = len(self.votes) >= min_votes and count / len(self.votes) >= majority
        if is_sure is None or by_majority:
            self.confident = by_majority
            return
        missing = max(0, min_votes - len(self.votes))
        settled = count >= majority * min_votes and count > len(self.votes) - count + missing
        all_sure = count == len(self.votes) and all(is_sure(n, sim) for n, sim in self.votes)
        self.confident = settled or all_sure


class Tracker:
    """Links detections across frames and keeps a per-track vote on who each face is.

    Args:
        vote_window: matches kept per track for the vote (>= 1).
        min_votes: votes a track needs before its label counts as confident (>= 1).
        majority: share of the votes the leading name needs to be confident, in (0.5, 1].
        refresh_every: frames after which a confident track is embedded again (>= 1).
        min_iou: overlap with the previous box that continues a track, in (0, 1).
        max_missing: frames a track survives without a detection (>= 0).
        is_sure: which votes are sure (see the module's docstring); None: every track needs
            `min_votes` votes and is refreshed every `refresh_every` frames.
    """

    def __init__(
        self,
        vote_window: int = 7,
        min_votes: int = 3,
        majority: float = 0.6,
        refresh_every: int = 20,
        min_iou: float = 0.3,
        max_missing: int = 5,
        is_sure: IsSure | None = None,
    ) -> None:
        if vote_window < 1:
            raise ValueError(f"vote_window must be >= 1, got {vote_window}")
        if not 1 <= min_votes <= vote_window:
            raise ValueError(
                f"min_votes must be in 1..vote_window ({vote_window}), got {min_votes}"
            )
        if not 0.5 < majority <= 1.0:
            raise ValueError(f"majority must be in (0.5, 1], got {majority}")
        if refresh_every < 1:
            raise ValueError(f"refresh_every must be >= 1, got {refresh_every}")
        if not 0.0 < min_iou < 1.0:
            raise ValueError(f"min_iou must be in (0, 1), got {min_iou}")
        if max_missing < 0:
            raise ValueError(f"max_missing must be >= 0, got {max_missing}")
        self.vote_window = vote_window
        self.min_votes = min_votes
        self.majority = majority
        self.refresh_every = refresh_every
        self.min_iou = min_iou
        self.max_missing = max_missing
        self.is_sure = is_sure
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget all tracks without end events (ids keep counting up, never reused)."""
        self._tracks: list[_TrackState] = []
        self._ended: list[TrackEnd] = []
        self._frame = 0

    @property
    def active(self) -> int:
        """Tracks alive now (seen within the last `max_missing` frames)."""
        return len(self._tracks)

    def end_all(self, reason: str) -> tuple[TrackEnd, ...]:
        """End every track with `reason` ("cut" or "end"); returns all events not yet taken."""
        if reason not in END_REASONS:
            raise ValueError(f"reason must be one of {END_REASONS}, got {reason!r}")
        self._ended.extend(state.ended(reason) for state in self._tracks)
        self._tracks = []
        return self.take_ended()

    def take_ended(self) -> tuple[TrackEnd, ...]:
        """The end events since the last call, oldest first."""
        ended, self._ended = tuple(self._ended), []
        return ended

    def reidentify(self) -> None:
        """Vote afresh on every track (the gallery changed); ids, times and crops are kept."""
        for state in self._tracks:
            state.votes.clear()
            state.matches.clear()
            state.confident = False
            state.label = (None, 0.0)
            state.last_embedded = -(10**9)
            state.refresh_every = 0

    def _associate(self, xyxy: np.ndarray) -> list[int | None]:
        """For each detection, the index into `self._tracks` it continues, or None."""
        assigned: list[int | None] = [None] * len(xyxy)
        if not self._tracks or not len(xyxy):
            return assigned
        previous = np.stack([t.predict(self._frame) for t in self._tracks])
        overlap = iou_matrix(previous, xyxy)
        # centre distance relative to the previous box size, for faces that moved fast
        prev_c = (previous[:, :2] + previous[:, 2:]) / 2
        det_c = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        prev_size = np.maximum(previous[:, 2:] - previous[:, :2], 1).max(axis=1)
        det_size = np.maximum(xyxy[:, 2:] - xyxy[:, :2], 1).max(axis=1)
        dist = np.linalg.norm(prev_c[:, None] - det_c[None], axis=2) / prev_size[:, None]
        scale = det_size[None, :] / prev_size[:, None]
        near = (dist < 0.6) & (scale > 0.6) & (scale < 1.6)
        score = np.where(overlap >= self.min_iou, 1.0 + overlap, np.where(near, 1.0 - dist, 0.0))
        used_tracks: set[int] = set()
        for flat in np.argsort(-score, axis=None):
            t, d = divmod(int(flat), score.shape[1])
            if score[t, d] <= 0:
                break
            if t in used_tracks or assigned[d] is not None:
                continue
            assigned[d] = t
            used_tracks.add(t)
        return assigned

    def update(
        self,
        detections: Detections,
        identify: Identify,
        *,
        index: int | None = None,
        timestamp: float = 0.0,
        image: np.ndarray | None = None,
        hold: int = 0,
    ) -> tuple[Track, ...]:
        """Track this frame's faces; embed and match those that need it via `identify`.

        `index` and `timestamp` are the frame's (default: a count of updates, 0.0); with
        `image`, each track keeps a crop of its best embedded view for its end event.
        Returns one `Track` per detection, in the detections' order; tracks that ended here
        are available from `take_ended()`. With `hold` > 0 (detections that may miss a face,
        as region detection can), a track seen in the previous frame but not detected now is
        reported at its predicted box, after the detections, up to `hold` frames in a row.
        """
        self._frame += 1
        frame_index = self._frame - 1 if index is None else index
        xyxy = np.asarray(detections.xyxy, dtype=np.float32)
        assigned = self._associate(xyxy)
        states: list[_TrackState] = []
        for d, t in enumerate(assigned):
            if t is None:
                state = _TrackState(self._next_id, xyxy[d], deque(maxlen=self.vote_window))
                state.first_index, state.first_time = frame_index, timestamp
                self._next_id += 1
            else:
                state = self._tracks[t]
            state.observe(xyxy[d], self._frame)
            state.landmarks = detections.landmarks[d]
            state.score = float(detections.scores[d])
            state.data = {key: value[d] for key, value in detections.data.items()}
            state.last_seen = self._frame
            state.last_index, state.last_time = frame_index, timestamp
            state.frames += 1
            states.append(state)

        need = [
            d
            for d, state in enumerate(states)
            if not state.confident or self._frame - state.last_embedded >= self._interval(state)
        ]
        embedded: dict[int, np.ndarray | None] = {}
        if need:
            answer = identify(np.asarray(need, dtype=np.int64))
            matches, vectors = (
                (answer.matches, answer.embeddings)
                if isinstance(answer, Identified)
                else (answer, None)
            )
            if len(matches) != len(need) or (vectors is not None and len(vectors) != len(need)):
                raise ValueError(f"identify returned {len(matches)} matches for {len(need)} faces")
            for j, (d, match) in enumerate(zip(need, matches, strict=True)):
                state = states[d]
                vote = (match.name, float(match.similarity))
                state.refresh_every = self._next_interval(state, vote)
                state.votes.append(vote)
                state.matches.append(vote)
                state.last_embedded = self._frame
                embedded[d] = None if vectors is None else vectors[j]
                if vectors is not None:
                    state.add_embedding(vectors[j])
                if image is not None:
                    self._keep_best_view(state, image, xyxy[d], float(detections.scores[d]))
        for state in states:
            state.decide(self.min_votes, self.majority, self.is_sure)

        for state in states:
            state.held = 0
        seen = {id(s) for s in states}
        held: list[Track] = []
        for old in self._tracks:
            if id(old) not in seen and old.held < hold and self._frame - old.last_seen <= hold:
                old.held += 1
                held.append(self._coast_state(old, frame_index, timestamp, seen=False))
        for old in self._tracks:
            if id(old) not in seen and self._frame - old.last_seen > self.max_missing:
                self._ended.append(old.ended(END_LEFT))
        kept = [t for t in self._tracks if self._frame - t.last_seen <= self.max_missing]
        self._tracks = states + [t for t in kept if id(t) not in seen]

        return tuple(
            Track(
                id=state.id,
                xyxy=_box(state.xyxy),
                landmarks=detections.landmarks[d],
                name=state.label[0],
                similarity=state.label[1],
                embedded=d in embedded,
                score=float(detections.scores[d]),
                embedding=embedded.get(d),
                data={key: value[d] for key, value in detections.data.items()},
            )
            for d, state in enumerate(states)
        ) + tuple(held)

    def _interval(self, state: _TrackState) -> int:
        return state.refresh_every or self.refresh_every

    def _next_interval(self, state: _TrackState, vote: tuple[str | None, float]) -> int:
        """Frames until the refresh after `vote`: longer when a confident track's refresh
        agrees with its label and is sure, back to `refresh_every` otherwise."""
        if (
            self.is_sure is not None
            and state.confident
            and vote[0] == state.label[0]
            and self.is_sure(*vote)
        ):
            return self.refresh_every * SURE_REFRESH_FACTOR
        return self.refresh_every

    def predicted_boxes(self) -> np.ndarray:
        """(T, 4) boxes where the live tracks should be in the next frame."""
        if not self._tracks:
            return np.zeros((0, 4), np.float32)
        return np.stack([t.predict(self._frame + 1) for t in self._tracks]).astype(np.float32)

    def can_coast(self) -> bool:
        """Whether the next frame may be predicted instead of detected: every track seen in
        the last frame is confident, not due to be embedded again, and was detected in at
        least `COAST_MIN_DETECTIONS` frames (its velocity is known)."""
        return all(
            t.confident
            and t.detected >= COAST_MIN_DETECTIONS
            and self._frame + 1 - t.last_embedded < self._interval(t)
            for t in self._tracks
            if t.last_seen == self._frame
        )

    def steady(self, min_side: float, max_shift: float) -> bool:
        """Whether every track seen in the last frame is at least `min_side` pixels and its
        predicted centre moves at most `max_shift` of its size per frame (a longer prediction
        stays on such faces; a small or fast face is detected sooner)."""
        for t in self._tracks:
            if t.last_seen != self._frame:
                continue
            side = float(max(min(t.xyxy[2] - t.xyxy[0], t.xyxy[3] - t.xyxy[1]), 1.0))
            shift = float(np.hypot(t.velocity[0] + t.velocity[2], t.velocity[1] + t.velocity[3]))
            if side < min_side or shift / 2 > max_shift * side:
                return False
        return True

    def coast(self, *, index: int | None = None, timestamp: float = 0.0) -> tuple[Track, ...]:
        """Advance one frame without detections: each track moves at its velocity.

        For frames between two detections (see `can_coast`); nothing is embedded.
        """
        self._frame += 1
        frame_index = self._frame - 1 if index is None else index
        out = [
            self._coast_state(state, frame_index, timestamp)
            for state in self._tracks
            if state.last_seen == self._frame - 1  # a missing track stays missing
        ]
        for old in self._tracks:
            if self._frame - old.last_seen > self.max_missing:
                self._ended.append(old.ended(END_LEFT))
        self._tracks = [t for t in self._tracks if self._frame - t.last_seen <= self.max_missing]
        return tuple(out)

    def _coast_state(
        self, state: _TrackState, frame_index: int, timestamp: float, *, seen: bool = True
    ) -> Track:
        """Move `state` to its predicted box in this frame and report it (not embedded).

        `seen`: a predicted frame (nothing was detected), counted as seen; False for a
        track a detection missed, shown at its prediction but not counted as seen."""
        predicted = state.predict(self._frame)
        shift = ((predicted[:2] + predicted[2:]) - (state.xyxy[:2] + state.xyxy[2:])) / 2
        state.xyxy = predicted
        if state.landmarks is not None:
            state.landmarks = state.landmarks + shift
        if seen:
            state.last_seen = self._frame
            state.last_index, state.last_time = frame_index, timestamp
            state.frames += 1
        return Track(
            id=state.id,
            xyxy=_box(predicted),
            landmarks=state.landmarks if state.landmarks is not None else np.zeros((5, 2)),
            name=state.label[0],
            similarity=state.label[1],
            embedded=False,
            score=state.score,
            data=state.data,
        )

    @staticmethod
    def _keep_best_view(
        state: _TrackState, image: np.ndarray, xyxy: np.ndarray, score: float
    ) -> None:
        crop = crop_box(image, xyxy)
        quality = view_quality(score, xyxy, crop)
        if quality > state.best_quality:
            state.best_quality, state.best_crop = quality, crop


def label_stills(
    detections: Detections, matches: Sequence[Match], embeddings: np.ndarray | None = None
) -> tuple[Track, ...]:
    """`Track`s without ids for an independent still: each face labelled by its own match
    (and carrying its row of `embeddings`, when given)."""
    if len(matches) != len(detections):
        raise ValueError(f"{len(matches)} matches for {len(detections)} faces")
    return tuple(
        Track(
            id=None,
            xyxy=_box(detections.xyxy[i]),
            landmarks=detections.landmarks[i],
            name=match.name,
            similarity=float(match.similarity),
            score=float(detections.scores[i]),
            embedding=None if embeddings is None else embeddings[i],
            data={key: value[i] for key, value in detections.data.items()},
        )
        for i, match in enumerate(matches)
    )
