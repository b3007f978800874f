"""The one enrolment path: read, check, pick the person's face, embed, store.

`import`, `register --images`, `register` (live snaps), `evaluate` and the REST API all enrol
through here, so a photo is accepted or refused for the same reason everywhere:

1. read: a file (`load_photo`, refusing pictures above `images.MAX_PIXELS` before decoding),
   uploaded bytes (`photo_from_bytes`) or a decoded frame (`photo_from_array`); the sha256 of
   the bytes (or of the pixels) is the key that stops a photo being stored twice;
2. detect, with a retry on a padded copy for tight crops (`quality.detect_for_enrolment`);
3. check the photo (`quality.check_photo`): one face, big, sharp and frontal enough;
4. align the chosen face and embed the crops in batches (`embed_faces`);
5. store a person's usable faces in one transaction (`enrol_person`).

Each photo gets a `PhotoResult` saying `ok` or why not. Nothing here prints.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from face_recognizer.errors import (
    FaceRecognizerError,
    GalleryError,
    ImageReadError,
    ImageTooLargeError,
)
from face_recognizer.images import decode_image, pixels_sha256, prefetch, read_image_bytes
from face_recognizer.matcher import DEFAULT_THRESHOLD
from face_recognizer.quality import (
    PhotoCheck,
    Pick,
    big_faces,
    check_face,
    check_photo,
    detect_for_enrolment,
    pick_face,
)
from face_recognizer.store.base import (
    NEAR_DUPLICATE_SIMILARITY,
    AddResult,
    EnrolFace,
    SimilarFace,
    StoredCrop,
    normalize_name,
)
from face_recognizer.types import Detections
from face_recognizer.words import plural

if TYPE_CHECKING:
    from face_recognizer.engine import Engine

__all__ = [
    "DUPLICATE",
    "NOT_FOUND",
    "TAKEN",
    "TOO_LARGE",
    "UNREADABLE",
    "AlignedFace",
    "EnrolFace",
    "EnrolReport",
    "FaceStore",
    "Photo",
    "PhotoResult",
    "align_face",
    "check_photos",
    "embed_faces",
    "enrol_face",
    "enrol_files",
    "enrol_images",
    "enrol_person",
    "load_photo",
    "normalize_name",
    "photo_from_array",
    "photo_from_bytes",
    "reembed",
]

# Why a photo was not used, besides `quality.REASONS`.
NOT_FOUND = "not found"
UNREADABLE = "unreadable"
TOO_LARGE = "too large"
DUPLICATE = "already stored"
TAKEN = "already enrolled as"  # + the name of the person who has the same photo file
EMBED_BATCH = 32  # crops per recognizer call
# How a face of a group photo was chosen (`PhotoResult.how`).
AGREES = "agrees"
RECURS = "recurs"
# A face of a group photo is the person's when its mean cosine similarity to their other
# faces is at least AGREE_MIN and AGREE_MARGIN above the photo's next face. Measured by
# bench/subject_margin.py (409 photos composed from lfw_dev and celeb5_kaggle, README "##
# Gallery"): the person's face scored 0.254 at the lowest, the other face 0.166 at the
# highest, the gap between them 0.177 at the smallest. Both limits sit in those gaps: every
# composite was taken and no wrong face.
AGREE_MIN = 0.25
AGREE_MARGIN = 0.15
# In group photos with nothing else to compare with, a face "recurs" in another photo when
# one there is at least this similar: the matcher's same-person threshold (one pair of
# faces, calibrated on LFW by bench/calibrate_threshold.py).
RECUR_MIN = DEFAULT_THRESHOLD
READ_WORKERS = 2
# Fewer photos than this and `import` says so: the README's figures enrol 3 per person.
RECOMMENDED_PHOTOS = 3


class FaceStore(Protocol):
    """What enrolment needs from a gallery (every `store.base.Store` is one)."""

    def source_hashes(self, name: str) -> set[str]: ...

    def add_faces(
        self,
        name: str,
        faces: Sequence[EnrolFace],
        recognizer_id: str,
        *,
        same_photo_ok: bool = False,
    ) -> AddResult: ...

    def similar_faces(
        self, name: str, faces: Sequence[EnrolFace], recognizer_id: str, threshold: float
    ) -> list[SimilarFace]: ...

    def check_pack(self, recognizer_id: str, faces: Sequence[EnrolFace] = ()) -> None: ...

    def embeddings(self, recognizer_id: str) -> tuple[np.ndarray, np.ndarray]: ...

    def person_names(self) -> dict[int, str]: ...


def stored_faces(store: FaceStore, name: str, recognizer_id: str) -> np.ndarray:
    """(N, D) embeddings stored under `name` by `recognizer_id`'s pack (N may be 0)."""
    ids = [i for i, n in store.person_names().items() if n == name]
    if not ids:
        return np.zeros((0, 0), np.float32)
    person_ids, vectors = store.embeddings(recognizer_id)
    return np.asarray(vectors, np.float32)[np.isin(np.asarray(person_ids), ids)]


