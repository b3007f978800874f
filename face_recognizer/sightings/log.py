"""Track end events -> stored sightings, written off the live loop's thread.

`SightingLog` is a live-loop sink: every ended track (and every face of a still photo) becomes
one `NewSighting`. The live loop only puts the event on a queue (microseconds); a writer
thread with its own connection to the gallery turns the events into rows (PNG crops,
embeddings) and stores everything waiting in one small transaction, so a slow disk never slows
the picture. `close()` writes what is left (the loop ends, Q, Ctrl-C); a process killed
outright loses the sightings not yet written and nothing else (each batch is one transaction).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from face_recognizer.store.base import NewSighting, Store
from face_recognizer.tracker import CROP_MARGIN, crop_box
from face_recognizer.types import Frame, FrameResult, TrackEnd

log = logging.getLogger(__name__)

# Video tracks seen in fewer frames are not logged: a face passing in a blink, or a detector
# flicker on something that is not a face, is no sighting anyone asks about.
MIN_FRAMES = 3
_STOP = object()


def redact_source(spec: str) -> str:
    """The source as stored and shown: a URL's password replaced by `***`."""
    parts = urlsplit(spec)
    if not parts.scheme or parts.password is None:
        return spec
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def face_px_of_crop(crop: np.ndarray | None) -> float:
    """The face box's shorter side, from a crop made by `tracker.crop_box` (box + margin)."""
    if crop is None or crop.size == 0:
        return 0.0
    return float(min(crop.shape[:2])) / (1.0 + 2.0 * CROP_MARGIN)


@dataclass(frozen=True, slots=True)
class LogSummary:
    """What a `SightingLog` did: sightings written, video tracks too short to log, the first
    write error (None when all went well), and the CPU seconds its writer thread used."""

    written: int
    too_short: int
    error: str | None
    writer_cpu_s: float = 0.0


class SightingLog:
    """A live-loop sink that stores one sighting per ended track, or per face of a still.

    Args:
        open_store: opens the gallery for the writer thread (its own connection).
        source: the `--source` as given (a camera index, file, URL or folder).
        is_live: camera or URL: times are wall-clock; else a video file: positions in it.
        recognizer_id: the pack that made the embeddings.
        min_frames: video tracks seen in fewer frames are counted, not logged.
        on_written: called on the writer thread with the new ids after each batch.
    """

    wants_image = False

    def __init__(
        self,
        open_store: Callable[[], Store],
        *,
        source: str,
        is_live: bool,
        recognizer_id: str,
        min_frames: int = MIN_FRAMES,
        on_written: Callable[[Store, list[int]], None] | None = None,
    ) -> None:
        if min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {min_frames}")
        self.source = redact_source(str(source))
        self.is_live = is_live
        self.recognizer_id = recognizer_id
        self.min_frames = min_frames
        self._on_written = on_written
        self._queue: queue.Queue[Any] = queue.Queue()
        self._written = 0
        self._too_short = 0
        self._error: str | None = None
        self._cpu_s = 0.0
        self._store = open_store()
        # Frame timestamps of live sources are time.monotonic(): this turns them into UTC.
        self._wall_minus_mono = time.time() - time.monotonic()
        self._opened_at = time.time()
        self._thread = threading.Thread(target=self._run, name="sightings-writer", daemon=True)
        self._thread.start()

    # -- the live loop's side: cheap ---------------------------------------------------------
    def on_frame(self, frame: Frame, result: FrameResult, image: np.ndarray | None) -> None:
        """Stills: one sighting per face, with the photo's path as its source."""
        if frame.source is None:
            return
        now = datetime.now(timezone.utc)
        for face in result.faces:
            if face.id is not None:
                return  # a tracked frame: its faces are logged when their tracks end
            crop = crop_box(frame.image, np.asarray(face.xyxy))
            x1, y1, x2, y2 = face.xyxy
            self._queue.put(
                NewSighting(
                    source=frame.source,
                    started=now,
                    ended=now,
                    start_pos=None,
                    end_pos=None,
                    first_frame=frame.index,
                    last_frame=frame.index,
                    name=face.name,
                    best_similarity=float(face.similarity),
                    mean_similarity=float(face.similarity),
                    frames=1,
                    face_px=float(min(x2 - x1, y2 - y1)),
                    recognizer_id=self.recognizer_id,
                    embedding=face.embedding,
                    crop=crop,
                )
            )

    def on_track_end(self, ended: TrackEnd) -> None:
        if ended.frames < self.min_frames:
            self._too_short += 1
            return
        self._queue.put(ended)

    def close(self) -> None:
        """Write everything queued, then stop the writer (waits for it)."""
        self._queue.put(_STOP)
        self._thread.join()
        self._store.close()

    @property
    def summary(self) -> LogSummary:
        return LogSummary(self._written, self._too_short, self._error, self._cpu_s)

    # -- the writer thread -----------------------------------------------------------------
    def _row(self, item: NewSighting | TrackEnd) -> NewSighting:
        if isinstance(item, NewSighting):
            return item
        ended = item
        if self.is_live:
            started = _utc(ended.first_time + self._wall_minus_mono)
            finished = _utc(ended.last_time + self._wall_minus_mono)
            start_pos = end_pos = None
        else:  # a video file: positions in it; times as if it played from the run's start
            started = _utc(self._opened_at + ended.first_time)
            finished = _utc(self._opened_at + ended.last_time)
            start_pos, end_pos = float(ended.first_time), float(ended.last_time)
        return NewSighting(
            source=self.source,
            started=started,
            ended=finished,
            start_pos=start_pos,
            end_pos=end_pos,
            first_frame=ended.first_index,
            last_frame=ended.last_index,
            name=ended.name,
            best_similarity=float(ended.best_similarity),
            mean_similarity=float(ended.mean_similarity),
            frames=ended.frames,
            face_px=face_px_of_crop(ended.crop),
            recognizer_id=self.recognizer_id,
            embedding=ended.embedding,
            crop=ended.crop,
        )

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while True:  # everything already waiting goes into the same transaction
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is _STOP for item in batch)
            start = time.thread_time()
            self._write([item for item in batch if item is not _STOP])
            self._cpu_s += time.thread_time() - start

    def _write(self, items: Sequence[Any]) -> None:
        if not items or self._error is not None:
            return
        try:
            ids = self._store.add_sightings([self._row(item) for item in items])
            self._written += len(ids)
            if self._on_written is not None:
                self._on_written(self._store, ids)
        except Exception as exc:  # reported once by the caller; the live loop goes on
            log.warning("sightings could not be written: %s", exc)
            self._error = str(exc)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)
