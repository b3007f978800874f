"""People, photos and embeddings in SQLite: the source of truth of the gallery.

The gallery is one folder (`--db DIR`, else `$FACE_RECOGNIZER_DB`, else `./db`) holding one
SQLite file, `gallery.sqlite3`. Nothing on disk is named after a person: names are data.

* `people`   id, name (any Unicode, NFC, unique), created
* `faces`    one row per enrolled face: person, float32 embedding, the recognizer that made it
             (`ModelPack.recognizer_id`), where it came from and its sha256 (the dedup key),
             when, quality figures, and the 112x112 aligned crop as PNG (to show what was
             enrolled and to re-embed with another pack: `face-recognizer reindex`)
* `settings` key/value text (e.g. a per-gallery "threshold")

Every write is one transaction in WAL mode, so a process killed mid-way leaves either all of
a person's new photos or none, and readers in other processes never block writers. The file
carries an `application_id` and a schema version: a corrupt file, another program's SQLite
database, or a gallery from a newer version is a `GalleryError` and is never written to.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from face_recognizer.errors import GalleryError
from face_recognizer.images import pixels_sha256
from face_recognizer.quality import PhotoCheck, check_photo, detect_for_enrolment
from face_recognizer.types import Person

DB_FILE = "gallery.sqlite3"
ENV_DB = "FACE_RECOGNIZER_DB"
APPLICATION_ID = 0x46524543  # "FREC"
SCHEMA_VERSION = 1
MAX_NAME_LEN = 100
REINDEX_HINT = "Run `face-recognizer reindex` to re-embed the stored faces with this pack."

_SCHEMA = """
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
);
"""


def resolve_db_dir(db: str | Path | None) -> Path:
    """The gallery folder: `db` (from --db), else $FACE_RECOGNIZER_DB, else ./db."""
    if db is not None and str(db) != "":
        return Path(db).expanduser()
    env = os.environ.get(ENV_DB)
    return Path(env).expanduser() if env else Path("db")


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
    """What `Gallery.add_faces` did: the person's id, faces added, duplicates skipped,
    and whether the person was new."""

    person_id: int
    added: int
    duplicates: int
    created: bool


@dataclass(frozen=True, slots=True)
class StoredCrop:
    """An enrolled face's row id, person id and aligned crop (BGR uint8)."""

    face_id: int
    person_id: int
    crop: np.ndarray


def enrol_face(
    engine: Any, image: np.ndarray, source: str, source_hash: str | None = None
) -> tuple[EnrolFace | None, PhotoCheck]:
    """Check one photo (`quality.check_photo`) and, when usable, embed its face.

    `engine` is an `Engine`; tight crops are retried on a padded copy. `source_hash`
    defaults to the sha256 of the pixels. Returns (the face to store or None, the check).
    """
    work, detections = detect_for_enrolment(engine, image)
    check = check_photo(work, detections)
    if not check.usable or check.face is None:
        return None, check
    one = detections[check.face]
    crop = engine.align(work, one.landmarks)[0]
    embedding = engine.embed_crops(crop[None])[0]
    digest = source_hash or pixels_sha256(image)
    face = EnrolFace(
        embedding, crop, source, digest, float(one.scores[0]), check.face_px, check.blur
    )
    return face, check


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _encode_png(crop: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(crop))
    if not ok:  # pragma: no cover - PNG encoding of a uint8 image does not fail
        raise ValueError("could not encode the face crop as PNG")
    return data.tobytes()