@dataclass(frozen=True, slots=True)
class Photo:
    """A decoded photo to enrol.

    Attributes:
        image: (H, W, 3) uint8 BGR.
        source: where it came from (a file path, "upload 2", "camera:0 frame 57").
        source_hash: sha256 hex of the file's bytes, or of the pixels for a frame.
    """

    image: np.ndarray
    source: str
    source_hash: str


@dataclass(frozen=True, slots=True)
class AlignedFace:
    """A face chosen for enrolment, aligned but not embedded yet (a live snap, or a photo
    waiting for its batch).

    Attributes:
        crop: (S, S, 3) uint8 ArcFace-aligned BGR crop.
        source, source_hash: as in `Photo`.
        det_score, face_px, blur: the detector score, min(box w, h) and sharpness.
        xyxy: (4,) the face's box in the photo, in pixels.
    """

    crop: np.ndarray
    source: str
    source_hash: str
    det_score: float
    face_px: float
    blur: float
    xyxy: np.ndarray

    def embedded(self, embedding: np.ndarray) -> EnrolFace:
        """The face to store, with its embedding."""
        return EnrolFace(
            embedding,
            self.crop,
            self.source,
            self.source_hash,
            self.det_score,
            self.face_px,
            self.blur,
        )


@dataclass(frozen=True, slots=True)
class PhotoResult:
    """Verdict on one photo: `reason` is None when it is usable (then `face` is set).

    Attributes:
        source: where the photo came from.
        reason: None, one of `quality.REASONS`, `NOT_FOUND`, `UNREADABLE`, `TOO_LARGE` or
            `DUPLICATE`.
        face: the face to store, when usable.
        check: the quality check, when the photo could be read.
        detail: the full sentence for a photo that could not be read.
        xyxy: (4,) box of the face taken (or checked), in the photo's pixels, else None.
        faces: how many faces counted in the photo (`quality.big_faces`).
        how: for a photo of several faces, how the face was chosen: `AGREES` (most similar
            to the person's other photos), `RECURS` (the face present in most of the
            person's group photos) or a `pick` ("largest", "center"); else None.
        agreement: the similarity behind that choice (`AGREES`: mean cosine similarity to
            the person's other faces; `RECURS`: mean best similarity in the other photos).
        compared: how many other faces (`AGREES`) or photos (`RECURS`) it was compared with.
    """

    source: str
    reason: str | None
    face: EnrolFace | None = None
    check: PhotoCheck | None = None
    detail: str | None = None
    xyxy: np.ndarray | None = None
    faces: int = 1
    how: str | None = None
    agreement: float | None = None
    compared: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def path(self) -> Path:
        return Path(self.source)

    def describe(self) -> str:
        """`ok`, the reason, or for a group photo which face was taken and why, e.g.
        `ok, the face at 412,96 of 3 (agrees 0.71 with 2 other photos)`."""
        if self.reason is not None:
            return self.reason
        if self.faces < 2 or self.xyxy is None:
            return "ok"
        x, y = (round(float(v)) for v in self.xyxy[:2])
        text = f"ok, the face at {x},{y} of {self.faces}"
        if self.how == AGREES:
            others = plural(self.compared, "other face")
            return f"{text} (agrees {self.agreement:.2f} with {others})"
        if self.how == RECURS:
            others = plural(self.compared, "other photo")
            return f"{text} (recurs {self.agreement:.2f} in {others})"
        return f"{text} (the {self.how} face, as asked)"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"source": self.source, "ok": self.ok, "reason": self.reason}
        if self.xyxy is not None:
            out["box"] = [round(float(v), 1) for v in self.xyxy]
        out["faces"] = self.faces
        if self.how is not None:
            out["chosen_by"] = self.how
            out["agreement"] = None if self.agreement is None else round(self.agreement, 3)
            out["compared"] = self.compared
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class EnrolReport:
    """What enrolling one person did.

    Attributes:
        name: the person, as stored.
        photos: one result per photo, in the order given.
        added: faces stored now.
        duplicates: photos not stored again (same content already stored, or given twice).
        created: whether the person is new.
        stored: the person's photos in the gallery afterwards (before + added).
        similar: stored faces nearly identical to another person's photo (a warning).
    """

    name: str
    photos: tuple[PhotoResult, ...]
    added: int = 0
    duplicates: int = 0
    created: bool = False
    stored: int = 0
    similar: tuple[SimilarFace, ...] = ()

    @property
    def skipped(self) -> Counter[str]:
        """Photos not used, by reason (duplicates not counted)."""
        return Counter(
            p.reason for p in self.photos if p.reason is not None and p.reason != DUPLICATE
        )

    def skipped_photos(self) -> list[tuple[str, str]]:
        """(photo, why) for each photo not used (duplicates are not listed), in order."""
        return [
            (p.source, f"{p.reason}: {p.detail}" if p.detail else p.reason)
            for p in self.photos
            if p.reason is not None and p.reason != DUPLICATE
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "added": self.added,
            "duplicates": self.duplicates,
            "created": self.created,
            "stored": self.stored,
            "skipped": dict(self.skipped.most_common()),
            "photos": [p.to_json() for p in self.photos],
            "similar": [
                {"source": s.source, "name": s.name, "similarity": round(s.similarity, 3)}
                for s in self.similar
            ],
        }


