"""Frame sources: video files in order, stills, folders, live reading with drops, bad input."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recognizer.errors import ImageReadError, SourceError
from face_recognizer.samples import sample_path
from face_recognizer.sources import Frame, open_source

N_FRAMES = 40
FPS = 20.0


def _grey_level(index: int) -> int:
    return 5 + index * 6  # distinct after lossy coding: 5, 11, ... 239


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-frame MJPG clip whose frame i is a flat grey of level 5 + 6 i."""
    path = tmp_path_factory.mktemp("clip") / "grey.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (96, 64))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        writer.write(np.full((64, 96, 3), _grey_level(i), np.uint8))
    writer.release()
    return path


def _level(frame: Frame) -> int:
    return round((float(frame.image.mean()) - 5) / 6)


def test_video_file_yields_every_frame_in_order(clip: Path) -> None:
    with open_source(str(clip)) as source:
        assert not source.is_live
        assert not source.is_stills
        assert source.fps == pytest.approx(FPS)
        frames = list(source)
    assert len(frames) == N_FRAMES
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert [_level(f) for f in frames] == list(range(N_FRAMES))
    assert all(f.source is None and f.image.shape == (64, 96, 3) for f in frames)
    assert [f.timestamp for f in frames] == pytest.approx([i / FPS for i in range(N_FRAMES)])


def test_video_file_closed_early_stops_its_reader(clip: Path) -> None:
    source = open_source(str(clip))
    first = next(iter(source))
    source.close()
    assert first.index == 0
    assert _level(first) == 0


def test_video_file_decodes_ahead_before_it_is_read(clip: Path) -> None:
    """The first frames decode as soon as the file opens (while `recognize` loads its models),
    up to 3 ahead, and none is lost or reordered by it."""
    with open_source(str(clip)) as source:
        reader = next(t for t in threading.enumerate() if t.name == "video-reader")
        deadline = time.monotonic() + 10
        while source._queue.qsize() < 3 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        assert source._queue.qsize() == 3  # type: ignore[attr-defined]
        assert reader.is_alive()  # waiting for room, not finished
        frames = list(source)
    assert [_level(f) for f in frames] == list(range(N_FRAMES))
    assert not reader.is_alive()


def test_live_file_newest_frame_wins_and_drops_are_counted(clip: Path) -> None:
    taken: list[Frame] = []
    with open_source(str(clip), live=True) as source:
        assert source.is_live
        for frame in source:
            taken.append(frame)
            time.sleep(0.12)  # a consumer slower than the clip's 20 fps
        dropped = source.dropped
    indices = [f.index for f in taken]
    assert indices == sorted(set(indices))
    assert all(_level(f) == f.index for f in taken)  # the frame really is that frame
    assert dropped > 10
    assert len(taken) + dropped == N_FRAMES  # every frame was either taken or dropped
    assert indices[-1] == N_FRAMES - 1  # the newest frame is never lost


def test_stream_that_disappears_is_retried_then_fails_with_one_sentence(
    clip: Path, tmp_path: Path
) -> None:
    moving = tmp_path / "stream.avi"
    moving.write_bytes(clip.read_bytes())
    started = time.monotonic()
    with open_source(f"file://{moving}", reconnect_s=1.0) as source:
        assert source.is_live
        moving.unlink()  # the "camera" goes away after it was opened
        with pytest.raises(SourceError, match=r"stopped sending frames\.") as info:
            for _ in source:
                pass
    assert time.monotonic() - started >= 1.0  # it was retried before giving up
    assert "\n" not in str(info.value)


def test_image_file_is_one_still_with_its_path() -> None:
    path = sample_path("yaoming.jpg")
    with open_source(str(path)) as source:
        assert source.is_stills
        assert not source.is_live
        assert source.fps is None
        frames = list(source)
    assert len(frames) == 1
    assert frames[0].source == str(path)
    assert frames[0].index == 0
    assert frames[0].image.dtype == np.uint8
    assert frames[0].image.ndim == 3


def test_folder_yields_its_images_sorted_and_skips_other_files(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.png"):
        cv2.imwrite(str(tmp_path / name), np.full((20, 30, 3), 99, np.uint8))
    (tmp_path / "notes.txt").write_text("not a picture")
    with open_source(str(tmp_path)) as source:
        frames = list(source)
    assert [Path(f.source or "").name for f in frames] == ["a.png", "b.jpg"]
    assert [f.index for f in frames] == [0, 1]


def test_bad_camera_index_is_one_sentence() -> None:
    with pytest.raises(SourceError) as info:
        open_source("7")
    assert str(info.value) == (
        "Camera 7 could not be opened; pick another with --source N or give a video file."
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no/such/file.mp4", "does not exist; give a camera index, a video or image file"),
        ("rtsp://127.0.0.1:9/none", "could not be opened"),
    ],
)
def test_unopenable_sources_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(spec)


def test_empty_folder_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="holds no image files"):
        open_source(str(tmp_path))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError, match=r"broken\.jpg"):
        open_source(str(tmp_path / "broken.jpg"))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(SourceError, match=r"Video .*broken.mp4.* could not be opened"):
        open_source(str(tmp_path / "broken.mp4"))


class _BlockingCapture:
    """A capture whose read blocks until `gate` opens (a stream that hangs), then fails.

    Records which thread released it: the race is about threads, not about decoding.
    """

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.reading = threading.Event()
        self.released_by: list[str] = []

    def get(self, prop: int) -> float:
        return 25.0

    def read(self) -> tuple[bool, None]:
        self.reading.set()
        self.gate.wait(10.0)
        return False, None

    def release(self) -> None:
        self.released_by.append(threading.current_thread().name)


def test_close_never_releases_a_capture_the_reader_still_uses() -> None:
    from face_recognizer.sources import _LiveSource

    capture = _BlockingCapture()
    source = _LiveSource("stuck", capture, "stuck", paced=False, reconnect_s=0.1)
    assert capture.reading.wait(5.0)
    source.close()  # the reader is still blocked inside read(): it must keep its capture
    assert capture.released_by == []
    capture.gate.set()  # the read returns; the reader stops (closed) and releases it itself
    source._thread.join(5.0)
    assert not source._thread.is_alive()
    assert capture.released_by == ["live-reader"]


def test_folder_tree_is_walked_sorted_and_each_path_opens_from_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layout `import` uses (person/photo.jpg) works as a --source too."""
    tree = tmp_path / "people"
    for rel in ("Bea/2.jpg", "Ana/b.png", "Ana/a.jpg", "loose.jpg", "Ana/deeper/c.jpg"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tree / rel), np.full((20, 30, 3), 99, np.uint8))
    (tree / "Ana" / "notes.txt").write_text("not a picture")
    monkeypatch.chdir(tmp_path)
    with open_source("people") as source:
        frames = list(source)
    assert [f.source for f in frames] == [
        str(Path("people", *rel.split("/")))
        for rel in ("Ana/a.jpg", "Ana/b.png", "Ana/deeper/c.jpg", "Bea/2.jpg", "loose.jpg")
    ]
    assert all(Path(f.source or "").is_file() for f in frames)  # relative to the cwd
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
