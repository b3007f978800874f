"""How well `face-recognizer unknowns` groups recurring strangers, and how fast.

Plays photo folders of people who are not enrolled as sightings, one photo = one sighting (the
face nearest the photo's centre; LFW centres its subject): every `lfw_dev` photo, plus the 400
`lfw_unknowns_dev` singletons as noise (people seen once). The `lfw_dev` people are split in
two halves by name order: the distance is calibrated on the even half (the sweep below) and
judged on the odd half, which took no part in choosing it. The 702 `glint18_aligned112` crops
(18 people, in-the-wild poses, harder than LFW) are judged too, at the default and 0.1 below.

For a clustering it reports:

* purity: the share of grouped sightings that belong to their group's main person;
* found as one group: people with >= 3 sightings whose sightings' main group is theirs alone
  and holds most of them (>= half), as "the person who came several times" would be shown;
* mixed groups: groups whose sightings come from more than one person;
* singletons grouped: noise sightings (people seen once) that were put in a group.

Then times `sightings.cluster` on 10,000 sightings: the real embeddings, repeated with small
Gaussian noise (renormalised) until there are 10,000, so that group sizes grow as with repeat
visitors; the ratio to the same run's plain 10,000 x 10,000 similarity product is printed too.

    .venv/bin/python bench/unknowns.py [--datasets ../shared/datasets]

Embeddings are cached in an .npz (default /tmp) so that re-runs take seconds.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
from calibrate_threshold import centre_embedding  # the face nearest the photo's centre

from face_recognizer.engine import Engine
from face_recognizer.images import is_image_path, read_image
from face_recognizer.models import find_pack
from face_recognizer.sightings.cluster import DEFAULT_MIN_SIMILARITY, cluster

MIN_SIGHTINGS = 3


def embed_sets(engine: Engine, root: Path) -> dict[str, np.ndarray]:
    """Every photo of lfw_dev (label = person index) and lfw_unknowns_dev (label = -1 - i)."""
    people = sorted(p for p in (root / "lfw_dev").iterdir() if p.is_dir())
    labels, vecs, missed = [], [], 0
    for pid, folder in enumerate(people):
        for path in sorted(p for p in folder.iterdir() if is_image_path(p)):
            emb = centre_embedding(engine, read_image(path))
            if emb is None:
                missed += 1
                continue
            labels.append(pid)
            vecs.append(emb)
    strangers = sorted(p for p in (root / "lfw_unknowns_dev").rglob("*") if is_image_path(p))
    for i, path in enumerate(strangers):
        emb = centre_embedding(engine, read_image(path))
        if emb is None:
            missed += 1
            continue
        labels.append(-1 - i)
        vecs.append(emb)
    glint_labels, crops = [], []
    glint = sorted(p for p in (root / "glint18_aligned112").iterdir() if p.is_dir())
    for pid, folder in enumerate(glint):
        for path in sorted(p for p in folder.iterdir() if is_image_path(p)):
            glint_labels.append(pid)
            crops.append(read_image(path))
    glint_vecs = [engine.embed_crops(np.stack(crops[i : i + 64])) for i in range(0, len(crops), 64)]
    return {
        "labels": np.array(labels, np.int64),
        "vecs": np.array(vecs, np.float32),
        "missed": np.array(missed),
        "glint_labels": np.array(glint_labels, np.int64),
        "glint_vecs": np.concatenate(glint_vecs),
    }


def score(labels: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Quality of `groups` (-1 = no group) against the true `labels` (see the module doc)."""
    counts = Counter(labels.tolist())
    grouped = groups >= 0
    main_total = 0
    mixed = 0
    group_ids = np.unique(groups[grouped])
    main_of: dict[int, int] = {}
    for g in group_ids:
        members = Counter(labels[groups == g].tolist())
        person, n = members.most_common(1)[0]
        main_of[int(g)] = person
        main_total += n
        mixed += len(members) > 1
    repeat = [p for p, n in counts.items() if n >= MIN_SIGHTINGS]
    found = 0
    for person in repeat:
        mine = groups[labels == person]
        in_groups = Counter(mine[mine >= 0].tolist())
        if not in_groups:
            continue
        g, n = in_groups.most_common(1)[0]
        pure = all(lab == person for lab in labels[groups == g])
        found += pure and len(in_groups) == 1 and n >= counts[person] / 2
    singles = [p for p, n in counts.items() if n == 1]
    single_mask = np.isin(labels, singles)
    return {
        "groups": float(len(group_ids)),
        "purity": main_total / max(1, int(grouped.sum())),
        "found": found / max(1, len(repeat)),
        "repeat_people": float(len(repeat)),
        "mixed": float(mixed),
        "singles_grouped": float((grouped & single_mask).sum() / max(1, single_mask.sum())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default_root = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    parser.add_argument("--datasets", type=Path, default=default_root)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench_unknowns.npz"))
    parser.add_argument("--fresh", action="store_true", help="Ignore the cache.")
    parser.add_argument("--timing-n", type=int, default=10_000)
    args = parser.parse_args()

    if args.cache.is_file() and not args.fresh:
        data = dict(np.load(args.cache))
    else:
        start = time.perf_counter()
        data = embed_sets(Engine(find_pack(), ctx=-1), args.datasets)
        np.savez(args.cache, **data)
        print(f"embedded in {time.perf_counter() - start:.0f} s (cached in {args.cache})")
    labels, vecs = data["labels"], data["vecs"]
    known = labels >= 0
    calib = labels % 2 == 0  # even people, and even singletons (labels -1 - i)
    print(
        f"{int(known.sum())} sightings of {len(np.unique(labels[known]))} lfw_dev people, "
        f"{int((~known).sum())} lfw_unknowns_dev singletons, "
        f"{int(data['missed'])} photos without a face; glint18: "
        f"{len(data['glint_labels'])} crops of {len(np.unique(data['glint_labels']))} people\n"
    )
    header = (
        "| sightings | min similarity | count | groups | purity | people (>= 3) found as one "
        "group | mixed groups | singletons grouped | seconds |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )

    def row(name: str, lab: np.ndarray, emb: np.ndarray, min_similarity: float) -> dict:
        t0 = time.perf_counter()
        groups = cluster(emb, min_similarity=min_similarity).groups
        took = time.perf_counter() - t0
        s = score(lab, groups)
        print(
            f"| {name} | {min_similarity:.2f} | {len(lab)} | {int(s['groups'])} | "
            f"{s['purity']:.3f} | {s['found']:.1%} of {int(s['repeat_people'])} | "
            f"{int(s['mixed'])} | {s['singles_grouped']:.1%} | {took:.2f} |"
        )
        return s

    print("Calibration: lfw_dev even people + even singletons\n")
    print(header)
    sweep = {}
    for t in np.round(np.arange(0.20, 0.51, 0.05), 2):
        sweep[float(t)] = row("calibration half", labels[calib], vecs[calib], float(t))
    # The most people found as one group without a single mixed group; ties: the higher cut.
    pure = [t for t, s in sweep.items() if s["mixed"] == 0]
    picked = max(pure, key=lambda t: (sweep[t]["found"], t)) if pure else None
    print(
        f"\npicked on the calibration half: {picked}; the default in the code: "
        f"{DEFAULT_MIN_SIMILARITY}\n"
    )
    print(header)
    row("LFW held-out half", labels[~calib], vecs[~calib], DEFAULT_MIN_SIMILARITY)
    row("LFW all", labels, vecs, DEFAULT_MIN_SIMILARITY)
    for t in (DEFAULT_MIN_SIMILARITY - 0.1, DEFAULT_MIN_SIMILARITY):
        row("glint18 (in-the-wild crops)", data["glint_labels"], data["glint_vecs"], t)

    rng = np.random.default_rng(0)
    reps = -(-args.timing_n // len(vecs))
    big = np.concatenate([vecs] * reps)[: args.timing_n]
    big = big + rng.normal(0, 0.01, big.shape).astype(np.float32)
    big /= np.linalg.norm(big, axis=1, keepdims=True)
    t0 = time.perf_counter()
    _ = big @ big.T
    product = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = cluster(big)
    took = time.perf_counter() - t0
    print(
        f"\n{len(big)} sightings clustered in {took:.2f} s ({int(result.groups.max()) + 1} "
        f"groups); the plain similarity product alone took {product:.2f} s in the same run "
        f"({took / product:.1f}x)"
    )


if __name__ == "__main__":
    main()
