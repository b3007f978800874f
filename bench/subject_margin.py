"""Measure AGREE_MIN and AGREE_MARGIN: when is a face of a group photo clearly the person's?

Group photos are composed from the shared sets (`lfw_dev`, `celeb5_kaggle`): for each person
with at least 3 single-face photos, each of their photos in turn is put side by side with a
photo of another person (drawn with a fixed seed, both scaled to one height, the person on the
left or right at random) and detected and embedded as a real photo. The person's other
single-face photos are the references. For every composite it records the mean cosine
similarity to the references of the person's face ("right") and of the other face ("wrong").

Prints the distributions and, for candidate (AGREE_MIN, AGREE_MARGIN) pairs, how many
composites `enrol.choose_by_reference` would take, and how many of those are wrong picks.

    .venv/bin/python bench/subject_margin.py [--datasets ../shared/datasets] [--per-person 4]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import cv2
import numpy as np

from face_recognizer.engine import Engine
from face_recognizer.enrol import Photo, align_candidates, embed_faces, examine
from face_recognizer.images import photo_tree, pixels_sha256, read_image
from face_recognizer.models import find_pack
from face_recognizer.quality import big_faces, check_face, detect_for_enrolment

SETS = ("lfw_dev", "celeb5_kaggle")


def single_faces(engine: Engine, paths: list[Path]) -> list[tuple[Path, np.ndarray]]:
    """(path, embedding) of each photo holding one usable face."""
    kept = []
    for path in paths:
        image = read_image(path)
        aligned, _ = examine(engine, Photo(image, str(path), pixels_sha256(image)))
        if aligned is not None:
            kept.append((path, aligned))
    faces = embed_faces(engine, [a for _, a in kept])
    return [(p, f.embedding) for (p, _), f in zip(kept, faces, strict=True)]


def side_by_side(left: np.ndarray, right: np.ndarray, height: int = 250) -> np.ndarray:
    def scaled(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return cv2.resize(image, (max(1, round(w * height / h)), height))

    return np.hstack([scaled(left), scaled(right)])


def composite_scores(
    engine: Engine, person: Path, other: Path, refs: np.ndarray, person_left: bool
) -> tuple[float, float] | None:
    """(right, wrong) mean similarity to `refs`, or None when the composite does not hold two
    faces that count (the detector missed one, or a third face appeared)."""
    a, b = read_image(person), read_image(other)
    image = side_by_side(a, b) if person_left else side_by_side(b, a)
    work, detections = detect_for_enrolment(engine, image)
    faces = big_faces(detections)
    if len(faces) != 2:
        return None
    photo = Photo(image, "composite", pixels_sha256(image))
    checks = [check_face(work, detections, i) for i in faces]
    aligned = align_candidates(engine, photo, work, detections, checks)
    embedded = embed_faces(engine, aligned)
    left = a if person_left else b
    split = round(left.shape[1] * 250 / left.shape[0])  # where the left picture ends
    centres = [float(f.xyxy[0] + f.xyxy[2]) / 2 for f in aligned]
    mine = [(c < split) == person_left for c in centres]
    if sum(mine) != 1:
        return None
    scores = [float((f.embedding @ refs.T).mean()) for f in embedded]
    right = scores[mine.index(True)]
    wrong = scores[mine.index(False)]
    return right, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--per-person", type=int, default=4, help="composites per person")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--max-photos", type=int, default=8, help="photos read per person")
    args = parser.parse_args()
    engine = Engine(find_pack(), ctx=-1)
    rng = random.Random(args.seed)
    start = time.perf_counter()
    right_all: list[float] = []
    wrong_all: list[float] = []
    for name in SETS:
        tree = photo_tree(args.datasets / name)
        singles = {p: single_faces(engine, paths[: args.max_photos]) for p, paths in tree.items()}
        people = [p for p, faces in singles.items() if len(faces) >= 3]
        for person in people:
            faces = singles[person]
            for k in range(min(args.per_person, len(faces))):
                path = faces[k][0]
                refs = np.stack([e for j, (_, e) in enumerate(faces) if j != k])
                other_person = rng.choice([p for p in people if p != person])
                other = rng.choice(singles[other_person])[0]
                got = composite_scores(engine, path, other, refs, rng.random() < 0.5)
                if got is not None:
                    right_all.append(got[0])
                    wrong_all.append(got[1])
        print(f"{name}: {len(people)} people, {len(right_all)} composites so far")
    right, wrong = np.array(right_all), np.array(wrong_all)
    gap = right - wrong
    print(f"\n{len(right)} composites ({time.perf_counter() - start:.0f} s)")
    print("| figure | min | 0.1% | 1% | 5% | median | 99% | max |")
    print("|---|---|---|---|---|---|---|---|")
    for label, values in (("right face", right), ("wrong face", wrong), ("right - wrong", gap)):
        q = np.percentile(values, [0, 0.1, 1, 5, 50, 99, 100])
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in q) + " |")
    print("\n| AGREE_MIN | AGREE_MARGIN | taken | wrong picks |")
    print("|---|---|---|---|")
    for floor in (0.2, 0.25, 0.3, 0.35):
        for margin in (0.05, 0.1, 0.15, 0.2):
            take_right = (right >= floor) & (gap >= margin)
            take_wrong = (wrong >= floor) & (-gap >= margin)
            print(
                f"| {floor:.2f} | {margin:.2f} | {take_right.sum() + take_wrong.sum()} of "
                f"{len(right)} ({take_right.mean():.1%}) | {int(take_wrong.sum())} |"
            )


if __name__ == "__main__":
    main()
