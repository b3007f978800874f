"""Where frames come from: a camera index, a video file, a URL, an image file or a folder.

`open_source(spec)` returns a `FrameSource` that yields `Frame`s. Live sources (cameras and
URLs) are read on their own thread and the newest frame always wins: a slow consumer skips
frames instead of falling behind, and `dropped` counts the skipped ones. Video files are
read in order, every frame (decoded one step ahead on a helper thread). Image files and
folder trees (sub-folders too, sorted) are independent stills (`is_stills`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2

from face_recognizer.errors import FaceRecognizerError, SourceError
from face_recognizer.images import is_image_path, read_image
from face_recognizer.types import Frame

__all__ = ["Frame", "FrameSource", "open_source"]

RECONNECT_SECONDS = 3.0  # how long a live source that stopped is retried
_END = object()


def _camera_error(index: int) -> SourceError:
    return SourceError(
        f"Camera {index} could not be opened; pick another with --source N or give a video file."
    )


class FrameSource:
    """Frames from one source; iterate it, and close it (or use it as a context manager).

    Attributes:
        spec: what was asked for (`"0"`, a path or a URL).
        is_live: camera or URL (or a file opened with `live=True`): read on a thread, newest
            frame wins.
        is_stills: image file or folder: frames are unrelated pictures.
        fps: frames per second the source announces, or None (stills, unknown).
        dropped: live frames that were replaced by a newer one before being taken.
        total: how many frames there are, when known (stills: the pictures).
    """

    def __init__(self, spec: str, *, is_live: bool, is_stills: bool, fps: float | None) -> None:
        self.spec = spec
        self.is_live = is_live
        self.is_stills = is_stills
        self.fps = fps
        self.dropped = 0
        self.total: int | None = None

    def __iter__(self) -> Iterator[Frame]:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file (idempotent)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _StillsSource(FrameSource):
    def __init__(self, spec: str, paths: list[Path]) -> None:
        super().__init__(spec, is_live=False, is_stills=True, fps=None)
        self.paths = paths
        self.total = len(paths)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            yield Frame(read_image(path), index, str(path), 0.0)


class _VideoFileSource(FrameSource):
    """Every frame of a file, in order. Decoding starts when the source opens (the first
    frames are ready once the models have loaded) and runs up to 3 frames ahead of the one
    being processed."""

    def __init__(self, spec: str, capture: Any) -> None:
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
        super().__init__(spec, is_live=False, is_stills=False, fps=fps)
        self._capture = capture
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name="video-reader", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        index = 0
        try:
            while not self._stop.is_set():
                ok, image = self._capture.read()
                if not ok or image is None:
                    break
                pts = float(self._capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
                self._put(Frame(image, index, None, pts))
                index += 1
        finally:
            self._put(_END)

    def _put(self, item: object) -> None:
        """Queue `item`, waiting for room, unless the source is being closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._capture.release()


