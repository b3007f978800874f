"""Calibrate the matcher's similarity threshold on LFW, leaving people out (open-set).

The 212 `lfw_dev` people are split into `--folds` groups (sorted by name, round robin). Each
fold enrols every person outside one group with the first 3 of their photos that pass the same
checks as `import` (a refused photo is skipped, as a user would pick another one), probes with
up to 10 of their other photos, and treats EVERY photo of the held-out group as a stranger,
together with that fold's share of the single-photo `lfw_unknowns_dev` people. Rotating the
held-out group makes each `lfw_dev` photo and each unknown a stranger exactly once, so the
stranger count is ~3,000 photos of ~600 people: enough to resolve a 0.1% false-accept rate.

Each photo is judged by its subject, the face nearest its centre (LFW centres its subject; the
other faces of a web photo may be enrolled people). For each threshold and decision rule:

* named correctly: enrolled probes given their own name (no face found = not named), pooled
  over the folds (each probe is asked once per fold in which its person is enrolled);
* wrong name: enrolled probes given someone else's name;
* strangers named: stranger photos given any name (photos with no face found are left out).

Rules compared: the k-nearest majority vote (`matcher.vote`, what `recognize` ships) and that
vote with its winner also checked on the mean similarity of its neighbours among the k
(`vote_checking_mean`). The default is the lowest threshold at which at most 0.1% of the
strangers are named. The photos are embedded in one pass that all folds share, cached in an .npz
(default under /tmp), so re-runs take seconds.

    .venv/bin/python bench/calibrate_threshold.py [--datasets ../shared/datasets] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_recognizer.engine import Engine, cpu_threads
from face_recognizer.enrol import enrol_face
from face_recognizer.images import is_image_path, read_image
from face_recognizer.index import VectorIndex
from face_recognizer.matcher import DEFAULT_K, DEFAULT_THRESHOLD, vote
from face_recognizer.models import find_pack
from face_recognizer.types import Match

ENROL = 3
MAX_PROBES = 10
MAX_STRANGERS_NAMED = 0.001
THRESHOLDS = np.round(np.arange(0.24, 0.56001, 0.01), 2)
NO_PERSON = -1

Rule = Callable[[np.ndarray, np.ndarray, float, dict[int, str]], Match]


def vote_checking_mean(
    similarities: np.ndarray, labels: np.ndarray, threshold: float, names: dict[int, str]
) -> Match:
    """`vote`, then unknown unless the mean similarity of ALL the winner's neighbours among the
    k (voting or not) also reaches the threshold: one close photo among far ones is not enough."""
    match = vote(similarities, labels, threshold, names)
    if match.person_id is None:
        return match
    mean = float(np.mean(similarities[labels == match.person_id]))
    return match if mean >= threshold else Match(None, match.similarity, 0)


RULES: dict[str, Rule] = {"vote": vote, "vote + winner's mean": vote_checking_mean}


def centre_embedding(engine: Engine, image: np.ndarray) -> np.ndarray | None:
    """The embedding of the face nearest the photo's centre, None when no face is found."""
    faces = engine.analyze(image)
    if len(faces) == 0:
        return None
    h, w = image.shape[:2]
    centres = (faces.xyxy[:, :2] + faces.xyxy[:, 2:]) / 2
    nearest = int(np.argmin(np.linalg.norm(centres - [w / 2, h / 2], axis=1)))
    return faces.embeddings[nearest]


