"""What guided enrolment buys: enrolling from frontal photos only versus frontal plus turned.

`register --auto` enrols a person from one straight photo and turned ones; pressing S while
looking at the camera gives straight ones only. This measures, on the shared photo sets, how
well each names a person's MOST turned views, the hardest thing a door camera sees.

For every person of each set (first `--max-photos` photos by name), each photo goes through
`import`'s photo checks (`quality.check_photo`, with the padded retry) and its face is
embedded; its pose is the landmarks' yaw (`quality.yaw_ratio`: 0 frontal, +-1 the nose under
an eye). A photo refused only as `turned too far` (a profile, |yaw| > 1) is never enrolled but
may be a probe. Per person:

* probes: their `--probes` most turned photos (largest |yaw|, each |yaw| >= `--turned`);
* of the rest, enrolment with `--enrol` photos each, two ways:
  - frontal only: their `--enrol` most frontal photos (each |yaw| <= `--frontal`, the straight
    pose of `register --auto`);
  - frontal + turned: their most frontal photo, then their most turned remaining photos
    (|yaw| >= `--turned`, the guide's turn from a straight face), alternating sides, the
    larger side first: what `--auto`'s left and right poses add;
* frontal probes, for the cost: their frontal photos that neither enrolment used.

People with enough photos for all of that take part, in both galleries (everybody enrolled
at once, as `import` would). Each probe is matched as `recognize` does (`matcher.vote` over its
`DEFAULT_K` nearest enrolled faces at `DEFAULT_THRESHOLD`) and counted named right, named
wrong, or not named; for every probe also its similarity to its own person's nearest enrolled
face, so that a difference shows even where both enrolments name every probe. The paired
difference (frontal + turned minus frontal only, per probe) is given with a 95% interval
(1.96 standard errors). Embeddings are cached under /tmp for re-runs.

    .venv/bin/python bench/pose_enrol.py [--datasets ../shared/datasets] [--max-photos 20]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from face_recognizer.engine import Engine
from face_recognizer.enrol import Photo, align_face, embed_faces, read_photos
from face_recognizer.guide import STRAIGHT_YAW, TURN_YAW
from face_recognizer.images import photo_tree
from face_recognizer.matcher import DEFAULT_K, DEFAULT_THRESHOLD, vote
from face_recognizer.models import find_pack
from face_recognizer.quality import MAX_YAW_RATIO, check_photo, detect_for_enrolment

SETS = ("lfw_dev", "celeb5_kaggle", "att_orl")
TURNED = "turned too far"


@dataclass(frozen=True, eq=False)
class Shot:
    person: str
    path: str
    yaw: float
    embedding: np.ndarray


def embed_set(engine: Engine, folder: Path, max_photos: int) -> list[Shot]:
    """Every usable photo of the set's people, and every one refused only as `turned too far`
    (a profile: a probe, never enrolled): its yaw and embedding (cached)."""
    key = hashlib.sha256(f"v2|{folder.resolve()}|{max_photos}|{engine.pack.recognizer_id}".encode())
    cache = Path("/tmp") / f"pose_enrol_{key.hexdigest()[:16]}.npz"
    if cache.is_file():
        data = np.load(cache, allow_pickle=False)
        return [
            Shot(str(p), str(f), float(y), e)
            for p, f, y, e in zip(
                data["person"], data["path"], data["yaw"], data["emb"], strict=True
            )
        ]
    shots: list[Shot] = []
    for person, paths in photo_tree(folder).items():
        aligned, yaws, names = [], [], []
        for photo in read_photos(paths[:max_photos]):
            if not isinstance(photo, Photo):
                continue  # unreadable
            work, detections = detect_for_enrolment(engine, photo.image)
            check = check_photo(work, detections)
            if check.face is None or not (check.usable or check.reason == TURNED):
                continue
            # a profile is aligned like a usable face (align_face insists on the verdict)
            as_usable = replace(check, usable=True, reason=None)
            aligned.append(align_face(engine, photo, work, detections, as_usable))
            yaws.append(check.yaw)
            names.append(photo.source)
        for face, yaw, source in zip(embed_faces(engine, aligned), yaws, names, strict=True):
            shots.append(Shot(person, source, yaw, face.embedding))
    np.savez(
        cache,
        person=np.array([s.person for s in shots]),
        path=np.array([s.path for s in shots]),
        yaw=np.array([s.yaw for s in shots]),
        emb=np.stack([s.embedding for s in shots]),
    )
    return shots


@dataclass(frozen=True)
class Plan:
    """One person's part: the two enrolments and the probes."""

    frontal_only: list[Shot]
    frontal_turned: list[Shot]
    turned_probes: list[Shot]
    frontal_probes: list[Shot]


def alternate(turned: list[Shot]) -> list[Shot]:
    """The most turned first on each side, sides alternating, the larger side first."""
    lefts = sorted((s for s in turned if s.yaw > 0), key=lambda s: -s.yaw)
    rights = sorted((s for s in turned if s.yaw < 0), key=lambda s: s.yaw)
    sides = (lefts, rights) if len(lefts) >= len(rights) else (rights, lefts)
    return [s for pair in itertools.zip_longest(*sides) for s in pair if s is not None]


