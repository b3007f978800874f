"""Accuracy metrics for face verification and identification: pure numpy, no I/O.

Conventions: a score is a cosine `similarity`; a pair or probe is *accepted* at threshold `t`
when its similarity is `>= t`. A false-accept rate `far` is only measurable when at least
`1 / far` impostor scores stand behind it (`supported`).
"""

from __future__ import annotations

import math

import numpy as np

from face_recognizer.types import RateAtFar, RocCurve


def _check_scores(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same length, got {s.size} and {y.size}")
    if not y.any() or y.all():
        raise ValueError("need at least one genuine (1) and one impostor (0) score")
    return s, y


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> RocCurve:
    """ROC of `scores` (higher = more alike) for binary `labels` (1 genuine, 0 impostor).

    One point per distinct score (tied scores move together), plus the (0, 0) start.
    """
    s, y = _check_scores(scores, labels)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(y)[last_of_run]
    fp = np.cumsum(~y)[last_of_run]
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (~y).sum()]
    thresholds = np.r_[np.inf, s[last_of_run]]
    return RocCurve(fpr, tpr, thresholds)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(genuine score > impostor score), ties counting half."""
    return roc_curve(scores, labels).auc


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """The lowest similarity threshold at which at most `far` of the impostors are accepted.

    With n impostors, floor(far * n) of them may pass: the threshold lies just above the
    next-highest impostor score. No impostors -> -inf (everything passes).
    """
    if not 0.0 < far <= 1.0:
        raise ValueError(f"far must be in (0, 1], got {far}")
    neg = np.sort(np.asarray(impostor_scores, dtype=np.float64).ravel())[::-1]
    allowed = math.floor(far * neg.size + 1e-9)
    if allowed >= neg.size:
        return -math.inf
    return float(np.nextafter(neg[allowed], np.inf))


def tpr_at_far(genuine_scores: np.ndarray, impostor_scores: np.ndarray, far: float) -> RateAtFar:
    """Verification true-accept rate at false-accept rate `far`."""
    genuine = np.asarray(genuine_scores, dtype=np.float64).ravel()
    impostors = np.asarray(impostor_scores).size
    threshold = threshold_at_far(impostor_scores, far)
    rate = float(np.mean(genuine >= threshold)) if genuine.size else 0.0
    return RateAtFar(far, rate, threshold, impostors, _supported(impostors, far))


def tir_at_far(
    probe_scores: np.ndarray, probe_correct: np.ndarray, stranger_scores: np.ndarray, far: float
) -> RateAtFar:
    """Open-set true-identification rate at false-accept rate `far`.

    Args:
        probe_scores: (P,) best similarity of each enrolled person's probe.
        probe_correct: (P,) whether the rank-1 identity of that probe is right.
        stranger_scores: (S,) best similarity of each stranger probe (nobody enrolled).
        far: fraction of strangers that may be accepted as someone.

    A probe counts when it is identified correctly and its score clears the threshold.
    """
    scores = np.asarray(probe_scores, dtype=np.float64).ravel()
    correct = np.asarray(probe_correct, dtype=bool).ravel()
    if scores.shape != correct.shape:
        raise ValueError("probe_scores and probe_correct must have the same length")
    strangers = np.asarray(stranger_scores).size
    threshold = threshold_at_far(stranger_scores, far)
    rate = float(np.mean(correct & (scores >= threshold))) if scores.size else 0.0
    return RateAtFar(far, rate, threshold, strangers, _supported(strangers, far))


def _supported(impostors: int, far: float) -> bool:
    return impostors * far >= 1.0 - 1e-9


def rank1_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of probes whose best-matching identity is the true one."""
    p = np.asarray(predicted).ravel()
    t = np.asarray(truth).ravel()
    if p.shape != t.shape:
        raise ValueError("predicted and truth must have the same length")
    return float(np.mean(p == t)) if p.size else 0.0


def pair_scores(embeddings: np.ndarray, identities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Similarities of every unordered pair of distinct rows, split into (same, different).

    Args:
        embeddings: (N, D) L2-normalised embeddings.
        identities: (N,) identity of each row (any comparable type).
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    ids = np.asarray(identities).ravel()
    if emb.ndim != 2 or len(emb) != ids.size:
        raise ValueError(f"embeddings must be (N, D) with N = {ids.size}, got {emb.shape}")
    sims = emb @ emb.T
    i, j = np.triu_indices(len(emb), k=1)
    same = ids[i] == ids[j]
    values = sims[i, j]
    return values[same].astype(np.float64), values[~same].astype(np.float64)


def best_balanced_threshold(genuine_scores: np.ndarray, impostor_scores: np.ndarray) -> float:
    """The threshold that maximises (TPR + TNR) / 2 (midway between neighbouring scores)."""
    g = np.asarray(genuine_scores, dtype=np.float64).ravel()
    n = np.asarray(impostor_scores, dtype=np.float64).ravel()
    roc = roc_curve(np.r_[g, n], np.r_[np.ones(g.size), np.zeros(n.size)])
    best = int(np.argmax(roc.tpr - roc.fpr))
    upper = roc.thresholds[best]
    lower = roc.thresholds[best + 1] if best + 1 < roc.thresholds.size else upper
    if not np.isfinite(upper):
        return float(lower)
    return float((upper + lower) / 2.0)
