"""Detector input size: faces found and time per frame at several `--det-size` values.

Counts faces (score >= 0.5) in every frame of the shared clips at each size and reports, per
size, the faces found as a fraction of those found at 640 and the time per frame as a ratio to
640, both measured in this run.

    .venv/bin/python bench/det_size.py [--datasets ../shared/datasets]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from face_recognizer.engine import Engine
from face_recognizer.models import find_pack

SIZES = (320, 416, 480, 640, 800)


def read_frames(path: Path, limit: int) -> list:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    engine = Engine(find_pack(), ctx=-1)
    clips = ["hamilton_whitehouse_short.mp4", "pedestrians_covent_garden_4s.mp4"]
    print("| clip | det-size | faces found (vs 640) | time per frame (vs 640) |")
    print("|---|---|---|---|")
    for clip in clips:
        frames = read_frames(args.datasets / "videos" / clip, args.frames)
        results = {}
        for size in SIZES:
            engine.det_size = size
            engine.detect(frames[0])  # builds the session for this input shape
            start = time.perf_counter()
            found = sum(len(engine.detect(frame)) for frame in frames)
            results[size] = (found, (time.perf_counter() - start) / len(frames))
        base_found, base_time = results[640]
        for size, (found, seconds) in results.items():
            print(
                f"| {clip} | {size} | {found / max(base_found, 1):.2f} ({found}) "
                f"| {seconds / base_time:.2f} |"
            )


if __name__ == "__main__":
    main()