# -- 1. reading ---------------------------------------------------------------------------
def load_photo(path: str | Path) -> Photo:
    """Read a photo file (see `images.read_image`); its hash is the sha256 of its bytes."""
    data = read_image_bytes(path)
    image = decode_image(data, f"Image {str(path)!r}")
    return Photo(image, str(path), hashlib.sha256(data).hexdigest())


def photo_from_bytes(data: bytes, source: str) -> Photo:
    """Decode an uploaded picture; ImageReadError when it is not one or is too large."""
    image = decode_image(data, source[:1].upper() + source[1:])
    return Photo(image, source, hashlib.sha256(data).hexdigest())


def photo_from_array(image: np.ndarray, source: str) -> Photo:
    """A decoded frame; its hash is the sha256 of its pixels."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ImageReadError(f"{source} is not a colour picture (need H x W x 3 bytes).")
    return Photo(array, source, pixels_sha256(array))


def _unreadable(source: str, exc: Exception) -> PhotoResult:
    reason = TOO_LARGE if isinstance(exc, ImageTooLargeError) else UNREADABLE
    return PhotoResult(source, reason, detail=str(exc))


def _load(path: Path) -> Photo | PhotoResult:
    if not Path(path).is_file():
        return PhotoResult(str(path), NOT_FOUND, detail=f"{str(path)!r} is not a file.")
    try:
        return load_photo(path)
    except (FaceRecognizerError, OSError) as exc:
        return _unreadable(str(path), exc)


def read_photos(
    paths: Sequence[Path], workers: int = READ_WORKERS
) -> Iterator[Photo | PhotoResult]:
    """Each path as a `Photo`, or the `PhotoResult` saying why it cannot be read; in order,
    read a few files ahead on threads."""
    return prefetch(_load, paths, workers)


# -- 2-4. checking, aligning, embedding ---------------------------------------------------
def align_face(
    engine: Engine, photo: Photo, work: np.ndarray, detections: Detections, check: PhotoCheck
) -> AlignedFace:
    """The aligned crop and figures of the usable face that `check` chose.

    `work` is the image the detections refer to (a padded copy of `photo.image` on a retry).
    """
    if not check.usable or check.face is None:
        raise ValueError(f"cannot align a face from a photo that is not usable ({check.reason})")
    crop = engine.align(work, detections.landmarks[[check.face]])[0]
    xyxy = detections.xyxy[check.face].copy()
    if work is not photo.image:  # boxes found on the padded copy: back to the photo's pixels
        dy = (work.shape[0] - photo.image.shape[0]) // 2
        dx = (work.shape[1] - photo.image.shape[1]) // 2
        xyxy -= np.array([dx, dy, dx, dy], dtype=xyxy.dtype)
    return AlignedFace(
        crop,
        photo.source,
        photo.source_hash,
        float(detections.scores[check.face]),
        check.face_px,
        check.blur,
        xyxy,
    )


def examine(engine: Engine, photo: Photo) -> tuple[AlignedFace | None, PhotoCheck]:
    """Detect (with the padded retry) and check one photo; the aligned face when usable."""
    work, detections = detect_for_enrolment(engine, photo.image)
    check = check_photo(work, detections)
    if not check.usable or check.face is None:
        return None, check
    return align_face(engine, photo, work, detections, check), check


def align_candidates(
    engine: Engine,
    photo: Photo,
    work: np.ndarray,
    detections: Detections,
    checks: Sequence[PhotoCheck],
) -> tuple[AlignedFace, ...]:
    """Every checked face of a group photo, aligned whatever its quality: all are embedded
    to find the person's, and the chosen face's own check decides after."""
    as_usable = (PhotoCheck(True, None, c.face, c.face_px, c.blur) for c in checks)
    return tuple(align_face(engine, photo, work, detections, c) for c in as_usable)


@dataclass(frozen=True, slots=True)
class _Group:
    """A photo of several faces, waiting for the choice of the person's face."""

    slot: int
    source: str
    faces: tuple[AlignedFace, ...]  # every face that counts, largest first
    checks: tuple[PhotoCheck, ...]  # the quality check of each
    fallback: int | None  # the face `pick` names, when the caller named a rule
    rule: str | None  # that rule ("largest", "center")


