"""People, photos and embeddings in SQLite: the embedded gallery store (`store.base.Store`).

The gallery is one folder (`--db DIR`, else `$FACE_RECOGNIZER_DB`, else `./db`) holding one
SQLite file, `gallery.sqlite3`. Nothing on disk is named after a person: names are data.
The folder is created readable by its owner only (0700), the file likewise (0600): faces and
embeddings are biometric data. The tables are `store.base.MIGRATIONS`.

Every write is one transaction in WAL mode, so a process killed mid-way leaves either all of
a person's new photos or none, and readers in other processes never block writers. The file
carries an `application_id` and a schema version: a corrupt file, another program's SQLite
database, or a gallery from a newer version is a `GalleryError` and is never written to. A new
gallery is made in one transaction too: a file killed before it committed is an SQLite file
without tables or id, which the next open recognizes as our unfinished gallery and finishes.

Threads: one connection per `Gallery`, guarded by one re-entrant lock. A connection per
thread would leave connections behind in every pooled thread that ends (a web server's),
would give each thread its own `PRAGMA data_version` (the change token), and would turn
in-process contention into file-lock waits; the lock costs nothing measurable at the
gallery's sizes, and other processes still read while we write (WAL).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Hashable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from face_recognizer.errors import GalleryError
from face_recognizer.store.base import (
    MAX_NAME_LEN,
    MIGRATIONS,
    MIGRATIONS_TABLE,
    REINDEX_HINT,
    SCHEMA_VERSION,
    AddResult,
    EnrolFace,
    FaceRecord,
    StoredCrop,
    encode_png,
    ids_and_vectors,
    normalize_name,
)
from face_recognizer.store.sql import ALL_TABLES, SqlStore

__all__ = [
    "APPLICATION_ID",
    "DB_FILE",
    "ENV_DB",
    "MAX_NAME_LEN",
    "REINDEX_HINT",
    "SCHEMA_VERSION",
    "AddResult",
    "EnrolFace",
    "Gallery",
    "StoredCrop",
    "normalize_name",
    "resolve_db_dir",
]

DB_FILE = "gallery.sqlite3"
ENV_DB = "FACE_RECOGNIZER_DB"
APPLICATION_ID = 0x46524543  # "FREC"
BUSY_TIMEOUT_S = 10.0
DIALECT = "sqlite"


def resolve_db_dir(db: str | Path | None) -> Path:
    """The gallery folder: `db` (from --db), else $FACE_RECOGNIZER_DB, else ./db."""
    if db is not None and str(db) != "":
        return Path(db).expanduser()
    env = os.environ.get(ENV_DB)
    return Path(env).expanduser() if env else Path("db")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _stamp(when: datetime) -> str:
    """A timezone-aware time as UTC ISO 8601 with milliseconds: text that sorts by time."""
    if when.tzinfo is None:
        raise ValueError(f"times must be timezone-aware, got {when!r}")
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def storage_error(exc: sqlite3.Error, path: Path) -> GalleryError:
    """One sentence for an SQLite failure on the gallery `path`: its cause and what to do."""
    code = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc)
    where = repr(str(path))
    if code.startswith("SQLITE_FULL") or "disk is full" in text:
        return GalleryError(
            f"The disk holding the gallery {where} is full; nothing was changed.",
            hint="Free some space and run the command again.",
        )
    if code.startswith("SQLITE_IOERR") and _low_on_space(path):
        return GalleryError(
            f"The disk holding the gallery {where} is full; nothing was changed.",
            hint="Free some space and run the command again.",
        )
    if code.startswith("SQLITE_READONLY") or "readonly" in text:
        return GalleryError(
            f"The gallery {where} cannot be written: it or its folder is read-only.",
            hint="Make the folder and its files writable by you, or use another gallery.",
        )
    if code.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return GalleryError(
            f"The gallery {where} cannot be opened: no permission, or its folder is read-only.",
            hint="Make the folder and its files readable and writable by you.",
        )
    if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text:
        return GalleryError(
            f"The gallery {where} is damaged ({text}); it was left as it is.",
            hint=f"Save what is readable with `sqlite3 {path} .recover > saved.sql`, "
            "then use another gallery.",
        )
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return GalleryError(
            f"The gallery {where} was locked by another program for more than "
            f"{BUSY_TIMEOUT_S:.0f} s; nothing was changed.",
            hint="Wait for it to finish (or close it) and try again.",
        )
    if code.startswith("SQLITE_IOERR"):
        return GalleryError(
            f"Reading or writing the gallery {where} failed ({text}); nothing was changed.",
            hint="Check the disk and try again.",
        )
    return GalleryError(
        f"The gallery {where} could not be used ({text}).",
        hint="Check the disk and the folder's permissions and try again.",
    )


def _low_on_space(path: Path) -> bool:
    folder = path.parent if path.parent.exists() else Path(".")
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


class Gallery(SqlStore):
    """The SQLite gallery in folder `db_dir` (see the module docstring).

    Args:
        db_dir: the gallery folder; created (with the database) when missing and `create`.
        create: when False, a missing gallery is a GalleryError instead of a new one.

    Raises:
        GalleryError: `db_dir` is a file, or the database is corrupt, another program's,
            from a newer version, or cannot be read or written. Nothing is written then.
    """

    def __init__(self, db_dir: str | Path, *, create: bool = True) -> None:
        self.db_dir = Path(db_dir)
        self.path = self.db_dir / DB_FILE
        self.location = str(self.db_dir)
        self._lock = threading.RLock()
        self._depth = 0  # transaction nesting of the thread holding the lock
        self._closed = True
        #: False when the last removal could not yet be wiped from the files (see `wipe`).
        self.wiped = True
        if self.db_dir.exists() and not self.db_dir.is_dir():
            raise GalleryError(
                f"{str(self.db_dir)!r} is a file, not a gallery folder.",
                hint=f"Give a folder; the gallery lives in FOLDER/{DB_FILE}.",
            )
        if self.path.exists() and not self.path.is_file():
            raise GalleryError(f"{str(self.path)!r} is not a file.")
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists:
            self._check_header()
        elif not create:
            raise GalleryError(
                f"No gallery at {str(self.db_dir)!r}.",
                hint="Enrol someone first: `face-recognizer register -n NAME` or "
                "`face-recognizer import DIR`.",
            )
        else:
            self._make_file()
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path) from exc
        self._raw_token: tuple[int, int] | None = None  # see `change_token`
        self._token = 0
        self._closed = False
        try:
            self._open(create)
        except sqlite3.Error as exc:
            self._conn.close()
            self._closed = True
            if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
                raise GalleryError(
                    f"{str(self.path)!r} is not a gallery database ({exc}).",
                    hint="Use another gallery folder; this file was left as it is.",
                ) from exc
            raise storage_error(exc, self.path) from exc
        except BaseException:
            self._conn.close()
            self._closed = True
            raise

    # -- opening ---------------------------------------------------------------------------
    def _make_file(self) -> None:
        """The folder (0700 when we make it) and an empty file readable by its owner only;
        SQLite gives the -wal and -shm files the same permissions."""
        try:
            if not self.db_dir.exists():
                self.db_dir.mkdir(parents=True, mode=0o700)
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise GalleryError(
                f"The gallery {str(self.path)!r} cannot be created ({exc.strerror}).",
                hint="Use a folder you can write to.",
            ) from exc

    def _check_header(self) -> None:
        try:
            with self.path.open("rb") as fh:
                header = fh.read(16)
        except OSError as exc:
            raise GalleryError(
                f"The gallery {str(self.path)!r} cannot be read ({exc.strerror}).",
                hint="Make the folder and its files readable by you.",
            ) from exc
        if header != b"SQLite format 3\x00":
            raise GalleryError(
                f"{str(self.path)!r} is not a gallery database (not SQLite; corrupt?).",
                hint="Use another gallery folder; this file was left as it is.",
            )

    def _state(self) -> tuple[int, int, int]:
        """(application_id, user_version, objects in the schema) of the file."""
        conn = self._conn
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        objects = int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        return app_id, version, objects

    def _check_state(self, app_id: int, version: int, objects: int, create: bool) -> bool:
        """True when the file needs migration steps (or is our unfinished new gallery)."""
        if app_id == 0 and objects == 0:  # SQLite without tables: ours, killed before commit
            if not create:
                raise GalleryError(
                    f"No gallery at {str(self.db_dir)!r} (only an unfinished empty one).",
                    hint="Enrol someone first: `face-recognizer register -n NAME` or "
                    "`face-recognizer import DIR`.",
                )
            return True
        if app_id != APPLICATION_ID:
            raise GalleryError(
                f"{str(self.path)!r} is an SQLite database of another program, "
                "not a face-recognizer gallery.",
                hint="Use another gallery folder; this file was left as it is.",
            )
        if version > SCHEMA_VERSION:
            raise GalleryError(
                f"The gallery {str(self.path)!r} was made by a newer face-recognizer "
                f"(schema {version}, this one reads {SCHEMA_VERSION}).",
                hint="Upgrade face-recognizer.",
            )
        return version < SCHEMA_VERSION

    def _open(self, create: bool) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # removed faces are overwritten, not freed
        if not self._check_state(*self._state(), create):
            self._set_journal()
            conn.execute("SELECT count(*) FROM people").fetchone()  # fails if damaged
            return
        self._set_journal()
        with self._transaction():  # re-read under the write lock: another process may race
            app_id, version, objects = self._state()
            if not self._check_state(app_id, version, objects, create):
                return
            if app_id == 0:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"
            )
            if version >= 1:  # a v1 gallery predates the table: record its first step
                conn.execute(
                    f"INSERT OR IGNORE INTO {MIGRATIONS_TABLE} VALUES (?, ?, ?)",
                    (1, MIGRATIONS[0].name, "before " + _now()),
                )
            for step in MIGRATIONS:
                if step.version <= version:
                    continue
                for statement in step.statements(DIALECT):
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} VALUES (?, ?, ?)",
                    (step.version, step.name, _now()),
                )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _set_journal(self) -> None:
        conn = self._conn
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = DELETE")  # e.g. a network file system
        conn.execute("PRAGMA synchronous = NORMAL")

    # -- the lock, errors and transactions -------------------------------------------------
    @contextlib.contextmanager
    def _use(self) -> Iterator[sqlite3.Connection]:
        """The connection, held by this thread; SQLite errors become GalleryError."""
        with self._lock:
            if self._closed:
                raise GalleryError(f"The gallery {self.location!r} was closed.")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error; nested: joins the outer one."""
        with self._use() as conn:
            if self._depth:
                self._depth += 1
                try:
                    yield conn
                finally:
                    self._depth -= 1
                return
            conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield conn
            except BaseException:
                self._depth = 0
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._transaction():
            yield

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Gallery:
        return self

    # -- what SqlStore asks of a dialect ---------------------------------------------------
    _read = _use
    _write = _transaction
    _blobs = _use

    def _purge(self, tables: str = ALL_TABLES) -> None:
        self.wipe()

    def _time(self, value: Any) -> datetime:
        return datetime.fromisoformat(value)

    def _time_arg(self, when: datetime) -> str:
        return _stamp(when)

    def _any(self, column: str, ids: Sequence[int]) -> tuple[str, str]:
        """One JSON array parameter: no limit on how many ids, unlike one `?` per id."""
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps([int(i) for i in ids])

    def _insert_id(self, conn: Any, sql: str, args: Sequence[Any]) -> int:
        return int(conn.execute(sql, args).lastrowid or 0)

    def _executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)

    # -- writing ---------------------------------------------------------------------------
    def add_faces(
        self,
        name: str,
        faces: Sequence[EnrolFace],
        recognizer_id: str,
        *,
        same_photo_ok: bool = False,
    ) -> AddResult:
        name = normalize_name(name)
        with self._transaction() as conn:
            self.check_pack(recognizer_id, faces)
            row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            created = row is None
            if created:
                cursor = conn.execute(
                    "INSERT INTO people (name, created) VALUES (?, ?)", (name, _now())
                )
                person_id = int(cursor.lastrowid or 0)
            else:
                person_id = int(row[0])
            added = 0
            taken: list[tuple[str, str]] = []
            for face in faces:
                if not same_photo_ok:
                    owner = conn.execute(
                        "SELECT p.name FROM faces f JOIN people p ON p.id = f.person_id"
                        " WHERE f.source_hash = ? AND f.person_id != ? LIMIT 1",
                        (face.source_hash, person_id),
                    ).fetchone()
                    if owner is not None:
                        taken.append((face.source, str(owner[0])))
                        continue
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO faces (person_id, recognizer_id, embedding, crop_png,"
                    " source, source_hash, created, det_score, face_px, blur)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        person_id,
                        recognizer_id,
                        face.embedding.tobytes(),
                        encode_png(face.crop),
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
        duplicates = len(faces) - added - len(taken)
        return AddResult(person_id, added, duplicates, created and added > 0, tuple(taken))

    def check_pack(self, recognizer_id: str, faces: Sequence[EnrolFace] = ()) -> None:
        with self._use() as conn:
            others = self.recognizer_ids()
            self._refuse_other_packs(others, recognizer_id)
            row = conn.execute(
                "SELECT length(embedding) FROM faces WHERE recognizer_id = ? LIMIT 1",
                (recognizer_id,),
            ).fetchone()
        self._refuse_mixed_sizes(faces, None if row is None else int(row[0]))

    def wipe(self) -> bool:
        """Copy the write-ahead log into the file and empty it, so removed data is gone from
        the gallery's files (`secure_delete` overwrote it in the file's pages). Waits for
        other processes' short reads up to the busy timeout; False (and `wiped` False) when
        another process's long read still holds the old pages: they are wiped when it lets go.
        Inside a transaction it does nothing until that commits."""
        with self._use() as conn:
            if self._depth:
                return self.wiped
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        self.wiped = not busy
        return self.wiped

    def move_faces(self, source: str, target: str) -> int:
        source, target = normalize_name(source), normalize_name(target)
        with self._transaction() as conn:
            from_id, to_id = self._person_id(conn, source), self._person_id(conn, target)
            moved = conn.execute(
                "UPDATE OR IGNORE faces SET person_id = ? WHERE person_id = ?", (to_id, from_id)
            ).rowcount
            conn.execute("UPDATE sightings SET person_id = ? WHERE person_id = ?", (to_id, from_id))
            conn.execute("DELETE FROM faces WHERE person_id = ?", (from_id,))
            conn.execute("DELETE FROM people WHERE id = ?", (from_id,))
        self.wipe()
        return int(moved)

    # -- reading ---------------------------------------------------------------------------
    def embeddings(self, recognizer_id: str) -> tuple[np.ndarray, np.ndarray]:
        with self._use() as conn:
            rows = conn.execute(
                "SELECT person_id, embedding FROM faces WHERE recognizer_id = ? ORDER BY id",
                (recognizer_id,),
            ).fetchall()
        return ids_and_vectors(rows)

    def export_faces(self, *, crops: bool = True) -> Iterator[FaceRecord]:
        crop = "f.crop_png" if crops else "NULL"
        with self._use() as conn:
            rows = conn.execute(
                f"SELECT p.name, f.recognizer_id, f.embedding, {crop}, f.source, f.source_hash,"
                " f.det_score, f.face_px, f.blur FROM faces f JOIN people p ON p.id = f.person_id"
                " ORDER BY p.name, f.id"
            )
            yield from (FaceRecord.from_row(row) for row in rows)

    def add_api_key(self, name: str, key_sha256: str, read_only: bool) -> None:
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone():
                raise GalleryError(
                    f"A key named {name!r} exists already; revoke it first or pick another name."
                )
            conn.execute(
                "INSERT INTO api_keys (name, key_sha256, read_only, created) VALUES (?, ?, ?, ?)",
                (name, key_sha256, int(read_only), _now()),
            )

    def schema_version(self) -> int:
        with self._use() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def change_token(self) -> Hashable:
        """The count of writes to people, faces and settings (triggers keep it; sightings do
        not count), read again only when `PRAGMA data_version` (another connection
        committed) or `total_changes` (this one wrote) moved: a few microseconds."""
        with self._use() as conn:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            raw = (int(version), conn.total_changes)
            if raw != self._raw_token:
                row = conn.execute("SELECT counter FROM gallery_changes").fetchone()
                self._raw_token, self._token = raw, int(row[0])
            return self._token

    # -- sightings -------------------------------------------------------------------------
    def set_sighting_groups(self, groups: Mapping[int, int | None]) -> None:
        with self._transaction() as conn:
            now = _now()
            for group in {g for g in groups.values() if g is not None}:
                conn.execute(
                    "INSERT OR IGNORE INTO unknown_groups (id, created) VALUES (?, ?)",
                    (int(group), now),
                )
            conn.executemany(
                "UPDATE sightings SET group_id = ? WHERE id = ?",
                [(None if g is None else int(g), int(i)) for i, g in groups.items()],
            )


SqliteStore = Gallery
