"""The server's one door to the gallery and the enrolment path.

Every store call and every enrolment the API makes goes through `GalleryService` (and the key
functions below it), so that the REST layer never touches the store directly.

How the shared parts are used from many threads (FastAPI runs each request's work on a thread
of its pool; the live recognizer runs on a thread of its own):

* The ONNX Runtime sessions (detector, recognizer) are loaded once, in one `Engine`, and shared.
  `InferenceSession.run` may be called from several threads, but each call already uses every
  core (intra-op threads = the CPUs), so two calls at once only thrash the caches. `LockedEngine`
  therefore lets one detection or embedding run at a time: requests queue per model call (tens
  of milliseconds), not per request, so a long enrolment never holds the others back for long.
* The store (`store.base.Store`) is safe to call from several threads; the requests share one
  (SQLite: one connection behind one lock, a few milliseconds per call), the live thread opens
  its own. Writes are one transaction each, so a failed or interrupted request stores all of a
  person's new photos or none. Other processes (the CLI, a running `recognize`) see committed
  changes, and the matcher here rebuilds its index when the store's change token moves
  (`Matcher.refresh`, one cheap check per request), so CLI changes show at the next request.
* The matcher's index is rebuilt and searched under `_match_lock`; FAISS searches only read.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NoReturn

import numpy as np

from face_recognizer import enrol
from face_recognizer.engine import Engine
from face_recognizer.errors import FaceCountError, FaceRecognizerError, GalleryError
from face_recognizer.evaluation.batch import detect_padded
from face_recognizer.images import pixels_sha256
from face_recognizer.matcher import Matcher
from face_recognizer.quality import pick_face
from face_recognizer.server.keys import check_key_name, key_hash, new_key
from face_recognizer.server.photos import Limits, PhotoError, Upload, decode_photo
from face_recognizer.store import ApiKey, EnrolFace, Store, normalize_name
from face_recognizer.types import Detections, Verification
from face_recognizer.verify import compare, reference_face

Pick = Literal["largest", "center"]


class ApiError(Exception):
    """A request that cannot be done: the HTTP status and one sentence saying why."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}


class LockedEngine(Engine):
    """The server's one `Engine`, whose model calls run one at a time (see the module
    docstring). It takes over a loaded engine's sessions; `embed` and `analyze` go through
    the locked `detect` and `embed_crops`, so every caller of the enrolment path, the
    verifier and the live recognizer shares the lock."""

    def __init__(self, engine: Engine) -> None:
        self.__dict__.update(engine.__dict__)
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray, det_size: int | None = None) -> Detections:
        with self._lock:
            return super().detect(image, det_size)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        with self._lock:
            return super().embed_crops(crops)


@dataclass(frozen=True, slots=True)
class PhotoResult:
    """What happened to one photo of an enrolment: "ok", "already stored", or the reason."""

    label: str
    result: str

    def to_json(self) -> dict[str, str]:
        return {"file": self.label, "result": self.result}