def _examine_group(
    engine: Engine, photo: Photo, slot: int, pick: Pick | None
) -> tuple[AlignedFace | None, PhotoCheck, _Group | None]:
    work, detections = detect_for_enrolment(engine, photo.image)
    check = check_photo(work, detections)
    if check.reason != "several faces":
        if not check.usable or check.face is None:
            return None, check, None
        return align_face(engine, photo, work, detections, check), check, None
    indices = big_faces(detections)
    checks = tuple(check_face(work, detections, i) for i in indices)
    aligned = align_candidates(engine, photo, work, detections, checks)
    fallback, rule = None, None
    if pick in ("largest", "center"):
        fallback = pick_face(detections[indices], pick, (work.shape[1], work.shape[0]))
        rule = pick
    return None, check, _Group(slot, photo.source, aligned, checks, fallback, rule)


def embed_faces(engine: Engine, faces: Sequence[AlignedFace]) -> list[EnrolFace]:
    """Embed aligned faces, `EMBED_BATCH` crops per recognizer call."""
    out: list[EnrolFace] = []
    for start in range(0, len(faces), EMBED_BATCH):
        part = faces[start : start + EMBED_BATCH]
        vectors = engine.embed_crops(np.stack([f.crop for f in part]))
        out.extend(f.embedded(v) for f, v in zip(part, vectors, strict=True))
    return out


def enrol_face(
    engine: Engine, image: np.ndarray, source: str, source_hash: str | None = None
) -> tuple[EnrolFace | None, PhotoCheck]:
    """Check one decoded photo and, when usable, embed its face (the single-photo case of
    `check_photos`). `source_hash` defaults to the sha256 of the pixels."""
    photo = Photo(image, source, source_hash or pixels_sha256(image))
    aligned, check = examine(engine, photo)
    if aligned is None:
        return None, check
    return embed_faces(engine, [aligned])[0], check


