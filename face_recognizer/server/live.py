"""The `--source` camera, video file or URL, recognized on a background thread for the console.

`LiveFeed` runs the same recognizer and drawing as `face-recognizer recognize` (boxes, names,
the status line) and keeps the newest annotated frame, the newest raw frame (for "snap") and a
status: the console shows them as an MJPEG stream at the recognizer's own frame rate. A video
file is played at its own frame rate, like a camera, and starts again when it ends; a camera or
URL that stops is reopened every few seconds. The thread has its own gallery connection and
matcher, so people added or removed (through the API or the CLI) show within about a second.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from face_recognizer.errors import FaceRecognizerError
from face_recognizer.live import Recognizer, Sink, recognizer_status, run
from face_recognizer.matcher import Matcher
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


class LiveFeed(Sink):
    """Recognizes `spec` on a thread (`live.run`, this feed as its sink); read `frame_jpeg`,
    `raw_jpeg` and `status` from other threads.

    Args:
        spec: camera index, video file or URL (as `recognize --source`).
        engine: the server's shared, locked engine.
        db: the gallery (folder or URL; opened again here: a connection of its own).
        threshold: fixed threshold, or None for the gallery's setting / the default.
    """

    wants_image = True

    def __init__(
        self, spec: str, engine: LockedEngine, db: str | Path, threshold: float | None
    ) -> None:
        self.spec = spec
        self.engine = engine
        self.db = db
        self.threshold = threshold
        self.seq = 0  # annotated frames so far: the stream sends a frame when this grows
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._raw: np.ndarray | None = None
        self._result: FrameResult | None = None
        self._status = "starting"
        self._error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="live-feed", daemon=True)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the thread ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to end and the MJPEG streams to finish (does not wait)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        try:
            store = open_store(self.db)
            matcher = Matcher(store, self.engine.pack.recognizer_id, threshold=self.threshold)
        except FaceRecognizerError as exc:
            self._error = str(exc)
            return
        recognizer = Recognizer(self.engine, matcher)
        line = recognizer_status(recognizer, self.engine.device.label)

        def status(fps: float, result: FrameResult, source: FrameSource) -> str:
            text = line(fps, result, source)
            self._status = text
            return text

        try:
            while not self._stop.is_set():
                self._play(recognizer, status)
        finally:
            store.close()

    def _play(self, recognizer: Recognizer, status: Any) -> None:
        try:
            source = open_source(self.spec, live=_is_file(self.spec))
        except FaceRecognizerError as exc:
            self._error = str(exc)
            self._sleep(RETRY_SECONDS)
            return
        with source:
            recognizer.reset()
            try:
                run(source, recognizer, sinks=[self], status=status, stop=self._stop)
            except FaceRecognizerError as exc:  # a camera that stopped, a broken stream
                self._error = str(exc)
                self._sleep(RETRY_SECONDS)
                return
        if not _is_file(self.spec) and not self._stop.is_set():
            self._error = f"The source {self.spec} stopped sending frames; reopening it."
            self._sleep(RETRY_SECONDS)

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # -- the Sink `run` hands every frame to --------------------------------------------------
    def on_frame(self, frame: Frame, result: FrameResult, image: np.ndarray | None) -> None:
        with self._lock:
            self._raw = frame.image
            self._result = result
            self._error = None
            if image is not None:
                self._image = image
                self.seq += 1

    def close(self) -> None:
        """`run` closes its sinks at the end of a source; the feed goes on."""

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
        with self._lock:
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
