"""Calibrate the matcher's similarity threshold on LFW (open-set identification).

Enrols the first 3 photos of every `lfw_dev` identity that pass the same quality check as
`import` (a refused photo is skipped, as a user would pick another one), probes with up to 10
of the other photos per identity (refused ones included), and uses the single
photos of `lfw_unknowns_dev` as strangers. For each threshold, with the k=5 majority vote:

* named correctly: enrolled probes labelled with the right name (no face found = miss);
* wrong name:      enrolled probes labelled with someone else;
* strangers accepted: `lfw_unknowns_dev` photos given any name (false accepts).

Prints a markdown table and the threshold picked: the lowest one with at most 1% strangers
accepted. Embeddings are cached in an .npz (default /tmp) so that re-runs take seconds.

    .venv/bin/python bench/calibrate_threshold.py [--datasets ../shared/datasets]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from face_recognizer.engine import Engine
from face_recognizer.enrol import enrol_face
from face_recognizer.images import is_image_path, read_image
from face_recognizer.index import VectorIndex
from face_recognizer.matcher import DEFAULT_K, DEFAULT_THRESHOLD, vote
from face_recognizer.models import find_pack

ENROL = 3
MAX_PROBES = 10
MAX_FALSE_ACCEPT = 0.01


def probe_embedding(engine: Engine, path: Path) -> np.ndarray | None:
    """The embedding of the face nearest the photo's centre (LFW centres its subject)."""
    image = read_image(path)
    faces = engine.analyze(image)
    if len(faces) == 0:
        return None
    h, w = image.shape[:2]
    centres = (faces.xyxy[:, :2] + faces.xyxy[:, 2:]) / 2
    nearest = int(np.argmin(np.linalg.norm(centres - [w / 2, h / 2], axis=1)))
    return faces.embeddings[nearest]


def embed_sets(engine: Engine, root: Path) -> dict[str, np.ndarray]:
    people = sorted(p for p in (root / "lfw_dev").iterdir() if p.is_dir())
    g_labels, g_vecs, p_labels, p_vecs = [], [], [], []
    skipped_enrol = missed = 0
    dim = engine.embedding_dim
    for pid, folder in enumerate(people):
        files = sorted(p for p in folder.iterdir() if is_image_path(p))
        enrolled: set[Path] = set()
        for path in files:  # the first ENROL photos that pass the checks, as a user would pick
            if len(enrolled) == ENROL or len(files) - len(enrolled) <= 1:
                break  # keep at least one photo of everybody as a probe
            face, _ = enrol_face(engine, read_image(path), str(path))
            if face is None:
                skipped_enrol += 1
                continue
            enrolled.add(path)
            g_labels.append(pid)
            g_vecs.append(face.embedding)
        for path in [f for f in files if f not in enrolled][:MAX_PROBES]:
            emb = probe_embedding(engine, path)
            missed += emb is None
            p_labels.append(pid)
            p_vecs.append(np.zeros(dim, np.float32) if emb is None else emb)
    strangers = sorted(p for p in (root / "lfw_unknowns_dev").rglob("*") if is_image_path(p))
    s_vecs = []
    for path in strangers:
        emb = probe_embedding(engine, path)
        s_vecs.append(np.zeros(dim, np.float32) if emb is None else emb)
    return {
        "names": np.array([p.name for p in people]),
        "g_labels": np.array(g_labels, np.int64),
        "g_vecs": np.array(g_vecs, np.float32),
        "p_labels": np.array(p_labels, np.int64),
        "p_vecs": np.array(p_vecs, np.float32),
        "s_vecs": np.array(s_vecs, np.float32),
        "skipped_enrol": np.array(skipped_enrol),
        "missed": np.array(missed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default_root = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    parser.add_argument("--datasets", type=Path, default=default_root)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/calibrate_threshold.npz"))
    parser.add_argument("--fresh", action="store_true", help="Ignore the cache.")
    parser.add_argument("-k", type=int, default=DEFAULT_K)
    args = parser.parse_args()

    if args.cache.is_file() and not args.fresh:
        data = dict(np.load(args.cache))
    else:
        start = time.perf_counter()
        data = embed_sets(Engine(find_pack(), ctx=-1), args.datasets)
        np.savez(args.cache, **data)
        print(f"embedded in {time.perf_counter() - start:.0f} s (cached in {args.cache})")
    names = {i: str(n) for i, n in enumerate(data["names"])}
    index = VectorIndex(data["g_labels"], data["g_vecs"], kind="flat")
    p_sims, p_labs = index.search(data["p_vecs"], args.k)
    s_sims, s_labs = index.search(data["s_vecs"], args.k)
    n_probe, n_strange = len(data["p_labels"]), len(data["s_vecs"])
    print(
        f"{len(names)} people, {len(data['g_labels'])} enrolled photos "
        f"({int(data['skipped_enrol'])} refused by the quality check and skipped), "
        f"{n_probe} probes "
        f"({int(data['missed'])} with no face found), {n_strange} strangers, k={args.k}\n"
    )
    print("| threshold | named correctly | wrong name | strangers accepted |")
    print("|---|---|---|---|")
    picked = None
    for threshold in np.round(np.arange(0.24, 0.52, 0.02), 2):
        probe = [
            vote(s, lab, threshold, names).person_id for s, lab in zip(p_sims, p_labs, strict=True)
        ]
        right = sum(p == t for p, t in zip(probe, data["p_labels"], strict=True)) / n_probe
        wrong = (
            sum(p is not None and p != t for p, t in zip(probe, data["p_labels"], strict=True))
            / n_probe
        )
        accepted = (
            sum(
                vote(s, lab, threshold, names).is_known
                for s, lab in zip(s_sims, s_labs, strict=True)
            )
            / n_strange
        )
        if picked is None and accepted <= MAX_FALSE_ACCEPT:
            picked = (threshold, right, accepted)
        mark = " (default)" if abs(threshold - DEFAULT_THRESHOLD) < 1e-6 else ""
        print(f"| {threshold:.2f}{mark} | {right:.1%} | {wrong:.1%} | {accepted:.1%} |")
    if picked:
        print(
            f"\nlowest threshold with <= {MAX_FALSE_ACCEPT:.0%} strangers accepted: "
            f"{picked[0]:.2f} (named correctly {picked[1]:.1%}, strangers accepted "
            f"{picked[2]:.1%})"
        )


if __name__ == "__main__":
    main()