@dataclass(frozen=True, slots=True)
class Choice:
    """Which face of a group photo is the person's.

    Attributes:
        index: the chosen face (into the photo's faces), None when none is clearly theirs.
        agreement: the best face's score (see `PhotoResult.agreement`); nan when there was
            nothing to compare with.
        margin: the best score minus the second best.
        compared: how many faces or photos the scores were measured against.
        evidence: False when there was nothing to compare with (no reference, and no face
            of this photo recurs in another), so a `pick` rule may decide.
    """

    index: int | None
    agreement: float
    margin: float
    compared: int
    evidence: bool = True


def choose_by_reference(candidates: np.ndarray, references: np.ndarray) -> Choice:
    """The candidate (M, D) most similar on average to the person's references (N, D); taken
    when its mean similarity is at least `AGREE_MIN` and `AGREE_MARGIN` above the next."""
    scores = (np.asarray(candidates) @ np.asarray(references).T).mean(axis=1)
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    second = float(scores[order[1]]) if len(order) > 1 else -1.0
    ok = best >= AGREE_MIN and best - second >= AGREE_MARGIN
    return Choice(int(order[0]) if ok else None, best, best - second, len(references))


def choose_by_recurrence(groups: Sequence[np.ndarray]) -> list[Choice]:
    """For each group photo (its candidates (M_i, D)), the face that recurs across the other
    group photos: the one matched (similarity >= `RECUR_MIN`) in the most other photos, then
    the highest mean best-similarity. Taken only when it recurs in more photos than every
    other face of the photo."""
    out: list[Choice] = []
    for i, mine in enumerate(groups):
        others = [g for j, g in enumerate(groups) if j != i]
        if not others:
            out.append(Choice(None, float("nan"), 0.0, 0, evidence=False))
            continue
        best_in = np.stack([(np.asarray(mine) @ np.asarray(g).T).max(axis=1) for g in others])
        support = (best_in >= RECUR_MIN).sum(axis=0)  # (M,) photos each face recurs in
        score = best_in.mean(axis=0)
        order = sorted(range(len(mine)), key=lambda k: (-int(support[k]), -float(score[k])))
        first, second = order[0], order[1]
        margin = float(score[first] - score[second])
        # Two faces that recur equally often (two people in every photo) are ambiguous,
        # however similar each is to itself: the folder's name cannot tell which is NAME.
        ok = int(support[first]) >= 1 and int(support[first]) > int(support[second])
        evidence = int(support[first]) >= 1
        out.append(
            Choice(first if ok else None, float(score[first]), margin, len(others), evidence)
        )
    return out


def check_photos(
    engine: Engine,
    photos: Iterable[Photo | PhotoResult],
    *,
    name: str | None = None,
    known: set[str] | None = None,
    references: np.ndarray | None = None,
    pick: Pick | None = None,
    on_progress: Callable[[], None] | None = None,
) -> list[PhotoResult]:
    """Check and embed each photo of one person; a `PhotoResult` per photo, in order.

    A photo with several faces counts as the person's when one face clearly agrees with
    the person's single-face photos and `references` (their faces already stored); with
    none of those, the face that recurs across their group photos; with nothing to compare
    with, the face `pick` names ("largest" or "center"). Otherwise it is refused:
    "several faces" (nothing to compare with) or "several faces, none clearly NAME".

    `known` holds the hashes already stored: those photos (and a photo given twice) are
    `DUPLICATE` and not embedded. `on_progress()` is called as each photo is examined.
    """
    seen = set(known or ())
    results: list[PhotoResult] = []
    singles: list[tuple[int, AlignedFace, PhotoCheck]] = []
    groups: list[_Group] = []
    for item in photos:
        if isinstance(item, PhotoResult):
            result = item
        elif item.source_hash in seen:
            result = PhotoResult(item.source, DUPLICATE)
        else:
            seen.add(item.source_hash)
            aligned, check, group = _examine_group(engine, item, len(results), pick)
            if group is not None:
                groups.append(group)
                result = PhotoResult(item.source, check.reason, check=check, faces=len(group.faces))
            elif aligned is None:
                result = PhotoResult(item.source, check.reason or "unusable", check=check)
            else:
                singles.append((len(results), aligned, check))
                result = PhotoResult(item.source, None, check=check, xyxy=aligned.xyxy)
        results.append(result)
        if on_progress is not None:
            on_progress()
    flat = [a for _, a, _ in singles] + [f for g in groups for f in g.faces]
    embedded = embed_faces(engine, flat)
    single_faces, group_faces = embedded[: len(singles)], embedded[len(singles) :]
    for (slot, aligned, check), face in zip(singles, single_faces, strict=True):
        results[slot] = PhotoResult(aligned.source, None, face, check, xyxy=aligned.xyxy)
    if groups:
        per_group: list[list[EnrolFace]] = []
        start = 0
        for g in groups:
            per_group.append(group_faces[start : start + len(g.faces)])
            start += len(g.faces)
        refs = [f.embedding for f in single_faces]
        if references is not None and len(references):
            refs.extend(np.asarray(references, dtype=np.float32))
        if refs:
            ref_array = np.stack(refs)
            choices = [
                choose_by_reference(np.stack([f.embedding for f in faces]), ref_array)
                for faces in per_group
            ]
            how = AGREES
        else:
            choices = choose_by_recurrence(
                [np.stack([f.embedding for f in faces]) for faces in per_group]
            )
            how = RECURS
        for g, faces, choice in zip(groups, per_group, choices, strict=True):
            results[g.slot] = _group_result(g, faces, choice, how, name)
    return results