def _decode_png(blob: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(blob, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise GalleryError("A stored face crop could not be decoded; the gallery is damaged.")
    return image


class Gallery:
    """The gallery database in `db_dir` (see the module docstring).

    Args:
        db_dir: the gallery folder; created (with the database) when missing and `create`.
        create: when False, a missing gallery is a GalleryError instead of a new one.

    Raises:
        GalleryError: `db_dir` is a file, or the database is corrupt, another program's,
            or from a newer version. Nothing is written in those cases.
    """

    def __init__(self, db_dir: str | Path, *, create: bool = True) -> None:
        self.db_dir = Path(db_dir)
        self.path = self.db_dir / DB_FILE
        if self.db_dir.exists() and not self.db_dir.is_dir():
            raise GalleryError(
                f"{str(self.db_dir)!r} is a file, not a gallery folder.",
                hint=f"Give --db a folder; the gallery lives in DIR/{DB_FILE}.",
            )
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if not exists and not create:
            raise GalleryError(
                f"No gallery at {str(self.db_dir)!r}.",
                hint="Enrol someone first: `face-recognizer register -n NAME` or "
                "`face-recognizer import DIR`.",
            )
        if self.path.exists() and not self.path.is_file():
            raise GalleryError(f"{str(self.path)!r} is not a file.")
        if exists:
            self._check_header()
        else:
            self.db_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=10.0, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise GalleryError(f"The gallery {str(self.path)!r} cannot be opened: {exc}.") from exc
        try:
            self._open(exists)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise GalleryError(
                f"{str(self.path)!r} is not a readable gallery database ({exc}).",
                hint="Give another --db folder; this file was left as it is.",
            ) from exc
        except GalleryError:
            self._conn.close()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _check_header(self) -> None:
        with self.path.open("rb") as fh:
            header = fh.read(16)
        if header != b"SQLite format 3\x00":
            raise GalleryError(
                f"{str(self.path)!r} is not a gallery database (not SQLite; corrupt?).",
                hint="Give another --db folder; this file was left as it is.",
            )

    def _open(self, exists: bool) -> None:
        conn = self._conn
        if exists:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app_id != APPLICATION_ID:
                raise GalleryError(
                    f"{str(self.path)!r} is an SQLite database of another program, "
                    "not a face-recognizer gallery.",
                    hint="Give another --db folder; this file was left as it is.",
                )
            if version > SCHEMA_VERSION:
                raise GalleryError(
                    f"The gallery {str(self.path)!r} was made by a newer face-recognizer "
                    f"(schema {version}, this one reads {SCHEMA_VERSION}).",
                    hint="Upgrade face-recognizer.",
                )
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = DELETE")  # e.g. a network file system
        conn.execute("PRAGMA synchronous = NORMAL")
        if not exists:
            with self._transaction():
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        else:
            conn.execute("SELECT count(*) FROM people").fetchone()  # fails if damaged

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------
    def add_faces(self, name: str, faces: Sequence[EnrolFace], recognizer_id: str) -> AddResult:
        """Store `faces` for `name` in one transaction, creating the person if new.

        Faces whose `source_hash` this person already has are skipped (counted as
        duplicates). Raises GalleryError when the gallery holds another pack's embeddings or
        the embedding size differs from the stored ones.
        """
        name = normalize_name(name)
        with self._transaction() as conn:
            self.check_pack(recognizer_id, faces)
            row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            created = row is None
            if created:
                person_id = conn.execute(
                    "INSERT INTO people (name, created) VALUES (?, ?)", (name, _now())
                ).lastrowid
            else:
                person_id = row[0]
            added = 0
            for face in faces:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO faces (person_id, recognizer_id, embedding, crop_png,"
                    " source, source_hash, created, det_score, face_px, blur)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        person_id,
                        recognizer_id,
                        face.embedding.tobytes(),
                        _encode_png(face.crop),
                        face.source,
                        face.source_hash,
                        _now(),
                        float(face.det_score),
                        float(face.face_px),
                        float(face.blur),
                    ),
                )
                added += cursor.rowcount
            if created and added == 0:  # a new person with nothing new: do not create
                conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
        assert person_id is not None
        return AddResult(int(person_id), added, len(faces) - added, created and added > 0)

    def check_pack(self, recognizer_id: str, faces: Sequence[EnrolFace] = ()) -> None:
        """GalleryError (naming `face-recognizer reindex`) unless every stored face was made
        by `recognizer_id`, or when `faces` differ in embedding size from the stored ones."""
        others = self.recognizer_ids()
        others.pop(recognizer_id, None)
        if others:
            raise GalleryError(
                f"The gallery {str(self.db_dir)!r} holds embeddings of another model pack "
                f"({', '.join(sorted(others))}).",
                hint=REINDEX_HINT,
            )
        row = self._conn.execute(
            "SELECT length(embedding) FROM faces WHERE recognizer_id = ? LIMIT 1",
            (recognizer_id,),
        ).fetchone()
        sizes = {f.embedding.nbytes for f in faces} | ({row[0]} if row else set())
        if len(sizes) > 1:
            raise GalleryError("Embeddings of different sizes cannot share one gallery.")

    def remove_person(self, name: str) -> int:
        """Delete a person with all their faces; returns how many faces went."""
        name = normalize_name(name)
        with self._transaction() as conn:
            person_id = self._person_id(name)
            photos = conn.execute(
                "SELECT count(*) FROM faces WHERE person_id = ?", (person_id,)
            ).fetchone()[0]
            conn.execute("DELETE FROM faces WHERE person_id = ?", (person_id,))
            conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
        return int(photos)

    def rename_person(self, old: str, new: str) -> None:
        """Give a person another name; GalleryError if `old` is unknown or `new` is taken."""
        old, new = normalize_name(old), normalize_name(new)
        with self._transaction() as conn:
            person_id = self._person_id(old)
            if old == new:
                return
            if conn.execute("SELECT 1 FROM people WHERE name = ?", (new,)).fetchone():
                raise GalleryError(
                    f"{new!r} is already in the gallery.",
                    hint="Remove one of them first with `face-recognizer people remove`.",
                )
            conn.execute("UPDATE people SET name = ? WHERE id = ?", (new, person_id))

    def replace_embeddings(
        self, face_ids: Sequence[int], embeddings: np.ndarray, recognizer_id: str
    ) -> None:
        """Set new embeddings (N, D) for faces `face_ids` and the pack that made them, in one
        transaction (`reindex`); GalleryError, and nothing changed, when a face of another
        pack is left over (one was added meanwhile)."""
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(face_ids):
            raise ValueError(f"need one embedding per face id, got {vectors.shape}")
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE faces SET embedding = ?, recognizer_id = ? WHERE id = ?",
                [
                    (v.tobytes(), recognizer_id, int(i))
                    for i, v in zip(face_ids, vectors, strict=True)
                ],
            )
            stale = conn.execute(
                "SELECT count(*) FROM faces WHERE recognizer_id != ?", (recognizer_id,)
            ).fetchone()[0]
            if stale:
                raise GalleryError("The gallery changed while it was re-embedded; run it again.")

    def set_setting(self, key: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )

    # -- reading ---------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _person_id(self, name: str) -> int:
        row = self._conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise GalleryError(
                f"{name!r} is not in the gallery.",
                hint="`face-recognizer people list` shows who is.",
            )
        return int(row[0])

    def people(self) -> list[Person]:
        """Everyone enrolled, by name, with their number of photos."""
        rows = self._conn.execute(
            "SELECT p.id, p.name, count(f.id), p.created FROM people p"
            " LEFT JOIN faces f ON f.person_id = p.id GROUP BY p.id ORDER BY p.name"
        ).fetchall()
        return [Person(int(i), n, int(c), datetime.fromisoformat(t)) for i, n, c, t in rows]

    def person_names(self) -> dict[int, str]:
        return {int(i): n for i, n in self._conn.execute("SELECT id, name FROM people")}

    def recognizer_ids(self) -> dict[str, int]:
        """How many faces each recognizer (model pack) made."""
        rows = self._conn.execute(
            "SELECT recognizer_id, count(*) FROM faces GROUP BY recognizer_id"
        ).fetchall()
        return {str(r): int(c) for r, c in rows}

    def embeddings(self, recognizer_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(person_ids int64 (N,), vectors float32 (N, D)) of the faces made by `recognizer_id`."""
        rows = self._conn.execute(
            "SELECT person_id, embedding FROM faces WHERE recognizer_id = ? ORDER BY id",
            (recognizer_id,),
        ).fetchall()
        labels = np.array([r[0] for r in rows], dtype=np.int64)
        if not rows:
            return labels, np.zeros((0, 0), dtype=np.float32)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        return labels, vectors.reshape(len(rows), -1).copy()

    def crops(self) -> list[StoredCrop]:
        """Every stored face's aligned crop, for re-embedding."""
        rows = self._conn.execute("SELECT id, person_id, crop_png FROM faces ORDER BY id")
        return [StoredCrop(int(i), int(p), _decode_png(b)) for i, p, b in rows]

    def source_hashes(self, name: str) -> set[str]:
        """The `source_hash` of every face `name` has (empty for someone not enrolled)."""
        rows = self._conn.execute(
            "SELECT f.source_hash FROM faces f JOIN people p ON p.id = f.person_id"
            " WHERE p.name = ?",
            (normalize_name(name),),
        )
        return {str(r[0]) for r in rows}

    def face_count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM faces").fetchone()[0])

    def change_token(self) -> object:
        """A value that differs after any committed write, by this or any other process.

        `PRAGMA data_version` changes when another connection commits; `total_changes`
        counts this connection's own writes. Costs a few microseconds.
        """
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        return (int(version), self._conn.total_changes)
