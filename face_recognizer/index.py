"""Nearest-neighbour search over enrolled embeddings: the only importer of faiss.

Vectors are L2-normalised, so inner product is cosine similarity. Galleries up to
`HNSW_MIN_SIZE` vectors use an exact `IndexFlatIP`; larger ones an `IndexHNSWFlat` (inner
product), whose recall against the exact index is checked in `tests/test_matcher.py`. The
size was chosen with `bench/index_size.py` (README, "## Gallery"). The index is rebuilt from
SQLite at start: it is never the only copy of anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from face_recognizer.errors import FaceRecognizerError

# Below this many vectors the exact search is used. At 100,000 faces it costs 23-39 ms for 1-2
# faces on one busy core and builds in 0.2 s, while an HNSW index took 210 s to build
# (bench/store_load.py --faces 100000), at every start and after every gallery change.
HNSW_MIN_SIZE = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
# Exact searches over fewer vectors than this run on the calling thread alone. FAISS's OpenMP
# team costs more than it saves there and, while ONNX Runtime's threads hold the cores, its
# threads wait their turn: on 2 busy cores a search of 2 faces in 10 vectors took 0.007 ms
# at the median on one thread, but 28 ms at the 90th percentile on two (in 1,000: 0.2 vs
# 40 ms; in 20,000: 14 vs 38 ms median). Measured with a loop of `search` calls, load ~6.
SINGLE_THREAD_MAX = 20_000


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - only on a broken install
        raise FaceRecognizerError(
            "FAISS is not installed or cannot be imported.",
            hint="Reinstall with the README's setup command (it installs faiss-cpu).",
        ) from exc
    return faiss


class VectorIndex:
    """k-nearest-neighbour search over labelled, L2-normalised vectors.

    Args:
        labels: (N,) int64 label of each vector (a person id); must be >= 0.
        vectors: (N, D) float32 L2-normalised vectors (N may be 0).
        kind: "flat" (exact), "hnsw" (approximate) or "auto" (flat below `HNSW_MIN_SIZE`).
    """

    def __init__(self, labels: np.ndarray, vectors: np.ndarray, kind: str = "auto") -> None:
        labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(labels) and (vectors.ndim != 2 or len(vectors) != len(labels)):
            raise ValueError(
                f"vectors must have shape ({len(labels)}, D), got {getattr(vectors, 'shape', None)}"
            )
        if (labels < 0).any():
            raise ValueError("labels must be >= 0 (-1 marks a missing neighbour)")
        if kind not in ("auto", "flat", "hnsw"):
            raise ValueError(f"kind must be 'auto', 'flat' or 'hnsw', got {kind!r}")
        if kind == "auto":
            kind = "hnsw" if len(labels) >= HNSW_MIN_SIZE else "flat"
        self.kind = kind
        self.dim = int(vectors.shape[1]) if len(labels) else 0
        self._labels = labels
        self._index: Any = None
        if len(labels):
            faiss = _faiss()
            if kind == "flat":
                self._index = faiss.IndexFlatIP(self.dim)
            else:
                self._index = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
                self._index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
                self._index.hnsw.efSearch = HNSW_EF_SEARCH
            self._index.add(vectors)

    def __len__(self) -> int:
        return len(self._labels)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest vectors of each query.

        Returns (similarities (M, k) float32, labels (M, k) int64), best first; missing
        neighbours (fewer than k vectors) have label -1 and similarity 0.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2:
            raise ValueError(f"queries must have shape (M, D), got {queries.shape}")
        m = len(queries)
        sims = np.zeros((m, k), dtype=np.float32)
        labels = np.full((m, k), -1, dtype=np.int64)
        if self._index is None or m == 0:
            return sims, labels
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have {queries.shape[1]} dimensions, the index {self.dim}")
        if self.kind == "flat" and len(self._labels) < SINGLE_THREAD_MAX:
            faiss = _faiss()
            threads = faiss.omp_get_max_threads()  # OpenMP's setting is per calling thread
            faiss.omp_set_num_threads(1)
            try:
                found_sims, positions = self._index.search(queries, k)
            finally:
                faiss.omp_set_num_threads(threads)
        else:
            found_sims, positions = self._index.search(queries, k)
        found = positions >= 0
        sims[found] = found_sims[found]
        labels[found] = self._labels[positions[found]]
        return sims, labels
