"""The storage interface every gallery store implements, and the types that cross it.

`Store` is an abstract base class rather than a `typing.Protocol`: a store is always written
for this package (never an outside class that happens to fit), and the base class carries
shared behaviour (name checks, the context manager, `merge_people` built on the other
methods) that a Protocol could not. A store missing a method fails when it is created
(TypeError naming the method), not at the first call in the middle of a live run.

Schema changes are one list, `MIGRATIONS`: numbered steps, each with the SQL of every store
dialect. A store runs, in one transaction, every step above the version a gallery holds and
records it in the `schema_migrations` table. A later feature (sightings, API keys) adds its
tables by appending one `Migration`; it never edits an earlier one.
"""

from __future__ import annotations

import abc
import contextlib
import re
import unicodedata
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from face_recognizer.errors import GalleryError
from face_recognizer.types import Person

MAX_NAME_LEN = 100
# A face at least this similar to another person's stored photo is "nearly the same photo"
# (`Store.similar_faces`): measured with bench/near_duplicates.py (README, "What survives what").
NEAR_DUPLICATE_SIMILARITY = 0.81
REINDEX_HINT = "Run `face-recognizer reindex` to re-embed the stored faces with this pack."


def normalize_name(name: str) -> str:
    """A person's display name as stored: NFC, outer spaces stripped; GalleryError if unusable."""
    clean = unicodedata.normalize("NFC", str(name)).strip()
    if not clean:
        raise GalleryError("A person's name cannot be empty.")
    if len(clean) > MAX_NAME_LEN:
        raise GalleryError(f"A person's name can have at most {MAX_NAME_LEN} characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in clean):
        raise GalleryError(f"The name {clean!r} holds control characters or line breaks.")
    return clean


def encode_png(crop: np.ndarray) -> bytes:
    """A face crop as stored: PNG bytes (lossless)."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(crop))
    if not ok:  # pragma: no cover - PNG encoding of a uint8 image does not fail
        raise ValueError("could not encode the face crop as PNG")
    return data.tobytes()


def decode_png(blob: bytes) -> np.ndarray:
    """A stored face crop back as BGR uint8; GalleryError when the bytes are damaged."""
    image = cv2.imdecode(np.frombuffer(blob, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise GalleryError("A stored face crop could not be decoded; the gallery is damaged.")
    return image


def ids_and_vectors(rows: Sequence[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64 (N,), vectors float32 (N, D)) of rows (id, float32 embedding bytes)."""
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    if not rows:
        return ids, np.zeros((0, 0), dtype=np.float32)
    vectors = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.float32)
    return ids, vectors.reshape(len(rows), -1).copy()


@dataclass(frozen=True, slots=True)
class EnrolFace:
    """One face to store.

    Attributes:
        embedding: (D,) float32 L2-normalised.
        crop: (112, 112, 3) uint8 aligned BGR crop.
        source: where it came from: a file path, "camera:0 frame 123", ...
        source_hash: sha256 hex of the source bytes (or of the frame): the dedup key.
        det_score: detector confidence.
        face_px: min(box width, height) in pixels.
        blur: Laplacian variance of the face (`quality.blur_score`).
    """

    embedding: np.ndarray
    crop: np.ndarray
    source: str
    source_hash: str
    det_score: float
    face_px: float
    blur: float

    def __post_init__(self) -> None:
        emb = np.ascontiguousarray(self.embedding, dtype=np.float32).reshape(-1)
        if emb.size == 0 or not np.isfinite(emb).all():
            raise ValueError("embedding must be a non-empty finite vector")
        object.__setattr__(self, "embedding", emb)
        crop = np.asarray(self.crop)
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError(f"crop must be a (S, S, 3) uint8 BGR image, got {crop.shape}")


@dataclass(frozen=True, slots=True)
class AddResult:
    """What `Store.add_faces` did: the person's id, faces added, duplicates skipped (photos
    this person already has), whether the person was new, and `taken`: (source, name) of each
    face refused because another person has the same photo file."""

    person_id: int
    added: int
    duplicates: int
    created: bool
    taken: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SimilarFace:
    """A face to enrol that is nearly identical to a stored photo of another person."""

    source: str
    name: str
    similarity: float

    def sentence(self) -> str:
        return (
            f"{self.source} shows a face nearly identical to one of {self.name}'s photos "
            f"(similarity {self.similarity:.2f}); is it filed under the right person?"
        )


