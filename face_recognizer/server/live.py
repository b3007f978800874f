"""The `--source` camera, video file or URL, recognised on a background thread for the console.

`LiveFeed` runs the same recognizer and drawing as `face-recognizer recognize` (boxes, names,
the status line) and keeps the newest annotated frame, the newest raw frame (for "snap") and a
status: the console shows them as an MJPEG stream at the recognizer's own frame rate. A video
file is played at its own frame rate, like a camera, and starts again when it ends; a camera or
URL that stops is reopened every few seconds. The thread has its own gallery connection and
matcher, so people added or removed (through the API or the CLI) show within about a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from face_recognizer.errors import FaceRecognizerError
from face_recognizer.matcher import Matcher
from face_recognizer.recognize import Recognizer, run, status_text
from face_recognizer.server.gallery import LockedEngine
from face_recognizer.sources import FrameSource, open_source
from face_recognizer.store import open_store
from face_recognizer.types import Frame, FrameResult

RETRY_SECONDS = 3.0
JPEG_QUALITY = 80


def check_source(spec: str) -> None:
    """FaceRecognizerError (one sentence) unless `spec` opens as a camera, video or URL."""
    with open_source(spec, live=_is_file(spec)) as source:
        if source.is_stills:
            raise FaceRecognizerError(
                f"--source {spec!r} is a photo or a folder; serve shows a camera, a video "
                "file or a stream URL."
            )


def _is_file(spec: str) -> bool:
    return Path(spec).is_file()


class _Watched:
    """A FrameSource that keeps its newest raw frame and stops when the feed stops."""

    def __init__(self, source: FrameSource, feed: LiveFeed) -> None:
        self._source = source
        self._feed = feed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def __iter__(self) -> Iterator[Frame]:
        for frame in self._source:
            if self._feed.stopping:
                return
            self._feed._raw = frame.image
            yield frame


class LiveFeed:
    """Recognises `spec` on a thread; read `frame_jpeg`, `raw_jpeg` and `status` from others.

    Args:
        spec: camera index, video file or URL (as `recognize --source`).
        engine: the server's shared, locked engine.
        db: the gallery (folder or URL; opened again here: a connection of its own).
        threshold: fixed threshold, or None for the gallery's setting / the default.
    """

    def __init__(
        self, spec: str, engine: LockedEngine, db: str | Path, threshold: float | None
    ) -> None:
        self.spec = spec
        self.engine = engine
        self.db = db
        self.threshold = threshold
        self.stopping = False
        self.seq = 0  # annotated frames so far: the stream sends a frame when this grows
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._raw: np.ndarray | None = None
        self._result: FrameResult | None = None
        self._status = "starting"
        self._error: str | None = None
        self._fps = 0.0
        self._last = 0.0
        self._people = 0
        self._thread = threading.Thread(target=self._loop, name="live-feed", daemon=True)

    # -- the thread ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        try:
            gallery = open_store(self.db)
            matcher = Matcher(gallery, self.engine.pack.recognizer_id, threshold=self.threshold)
        except FaceRecognizerError as exc:
            self._error = str(exc)
            return
        recognizer = Recognizer(self.engine, matcher)
        try:
            while not self.stopping:
                self._play(recognizer, matcher)
        finally:
            gallery.close()

    def _play(self, recognizer: Recognizer, matcher: Matcher) -> None:
        try:
            source = open_source(self.spec, live=_is_file(self.spec))
        except FaceRecognizerError as exc:
            self._error = str(exc)
            self._sleep(RETRY_SECONDS)
            return
        with source:
            recognizer.reset()
            self._people = int(matcher.people_count)
            try:
                run(
                    _Watched(source, self),  # type: ignore[arg-type]
                    recognizer,
                    output=self,  # type: ignore[arg-type]
                    on_result=lambda result: self._on_result(result, matcher),
                    device_label=self.engine.device.label,
                )
            except FaceRecognizerError as exc:  # a camera that stopped, a broken stream
                self._error = str(exc)
                self._sleep(RETRY_SECONDS)
                return
        if not _is_file(self.spec):
            self._error = f"The source {self.spec} stopped sending frames; reopening it."
            self._sleep(RETRY_SECONDS)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(0.1)

    def _on_result(self, result: FrameResult, matcher: Matcher) -> None:
        now = time.perf_counter()
        dt = now - self._last if self._last else 0.0
        self._last = now
        if dt > 0:
            self._fps = 1.0 / dt if self._fps == 0.0 else 0.9 * self._fps + 0.1 / dt
        self._people = int(matcher.people_count)
        device = self.engine.device.label
        status = status_text(self._fps, len(result.faces), self._people, device, None)
        with self._lock:
            self._result = result
            self._status = status
            self._error = None

    # the VideoOutput interface `run` draws into
    def write(self, image: np.ndarray) -> None:
        with self._lock:
            self._image = image
            self.seq += 1

    def close(self) -> None:
        """`run` closes its output at the end of a source; the feed goes on."""

    # -- readers (request threads) -----------------------------------------------------------
    def frame_jpeg(self) -> tuple[int, bytes] | None:
        """(sequence number, JPEG) of the newest annotated frame, encoded once per frame."""
        with self._lock:
            image, seq, cached = self._image, self.seq, self._jpeg
        if image is None:
            return None
        if cached is not None and cached[0] == seq:
            return cached
        data = _jpeg(image)
        with self._lock:
            self._jpeg = (seq, data)
        return seq, data

    def raw_jpeg(self) -> bytes | None:
        """The newest frame as the camera sent it (no boxes), for enrolling a snap."""
        image = self._raw
        return None if image is None else _jpeg(image, 95)

    def status(self) -> dict[str, Any]:
        with self._lock:
            result, status, error = self._result, self._status, self._error
        faces = result.to_json()["faces"] if result is not None else []
        return {
            "source": self.spec,
            "running": self._thread.is_alive() and not self.stopping,
            "frame": None if result is None else result.index,
            "status": status,
            "error": error,
            "faces": faces,
        }


def _jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - JPEG encoding of a uint8 BGR frame does not fail
        raise FaceRecognizerError("A live frame could not be encoded as JPEG.")
    return data.tobytes()