def _group_result(
    group: _Group, faces: Sequence[EnrolFace], choice: Choice, how: str, name: str | None
) -> PhotoResult:
    n = len(group.faces)
    index: int | None = choice.index
    method: str | None = how
    if index is None and not choice.evidence and group.fallback is not None:
        index, method = group.fallback, group.rule
    if index is None:
        reason = (
            "several faces"
            if not choice.evidence
            else f"several faces, none clearly {name or 'the person'}"
        )
        return PhotoResult(
            group.source, reason, faces=n, agreement=choice.agreement, compared=choice.compared
        )
    check = group.checks[index]
    aligned = group.faces[index]
    if not check.usable:
        return PhotoResult(
            group.source,
            check.reason,
            check=check,
            xyxy=aligned.xyxy,
            faces=n,
            how=method,
            agreement=choice.agreement,
            compared=choice.compared,
        )
    return PhotoResult(
        group.source,
        None,
        faces[index],
        check,
        xyxy=aligned.xyxy,
        faces=n,
        how=method,
        agreement=None if method not in (AGREES, RECURS) else choice.agreement,
        compared=choice.compared if method in (AGREES, RECURS) else 0,
    )


# -- 5. storing ---------------------------------------------------------------------------
def enrol_person(
    engine: Engine,
    store: FaceStore,
    name: str,
    photos: Iterable[Photo | PhotoResult],
    *,
    pick: Pick | None = None,
    on_progress: Callable[[], None] | None = None,
    same_photo_ok: bool = False,
) -> EnrolReport:
    """Check, embed and store one person's photos; the usable ones in one transaction.

    A photo stored for another person gets the reason "already enrolled as NAME" unless
    `same_photo_ok`; faces nearly identical to another person's photo are stored and listed
    in `similar`.

    In photos of several faces the person's face is found by agreement (`check_photos`);
    `pick` ("largest", "center") decides where there is nothing to compare with. Photos
    already stored for `name` (same bytes) are not added again. Nothing is stored when no
    photo is usable. Raises `GalleryError` when the gallery holds another model pack's
    embeddings (before any photo is examined).
    """
    name = normalize_name(name)
    rid = engine.pack.recognizer_id
    store.check_pack(rid)
    known = store.source_hashes(name)
    results = check_photos(
        engine,
        photos,
        name=name,
        known=known,
        references=stored_faces(store, name, rid),
        pick=pick,
        on_progress=on_progress,
    )
    faces = [r.face for r in results if r.face is not None]
    duplicates = sum(1 for r in results if r.reason == DUPLICATE)
    if not faces:
        return EnrolReport(name, tuple(results), 0, duplicates, False, len(known))
    added = store.add_faces(name, faces, rid, same_photo_ok=same_photo_ok)
    owners = dict(added.taken)
    if owners:
        results = [
            replace(r, reason=f"{TAKEN} {owners[r.source]}", face=None)
            if r.face is not None and r.source in owners
            else r
            for r in results
        ]
    kept = [face for face in faces if face.source not in owners]
    similar = store.similar_faces(name, kept, rid, NEAR_DUPLICATE_SIMILARITY) if kept else []
    return EnrolReport(
        name,
        tuple(results),
        added.added,
        duplicates + added.duplicates,
        added.created,
        len(known) + added.added,
        tuple(similar),
    )