@dataclass(frozen=True, slots=True)
class EnrolReport:
    """One enrolment request: per-photo results, faces added, the person's photos after it."""

    name: str
    photos: tuple[PhotoResult, ...]
    added: int
    person_photos: int
    created: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "photos": [p.to_json() for p in self.photos],
            "added": self.added,
            "person_photos": self.person_photos,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class PersonEntry:
    """One person of a people page, with the ids of their faces."""

    name: str
    photos: int
    created: datetime
    face_ids: tuple[int, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class IdentifiedFace:
    """One face of an identify request, in the photo's pixels."""

    xyxy: tuple[float, float, float, float]
    landmarks: np.ndarray
    name: str | None
    similarity: float

    def to_json(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.xyxy],
            "name": self.name,
            "similarity": round(self.similarity, 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
        }


def decode_base64(items: object, limits: Limits) -> list[Upload]:
    """`images_base64` entries (plain base64 or data: URLs) as uploads; ApiError if malformed."""
    if not isinstance(items, list) or not items:
        raise ApiError(400, '"images_base64" must be a non-empty list of base64 strings.')
    uploads = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise ApiError(400, f"images_base64[{i - 1}] is not a string.")
        text = item.split(",", 1)[1] if item.startswith("data:") and "," in item else item
        if len(text) * 3 // 4 > limits.max_bytes:
            label = f"photo {i}"
            limits.check_size(Upload(label, b"\0" * (limits.max_bytes + 1)))
        try:
            data = base64.b64decode(text, validate=True)
        except ValueError:
            raise ApiError(400, f"images_base64[{i - 1}] is not valid base64.") from None
        uploads.append(Upload(f"photo {i}", data))
    return uploads


class GalleryService:
    """The gallery as the server uses it (thread-safe; see the module docstring).

    Args:
        engine: the shared, locked engine.
        store: the open gallery (the service closes it).
        limits: upload limits.
        threshold: fixed matching threshold, or None for the gallery's setting / the default.
    """

    def __init__(
        self, engine: LockedEngine, store: Store, limits: Limits, threshold: float | None = None
    ) -> None:
        self.engine = engine
        self.store = store
        self.limits = limits
        self.recognizer_id = engine.pack.recognizer_id
        self._match_lock = threading.Lock()
        store.check_pack(self.recognizer_id)
        self.matcher = Matcher(store, self.recognizer_id, threshold=threshold)

    def close(self) -> None:
        self.store.close()

    # -- reading -------------------------------------------------------------------------
    def counts(self) -> tuple[int, int]:
        """(people, faces) in the gallery."""
        return len(self.store.person_names()), self.store.face_count()

    @property
    def threshold(self) -> float:
        self._refresh()
        return float(self.matcher.threshold)

    def people_page(self, limit: int, offset: int) -> tuple[int, list[PersonEntry]]:
        """(total people, the people of this page by name with their face ids)."""
        everyone = self.store.people()
        page = everyone[offset : offset + limit]
        ids = self.store.face_ids([p.id for p in page])
        return len(everyone), [
            PersonEntry(p.name, p.photos, p.created, tuple(ids.get(p.id, ()))) for p in page
        ]

    def crop_png(self, face_id: int) -> bytes:
        data = self.store.crop_png(face_id)
        if data is None:
            raise ApiError(404, f"There is no face {face_id} in the gallery.")
        return data

    # -- changing --------------------------------------------------------------------------
    def rename(self, old: str, new: str) -> str:
        old_n, new_n = _name(old), _name(new)
        names = set(self.store.person_names().values())
        if old_n not in names:
            raise ApiError(404, f"{old_n!r} is not in the gallery.")
        if new_n != old_n and new_n in names:
            raise ApiError(409, f"{new_n!r} is already in the gallery; remove one first.")
        try:
            self.store.rename_person(old_n, new_n)
        except GalleryError as exc:  # another request renamed or removed meanwhile
            raise ApiError(409, exc.message) from None
        return new_n

    def remove_person(self, name: str) -> int:
        """Delete a person with every face, embedding and crop; returns how many faces went."""
        clean = _name(name)
        if clean not in set(self.store.person_names().values()):
            raise ApiError(404, f"{clean!r} is not in the gallery.")
        try:
            return self.store.remove_person(clean)
        except GalleryError as exc:  # removed by another request meanwhile
            raise ApiError(404, exc.message) from None

    def remove_face(self, face_id: int) -> tuple[str, int]:
        """Delete one face; (the person's name, photos left). A person whose last face goes
        is removed too (nothing would recognize them)."""
        removed = self.store.remove_face(face_id)
        if removed is None:
            raise ApiError(404, f"There is no face {face_id} in the gallery.")
        return removed

    def enrol_photos(self, name: str, uploads: list[Upload]) -> EnrolReport:
        """Check, embed and store photos of `name` through the one enrolment path
        (`enrol.enrol_person`: the `import` checks, dedup by the file's SHA-256, one
        transaction). ApiError 400/422 and nothing stored when no photo is usable; 413 when
        one is over the size limit."""
        clean = _name(name)
        for upload in uploads:
            self.limits.check_size(upload)  # refuse the whole request before any work
        photos: list[enrol.Photo | enrol.PhotoResult] = []
        unreadable = 0  # photos refused as not a whole picture (400)
        for upload in uploads:
            try:
                image = decode_photo(upload, self.limits)
            except PhotoError as exc:
                unreadable += exc.status == 400
                reason = enrol.UNREADABLE if exc.status == 400 else enrol.TOO_LARGE
                photos.append(enrol.PhotoResult(upload.label, reason, detail=exc.message))
                continue
            digest = hashlib.sha256(upload.data).hexdigest()
            photos.append(enrol.Photo(image, upload.label, digest))
        report = enrol.enrol_person(self.engine, self.store, clean, photos)
        results = tuple(
            PhotoResult(r.source, "ok" if r.ok else (r.detail or str(r.reason)))
            for r in report.photos
        )
        if report.added == 0 and report.duplicates == 0:
            self._refuse(results, unreadable)
        return EnrolReport(
            report.name, results, report.added, self._photos_of(report.name), report.created
        )

    def enrol_embeddings(self, name: str, vectors: object, model: object) -> EnrolReport:
        """Store precomputed embeddings (a list of D floats each, made by this server's pack:
        `model` is its `recognizer_id` or name as /health shows)."""
        clean = _name(name)
        pack = self.engine.pack
        if model not in (pack.recognizer_id, pack.name):
            raise ApiError(
                422,
                f"Embeddings must come from this server's model pack {pack.name} "
                f'(send "model_pack": "{pack.recognizer_id}"), got {model!r}.',
            )
        if not isinstance(vectors, list) or not vectors:
            raise ApiError(400, '"embeddings" must be a non-empty list of lists of numbers.')
        dim = self.engine.embedding_dim
        blank = np.zeros((self.engine.crop_size, self.engine.crop_size, 3), np.uint8)
        faces = []
        for i, vector in enumerate(vectors):
            label = f"embedding {i + 1}"
            try:
                array = np.asarray(vector, dtype=np.float32).reshape(-1)
            except (TypeError, ValueError):
                raise ApiError(400, f"{label} is not a list of numbers.") from None
            if array.size != dim:
                raise ApiError(
                    422, f"{label} has {array.size} numbers; {pack.name} embeddings have {dim}."
                )
            norm = float(np.linalg.norm(array))
            if not np.isfinite(array).all() or norm < 1e-6:
                raise ApiError(422, f"{label} is not a usable embedding (zero or not finite).")
            array = array / norm
            digest = pixels_sha256(array)
            faces.append(EnrolFace(array, blank, f"api:{label}", digest, 1.0, 0.0, 0.0))
        added = self.store.add_faces(clean, faces, self.recognizer_id)
        results = tuple(PhotoResult(f.source[4:], "ok") for f in faces)
        return EnrolReport(clean, results, added.added, self._photos_of(clean), added.created)

    def _refuse(self, results: tuple[PhotoResult, ...], unreadable: int) -> NoReturn:
        """ApiError for an enrolment where no photo was usable: 400 when every photo was
        unreadable, else 422; the per-photo results go with it."""
        reasons = "; ".join(f"{r.label}: {r.result.rstrip('.')}" for r in results)
        raise ApiError(
            400 if unreadable == len(results) else 422,
            f"No photo was usable, nothing was stored ({reasons}).",
            {"photos": [r.to_json() for r in results]},
        )

    def _photos_of(self, name: str) -> int:
        return next((p.photos for p in self.store.people() if p.name == name), 0)

    # -- recognizing -----------------------------------------------------------------------
    def _refresh(self) -> None:
        with self._match_lock:
            self.matcher.refresh()

    def identify(self, image: np.ndarray, pick: Pick | None) -> list[IdentifiedFace]:
        """Every face of the photo (or the one `pick` chooses) with its name or None."""
        work, detections = detect_padded(self.engine, image)
        if pick is not None:
            try:
                index = pick_face(detections, pick, (work.shape[1], work.shape[0]))
            except FaceCountError:
                raise ApiError(422, "The photo holds no face that the detector can find.") from None
            detections = detections[index]
        if len(detections) == 0:
            return []
        faces = self.engine.embed(work, detections)
        self._refresh()
        with self._match_lock:
            matches = self.matcher.match(faces.embeddings)
        dx, dy = (work.shape[1] - image.shape[1]) // 2, (work.shape[0] - image.shape[0]) // 2
        h, w = image.shape[:2]
        out = []
        for box, points, match in zip(faces.xyxy, faces.landmarks, matches, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            xyxy = (
                min(max(x1 - dx, 0.0), w - 1.0),
                min(max(y1 - dy, 0.0), h - 1.0),
                min(max(x2 - dx, 0.0), w - 1.0),
                min(max(y2 - dy, 0.0), h - 1.0),
            )
            shifted = points - np.array([dx, dy], np.float32)
            out.append(IdentifiedFace(xyxy, shifted, match.name, float(match.similarity)))
        return out

    def verify(
        self, first: np.ndarray, second: np.ndarray, labels: tuple[str, str], pick: Pick | None
    ) -> Verification:
        """Whether the one face of each photo is the same person; ApiError 422 otherwise."""
        embeddings = []
        for image, label in zip((first, second), labels, strict=True):
            try:
                face = reference_face(self.engine, image, pick=pick or "only", label=label)
            except FaceCountError as exc:
                message = exc.message
                if "holds" in message and "faces" in message:
                    message += " Send ?pick=largest to use the largest face."
                raise ApiError(422, message) from None
            embeddings.append(face.embedding)
        return compare(embeddings[0], embeddings[1], self.threshold)

    # -- keys ------------------------------------------------------------------------------
    def find_key(self, key: str) -> ApiKey | None:
        return self.store.api_key_by_hash(key_hash(key))


def _name(name: str) -> str:
    try:
        return normalize_name(name)
    except GalleryError as exc:
        raise ApiError(400, exc.message) from None


# -- API keys (the `keys` commands) -----------------------------------------------------------
def create_key(store: Store, name: str, read_only: bool) -> str:
    """Make a key called `name`, store its hash, and return the key (shown once)."""
    key = new_key()
    store.add_api_key(check_key_name(name), key_hash(key), read_only)
    return key


def revoke_key(store: Store, name: str) -> None:
    clean = check_key_name(name)
    if not store.remove_api_key(clean):
        raise FaceRecognizerError(
            f"There is no key named {clean!r}.",
            hint="`face-recognizer keys list` shows the keys.",
        )
