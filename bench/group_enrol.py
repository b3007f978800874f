"""Group photos at enrolment, before and after choosing the person's face by agreement.

For every person folder of `lfw_dev` and `celeb5_kaggle`, as they are (the first
`--max-photos` photos by name), runs the enrolment check of `import` (`enrol.check_photos`,
nothing stored) and counts:

* before: photos usable with the old rule (exactly one face that counts; a photo of several
  faces was refused), and people left with none;
* after: photos used now (several-face photos included when one face agrees), and people
  left with none;
* wrong picks among the several-face photos taken. In LFW the named person is the face at
  the picture's centre (the set was cropped around them), so a pick whose box does not hold
  the centre is wrong. celeb5_kaggle has no such rule: its picks are drawn, boxed on the
  photo, into `--sheet` (a PNG) to be checked by eye.

    .venv/bin/python bench/group_enrol.py [--datasets ../shared/datasets] [--max-photos 12]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from face_recognizer.draw import draw_box
from face_recognizer.engine import Engine
from face_recognizer.enrol import AGREE_MARGIN, AGREE_MIN, check_photos, read_photos
from face_recognizer.images import photo_tree, read_image, write_image
from face_recognizer.models import find_pack

SETS = ("lfw_dev", "celeb5_kaggle")
TILE = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--max-photos", type=int, default=12)
    parser.add_argument("--sheet", type=Path, default=Path("/tmp/group_picks.png"))
    args = parser.parse_args()
    engine = Engine(find_pack(), ctx=-1)
    print(f"AGREE_MIN {AGREE_MIN}, AGREE_MARGIN {AGREE_MARGIN}\n")
    tiles: list[np.ndarray] = []
    print(
        "| set | people | photos | used before | used after | several-face photos | "
        "of those used after | wrong picks | people with no photo before / after |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in SETS:
        start = time.perf_counter()
        tree = photo_tree(args.datasets / name)
        photos = before = after = several = several_used = wrong = 0
        nobody_before = nobody_after = 0
        for person, paths in tree.items():
            paths = paths[: args.max_photos]
            results = check_photos(engine, read_photos(paths), name=person)
            photos += len(results)
            singles = [r for r in results if r.ok and r.faces == 1]
            groups = [r for r in results if r.faces > 1]
            taken = [r for r in groups if r.ok]
            before += len(singles)
            after += sum(1 for r in results if r.ok)
            several += len(groups)
            several_used += len(taken)
            nobody_before += not singles
            nobody_after += not any(r.ok for r in results)
            for r in taken:
                image = read_image(r.source)
                h, w = image.shape[:2]
                x1, y1, x2, y2 = (float(v) for v in r.xyxy)  # type: ignore[union-attr]
                if name.startswith("lfw"):
                    wrong += not (x1 <= w / 2 <= x2 and y1 <= h / 2 <= y2)
                else:
                    shown = image.copy()
                    box = np.array([x1, y1, x2, y2])
                    draw_box(shown, box, f"{person[:14]} {r.agreement or 0:.2f}", (0, 200, 0))
                    tiles.append(cv2.resize(shown, (TILE * w // h, TILE)))
        seconds = time.perf_counter() - start
        print(
            f"| {name} | {len(tree)} | {photos} | {before} | {after} | {several} | "
            f"{several_used} ({several_used / max(1, several):.0%}) | {wrong} | "
            f"{nobody_before} / {nobody_after} |"
        )
        print(f"<!-- {name}: {seconds:.0f} s -->")
    if tiles:
        rows = [np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)]
        width = max(r.shape[1] for r in rows)
        sheet = np.vstack([cv2.copyMakeBorder(r, 0, 0, 0, width - r.shape[1], 0) for r in rows])
        write_image(sheet, args.sheet)
        print(f"\n{len(tiles)} celeb5_kaggle picks drawn into {args.sheet}")


if __name__ == "__main__":
    main()