def enrol_files(
    engine: Engine,
    store: FaceStore,
    name: str,
    paths: Sequence[Path],
    *,
    pick: Pick | None = None,
    on_progress: Callable[[], None] | None = None,
    same_photo_ok: bool = False,
) -> EnrolReport:
    """`enrol_person` for photo files (read a few ahead on threads)."""
    return enrol_person(
        engine,
        store,
        name,
        read_photos(paths),
        pick=pick,
        on_progress=on_progress,
        same_photo_ok=same_photo_ok,
    )


def enrol_images(
    engine: Engine,
    store: FaceStore,
    name: str,
    images: Sequence[bytes | np.ndarray],
    sources: Sequence[str] | None = None,
    *,
    pick: Pick | None = None,
) -> EnrolReport:
    """`enrol_person` for uploaded pictures: encoded bytes (JPEG, PNG, ...) or decoded
    (H, W, 3) uint8 BGR arrays. `sources` names them in the results (default "upload 1", ...).

    Bytes that are not a picture, or one above `images.MAX_PIXELS`, give that photo the
    reason `UNREADABLE` / `TOO_LARGE`; the others are still enrolled.
    """
    names = list(sources) if sources is not None else []
    if sources is not None and len(names) != len(images):
        raise ValueError(f"got {len(images)} images but {len(names)} sources")

    def photos() -> Iterator[Photo | PhotoResult]:
        for i, item in enumerate(images):
            source = names[i] if names else f"upload {i + 1}"
            try:
                if isinstance(item, bytes | bytearray | memoryview):
                    yield photo_from_bytes(bytes(item), source)
                else:
                    yield photo_from_array(item, source)
            except FaceRecognizerError as exc:
                yield _unreadable(source, exc)

    return enrol_person(engine, store, name, photos(), pick=pick)


# -- whole folders and re-embedding -------------------------------------------------------
class CropStore(Protocol):
    """What `reembed` needs from a gallery."""

    def crops(self) -> Sequence[StoredCrop]: ...

    def person_names(self) -> dict[int, str]: ...

    def replace_embeddings(
        self, face_ids: Sequence[int], embeddings: np.ndarray, recognizer_id: str
    ) -> None: ...


def reembed(
    engine: Engine, store: CropStore, *, on_progress: Callable[[int], None] | None = None
) -> tuple[int, int]:
    """Re-embed every stored crop with `engine`'s pack, in one transaction (`reindex`).

    Returns (faces, people) re-embedded. Raises `GalleryError` when nothing is stored, and
    when some faces were enrolled as embeddings without a photo (the API's "embeddings"):
    their crop is blank, so another pack cannot re-make them, and a gallery holds one pack's
    embeddings only. `on_progress(n)` after each batch of n crops.
    """
    import cv2

    stored = list(store.crops())
    if not stored:
        raise GalleryError("The gallery holds no faces to re-embed.")
    blank = [s for s in stored if not s.crop.any()]
    if blank:
        names = store.person_names()
        who = ", ".join(repr(n) for n in sorted({names[s.person_id] for s in blank}))
        raise GalleryError(
            f"{plural(len(blank), 'face')} of {who} came as embeddings without a photo and "
            "cannot be re-embedded; nothing was changed. Remove them (people remove NAME, or "
            "DELETE them through the API) and run reindex again."
        )
    size = int(engine.crop_size)
    vectors = []
    for start in range(0, len(stored), EMBED_BATCH):
        part = stored[start : start + EMBED_BATCH]
        crops = np.stack(
            [s.crop if s.crop.shape[0] == size else cv2.resize(s.crop, (size, size)) for s in part]
        )
        vectors.append(engine.embed_crops(crops))
        if on_progress is not None:
            on_progress(len(part))
    store.replace_embeddings(
        [s.face_id for s in stored], np.concatenate(vectors), engine.pack.recognizer_id
    )
    return len(stored), len({s.person_id for s in stored})
