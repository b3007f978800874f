"""Presentation attacks for bench/liveness.py: short clips of a still photo held up to a camera.

From every photo found under the given folders (one level of `<person>/<photo>` or plain photo
files; at most `--per-folder` photos per person folder), four clips are written, one per
attack type, each `--seconds` long at `--fps`:

    still     the photo unmoved (camera sensor noise only)
    handheld  moved, rotated and scaled by a hand's slow drift and tremor
    bent      a print bent and tilted in depth: a perspective warp that changes over time,
              plus the hand's drift
    screen    a phone screen: black bezel, brightness flicker, screen noise and the hand's drift

The photo is scaled so that its face is about `--face-px` (96-160 px by default, drawn at
random per clip) in a 480x360 frame over a blurred random background. Clips go to `OUT`
(default /tmp/liveness_attacks) as `<type>/<person>__<photo>.mp4` with `attacks.csv` listing
them; nothing is written into the repository.

    .venv/bin/python bench/make_attacks.py ../shared/datasets/lfw_dev --limit 80
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import cv2
import numpy as np

ATTACKS = ("still", "handheld", "bent", "screen")
FRAME_WH = (480, 360)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def find_photos(folders: list[Path], per_folder: int) -> list[Path]:
    photos: list[Path] = []
    for folder in folders:
        if folder.is_file():
            photos.append(folder)
            continue
        loose = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        photos.extend(loose[:per_folder])
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            inside = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            photos.extend(inside[:per_folder])
    return photos


def _background(rng: np.random.Generator) -> np.ndarray:
    w, h = FRAME_WH
    grey = rng.integers(60, 190, size=(9, 12, 1))
    tint = rng.integers(-25, 26, size=(9, 12, 3))  # a room's muted colours
    small = np.clip(grey + tint, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 9)


class _Hand:
    """Smooth drift plus a little tremor: translation (px), rotation (deg), scale."""

    def __init__(self, rng: np.random.Generator, amount: float) -> None:
        self.rng = rng
        self.amount = amount
        self.phase = rng.uniform(0, 2 * math.pi, size=6)
        self.freq = rng.uniform(0.15, 0.6, size=6)  # Hz: a hand drifts slowly

    def pose(self, t: float) -> tuple[float, float, float, float]:
        a = self.amount
        drift = np.sin(2 * math.pi * self.freq * t + self.phase)
        tremor = self.rng.normal(0, 1, size=4) * np.array([0.6, 0.6, 0.3, 0.003]) * a
        dx, dy = 14 * a * drift[0] + tremor[0], 10 * a * drift[1] + tremor[1]
        angle = 6 * a * drift[2] + tremor[2]
        scale = 1 + 0.05 * a * drift[3] + tremor[3]
        return float(dx), float(dy), float(angle), float(scale)


def _place(photo: np.ndarray, face_px: float, rng: np.random.Generator) -> np.ndarray:
    """The photo scaled so that its face (about half the photo's width) is `face_px` wide."""
    scale = face_px / (0.5 * photo.shape[1])
    return cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _pose_matrix(
    size_wh: tuple[int, int], dx: float, dy: float, angle: float, scale: float
) -> np.ndarray:
    w, h = FRAME_WH
    pw, ph = size_wh
    matrix = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, scale)
    matrix[:, 2] += [(w - pw) / 2 + dx, (h - ph) / 2 + dy]
    return np.vstack([matrix, [0, 0, 1]])


def _bend(size_wh: tuple[int, int], t: float, phase: float, depth: float) -> np.ndarray:
    """Perspective of a print tilted/bent in depth by an angle that changes slowly."""
    pw, ph = size_wh
    tilt = depth * math.sin(2 * math.pi * 0.4 * t + phase)  # -depth..depth
    yaw = 0.6 * depth * math.cos(2 * math.pi * 0.3 * t + phase)
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    sx, sy = yaw * pw, tilt * ph
    dst = np.float32(
        [[sx, sy], [pw - sx, -sy], [pw + sx, ph + sy], [-sx, ph - sy]]
    )  # one edge nearer the camera than the other
    return cv2.getPerspectiveTransform(src, dst)


def render_clip(
    photo: np.ndarray, attack: str, seconds: float, fps: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """The frames of one attack clip."""
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
    face_px = rng.uniform(96, 160)
    picture = _place(photo, face_px, rng)
    border = (10, 10, 10) if attack == "screen" else (235, 235, 235)
    pad = max(4, int(0.06 * picture.shape[1]))
    picture = cv2.copyMakeBorder(picture, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=border)
    ph, pw = picture.shape[:2]
    background = _background(rng)
    hand = _Hand(rng, {"still": 0.0, "handheld": 1.0, "bent": 0.6, "screen": 0.8}[attack])
    phase, depth = rng.uniform(0, 2 * math.pi), rng.uniform(0.04, 0.12)
    mask = np.full((ph, pw), 255, np.uint8)
    frames = []
    for i in range(int(seconds * fps)):
        t = i / fps
        matrix = _pose_matrix((pw, ph), *hand.pose(t))
        if attack == "bent":
            matrix = matrix @ _bend((pw, ph), t, phase, depth)
        warped = cv2.warpPerspective(picture, matrix, FRAME_WH, flags=cv2.INTER_LINEAR)
        covered = cv2.warpPerspective(mask, matrix, FRAME_WH, flags=cv2.INTER_NEAREST) > 0
        frame = background.copy()
        frame[covered] = warped[covered]
        image = frame.astype(np.float32)
        if attack == "screen":
            flicker = 1 + 0.12 * math.sin(2 * math.pi * 7.3 * t) + rng.normal(0, 0.04)
            screen_noise = rng.standard_normal(size=(int(covered.sum()), 3), dtype=np.float32)
            image[covered] = image[covered] * flicker + 6 * screen_noise
        image += 2 * rng.standard_normal(size=image.shape, dtype=np.float32)  # sensor noise
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, FRAME_WH)
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="photo folders or files")
    parser.add_argument("--out", type=Path, default=Path("/tmp/liveness_attacks"))
    parser.add_argument("--limit", type=int, default=80, help="photos in all (default 80)")
    parser.add_argument("--per-folder", type=int, default=1, help="photos per person folder")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    photos = find_photos(args.folders, args.per_folder)[: args.limit]
    if not photos:
        parser.error("no photos found in the given folders")
    rng = np.random.default_rng(args.seed)
    rows = []
    for photo_path in photos:
        photo = cv2.imread(str(photo_path))
        if photo is None:
            continue
        for attack in ATTACKS:
            name = f"{photo_path.parent.name}__{photo_path.stem}.mp4"
            clip = args.out / attack / name
            write_clip(clip, render_clip(photo, attack, args.seconds, args.fps, rng), args.fps)
            rows.append({"attack": attack, "clip": str(clip), "photo": str(photo_path)})
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "attacks.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["attack", "clip", "photo"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} clips from {len(rows) // len(ATTACKS)} photos in {args.out}")


if __name__ == "__main__":
    main()
