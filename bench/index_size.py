"""Exact (IndexFlatIP) vs HNSW search: time per query batch and recall, by gallery size.

Synthetic galleries shaped like real ones: `size / 5` people with 5 photos each, every photo
a unit vector near its person's centre (cosine ~0.7 to the centre, like ArcFace photos of
one person); queries are new photos of enrolled people. Times are per batch of 8 faces (one
busy frame) and reported as ratios to the exact index in the same run.

    .venv/bin/python bench/index_size.py [--sizes 1000,10000,50000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from face_recognizer.index import VectorIndex

DIM = 512


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def gallery(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    people = max(1, size // 5)
    centres = unit(rng.standard_normal((people, DIM)))
    labels = np.repeat(np.arange(people), 5)[:size]
    vectors = unit(centres[labels] + 0.045 * rng.standard_normal((size, DIM)))
    return labels.astype(np.int64), vectors, centres


def timed_search(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    index.search(queries[:8], k)  # warm up
    start = time.perf_counter()
    rounds = 0
    labels = []
    for i in range(0, len(queries), 8):
        labels.append(index.search(queries[i : i + 8], k)[1])
        rounds += 1
    return (time.perf_counter() - start) / rounds, np.concatenate(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(
        "| vectors | flat ms / 8 faces | hnsw ms / 8 faces | hnsw vs flat time | "
        "hnsw build s | hnsw recall@k vs flat |"
    )
    print("|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        labels, vectors, centres = gallery(size, rng)
        who = rng.integers(0, len(centres), args.queries)
        queries = unit(centres[who] + 0.045 * rng.standard_normal((args.queries, DIM)))
        flat = VectorIndex(labels, vectors, kind="flat")
        start = time.perf_counter()
        hnsw = VectorIndex(labels, vectors, kind="hnsw")
        build = time.perf_counter() - start
        flat_t, flat_labels = timed_search(flat, queries, args.k)
        hnsw_t, hnsw_labels = timed_search(hnsw, queries, args.k)
        # Recall as the share of exact top-1 persons that HNSW also returns first.
        recall = float((flat_labels[:, 0] == hnsw_labels[:, 0]).mean())
        print(
            f"| {size} | {flat_t * 1e3:.2f} | {hnsw_t * 1e3:.2f} | {hnsw_t / flat_t:.2f} | "
            f"{build:.1f} | {recall:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