def embed_sets(engine: Engine, root: Path) -> dict[str, np.ndarray]:
    """One pass over the photos, before any fold: the subject of each `lfw_dev` and
    `lfw_unknowns_dev` photo, and the enrolment embedding (through `import`'s checks) of the
    first photos of each person that pass them. The folds only reuse these embeddings."""
    people = sorted(p for p in (root / "lfw_dev").iterdir() if p.is_dir())
    dim = engine.embedding_dim
    photo_person, photo_vecs, photo_found, photo_enrolled = [], [], [], []
    g_person, g_vecs = [], []
    refused = 0
    for pid, folder in enumerate(people):
        files = sorted(p for p in folder.iterdir() if is_image_path(p))
        enrolled = 0
        for path in files:
            image = read_image(path)
            is_enrolled = False
            # the first ENROL photos that pass the checks, keeping >= 1 photo as a probe
            if enrolled < ENROL and len(files) - enrolled > 1:
                face, _ = enrol_face(engine, image, str(path))
                if face is None:
                    refused += 1
                else:
                    is_enrolled = True
                    enrolled += 1
                    g_person.append(pid)
                    g_vecs.append(face.embedding)
            emb = centre_embedding(engine, image)
            photo_person.append(pid)
            photo_found.append(emb is not None)
            photo_vecs.append(np.zeros(dim, np.float32) if emb is None else emb)
            photo_enrolled.append(is_enrolled)
    unknown_files = sorted(p for p in (root / "lfw_unknowns_dev").rglob("*") if is_image_path(p))
    u_vecs, u_found = [], []
    for path in unknown_files:
        emb = centre_embedding(engine, read_image(path))
        u_found.append(emb is not None)
        u_vecs.append(np.zeros(dim, np.float32) if emb is None else emb)
    return {
        "names": np.array([p.name for p in people]),
        "g_person": np.array(g_person, np.int64),
        "g_vecs": np.array(g_vecs, np.float32).reshape(-1, dim),
        "refused": np.array(refused),
        "photo_person": np.array(photo_person, np.int64),
        "photo_vecs": np.array(photo_vecs, np.float32).reshape(-1, dim),
        "photo_found": np.array(photo_found, bool),
        "photo_enrolled": np.array(photo_enrolled, bool),
        "u_vecs": np.array(u_vecs, np.float32).reshape(-1, dim),
        "u_found": np.array(u_found, bool),
    }


@dataclass(frozen=True)
class Fold:
    """One rotation: who is enrolled, the enrolled probes and the strangers, searched once."""

    names: dict[int, str]
    probe_person: np.ndarray  # (P,) the true person of each enrolled probe
    probe_hits: tuple[np.ndarray, np.ndarray]  # (sims, labels), (P, k)
    stranger_person: np.ndarray  # (S,) lfw_dev person id, or NO_PERSON for an unknown
    stranger_hits: tuple[np.ndarray, np.ndarray]  # (S, k)


def make_folds(data: dict[str, np.ndarray], folds: int, k: int) -> list[Fold]:
    names = {i: str(n) for i, n in enumerate(data["names"])}
    group = np.arange(len(names)) % folds
    u_group = np.arange(len(data["u_vecs"])) % folds
    person, found = data["photo_person"], data["photo_found"]
    # enrolled probes: the first MAX_PROBES photos of each person that were not enrolled
    is_probe = ~data["photo_enrolled"]
    rank = np.zeros(len(person), np.int64)
    for pid in np.unique(person):
        rows = np.flatnonzero((person == pid) & is_probe)
        rank[rows] = np.arange(len(rows))
    is_probe &= rank < MAX_PROBES
    out = []
    for f in range(folds):
        enrolled = group[data["g_person"]] != f
        index = VectorIndex(data["g_person"][enrolled], data["g_vecs"][enrolled], kind="flat")
        kk = min(k, len(index))
        probes = is_probe & (group[person] != f)
        held_out = (group[person] == f) & found
        unknowns = (u_group == f) & data["u_found"]
        s_vecs = np.concatenate([data["photo_vecs"][held_out], data["u_vecs"][unknowns]])
        s_person = np.concatenate(
            [person[held_out], np.full(int(unknowns.sum()), NO_PERSON, np.int64)]
        )
        out.append(
            Fold(
                {i: n for i, n in names.items() if group[i] != f},
                person[probes],
                index.search(data["photo_vecs"][probes], kk),
                s_person,
                index.search(s_vecs, kk),
            )
        )
    return out


@dataclass(frozen=True)
class Point:
    """One rule at one threshold, pooled over the folds."""

    threshold: float
    right: int
    wrong: int
    probes: int
    strangers_named: int
    strangers: int
    people_named: int  # distinct stranger people (an unknown counts as one each) named


def evaluate(rule: Rule, folds: list[Fold], threshold: float) -> Point:
    right = wrong = probes = named = strangers = 0
    named_people: set[tuple[int, int]] = set()
    for f, fold in enumerate(folds):
        for sims, labs, truth in zip(*fold.probe_hits, fold.probe_person, strict=True):
            got = rule(sims, labs, threshold, fold.names).person_id
            right += got == truth
            wrong += got is not None and got != truth
        probes += len(fold.probe_person)
        for i, (sims, labs) in enumerate(zip(*fold.stranger_hits, strict=True)):
            if rule(sims, labs, threshold, fold.names).is_known:
                named += 1
                who = int(fold.stranger_person[i])
                named_people.add((f, i) if who == NO_PERSON else (-1, who))
        strangers += len(fold.stranger_person)
    return Point(threshold, right, wrong, probes, named, strangers, len(named_people))


