"""What the SQLite and PostgreSQL stores share: one set of tables, so one set of queries.

`SqlStore` implements every `Store` method whose SQL and Python are the same in both
dialects. The queries are written with `?` placeholders; a store whose driver wants `%s`
sets `PLACEHOLDER` and `_sql` rewrites them. The few real differences are small hooks a
store fills in:

* `_read()` / `_write()` / `_blobs()`: a connection for reading, one inside a transaction,
  and a cursor that reads binary columns fast (PostgreSQL's binary cursor);
* `_time` / `_time_arg`: times as the database keeps them (ISO text in SQLite, TIMESTAMPTZ
  in PostgreSQL) to and from aware datetimes;
* `_any(column, ids)`: "column is one of ids" with the ids as ONE parameter (no limit on
  how many);
* `_insert_id`, `_executemany`, `_set_name`: an insert returning the new id, a batch of
  one statement, and a rename that another writer may race;
* `_purge(tables)`: make removed personal data gone from the files or the server's pages;
* `BY_NAME` / `LOCK_PERSON`: code point order of names, and the row lock a removal takes.

What really differs stays in each store: connections and locking, opening and migrating,
the change token, enrolling (`add_faces`, `check_pack`), `move_faces`, API key creation,
sighting groups, and PostgreSQL's binary COPY of embeddings.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import numpy as np

from face_recognizer.errors import GalleryError
from face_recognizer.store.base import (
    REINDEX_HINT,
    ApiKey,
    EnrolFace,
    EnrolledPhoto,
    NewSighting,
    Sighting,
    Store,
    StoredCrop,
    decode_png,
    encode_png,
    ids_and_vectors,
    normalize_name,
)
from face_recognizer.types import Person

ALL_TABLES = "people, faces, sightings"


class SqlStore(Store):
    """The `Store` methods both SQL stores run alike (see the module docstring)."""

    PLACEHOLDER: ClassVar[str] = "?"
    #: appended to ORDER BY a name so names sort by code point in every dialect
    BY_NAME: ClassVar[str] = ""
    #: appended to the SELECT that finds a face's person before removing the face
    LOCK_PERSON: ClassVar[str] = ""

    # -- hooks -----------------------------------------------------------------------------
    @abc.abstractmethod
    def _read(self) -> contextlib.AbstractContextManager[Any]:
        """A connection (with `execute`) for reading; driver errors become GalleryError."""

    @abc.abstractmethod
    def _write(self) -> contextlib.AbstractContextManager[Any]:
        """A connection inside a transaction (joining an open one)."""

    @abc.abstractmethod
    def _blobs(self) -> contextlib.AbstractContextManager[Any]:
        """Something with `execute` that reads binary columns (crops, embeddings) well."""

    @abc.abstractmethod
    def _purge(self, tables: str = ALL_TABLES) -> None:
        """After removing rows of `tables`: make them gone from the storage too."""

    @abc.abstractmethod
    def _time(self, value: Any) -> datetime:
        """A time column's value as an aware datetime."""

    @abc.abstractmethod
    def _time_arg(self, when: datetime) -> Any:
        """An aware datetime as a parameter for a time column."""

    @abc.abstractmethod
    def _any(self, column: str, ids: Sequence[int]) -> tuple[str, Any]:
        """(SQL "column is one of ids", its one parameter)."""

    @abc.abstractmethod
    def _insert_id(self, conn: Any, sql: str, args: Sequence[Any]) -> int:
        """Run the INSERT `sql`; the id of the row it made."""

    @abc.abstractmethod
    def _executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run `sql` once per row of parameters, as one batch."""

    def _set_name(self, conn: Any, person_id: int, new: str) -> None:
        """Rename the person `person_id` to `new` (checked free just before)."""
        conn.execute(self._sql("UPDATE people SET name = ? WHERE id = ?"), (new, person_id))

    def _sql(self, text: str) -> str:
        return text if self.PLACEHOLDER == "?" else text.replace("?", self.PLACEHOLDER)

    def _person_id(self, conn: Any, name: str) -> int:
        row = conn.execute(self._sql("SELECT id FROM people WHERE name = ?"), (name,)).fetchone()
        if row is None:
            raise GalleryError(
                f"{name!r} is not in the gallery.",
                hint="`face-recognizer people list` shows who is.",
            )
        return int(row[0])

    # -- checks `check_pack` makes -----------------------------------------------------
    def _refuse_other_packs(self, others: dict[str, int], recognizer_id: str) -> None:
        """GalleryError when faces of packs other than `recognizer_id` (in `others`,
        recognizer id -> faces) are stored."""
        others.pop(recognizer_id, None)
        if others:
            raise GalleryError(
                f"The gallery {self.location!r} holds embeddings of another model pack "
                f"({', '.join(sorted(others))}).",
                hint=REINDEX_HINT,
            )

    @staticmethod
    def _refuse_mixed_sizes(faces: Sequence[EnrolFace], stored: int | None) -> None:
        """GalleryError when `faces` and the stored embeddings (`stored` bytes each, None
        when there are none) differ in size."""
        sizes = {f.embedding.nbytes for f in faces} | ({stored} if stored is not None else set())
        if len(sizes) > 1:
            raise GalleryError("Embeddings of different sizes cannot share one gallery.")

    # -- people and faces ------------------------------------------------------------------
    def remove_person(self, name: str) -> int:
        name = normalize_name(name)
        with self._write() as conn:
            person_id = self._person_id(conn, name)
            photos = conn.execute(
                self._sql("DELETE FROM faces WHERE person_id = ?"), (person_id,)
            ).rowcount
            conn.execute(self._sql("DELETE FROM people WHERE id = ?"), (person_id,))
        self._purge()
        return int(photos)

    def rename_person(self, old: str, new: str) -> None:
        old, new = normalize_name(old), normalize_name(new)
        with self._write() as conn:
            person_id = self._person_id(conn, old)
            if old == new:
                return
            if conn.execute(self._sql("SELECT 1 FROM people WHERE name = ?"), (new,)).fetchone():
                raise GalleryError(
                    f"{new!r} is already in the gallery.",
                    hint="Remove one of them first with `face-recognizer people remove`.",
                )
            self._set_name(conn, person_id, new)
        self._purge()  # the old name is personal data too

    def replace_embeddings(
        self, face_ids: Sequence[int], embeddings: np.ndarray, recognizer_id: str
    ) -> None:
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(face_ids):
            raise ValueError(f"need one embedding per face id, got {vectors.shape}")
        with self._write() as conn:
            self._executemany(
                conn,
                self._sql("UPDATE faces SET embedding = ?, recognizer_id = ? WHERE id = ?"),
                [
                    (v.tobytes(), recognizer_id, int(i))
                    for i, v in zip(face_ids, vectors, strict=True)
                ],
            )
            stale = conn.execute(
                self._sql("SELECT count(*) FROM faces WHERE recognizer_id <> ?"), (recognizer_id,)
            ).fetchone()[0]
            if stale:
                raise GalleryError("The gallery changed while it was re-embedded; run it again.")

    def remove_face(self, face_id: int) -> tuple[str, int] | None:
        with self._write() as conn:
            row = conn.execute(
                self._sql(
                    "SELECT p.id, p.name FROM faces f JOIN people p ON p.id = f.person_id"
                    " WHERE f.id = ?" + self.LOCK_PERSON
                ),
                (int(face_id),),
            ).fetchone()
            if row is None:
                return None
            conn.execute(self._sql("DELETE FROM faces WHERE id = ?"), (int(face_id),))
            left = int(
                conn.execute(
                    self._sql("SELECT count(*) FROM faces WHERE person_id = ?"), (row[0],)
                ).fetchone()[0]
            )
            if left == 0:
                conn.execute(self._sql("DELETE FROM people WHERE id = ?"), (row[0],))
        self._purge()
        return str(row[1]), left

    def people(self) -> list[Person]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT p.id, p.name, count(f.id), p.created FROM people p"
                " LEFT JOIN faces f ON f.person_id = p.id GROUP BY p.id ORDER BY p.name"
                + self.BY_NAME
            ).fetchall()
        return [Person(int(i), n, int(c), self._time(t)) for i, n, c, t in rows]

    def person_names(self) -> dict[int, str]:
        with self._read() as conn:
            return {int(i): n for i, n in conn.execute("SELECT id, name FROM people")}

    def recognizer_ids(self) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT recognizer_id, count(*) FROM faces GROUP BY recognizer_id"
            ).fetchall()
        return {str(r): int(c) for r, c in rows}

    def crops(self) -> list[StoredCrop]:
        with self._blobs() as cur:
            rows = cur.execute("SELECT id, person_id, crop_png FROM faces ORDER BY id").fetchall()
        return [StoredCrop(int(i), int(p), decode_png(bytes(b))) for i, p, b in rows]

    def photos_of(self, name: str) -> list[EnrolledPhoto]:
        with self._blobs() as cur:
            person_id = self._person_id(cur, normalize_name(name))
            rows = cur.execute(
                self._sql(
                    "SELECT id, source, created, det_score, face_px, blur, crop_png FROM faces"
                    " WHERE person_id = ? ORDER BY id"
                ),
                (person_id,),
            ).fetchall()
        return [
            EnrolledPhoto(
                int(i), s, self._time(t), float(d), float(px), float(b), decode_png(bytes(png))
            )
            for i, s, t, d, px, b, png in rows
        ]

    def source_hashes(self, name: str) -> set[str]:
        with self._read() as conn:
            rows = conn.execute(
                self._sql(
                    "SELECT f.source_hash FROM faces f JOIN people p ON p.id = f.person_id"
                    " WHERE p.name = ?"
                ),
                (normalize_name(name),),
            ).fetchall()
        return {str(r[0]) for r in rows}

    def face_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM faces").fetchone()[0])

    def face_ids(self, person_ids: Sequence[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        if not person_ids:
            return out
        among, ids = self._any("person_id", person_ids)
        with self._read() as conn:
            rows = conn.execute(
                self._sql(f"SELECT person_id, id FROM faces WHERE {among} ORDER BY id"), (ids,)
            ).fetchall()
        for person_id, face_id in rows:
            out.setdefault(int(person_id), []).append(int(face_id))
        return out

    def crop_png(self, face_id: int) -> bytes | None:
        with self._blobs() as cur:
            row = cur.execute(
                self._sql("SELECT crop_png FROM faces WHERE id = ?"), (int(face_id),)
            ).fetchone()
        return None if row is None else bytes(row[0])

    # -- settings --------------------------------------------------------------------------
    def set_setting(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                self._sql(
                    "INSERT INTO settings (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (key, str(value)),
            )

    def get_setting(self, key: str) -> str | None:
        with self._read() as conn:
            row = conn.execute(
                self._sql("SELECT value FROM settings WHERE key = ?"), (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def settings(self) -> dict[str, str]:
        with self._read() as conn:
            return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM settings")}

    # -- API keys --------------------------------------------------------------------------
    def api_keys(self) -> list[ApiKey]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, read_only, created FROM api_keys ORDER BY name"
            ).fetchall()
        return [ApiKey(str(n), bool(r), self._time(c)) for n, r, c in rows]

    def remove_api_key(self, name: str) -> bool:
        with self._write() as conn:
            deleted = conn.execute(self._sql("DELETE FROM api_keys WHERE name = ?"), (name,))
            return int(deleted.rowcount) > 0

    def api_key_by_hash(self, key_sha256: str) -> ApiKey | None:
        with self._read() as conn:
            row = conn.execute(
                self._sql("SELECT name, read_only, created FROM api_keys WHERE key_sha256 = ?"),
                (key_sha256,),
            ).fetchone()
        return None if row is None else ApiKey(str(row[0]), bool(row[1]), self._time(row[2]))

    # -- sightings -------------------------------------------------------------------------
    def add_sightings(self, sightings: Sequence[NewSighting]) -> list[int]:
        ids: list[int] = []
        insert = self._sql(
            "INSERT INTO sightings (source, started, ended, start_pos, end_pos,"
            " first_frame, last_frame, person_id, best_similarity, mean_similarity,"
            " frames, face_px, recognizer_id, embedding, crop_png)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        with self._write() as conn:
            people = {n: i for i, n in self.person_names().items()}
            for row in sightings:
                args = (
                    row.source,
                    self._time_arg(row.started),
                    self._time_arg(row.ended),
                    row.start_pos,
                    row.end_pos,
                    int(row.first_frame),
                    int(row.last_frame),
                    None if row.name is None else people.get(normalize_name(row.name)),
                    float(row.best_similarity),
                    float(row.mean_similarity),
                    int(row.frames),
                    float(row.face_px),
                    row.recognizer_id,
                    None if row.embedding is None else row.embedding.tobytes(),
                    None if row.crop is None else encode_png(row.crop),
                )
                ids.append(self._insert_id(conn, insert, args))
        return ids

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
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        if since is not None:
            where.append("s.started >= ?")
            args.append(self._time_arg(since))
        if until is not None:
            where.append("s.started < ?")
            args.append(self._time_arg(until))
        if name is not None:
            where.append("p.name = ?")
            args.append(normalize_name(name))
        if unknown:
            where.append("s.person_id IS NULL")
        if source is not None:
            where.append("s.source = ?")
            args.append(source)
        if group_id is not None:
            where.append("s.group_id = ?")
            args.append(int(group_id))
        if ids is not None:
            among, arg = self._any("s.id", ids)
            where.append(among)
            args.append(arg)
        with self._read() as conn:
            rows = conn.execute(
                self._sql(
                    "SELECT s.id, s.source, s.started, s.ended, s.start_pos, s.end_pos,"
                    " s.first_frame, s.last_frame, p.name, s.best_similarity,"
                    " s.mean_similarity, s.frames, s.face_px, s.group_id"
                    " FROM sightings s LEFT JOIN people p ON p.id = s.person_id"
                    f" WHERE {' AND '.join(where)} ORDER BY s.started, s.id"
                ),
                args,
            ).fetchall()
        return [
            Sighting(
                source=str(r[1]),
                started=self._time(r[2]),
                ended=self._time(r[3]),
                start_pos=r[4],
                end_pos=r[5],
                first_frame=int(r[6]),
                last_frame=int(r[7]),
                name=r[8],
                best_similarity=float(r[9]),
                mean_similarity=float(r[10]),
                frames=int(r[11]),
                face_px=float(r[12]),
                id=int(r[0]),
                group_id=None if r[13] is None else int(r[13]),
            )
            for r in rows
        ]

    def unknown_embeddings(self, recognizer_id: str) -> tuple[np.ndarray, np.ndarray]:
        with self._blobs() as cur:
            rows = cur.execute(
                self._sql(
                    "SELECT id, embedding FROM sightings WHERE person_id IS NULL"
                    " AND embedding IS NOT NULL AND recognizer_id = ? ORDER BY id"
                ),
                (recognizer_id,),
            ).fetchall()
        return ids_and_vectors(rows)

    def sighting_crops(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        among, arg = self._any("id", ids)
        with self._blobs() as cur:
            rows = cur.execute(
                self._sql(
                    f"SELECT id, crop_png FROM sightings WHERE {among} AND crop_png IS NOT NULL"
                ),
                (arg,),
            ).fetchall()
        return {int(i): decode_png(bytes(png)) for i, png in rows}

    def next_group_id(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT max(id) FROM unknown_groups").fetchone()
        return 1 if row[0] is None else int(row[0]) + 1

    def name_sightings(self, ids: Sequence[int], name: str) -> int:
        among, arg = self._any("id", ids)
        with self._write() as conn:
            person_id = self._person_id(conn, normalize_name(name))
            changed = conn.execute(
                self._sql(f"UPDATE sightings SET person_id = ?, group_id = NULL WHERE {among}"),
                (person_id, arg),
            ).rowcount
        return int(changed)

    def delete_sightings(self, ids: Sequence[int]) -> int:
        among, arg = self._any("id", ids)
        with self._write() as conn:
            gone = conn.execute(self._sql(f"DELETE FROM sightings WHERE {among}"), (arg,)).rowcount
        self._purge("sightings")
        return int(gone)