@dataclass(frozen=True, slots=True)
class StoredCrop:
    """An enrolled face's row id, person id and aligned crop (BGR uint8)."""

    face_id: int
    person_id: int
    crop: np.ndarray


@dataclass(frozen=True, slots=True)
class SightingInfo:
    """What is known of one tracked face (the fields stored and read back).

    Attributes:
        source: what it was seen in: camera index, URL, video file or photo path.
        started, ended: wall-clock times (timezone-aware) of its first and last frame.
        start_pos, end_pos: seconds into a video file; None for cameras, URLs and photos.
        first_frame, last_frame: frame indices in the source.
        name: who it was, None for a stranger (a name no longer enrolled is stored as None).
        best_similarity, mean_similarity: of the matches behind the name (for a stranger:
            of all its matches).
        frames: frames the face was detected in.
        face_px: min(width, height) of the face box in its best view, in pixels.
    """

    source: str
    started: datetime
    ended: datetime
    start_pos: float | None
    end_pos: float | None
    first_frame: int
    last_frame: int
    name: str | None
    best_similarity: float
    mean_similarity: float
    frames: int
    face_px: float

    def __post_init__(self) -> None:
        for label, when in (("started", self.started), ("ended", self.ended)):
            if when.tzinfo is None:
                raise ValueError(f"{label} must be timezone-aware, got {when!r}")


@dataclass(frozen=True, slots=True)
class NewSighting(SightingInfo):
    """A sighting to store (`Store.add_sightings`), with what it holds besides its info.

    Attributes:
        recognizer_id: the model pack that made `embedding`.
        embedding: (D,) float32 L2-normalised (e.g. the track's mean), None when never embedded.
        crop: (H, W, 3) uint8 BGR best view of the face, None when there is none.
    """

    recognizer_id: str = ""
    embedding: np.ndarray | None = None
    crop: np.ndarray | None = None

    def __post_init__(self) -> None:
        SightingInfo.__post_init__(self)
        if not self.recognizer_id:
            raise ValueError("recognizer_id must name the pack that made the embedding")
        if self.embedding is not None:
            emb = np.ascontiguousarray(self.embedding, dtype=np.float32).reshape(-1)
            if emb.size == 0 or not np.isfinite(emb).all():
                raise ValueError("embedding must be a non-empty finite vector")
            object.__setattr__(self, "embedding", emb)


@dataclass(frozen=True, slots=True)
class Sighting(SightingInfo):
    """A stored sighting: its info, its row id and, for a stranger, the id of the group of
    recurring strangers it belongs to (None: none yet)."""

    id: int = 0
    group_id: int | None = None


@dataclass(frozen=True, slots=True)
class FaceRecord:
    """One stored face with its person's name, as `Store.export_faces` yields it (to copy a
    gallery: `store.copy`). `crop` is None when exported without crops."""

    name: str
    recognizer_id: str
    embedding: np.ndarray
    crop: np.ndarray | None
    source: str
    source_hash: str
    det_score: float
    face_px: float
    blur: float

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> FaceRecord:
        """From (name, recognizer_id, embedding bytes, crop PNG bytes or None, source,
        source_hash, det_score, face_px, blur), as both stores select them."""
        name, rid, emb, png, source, digest, det, px, blur = row
        return cls(
            str(name),
            str(rid),
            np.frombuffer(bytes(emb), dtype=np.float32).copy(),
            None if png is None else decode_png(bytes(png)),
            str(source),
            str(digest),
            float(det),
            float(px),
            float(blur),
        )

    def enrol_face(self) -> EnrolFace:
        """The face as `add_faces` takes it (needs the crop)."""
        if self.crop is None:
            raise ValueError("this record was exported without its crop")
        return EnrolFace(
            self.embedding,
            self.crop,
            self.source,
            self.source_hash,
            self.det_score,
            self.face_px,
            self.blur,
        )


