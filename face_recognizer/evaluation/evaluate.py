"""Accuracy on a user's own labelled photos: `face-recognizer evaluate DIR`.

`DIR/<person>/<images>`: the first K photos (sorted by file name) of each person are enrolled,
through the same enrolment path as `import` (`enrol.enrol_files`), into a temporary gallery
that is deleted afterwards; the other photos are probes. `--unknowns DIR2` holds people who
are never enrolled: stranger probes, which measure false accepts.

Measured:
  * closed-set rank-1: the nearest enrolled photo belongs to the probe's person;
  * open-set true-identification rate at FAR 10/1/0.1%: the threshold lets that fraction of
    strangers through, and a probe counts when it is named correctly above it;
  * pair verification: every pair of photos (at most `PAIR_PHOTOS_PER_PERSON` per person, so
    one person with 144 photos does not drown the rest; each stranger is its own person),
    TAR at fixed FPRs and ROC-AUC;
  * the real `Matcher` (FAISS k-NN majority vote) at the current and the suggested threshold;
  * majority vote vs nearest neighbour vs mean template (one averaged embedding per person).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from face_recognizer.errors import FaceRecognizerError, GalleryError
from face_recognizer.evaluation import metrics
from face_recognizer.evaluation.batch import embed_photos
from face_recognizer.images import photo_tree
from face_recognizer.store.base import normalize_name
from face_recognizer.types import (
    EvaluationReport,
    Match,
    MethodResult,
    RateAtFar,
    ThresholdResult,
)

if TYPE_CHECKING:
    from face_recognizer.engine import Engine

OPEN_SET_FARS = (0.1, 0.01, 0.001)
PAIR_FPRS = (0.5, 0.25, 0.1, 0.05, 0.01, 0.005, 0.001)
PAIR_PHOTOS_PER_PERSON = 20
DEFAULT_ENROL = 3
SUGGEST_FAR = 0.01  # the suggested threshold lets 1% of strangers through
MIN_STRANGERS_TO_SUGGEST = 100
SUGGEST_PAIR_FPR = 0.001  # without enough strangers: 0.1% of different-person pairs


@dataclass(frozen=True, slots=True)
class Split:
    """Which photos are enrolled, which are probes, which are strangers."""

    people: tuple[str, ...]
    enrol: tuple[tuple[str, Path], ...]
    probes: tuple[tuple[str, Path], ...]
    strangers: tuple[Path, ...]


def split_dataset(root: Path, enrol: int, unknowns: Path | None = None) -> Split:
    """Enrol the first `enrol` photos of each person of `root`, probe the rest."""
    if enrol < 1:
        raise FaceRecognizerError(
            f"The number of photos to enrol per person must be at least 1, got {enrol}.",
            param="enrol",
        )
    people = photo_tree(root)
    if len(people) < 2:
        raise FaceRecognizerError(
            f"{str(root)!r} holds photos of only one person; evaluation needs at least two."
        )
    enrol_set = tuple((name, p) for name, photos in people.items() for p in photos[:enrol])
    probes = tuple((name, p) for name, photos in people.items() for p in photos[enrol:])
    if not probes:
        raise FaceRecognizerError(
            f"Nobody in {str(root)!r} has more than {enrol} photos, so nothing is left to probe.",
            hint="Enrol fewer photos per person.",
            param="enrol",
        )
    strangers: tuple[Path, ...] = ()
    if unknowns is not None:
        known = set(people)
        others = photo_tree(unknowns, "The folder of strangers")
        overlap = sorted(known & set(others))
        if overlap:
            raise FaceRecognizerError(
                "The folder of strangers holds people who are also in the folder to enrol "
                f"({', '.join(overlap[:3])}).",
                hint="Strangers must be people who are never enrolled.",
                param="unknowns",
            )
        strangers = tuple(p for photos in others.values() for p in photos)
    return Split(tuple(people), enrol_set, probes, strangers)


def evaluate(
    engine: Engine,
    split: Split,
    current_threshold: float,
    *,
    k: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> EvaluationReport:
    """Enrol, probe and measure (see the module docstring). `on_progress(n)`: n photos done."""
    from face_recognizer.enrol import enrol_files
    from face_recognizer.matcher import DEFAULT_K, Matcher
    from face_recognizer.store.sqlite import Gallery

    k = DEFAULT_K if k is None else k
    rid = engine.pack.recognizer_id
    with tempfile.TemporaryDirectory(prefix="face-recognizer-eval-") as tmp:
        gallery = Gallery(Path(tmp) / "db")
        try:
            # 1. Enrol through the same path as `import` (`enrol.enrol_files`).
            rejected: Counter[str] = Counter()
            enrolled_vectors: dict[str, list[np.ndarray]] = {}
            by_person: dict[str, list[Path]] = {}
            for name, path in split.enrol:
                by_person.setdefault(name, []).append(path)

            def step() -> None:
                if on_progress is not None:
                    on_progress(1)

            skipped: list[tuple[str, str]] = []  # (folder or photo, why): listed in the summary
            enrolled_as: dict[str, str] = {}  # folder name -> the name enrolled
            for name, paths in by_person.items():
                try:
                    enrolled_as[name] = normalize_name(name)
                except GalleryError as exc:  # the other people are still measured
                    skipped.append((f"{paths[0].parent}{os.sep}", str(exc)))
                    if on_progress is not None:
                        on_progress(len(paths))
                    continue
                report = enrol_files(engine, gallery, name, paths, on_progress=step)
                rejected.update(report.skipped)
                skipped += report.skipped_photos()
                stored = [p.face.embedding for p in report.photos if p.face is not None]
                if stored:
                    enrolled_vectors[report.name] = stored
            if len(enrolled_vectors) < 2:
                raise FaceRecognizerError(
                    "Fewer than two people could be enrolled (no usable face in their first "
                    f"photos: {dict(rejected)}).",
                    hint="Check the photos, or enrol more photos per person.",
                    param="enrol",
                )
            # 2. Probes and strangers: read on threads, embedded in batches.
            probes = [
                (enrolled_as[n], p)
                for n, p in split.probes
                if enrolled_as.get(n) in enrolled_vectors
            ]
            skipped += [  # (a refused folder's probes went with the folder)
                (str(p), "a probe of someone with no usable enrolment photo")
                for n, p in split.probes
                if n in enrolled_as and enrolled_as[n] not in enrolled_vectors
            ]
            if on_progress is not None and len(probes) < len(split.probes):
                on_progress(len(split.probes) - len(probes))  # nobody to compare them with
            paths = [p for _, p in probes] + list(split.strangers)
            batch = embed_photos(engine, paths, pick="center", on_progress=on_progress)
            photos = batch.photos
            skipped += [(p.path, p.error or "no face") for p in photos if p.embedding is None]
            probe_ok = [i for i in range(len(probes)) if photos[i].embedding is not None]
            stranger_ok = [
                i for i in range(len(probes), len(paths)) if photos[i].embedding is not None
            ]
            dim = engine.embedding_dim
            probe_emb = _stack([photos[i].embedding for i in probe_ok], dim)
            stranger_emb = _stack([photos[i].embedding for i in stranger_ok], dim)
            truth = np.array([probes[i][0] for i in probe_ok], dtype=object)

            # 3. The real matcher (FAISS) at the current threshold.
            matcher = Matcher(gallery, rid, k=k, threshold=current_threshold)
            known_matches = matcher.match(probe_emb)
            stranger_matches = matcher.match(stranger_emb)
            person_ids, vectors = gallery.embeddings(rid)
            names = gallery.person_names()
        finally:
            gallery.close()

    labels = np.array([names[int(i)] for i in person_ids], dtype=object)
    scorer = _Scorer(vectors, labels, probe_emb, stranger_emb, truth, k, names, person_ids)

    # Pairs: enrolled + probe photos per person (capped), each stranger its own person.
    pair_emb, pair_ids = _pair_set(enrolled_vectors, probes, probe_ok, probe_emb, stranger_emb)
    same, different = metrics.pair_scores(pair_emb, pair_ids)
    if same.size == 0 or different.size == 0:
        raise FaceRecognizerError(
            "Too few photos with a face to form same- and different-person pairs."
        )
    pairs = tuple(metrics.tpr_at_far(same, different, fpr) for fpr in PAIR_FPRS)
    auc = metrics.roc_auc(
        np.r_[same, different], np.r_[np.ones(same.size), np.zeros(different.size)]
    )

    nn_name, nn_score = scorer.nearest()
    rank1 = metrics.rank1_accuracy(nn_name, truth)
    _, stranger_nn = scorer.nearest(strangers=True)
    open_set: tuple[RateAtFar, ...] = ()
    if stranger_nn.size:
        open_set = tuple(
            metrics.tir_at_far(nn_score, nn_name == truth, stranger_nn, far)
            for far in OPEN_SET_FARS
        )

    if stranger_nn.size >= MIN_STRANGERS_TO_SUGGEST:
        suggested = metrics.threshold_at_far(stranger_nn, SUGGEST_FAR)
        basis = f"lets {SUGGEST_FAR:.0%} of {stranger_nn.size} stranger probes through"
    else:
        suggested = metrics.threshold_at_far(different, SUGGEST_PAIR_FPR)
        if different.size * SUGGEST_PAIR_FPR >= 1:
            basis = f"accepts {SUGGEST_PAIR_FPR:.1%} of {different.size} different-person pairs"
        else:
            basis = f"just above the most similar of {different.size} different-person pairs"
        basis += (
            f"; fewer than {MIN_STRANGERS_TO_SUGGEST} strangers: a folder of strangers "
            "gives a better one"
        )
    suggested = float(np.round(suggested + 0.0005, 3))  # rounded up: never more false accepts

    def at(threshold: float, known: list[Match], strangers: list[Match]) -> ThresholdResult:
        return _threshold_result(threshold, known, strangers, truth, same, different)

    current = at(current_threshold, known_matches, stranger_matches)
    methods = scorer.compare(current_threshold, same, different)
    vote_names, vote_strangers = scorer.vote_names(suggested)
    suggested_result = _threshold_result_from_names(
        suggested, vote_names, vote_strangers, truth, same, different
    )
    return EvaluationReport(
        people=len(split.people),
        enrolled_people=len(enrolled_vectors),
        enrol_per_person=max((len(v) for v in enrolled_vectors.values()), default=0),
        enrolled_photos=len(vectors),
        rejected_enrol=dict(rejected),
        probes=len(probe_ok),
        strangers=len(stranger_ok),
        no_face=len(paths) - len(probe_ok) - len(stranger_ok),
        padded=sum(p.padded for p in photos),
        photos_per_second=batch.photos_per_second,
        rank1=rank1,
        open_set=open_set,
        pairs=pairs,
        auc=auc,
        same_scores=same,
        different_scores=different,
        current=current,
        suggested=suggested_result,
        suggested_basis=basis,
        methods=methods,
        skipped=tuple(skipped),
    )


def _stack(vectors: list[np.ndarray | None], dim: int) -> np.ndarray:
    rows = [v for v in vectors if v is not None]
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)


def _pair_set(
    enrolled: dict[str, list[np.ndarray]],
    probes: list[tuple[str, Path]],
    probe_ok: list[int],
    probe_emb: np.ndarray,
    stranger_emb: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    per_person: dict[str, list[np.ndarray]] = {n: list(v) for n, v in enrolled.items()}
    for row, i in enumerate(probe_ok):
        per_person.setdefault(probes[i][0], []).append(probe_emb[row])
    vectors: list[np.ndarray] = []
    ids: list[str] = []
    for name, rows in per_person.items():
        kept = rows[:PAIR_PHOTOS_PER_PERSON]
        vectors.extend(kept)
        ids.extend([name] * len(kept))
    for j, row in enumerate(stranger_emb):
        vectors.append(row)
        ids.append(f"\0stranger {j}")  # no person folder can hold a NUL
    return np.stack(vectors), np.array(ids, dtype=object)


class _Scorer:
    """Scores probes against the enrolled photos in three ways (exact, numpy)."""

    def __init__(
        self,
        vectors: np.ndarray,
        labels: np.ndarray,
        probes: np.ndarray,
        strangers: np.ndarray,
        truth: np.ndarray,
        k: int,
        names: dict[int, str],
        person_ids: np.ndarray,
    ) -> None:
        self.vectors, self.labels, self.truth, self.names = vectors, labels, truth, names
        self.k = min(k, len(vectors))
        self.person_ids = person_ids
        self.probe_sims = probes @ vectors.T
        self.stranger_sims = strangers @ vectors.T
        people = sorted(set(labels.tolist()))
        self.people = np.array(people, dtype=object)
        means = np.stack([vectors[labels == p].mean(axis=0) for p in people])
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        self.probe_mean = probes @ means.T
        self.stranger_mean = strangers @ means.T

    def nearest(self, strangers: bool = False) -> tuple[np.ndarray, np.ndarray]:
        sims = self.stranger_sims if strangers else self.probe_sims
        if sims.shape[0] == 0:
            return np.zeros(0, dtype=object), np.zeros(0)
        best = sims.argmax(axis=1)
        return self.labels[best], sims[np.arange(len(sims)), best]

    def template(self, strangers: bool = False) -> tuple[np.ndarray, np.ndarray]:
        sims = self.stranger_mean if strangers else self.probe_mean
        if sims.shape[0] == 0:
            return np.zeros(0, dtype=object), np.zeros(0)
        best = sims.argmax(axis=1)
        return self.people[best], sims[np.arange(len(sims)), best]

    def _votes(self, sims: np.ndarray, threshold: float) -> np.ndarray:
        from face_recognizer.matcher import vote

        top = np.argsort(-sims, axis=1, kind="stable")[:, : self.k]
        out = []
        for row, idx in zip(sims, top, strict=True):
            match = vote(row[idx], self.person_ids[idx], threshold, self.names)
            out.append(match.name)
        return np.array(out, dtype=object)

    def vote_names(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Names (None = unknown) the majority vote gives probes and strangers at `threshold`."""
        return self._votes(self.probe_sims, threshold), self._votes(self.stranger_sims, threshold)

    def compare(
        self, threshold: float, same: np.ndarray, different: np.ndarray
    ) -> tuple[MethodResult, ...]:
        results = []
        has_strangers = self.stranger_sims.shape[0] > 0
        # Majority vote: rank-1 with every neighbour voting; a stranger passes the vote
        # exactly when its best neighbour clears the threshold.
        closed = self._votes(self.probe_sims, -2.0)
        _, stranger_best = self.nearest(strangers=True)
        tir = None
        if has_strangers:
            t = metrics.threshold_at_far(stranger_best, SUGGEST_FAR)
            at_t, _ = self.vote_names(t)
            rate = float(np.mean(at_t == self.truth)) if len(self.truth) else 0.0
            tir = RateAtFar(
                SUGGEST_FAR, rate, t, stranger_best.size, stranger_best.size * SUGGEST_FAR >= 1
            )
        names, strangers = self.vote_names(threshold)
        results.append(
            MethodResult(
                "majority vote",
                metrics.rank1_accuracy(closed, self.truth),
                tir,
                _threshold_result_from_names(
                    threshold, names, strangers, self.truth, same, different
                ),
            )
        )
        for method, fn in (("nearest neighbour", self.nearest), ("mean template", self.template)):
            name, score = fn()
            _, s_score = fn(strangers=True)
            tir = None
            if has_strangers:
                tir = metrics.tir_at_far(score, name == self.truth, s_score, SUGGEST_FAR)
            accepted = score >= threshold
            names = np.array(
                [n if a else None for n, a in zip(name, accepted, strict=True)], object
            )
            strangers = np.array([v >= threshold or None for v in s_score], dtype=object)
            results.append(
                MethodResult(
                    method,
                    metrics.rank1_accuracy(name, self.truth),
                    tir,
                    _threshold_result_from_names(
                        threshold, names, strangers, self.truth, same, different
                    ),
                )
            )
        return tuple(results)