def choose(
    shots: list[Shot], enrol: int, probes: int, frontal: float, turned: float
) -> dict[str, Plan]:
    """Each person with enough photos: their `Plan`."""
    by_person: dict[str, list[Shot]] = {}
    for s in shots:
        by_person.setdefault(s.person, []).append(s)
    plans: dict[str, Plan] = {}
    for person, mine in by_person.items():
        by_turn = sorted(mine, key=lambda s: -abs(s.yaw))
        probe = by_turn[:probes]
        if len(probe) < probes or abs(probe[-1].yaw) < turned:
            continue
        taken = {s.path for s in probe}
        rest = [s for s in mine if s.path not in taken and abs(s.yaw) <= MAX_YAW_RATIO]
        fronts = sorted((s for s in rest if abs(s.yaw) <= frontal), key=lambda s: abs(s.yaw))
        turns = alternate([s for s in rest if abs(s.yaw) >= turned])
        if len(fronts) < enrol or len(turns) < enrol - 1:
            continue
        only = fronts[:enrol]
        mixed = [fronts[0], *turns[: enrol - 1]]
        used = {s.path for s in only} | {s.path for s in mixed}
        plans[person] = Plan(only, mixed, probe, [s for s in fronts if s.path not in used])
    return plans


@dataclass(frozen=True)
class Named:
    right: int
    wrong: int
    none: int
    own: np.ndarray  # each probe's similarity to its own person's nearest enrolled face


def named(gallery: list[Shot], probes: list[Shot]) -> Named:
    """How `probes` fare against `gallery`, as `recognize` names them."""
    people = sorted({s.person for s in gallery})
    ids = {p: i for i, p in enumerate(people)}
    names = dict(enumerate(people))
    vectors = np.stack([s.embedding for s in gallery])
    labels = np.array([ids[s.person] for s in gallery])
    right = wrong = none = 0
    own: list[float] = []
    for probe in probes:
        sims = vectors @ probe.embedding
        own.append(float(sims[labels == ids[probe.person]].max()))
        top = np.argsort(-sims)[:DEFAULT_K]
        match = vote(sims[top], labels[top], DEFAULT_THRESHOLD, names)
        if match.name is None:
            none += 1
        elif match.name == probe.person:
            right += 1
        else:
            wrong += 1
    return Named(right, wrong, none, np.array(own))


def pct(n: int, total: int) -> str:
    return f"{n} of {total} ({n / max(1, total):.1%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--max-photos", type=int, default=20, help="first N photos per person")
    parser.add_argument("--enrol", type=int, default=3, help="photos enrolled per person")
    parser.add_argument("--probes", type=int, default=1, help="most turned photos per person")
    parser.add_argument("--frontal", type=float, default=STRAIGHT_YAW)
    parser.add_argument("--turned", type=float, default=TURN_YAW)
    args = parser.parse_args()
    engine = Engine(find_pack(), ctx=-1)
    print(
        f"enrol {args.enrol} photos per person; probes: each person's {args.probes} most turned "
        f"photo(s), |yaw| >= {args.turned}; frontal |yaw| <= {args.frontal}; vote of "
        f"{DEFAULT_K} at threshold {DEFAULT_THRESHOLD}\n"
    )
    print(
        "| set | people | turned probes (mean abs yaw) | enrolled from | turned probes named "
        "right | named wrong / not named | their similarity to own person (mean) | frontal "
        "probes named right |"
    )
    print("|---|---|---|---|---|---|---|---|")
    notes = []
    for name in args.sets:
        start = time.perf_counter()
        shots = embed_set(engine, args.datasets / name, args.max_photos)
        plans = choose(shots, args.enrol, args.probes, args.frontal, args.turned)
        if not plans:
            print(f"| {name} | 0 | - | nobody has enough frontal and turned photos | | | | |")
            continue
        turned = [p for plan in plans.values() for p in plan.turned_probes]
        fronts = [p for plan in plans.values() for p in plan.frontal_probes]
        mean_yaw = float(np.mean([abs(p.yaw) for p in turned]))
        own = {}
        for label, pick in (
            (f"{args.enrol} frontal", lambda p: p.frontal_only),
            (f"1 frontal + {args.enrol - 1} turned", lambda p: p.frontal_turned),
        ):
            gallery = [s for plan in plans.values() for s in pick(plan)]
            result = named(gallery, turned)
            front = named(gallery, fronts)
            own[label] = result.own
            print(
                f"| {name} | {len(plans)} | {len(turned)} ({mean_yaw:.2f}) | {label} | "
                f"{pct(result.right, len(turned))} | {result.wrong} / {result.none} | "
                f"{result.own.mean():.3f} | {pct(front.right, len(fronts))} |"
            )
        first, second = own.values()
        diff = second - first
        half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        notes.append(
            f"{name}: {len(shots)} photos embedded, {time.perf_counter() - start:.0f} s; turned "
            f"probes' similarity to own, frontal + turned minus frontal only: "
            f"{diff.mean():+.3f} (95% interval {diff.mean() - half:+.3f} to "
            f"{diff.mean() + half:+.3f}), higher for {int((diff > 0).sum())} of {len(diff)}"
        )
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