@dataclass(frozen=True, slots=True)
class EnrolledPhoto:
    """One enrolled face of a person as `people show` lists it: where it came from, when,
    its quality (detector score, face size in pixels, sharpness) and its aligned crop."""

    face_id: int
    source: str
    created: datetime
    det_score: float
    face_px: float
    blur: float
    crop: np.ndarray


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key's description (the key itself is never stored, only its SHA-256):
    its name, whether it may only read, when it was made (UTC)."""

    name: str
    read_only: bool
    created: datetime

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "read_only": self.read_only, "created": self.created.isoformat()}


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema step: `sql[dialect]` is a script of `;`-separated statements."""

    version: int
    name: str
    sql: Mapping[str, str] = field(default_factory=dict)

    def statements(self, dialect: str) -> list[str]:
        if dialect not in self.sql:
            raise GalleryError(
                f"Schema step {self.version} ({self.name}) has no {dialect} version.",
                hint="This build of face-recognizer is incomplete; reinstall it.",
            )
        # A statement ends with `;` at the end of a line, so that a trigger written on one
        # line (`... BEGIN UPDATE ...; END`) stays one statement.
        return [s.strip() for s in re.split(r";[ \t]*(?:\n|$)", self.sql[dialect]) if s.strip()]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "people, faces, settings",
        {
            "sqlite": """
CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
CREATE TABLE faces (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    recognizer_id TEXT NOT NULL,
    embedding BLOB NOT NULL,
    crop_png BLOB NOT NULL,
    source TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    created TEXT NOT NULL,
    det_score REAL NOT NULL,
    face_px REAL NOT NULL,
    blur REAL NOT NULL,
    UNIQUE (person_id, source_hash)
);
CREATE INDEX faces_recognizer ON faces (recognizer_id);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
            "postgresql": """
CREATE TABLE people (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created TIMESTAMPTZ NOT NULL
);
CREATE TABLE faces (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    recognizer_id TEXT NOT NULL,
    embedding BYTEA NOT NULL,
    crop_png BYTEA NOT NULL,
    source TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    created TIMESTAMPTZ NOT NULL,
    det_score DOUBLE PRECISION NOT NULL,
    face_px DOUBLE PRECISION NOT NULL,
    blur DOUBLE PRECISION NOT NULL,
    UNIQUE (person_id, source_hash)
);
-- vectors stay in the row (read at every start), PNGs are compressed already
ALTER TABLE faces ALTER COLUMN embedding SET STORAGE PLAIN;
ALTER TABLE faces ALTER COLUMN crop_png SET STORAGE EXTERNAL;
CREATE INDEX faces_recognizer ON faces (recognizer_id);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
        },
    ),
    Migration(
        2,
        "look up a photo across people by its hash",
        {
            "sqlite": "CREATE INDEX faces_source_hash ON faces (source_hash)",
            "postgresql": "CREATE INDEX faces_source_hash ON faces (source_hash)",
        },
    ),
    Migration(
        3,
        "sightings of tracked faces, groups of recurring strangers",
        {
            # Sightings are written all the time by a running `recognize`: the triggers count
            # only writes to people, faces and settings, so that `change_token` (and the
            # matcher's reload) ignores them.
            "sqlite": """
CREATE TABLE unknown_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL
);
CREATE TABLE sightings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT NOT NULL,
    start_pos REAL,
    end_pos REAL,
    first_frame BIGINT NOT NULL,
    last_frame BIGINT NOT NULL,
    person_id BIGINT REFERENCES people(id) ON DELETE CASCADE,
    group_id BIGINT REFERENCES unknown_groups(id) ON DELETE SET NULL,
    best_similarity REAL NOT NULL,
    mean_similarity REAL NOT NULL,
    frames BIGINT NOT NULL,
    face_px REAL NOT NULL,
    recognizer_id TEXT NOT NULL,
    embedding BLOB,
    crop_png BLOB
);
CREATE INDEX sightings_started ON sightings (started);
CREATE INDEX sightings_person ON sightings (person_id);
CREATE INDEX sightings_group ON sightings (group_id);
CREATE TABLE gallery_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    counter INTEGER NOT NULL
);
INSERT INTO gallery_changes (id, counter) VALUES (1, 0);
CREATE TRIGGER people_insert_counted AFTER INSERT ON people
BEGIN UPDATE gallery_changes SET counter = counter + 1; END;
CREATE TRIGGER people_update_counted AFTER UPDATE ON people
BEGIN UPDATE gallery_changes SET counter = counter + 1; END;
CREATE TRIGGER people_delete_counted AFTER DELETE ON people
BEGIN UPDATE gallery_changes SET counter = counter + 1; END;
CREATE TRIGGER faces_insert_counted AFTER INSERT ON faces
BEGIN UPDATE gallery_changes SET counter = counter + 1; END;
CREATE TRIGGER faces_update_counted AFTER UPDATE ON faces
BEGIN UPDATE gallery_changes SET counter = counter + 1; END;
CREATE TRIGGER faces_delete_counted AFTER DELETE ON faces
BEGIN UPDATE gallery_changes SET counter = counter + 1; END;
CREATE TRIGGER settings_insert_counted AFTER INSERT ON settings
BEGIN UPDATE gallery_changes SET counter = counter + 1; END;
CREATE TRIGGER settings_update_counted AFTER UPDATE ON settings
BEGIN UPDATE gallery_changes SET counter = counter + 1; END;
CREATE TRIGGER settings_delete_counted AFTER DELETE ON settings
BEGIN UPDATE gallery_changes SET counter = counter + 1; END""",
            "postgresql": """
CREATE TABLE unknown_groups (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    created TIMESTAMPTZ NOT NULL
);
CREATE TABLE sightings (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    started TIMESTAMPTZ NOT NULL,
    ended TIMESTAMPTZ NOT NULL,
    start_pos DOUBLE PRECISION,
    end_pos DOUBLE PRECISION,
    first_frame BIGINT NOT NULL,
    last_frame BIGINT NOT NULL,
    person_id BIGINT REFERENCES people(id) ON DELETE CASCADE,
    group_id BIGINT REFERENCES unknown_groups(id) ON DELETE SET NULL,
    best_similarity DOUBLE PRECISION NOT NULL,
    mean_similarity DOUBLE PRECISION NOT NULL,
    frames BIGINT NOT NULL,
    face_px DOUBLE PRECISION NOT NULL,
    recognizer_id TEXT NOT NULL,
    embedding BYTEA,
    crop_png BYTEA
);
CREATE INDEX sightings_started ON sightings (started);
CREATE INDEX sightings_person ON sightings (person_id);
CREATE INDEX sightings_group ON sightings (group_id)""",
        },
    ),
    Migration(
        4,
        "API keys of `face-recognizer serve` (their SHA-256 only)",
        {
            "sqlite": """
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    key_sha256 TEXT NOT NULL UNIQUE,
    read_only INTEGER NOT NULL,
    created TEXT NOT NULL
)""",
            "postgresql": """
CREATE TABLE api_keys (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    key_sha256 TEXT NOT NULL UNIQUE,
    read_only BOOLEAN NOT NULL,
    created TIMESTAMPTZ NOT NULL
)""",
        },
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

# The table that records which steps a gallery holds (created before step 1 runs).
MIGRATIONS_TABLE = "schema_migrations"


class Store(abc.ABC):
    """A gallery: people, their enrolled faces (embedding, crop, quality, source sha256) and
    settings. Every method is safe to call from several threads at once; every failure of the
    storage underneath is a `GalleryError` whose message says what to do.

    Names are checked and normalised with `normalize_name` (NFC, no control characters).
    """

    #: Where the gallery lives, for messages (a folder, or a URL without its password).
    location: str
    #: False when the last removal is gone from the gallery but not yet from its files,
    #: because another process still reads the old data (see `wipe`).
    wiped: bool = True

    # -- transactions and changes ------------------------------------------------------------
    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A context in which several calls of this thread are one transaction: all are kept
        or, when the block raises, none. Other threads' calls wait until it ends."""

    @abc.abstractmethod
    def change_token(self) -> Hashable:
        """A cheap value that differs after any committed write, by this or another process."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The highest `Migration.version` this gallery holds."""

    @abc.abstractmethod
    def close(self) -> None:
        """Let go of the gallery; further calls fail."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- people and faces ------------------------------------------------------------------
    @abc.abstractmethod
    def add_faces(
        self,
        name: str,
        faces: Sequence[EnrolFace],
        recognizer_id: str,
        *,
        same_photo_ok: bool = False,
    ) -> AddResult:
        """Store `faces` for `name` in one transaction, creating the person if new.

        Faces whose `source_hash` this person already has are skipped (counted as duplicates);
        so are faces whose `source_hash` another person has (one photo, one name: listed in
        `AddResult.taken`) unless `same_photo_ok`. A new person with nothing new is not
        created. GalleryError when the gallery holds another pack's embeddings or the
        embedding size differs from the stored ones.
        """

    def similar_faces(
        self, name: str, faces: Sequence[EnrolFace], recognizer_id: str, threshold: float
    ) -> list[SimilarFace]:
        """For each of `faces` (to be enrolled as `name`) whose embedding is at least
        `threshold` similar to a stored face of another person: that person and the
        similarity (the best one per face)."""
        labels, vectors = self.embeddings(recognizer_id)
        if not faces or len(labels) == 0:
            return []
        names = self.person_names()
        others = np.array([names.get(int(i)) != normalize_name(name) for i in labels])
        if not others.any():
            return []
        labels, vectors = labels[others], vectors[others]
        found = []
        for face in faces:
            if face.embedding.shape[0] != vectors.shape[1]:
                continue
            sims = vectors @ face.embedding
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                who = names.get(int(labels[best]), "?")
                found.append(SimilarFace(face.source, who, float(sims[best])))
        return found

    @abc.abstractmethod
    def check_pack(self, recognizer_id: str, faces: Sequence[EnrolFace] = ()) -> None:
        """GalleryError (with `REINDEX_HINT`) unless every stored face was made by
        `recognizer_id`, or when `faces` differ in embedding size from the stored ones."""

    @abc.abstractmethod
    def remove_person(self, name: str) -> int:
        """Delete a person with all their faces; returns how many faces went."""

    def wipe(self) -> bool:
        """Make removed data unreadable in the store's files now; False (and `wiped` False)
        when another process's long read still holds it: it goes when that process lets go.
        Stores that never keep removed data readable return True."""
        return True

    @abc.abstractmethod
    def rename_person(self, old: str, new: str) -> None:
        """Give a person another name; GalleryError if `old` is unknown or `new` is taken."""

    @abc.abstractmethod
    def move_faces(self, source: str, target: str) -> int:
        """Give every face of `source` to `target` (who must exist) and remove `source`, in one
        transaction; faces `target` already has (same source_hash) are dropped. Returns how
        many faces moved."""

    def merge_people(self, source: str, target: str) -> int:
        """Fold `source` into `target` (see `move_faces`); GalleryError when they are one."""
        if normalize_name(source) == normalize_name(target):
            raise GalleryError(f"{normalize_name(source)!r} cannot be merged into itself.")
        return self.move_faces(source, target)

    @abc.abstractmethod
    def replace_embeddings(
        self, face_ids: Sequence[int], embeddings: np.ndarray, recognizer_id: str
    ) -> None:
        """Set new embeddings (N, D) for `face_ids` and the pack that made them (`reindex`),
        in one transaction; GalleryError, nothing changed, when another pack's face is left."""

    @abc.abstractmethod
    def people(self) -> list[Person]:
        """Everyone enrolled, by name, with their number of photos."""

    @abc.abstractmethod
    def person_names(self) -> dict[int, str]:
        """person id -> name."""

    @abc.abstractmethod
    def recognizer_ids(self) -> dict[str, int]:
        """How many faces each recognizer (model pack) made."""

    @abc.abstractmethod
    def embeddings(self, recognizer_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(person_ids int64 (N,), vectors float32 (N, D)) of the faces made by `recognizer_id`,
        in the order they were stored."""

    @abc.abstractmethod
    def crops(self) -> list[StoredCrop]:
        """Every stored face's aligned crop, for re-embedding."""

    @abc.abstractmethod
    def photos_of(self, name: str) -> list[EnrolledPhoto]:
        """Every enrolled face of `name`, oldest first; GalleryError if `name` is unknown."""

    @abc.abstractmethod
    def source_hashes(self, name: str) -> set[str]:
        """The `source_hash` of every face `name` has (empty for someone not enrolled)."""

    @abc.abstractmethod
    @abc.abstractmethod
    def export_faces(self, *, crops: bool = True) -> Iterator[FaceRecord]:
        """Every stored face, by person name (code point order) then as stored; streamed, so
        a large gallery is never all in memory. Without `crops`, `FaceRecord.crop` is None."""

    @abc.abstractmethod
    def face_count(self) -> int:
        """How many faces are stored."""

    # -- sightings -------------------------------------------------------------------------
    @abc.abstractmethod
    def add_sightings(self, sightings: Sequence[NewSighting]) -> list[int]:
        """Store `sightings` in one transaction; returns their ids, in order."""

    @abc.abstractmethod
    def sightings(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        name: str | None = None,
        unknown: bool = False,
        source: str | None = None,
        ids: Sequence[int] | None = None,
        group_id: int | None = None,
    ) -> list[Sighting]:
        """Sightings that started in [since, until), of `name` (or only strangers with
        `unknown`), seen in `source`, among `ids`, in group `group_id`; oldest first."""

    @abc.abstractmethod
    def unknown_embeddings(self, recognizer_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(sighting ids int64 (N,), vectors float32 (N, D)) of the strangers' sightings that
        `recognizer_id` embedded, by id."""

    @abc.abstractmethod
    def sighting_crops(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """sighting id -> its best face crop (BGR uint8), for the ids that have one."""

    @abc.abstractmethod
    def set_sighting_groups(self, groups: Mapping[int, int | None]) -> None:
        """Put sightings (id -> group id, None for no group) in groups, in one transaction.
        A group id not used before is recorded, so `next_group_id` never hands it out again."""

    @abc.abstractmethod
    def next_group_id(self) -> int:
        """The smallest group id never used (ids of forgotten groups are not reused)."""

    @abc.abstractmethod
    def name_sightings(self, ids: Sequence[int], name: str) -> int:
        """Make `ids` sightings of the enrolled `name` (no longer in a group); returns how
        many changed. GalleryError when `name` is not enrolled."""

    @abc.abstractmethod
    def delete_sightings(self, ids: Sequence[int]) -> int:
        """Delete these sightings with their crops and embeddings; returns how many went."""

    @abc.abstractmethod
    def face_ids(self, person_ids: Sequence[int]) -> dict[int, list[int]]:
        """person id -> the ids of their faces, in the order stored (for the given people)."""

    @abc.abstractmethod
    def crop_png(self, face_id: int) -> bytes | None:
        """The stored PNG of a face's aligned crop; None when there is no such face."""

    @abc.abstractmethod
    def remove_face(self, face_id: int) -> tuple[str, int] | None:
        """Delete one face, in one transaction; (its person's name, their faces left), and the
        person goes too when that was their last face. None when there is no such face."""

    # -- API keys (`face-recognizer keys`, `serve`) -----------------------------------------
    @abc.abstractmethod
    def add_api_key(self, name: str, key_sha256: str, read_only: bool) -> None:
        """Store a key's hash under `name`; GalleryError when the name is taken."""

    @abc.abstractmethod
    def api_keys(self) -> list[ApiKey]:
        """Every key, by name."""

    @abc.abstractmethod
    def remove_api_key(self, name: str) -> bool:
        """Delete the key `name`; False when there is none."""

    @abc.abstractmethod
    def api_key_by_hash(self, key_sha256: str) -> ApiKey | None:
        """The key with this SHA-256 (hex), None when none (unknown or revoked)."""

    # -- settings --------------------------------------------------------------------------
    @abc.abstractmethod
    def get_setting(self, key: str) -> str | None:
        """A setting's text, None when unset."""

    @abc.abstractmethod
    def settings(self) -> dict[str, str]:
        """Every setting: key -> text."""

    @abc.abstractmethod
    def set_setting(self, key: str, value: str) -> None:
        """Store a setting (one transaction)."""
