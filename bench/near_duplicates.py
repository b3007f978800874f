"""Measure the similarity above which a new face is "nearly the same photo" as a stored one.

`import` and `register --images` warn when a face is nearly identical to a photo of ANOTHER
person (one slip of a file into the wrong folder, re-saved or resized, has a new sha256 but
the same face). The warning must fire for such copies and never for two different people; a
different photo of the same person filed under a second name may warn too (one face, one
name: the vote would split between the two names).

For each photo (celeb5_kaggle, and the first identities of lfw_dev; quality-checked as
`import` does) it embeds the original and four edited copies (JPEG quality 60, resized to 80%,
cropped 6% off each side, brightened +25) and reports:

* copies:          similarity of each copy to its original (the warning should fire);
* same person:     the highest similarity of each photo to a DIFFERENT photo of the same person;
* other people:    the highest similarity of each photo to any photo of another person.

It prints the percentiles and the threshold picked: the midpoint between the highest
similarity of two different people and the 1st percentile of copies, rounded to 0.01, with the
share of each row at or above it.

    .venv/bin/python bench/near_duplicates.py [--datasets ../shared/datasets] [--lfw 40]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from face_recognizer.engine import Engine
from face_recognizer.enrol import enrol_face
from face_recognizer.images import is_image_path, read_image
from face_recognizer.models import find_pack

PER_PERSON = 6


def edits(image: np.ndarray) -> dict[str, np.ndarray]:
    """Copies a user could have made of the same photo."""
    h, w = image.shape[:2]
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    dy, dx = int(h * 0.06), int(w * 0.06)
    return {
        "jpeg60": cv2.imdecode(jpeg, cv2.IMREAD_COLOR),
        "resized80": cv2.resize(image, (int(w * 0.8), int(h * 0.8)), interpolation=cv2.INTER_AREA),
        "cropped6": np.ascontiguousarray(image[dy : h - dy, dx : w - dx]),
        "brighter": cv2.convertScaleAbs(image, alpha=1.0, beta=25),
    }


def people(datasets: Path, lfw: int) -> list[tuple[str, list[Path]]]:
    sets = [sorted(p for p in (datasets / "celeb5_kaggle").iterdir() if p.is_dir())]
    sets.append(sorted(p for p in (datasets / "lfw_dev").iterdir() if p.is_dir())[:lfw])
    out = []
    for folders in sets:
        for folder in folders:
            files = sorted(p for p in folder.iterdir() if is_image_path(p))[:PER_PERSON]
            out.append((f"{folder.parent.name}/{folder.name}", files))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--lfw", type=int, default=40, help="lfw_dev identities to use")
    args = parser.parse_args()
    engine = Engine(find_pack(), ctx=-1)
    started = time.perf_counter()
    labels: list[int] = []
    originals: list[np.ndarray] = []
    copies: list[float] = []
    for who, (_, files) in enumerate(people(args.datasets, args.lfw)):
        for path in files:
            image = read_image(path)
            face, _ = enrol_face(engine, image, str(path))
            if face is None:
                continue
            labels.append(who)
            originals.append(face.embedding)
            for edited in edits(image).values():
                copy, _ = enrol_face(engine, edited, "copy")
                if copy is not None:
                    copies.append(float(copy.embedding @ face.embedding))
    vectors = np.stack(originals)
    who_of = np.array(labels)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    same = who_of[:, None] == who_of[None, :]
    best_same = np.where(same, sims, -1.0).max(axis=1)
    best_same = best_same[best_same > -1.0]
    best_other = np.where(~same, sims, -1.0).max(axis=1)
    copy_arr = np.array(copies)
    print(
        f"{len(originals)} photos of {len(set(labels))} people, {len(copies)} copies, "
        f"{time.perf_counter() - started:.0f} s"
    )
    print("| pairs | n | min | 1% | 50% | 99% | 99.9% | max |")
    print("|---|---|---|---|---|---|---|---|")
    for title, values in (
        ("copy vs its original", copy_arr),
        ("best other photo, same person", best_same),
        ("best photo of another person", best_other),
    ):
        q = np.percentile(values, [1, 50, 99, 99.9])
        print(
            f"| {title} | {len(values)} | {values.min():.3f} | {q[0]:.3f} | {q[1]:.3f} "
            f"| {q[2]:.3f} | {q[3]:.3f} | {values.max():.3f} |"
        )
    low_copy = float(np.percentile(copy_arr, 1))
    picked = round((float(best_other.max()) + low_copy) / 2, 2)
    print(
        f"threshold picked: {picked:.2f}; at or above it: copies {np.mean(copy_arr >= picked):.1%}"
        f", other photo of the same person {np.mean(best_same >= picked):.1%}"
        f", another person {np.mean(best_other >= picked):.1%}"
    )


if __name__ == "__main__":
    main()