class _LiveSource(FrameSource):
    """A camera or stream read on its own thread; only the newest frame is kept.

    A file opened live is paced at its frame rate and ends at its last frame, like a camera
    that is unplugged at the end; a camera or URL that stops is reopened for
    `reconnect_s` seconds, then iterating raises `SourceError`.

    Once the reader thread runs, only it touches the capture (`_reopen` swaps it there) and
    it releases the capture when it ends, so `close()` never releases a capture that a
    read still blocks on or that a reopen is replacing.
    """

    def __init__(
        self,
        spec: str,
        capture: Any,
        target: int | str,
        *,
        paced: bool,
        reconnect_s: float = RECONNECT_SECONDS,
    ) -> None:
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
        super().__init__(spec, is_live=True, is_stills=False, fps=fps)
        self._capture = capture
        self._target = target
        self._paced = paced
        self._reconnect_s = reconnect_s
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._finished = False
        self._error: FaceRecognizerError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name="live-reader", daemon=True)
        self._thread.start()

    def _describe(self) -> str:
        return f"Camera {self._target}" if isinstance(self._target, int) else f"{self.spec!r}"

    def _reopen(self) -> bool:
        deadline = time.monotonic() + self._reconnect_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._capture.release()
            capture = _open_capture(self._target)
            if capture is not None:
                self._capture = capture
                ok, _ = capture.read()
                if ok:
                    return True
            self._stop.wait(0.5)
        return False

    def _read_loop(self) -> None:
        index = 0
        period = 1.0 / self.fps if self._paced and self.fps else 0.0
        next_due = time.monotonic()
        try:
            while not self._stop.is_set():
                ok, image = self._capture.read()
                if not ok or image is None:
                    if self._paced:  # a file played live: its end is the end
                        break
                    if self._reopen():
                        continue
                    if not self._stop.is_set():
                        self._error = SourceError(
                            f"{self._describe()} stopped sending frames.",
                            hint="Check the cable or the stream and run again.",
                        )
                    break
                if period:
                    next_due += period
                    self._stop.wait(max(0.0, next_due - time.monotonic()))
                frame = Frame(image, index, None, time.monotonic())
                index += 1
                with self._cond:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = frame
                    self._cond.notify_all()
        finally:
            self._capture.release()  # the reader owns the capture: released here, once done
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._latest is None and not self._finished:
                    self._cond.wait(0.5)
                frame, self._latest = self._latest, None
                if frame is None:
                    if self._error is not None:
                        raise self._error
                    return
            yield frame

    def close(self) -> None:
        """Stop the reader; it releases the capture as soon as its current read returns."""
        self._stop.set()
        self._thread.join(timeout=self._reconnect_s + 2.0)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence OpenCV's and FFmpeg's C-level warnings while a device or stream is probed."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open_capture(target: int | str) -> Any:
    with _quiet_stderr():
        capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        capture.release()
        return None
    return capture


def open_source(
    spec: str | int, *, live: bool | None = None, reconnect_s: float = RECONNECT_SECONDS
) -> FrameSource:
    """Open a camera index ("0".."9"), a video file, an rtsp/http(s) URL, an image or a folder.

    Args:
        spec: what to open.
        live: force a video file to be read like a camera (own thread, newest frame wins,
            paced at its frame rate); default: live for cameras and URLs only.
        reconnect_s: how long a camera or URL that stops sending is retried.

    Raises:
        SourceError: the source does not exist or cannot be opened (one sentence).
    """
    text = str(spec).strip()
    if text.isdigit() and len(text) <= 2:
        index = int(text)
        capture = _open_capture(index)
        if capture is None:
            raise _camera_error(index)
        return _LiveSource(text, capture, index, paced=False, reconnect_s=reconnect_s)
    if "://" in text:
        capture = _open_capture(text)
        if capture is None:
            raise SourceError(
                f"Stream {text!r} could not be opened.",
                hint="Check the address, and that the camera or server is reachable.",
            )
        return _LiveSource(text, capture, text, paced=False, reconnect_s=reconnect_s)
    path = Path(text).expanduser()
    if path.is_dir():
        # the whole tree, sorted by path inside the folder (reproducible); each path joins the
        # folder as given, so it opens from where the command ran
        paths = sorted(
            (p for p in path.rglob("*") if p.is_file() and is_image_path(p)),
            key=lambda p: p.relative_to(path).parts,
        )
        if not paths:
            raise SourceError(f"Folder {text!r} holds no image files (.jpg, .png, ...).")
        return _StillsSource(text, paths)
    if not path.is_file():
        raise SourceError(
            f"Source {text!r} does not exist; give a camera index, a video or image file, a "
            "folder of images or an rtsp:// or http(s):// URL."
        )
    if is_image_path(path):
        read_image(path)  # fails now, with the file's name, if it cannot be decoded
        return _StillsSource(text, [path])
    capture = _open_capture(str(path))
    if capture is None:
        raise SourceError(f"Video {text!r} could not be opened by OpenCV.")
    if live:
        return _LiveSource(text, capture, str(path), paced=True, reconnect_s=reconnect_s)
    return _VideoFileSource(text, capture)