def _threshold_result_from_names(
    threshold: float,
    names: np.ndarray,
    stranger_names: np.ndarray,
    truth: np.ndarray,
    same: np.ndarray,
    different: np.ndarray,
) -> ThresholdResult:
    n = max(1, len(truth))
    known = np.array([x is not None for x in names], dtype=bool)
    correct = known & (names == truth)
    strangers = None
    if len(stranger_names):
        strangers = float(np.mean([x is not None for x in stranger_names]))
    return ThresholdResult(
        threshold=float(threshold),
        known_correct=float(correct.sum() / n),
        known_wrong=float((known & ~correct).sum() / n),
        known_rejected=float((~known).sum() / n),
        strangers_accepted=strangers,
        pair_tar=float(np.mean(same >= threshold)) if same.size else 0.0,
        pair_far=float(np.mean(different >= threshold)) if different.size else 0.0,
    )


def _threshold_result(
    threshold: float,
    known: list[Match],
    strangers: list[Match],
    truth: np.ndarray,
    same: np.ndarray,
    different: np.ndarray,
) -> ThresholdResult:
    names = np.array([m.name for m in known], dtype=object)
    stranger_names = np.array([m.name for m in strangers], dtype=object)
    return _threshold_result_from_names(threshold, names, stranger_names, truth, same, different)
