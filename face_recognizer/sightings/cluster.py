"""Grouping the sightings of strangers by face, with group ids that stay put.

`cluster` is average-linkage agglomerative clustering on cosine similarity, stopped where the
mean similarity between two groups falls below `min_similarity`. It only ever merges sightings
that are linked by a chain of pairs at or above `min_similarity` (average linkage cannot merge
across a gap that single linkage cannot), so the similarity matrix is computed in row blocks,
only those pairs are kept, and average linkage runs on each linked component separately: the
cost is one (N, N) matrix product plus small dense problems, not an (N, N) linkage.

`stable_ids` maps a new clustering onto the ids the previous one gave, so that re-running
`unknowns` after more sightings arrived does not renumber everybody.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

# Calibrated with bench/unknowns.py on lfw_dev + lfw_unknowns_dev (see the README's table).
DEFAULT_MIN_SIMILARITY = 0.30
_BLOCK_ROWS = 1024


@dataclass(frozen=True, slots=True)
class Clustering:
    """Groups of a set of embeddings.

    Attributes:
        groups: (N,) int64, the group of each embedding numbered 0..G-1 by first member, or -1
            for an embedding that joined nobody (a face seen once).
        min_similarity: the average-linkage cut the groups were made with.
    """

    groups: np.ndarray
    min_similarity: float

    @property
    def count(self) -> int:
        """Number of groups (embeddings in no group not counted)."""
        return int(self.groups.max()) + 1 if len(self.groups) and self.groups.max() >= 0 else 0


def _check(embeddings: np.ndarray, min_similarity: float) -> np.ndarray:
    if not -1.0 <= min_similarity <= 1.0:
        raise ValueError(f"min_similarity must be in [-1, 1], got {min_similarity}")
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: np.ndarray = x / np.maximum(norms, 1e-12)
    return unit


def _linked_pairs(x: np.ndarray, min_similarity: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) with similarity >= min_similarity, computed in row blocks."""
    rows, cols = [], []
    for start in range(0, len(x), _BLOCK_ROWS):
        block = x[start : start + _BLOCK_ROWS] @ x[start:].T
        i, j = np.nonzero(block >= min_similarity)
        keep = j > i  # block column c is global column start + c; row r is start + r
        rows.append(i[keep] + start)
        cols.append(j[keep] + start)
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected component label (the smallest member index) of each of n nodes."""
    parent = np.arange(n)
    # Pointer jumping on edges until no edge joins two labels: vectorised union-find.
    while True:
        pa, pb = parent[a], parent[b]
        low = np.minimum(pa, pb)
        changed = pa != pb
        if not changed.any():
            break
        np.minimum.at(parent, pa[changed], low[changed])
        np.minimum.at(parent, pb[changed], low[changed])
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def _average_linkage(sim: np.ndarray, min_similarity: float) -> np.ndarray:
    """Average-linkage groups (labels 0..) of one component's (m, m) similarity matrix.

    Keeps the mean similarity between current groups (Lance-Williams update) and each row's
    best partner, so that a merge costs O(m) plus the rows whose best partner was merged.
    """
    m = len(sim)
    mean = sim.astype(np.float32, copy=True)
    np.fill_diagonal(mean, -np.inf)
    sizes = np.ones(m, np.float32)
    label = np.arange(m)
    best = mean.argmax(axis=1)
    best_value = mean[np.arange(m), best]
    for _ in range(m - 1):
        i = int(np.argmax(best_value))
        j = int(best[i])
        if best_value[i] < min_similarity:
            break
        if j < i:
            i, j = j, i
        merged = (sizes[i] * mean[i] + sizes[j] * mean[j]) / (sizes[i] + sizes[j])
        sizes[i] += sizes[j]
        label[label == j] = i
        mean[i, :] = merged
        mean[:, i] = merged
        mean[i, i] = -np.inf
        mean[j, :] = -np.inf
        mean[:, j] = -np.inf
        best_value[j] = -np.inf
        stale = np.nonzero((best == i) | (best == j))[0]
        stale = stale[stale != j]
        best[stale] = mean[stale].argmax(axis=1)
        best_value[stale] = mean[stale, best[stale]]
        better = merged > best_value
        better[[i, j]] = False
        best[better] = i
        best_value[better] = merged[better]
        best[i] = int(mean[i].argmax())
        best_value[i] = mean[i, best[i]]
    _, dense = np.unique(label, return_inverse=True)
    return dense


def cluster(embeddings: np.ndarray, min_similarity: float = DEFAULT_MIN_SIMILARITY) -> Clustering:
    """Group (N, D) embeddings by face: average linkage on cosine similarity.

    Two groups merge while the mean similarity over all their cross pairs is at least
    `min_similarity`. Embeddings that join nobody get group -1. Groups are numbered by their
    first member (the input order), so the same input gives the same numbers.
    """
    x = _check(embeddings, min_similarity)
    n = len(x)
    groups = np.full(n, -1, np.int64)
    if n < 2:
        return Clustering(groups, min_similarity)
    a, b = _linked_pairs(x, min_similarity)
    component = _components(n, a, b)
    order = np.argsort(component, kind="stable")
    starts = np.flatnonzero(np.r_[True, component[order][1:] != component[order][:-1]])
    raw = np.full(n, -1, np.int64)
    next_label = 0
    for members in np.split(order, starts[1:]):
        if len(members) < 2:
            continue
        sub = x[members]
        labels = _average_linkage(sub @ sub.T, min_similarity)
        raw[members] = labels + next_label
        next_label += int(labels.max()) + 1
    # Groups of one are no group; number the rest by their first member.
    sizes = np.bincount(raw[raw >= 0], minlength=next_label)
    grouped = np.flatnonzero((raw >= 0) & (sizes[np.maximum(raw, 0)] > 1))
    if len(grouped):
        _, first = np.unique(raw[grouped], return_index=True)
        rank = np.empty(next_label, np.int64)
        rank[raw[grouped][np.sort(first)]] = np.arange(len(first))
        groups[grouped] = rank[raw[grouped]]
    return Clustering(groups, min_similarity)


def stable_ids(
    keys: Iterable[int],
    clustering: Clustering,
    previous: Mapping[int, int],
    next_id: int,
) -> tuple[dict[int, int], int]:
    """Give the new groups the ids their members had before.

    Args:
        keys: one key per clustered embedding (e.g. the sighting ids), in the same order.
        clustering: the new groups of those embeddings.
        previous: key -> group id from the last time (keys without a group left out).
        next_id: the first id never handed out yet; ids of groups that disappear are not
            reused.

    Returns:
        key -> group id for every key in a group, and the new `next_id`. Each new group takes
        the previous id held by most of its members (largest overlaps first, each old id to
        one group at most); a group with no such id gets a fresh one.
    """
    keys = list(keys)
    if len(keys) != len(clustering.groups):
        raise ValueError(f"{len(keys)} keys for {len(clustering.groups)} clustered embeddings")
    overlap: dict[tuple[int, int], int] = {}
    for key, g in zip(keys, clustering.groups.tolist(), strict=True):
        if g >= 0 and key in previous:
            pair = (g, previous[key])
            overlap[pair] = overlap.get(pair, 0) + 1
    given: dict[int, int] = {}
    taken: set[int] = set()
    for (g, old), _ in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0])):
        if g not in given and old not in taken:
            given[g] = old
            taken.add(old)
    for g in range(clustering.count):
        if g not in given:
            given[g] = next_id
            next_id += 1
    mapping = {
        key: given[g] for key, g in zip(keys, clustering.groups.tolist(), strict=True) if g >= 0
    }
    return mapping, next_id
