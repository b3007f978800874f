"""`recognize --output x.gif` writes frames as they arrive: peak memory does not grow with the
clip (it held every frame until the end: 825 frames of 640x360 peaked at 961 MB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recognizer.gif import GifStream

FRAMES = 120  # the clip; the doubled clip has twice as many
# Keeping each 480x270 GIF frame would add FRAMES * 389 KB = 47 MB to the doubled run's peak.
FLAT_MB = 20


# Runs the command as its own child and prints that child's peak RSS. A process started
# straight from pytest would report pytest's size instead: Linux carries the peak of the
# memory a process was forked from across exec, and pytest is 900 MB late in a full run.
PEAK = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


def _clip(source: Path, out: Path, frames: int, times: int) -> Path:
    """The first `frames` frames of `source`, played `times` times, as an MJPG .avi."""
    capture = cv2.VideoCapture(str(source))
    kept = []
    while len(kept) < frames:
        ok, frame = capture.read()
        assert ok, f"{source} has fewer than {frames} frames"
        kept.append(frame)
    capture.release()
    h, w = kept[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (w, h))
    for _ in range(times):
        for frame in kept:
            writer.write(frame)
    writer.release()
    return out


def test_gif_memory_stays_flat_as_the_clip_doubles(datasets: Path, tmp_path: Path):
    source = datasets / "videos" / "hamilton_whitehouse_short.mp4"
    peaks = {}
    for times in (1, 2):
        clip = _clip(source, tmp_path / f"clip{times}.avi", FRAMES, times)
        gif = tmp_path / f"out{times}.gif"
        args = [
            sys.executable, "-m", "face_recognizer", "recognize", "--source", str(clip),
            "--no-window", "--no-log", "--db", str(tmp_path / "db"), "--ctx", "-1",
            "--output", str(gif),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
        done = subprocess.run(
            [sys.executable, "-c", PEAK, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        peaks[times] = int(done.stdout.split()[-1]) / 1024  # KiB on Linux
        ok, animation = cv2.imreadanimation(str(gif))
        assert ok
        assert len(animation.frames) == FRAMES * times
        assert animation.frames[0].shape == (270, 480, 3)  # 640x360 scaled to 480 wide
        assert list(animation.durations[:2]) == [40, 40]  # the clip's 25 fps
    growth = peaks[2] - peaks[1]
    print(f"peak RSS: {FRAMES} frames {peaks[1]:.0f} MB, {2 * FRAMES} frames {peaks[2]:.0f} MB")
    assert growth < FLAT_MB, peaks


def test_gif_stream_frames_read_back_as_encoded(datasets: Path, tmp_path: Path):
    capture = cv2.VideoCapture(str(datasets / "videos" / "hamilton_whitehouse_short.mp4"))
    frames = []
    for _ in range(90):
        ok, frame = capture.read()
        assert ok
        frames.append(cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA))
    capture.release()
    gif = GifStream(tmp_path / "x.gif", (320, 180), fps=10.0)
    for frame in frames[::30]:
        gif.write(frame)
    gif.close()
    gif.close()  # a second close does nothing
    ok, animation = cv2.imreadanimation(str(tmp_path / "x.gif"))
    assert ok
    assert list(animation.durations) == [100, 100, 100]
    for written, read in zip(frames[::30], animation.frames, strict=True):
        # each frame exactly as OpenCV's own one-frame GIF of it decodes (256 colours)
        ok, alone = cv2.imencode(".gif", written)
        assert ok
        assert np.array_equal(read[..., :3], cv2.imdecode(alone, cv2.IMREAD_COLOR))
    other = GifStream(tmp_path / "y.gif", (320, 180), 10.0)
    with pytest.raises(ValueError, match="frame is 640x360"):
        other.write(np.zeros((360, 640, 3), np.uint8))
    other.close()