def pick(points: list[Point]) -> Point | None:
    """The lowest threshold with at most MAX_STRANGERS_NAMED of the strangers named."""
    for point in points:
        if point.strangers_named <= MAX_STRANGERS_NAMED * point.strangers:
            return point
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default_root = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    parser.add_argument("--datasets", type=Path, default=default_root)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/calibrate_threshold_lpo.npz"))
    parser.add_argument("--fresh", action="store_true", help="Ignore the cache.")
    parser.add_argument("--folds", type=int, default=5, help="At least 2.")
    parser.add_argument("--threads", type=int, default=cpu_threads(), help="CPU threads.")
    parser.add_argument("-k", type=int, default=DEFAULT_K)
    args = parser.parse_args()
    if args.folds < 2:
        parser.error("--folds must be at least 2")

    if args.cache.is_file() and not args.fresh:
        data = dict(np.load(args.cache))
    else:
        start = time.perf_counter()
        data = embed_sets(Engine(find_pack(), ctx=-1, threads=args.threads), args.datasets)
        np.savez(args.cache, **data)
        print(f"embedded in {time.perf_counter() - start:.0f} s (cached in {args.cache})")
    folds = make_folds(data, args.folds, args.k)
    n_people = len(data["names"])
    n_asks = sum(len(f.probe_person) for f in folds)
    n_probes = n_asks // (args.folds - 1)
    print(
        f"{n_people} lfw_dev people in {args.folds} folds; {len(data['g_person'])} enrolment "
        f"photos ({int(data['refused'])} refused by the checks and skipped); per fold about "
        f"{round(np.mean([len(f.names) for f in folds]))} people enrolled. "
        f"Enrolled probes: {n_probes} photos of {n_people} people, each asked in the "
        f"{args.folds - 1} folds that enrol its person: {n_asks} asks "
        f"({int((~data['photo_found']).sum())} lfw_dev photos with no face found). "
        f"Strangers: {sum(len(f.stranger_person) for f in folds)} photos "
        f"({int(data['photo_found'].sum())} lfw_dev + {int(data['u_found'].sum())} unknowns; "
        f"{int((~data['u_found']).sum())} unknowns with no face left out), k={args.k}\n"
    )
    curves = {
        name: [evaluate(rule, folds, float(t)) for t in THRESHOLDS] for name, rule in RULES.items()
    }
    picked = {name: pick(points) for name, points in curves.items()}
    shown = {round(DEFAULT_THRESHOLD, 2)} | {p.threshold for p in picked.values() if p}
    header = " | ".join(f"{name}: named correctly / wrong / strangers named" for name in RULES)
    print(f"| threshold | {header} |")
    print("|---" * (1 + len(RULES)) + "|")
    for i, t in enumerate(THRESHOLDS):
        if round(t * 100) % 2 and float(t) not in shown:
            continue  # every other step, plus the picked thresholds and the default
        cells = []
        for name in RULES:
            p = curves[name][i]
            cells.append(
                f"{p.right / p.probes:.1%} / {p.wrong / p.probes:.1%} / "
                f"{p.strangers_named / p.strangers:.2%} ({p.strangers_named})"
            )
        mark = " (default)" if abs(t - DEFAULT_THRESHOLD) < 1e-6 else ""
        print(f"| {t:.2f}{mark} | {' | '.join(cells)} |")
    print()
    for name, p in picked.items():
        if p is None:
            print(f"{name}: no threshold up to {THRESHOLDS[-1]} names <= {MAX_STRANGERS_NAMED:.1%}")
            continue
        print(
            f"{name}: lowest threshold with <= {MAX_STRANGERS_NAMED:.1%} strangers named: "
            f"{p.threshold:.2f}: named correctly {p.right / p.probes:.1%} "
            f"({p.probes - p.right} of {p.probes} probe asks not named correctly, {p.wrong} "
            f"wrong name), strangers named {p.strangers_named} of {p.strangers} "
            f"({p.strangers_named / p.strangers:.2%}; distinct people: {p.people_named})"
        )
    plain, checked = picked["vote"], picked["vote + winner's mean"]
    if plain and checked:
        better = (
            checked.right >= plain.right
            and checked.strangers_named <= plain.strangers_named
            and (checked.right, -checked.strangers_named) != (plain.right, -plain.strangers_named)
        )
        verdict = "better" if better else "not better"
        print(f"checking the winner's mean is {verdict} on both counts than the plain vote")


if __name__ == "__main__":
    main()
