"""Face size, sharpness and yaw of every face found in real photos, per set.

Used to choose the thresholds of `face_recognizer/quality.py`. Prints, per set, the share of
photos each check would reject and the low percentiles of the figures.

    .venv/bin/python bench/quality_figures.py [--per-set 60]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from face_recognizer.engine import Engine
from face_recognizer.images import is_image_path, read_image
from face_recognizer.models import find_pack
from face_recognizer.quality import check_photo, detect_for_enrolment
from face_recognizer.samples import sample_path

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SETS = ("att_orl", "bbt8_faceapi", "celeb5_kaggle", "lfw_dev", "videos/references")


def photos(root: Path, limit: int) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_path(p))
    step = max(1, len(files) // limit)
    return files[::step][:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-set", type=int, default=60)
    args = parser.parse_args()
    engine = Engine(find_pack(), ctx=-1)
    groups = {"samples": [sample_path(n) for n in ("yaoming.jpg", "t1.jpg", "mask_white.jpg")]}
    for name in SETS:
        if (DATASETS / name).is_dir():
            groups[name] = photos(DATASETS / name, args.per_set)
    print("| set | photos | usable | reasons | face_px p5 | blur p5 | abs(yaw) p95 |")
    print("|---|---|---|---|---|---|---|")
    for name, paths in groups.items():
        checks = [check_photo(*detect_for_enrolment(engine, img)) for img in map(read_image, paths)]
        reasons: dict[str, int] = {}
        for c in checks:
            if c.reason:
                reasons[c.reason] = reasons.get(c.reason, 0) + 1
        found = [c for c in checks if c.face is not None]
        px = np.array([c.face_px for c in found]) if found else np.zeros(1)
        blur = np.array([c.blur for c in found]) if found else np.zeros(1)
        yaw = np.abs([c.yaw for c in found]) if found else np.zeros(1)
        usable = sum(c.usable for c in checks)
        print(
            f"| {name} | {len(checks)} | {usable} | {reasons or '-'} | "
            f"{np.percentile(px, 5):.0f} | {np.percentile(blur, 5):.0f} | "
            f"{np.percentile(yaw, 95):.2f} |"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
