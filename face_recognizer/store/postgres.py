"""The gallery on a PostgreSQL server, shared by several stations (`--db postgresql://...`).

Same tables and behaviour as the SQLite store (`store/base.py`, `MIGRATIONS`); what differs:

* Connections come from a `psycopg_pool` pool, so a process with threads (`serve`) makes
  concurrent calls, and a connection the server dropped is replaced by itself: a station
  that lost the server fails the calls made meanwhile (`GalleryUnavailableError`) and works
  again once the server is back, with no restart.
* Changes by other stations: statement triggers on `people`, `faces` and `settings` count
  every writing transaction in the one-row table `gallery_changes`. `change_token()` is that
  counter, read by a background thread every `WATCH_SECONDS` over its own connection, so a
  live loop asking every second never waits on the network; while the server is away it
  raises `GalleryUnavailableError`, and the caller goes on with what it has.
* Two stations enrolling the same person at once: the person's row is made with
  `INSERT ... ON CONFLICT DO NOTHING` (the second waits for the first to commit and then
  uses its row), and faces are unique per (person, source_hash), so both sets of photos end
  up stored once each.
* The schema is created and upgraded under an advisory lock, so stations starting together
  do not race.

The password of the URL is never shown: `location` and every message carry the URL with
`***` in its place (`redact`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Hashable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from face_recognizer.errors import GalleryError, GalleryUnavailableError
from face_recognizer.store.base import (
    MIGRATIONS,
    MIGRATIONS_TABLE,
    SCHEMA_VERSION,
    AddResult,
    EnrolFace,
    FaceRecord,
    encode_png,
    normalize_name,
)
from face_recognizer.store.sql import ALL_TABLES, SqlStore

DIALECT = "postgresql"
CONNECT_SECONDS = 5  # a server that does not answer within this is "unreachable"
WATCH_SECONDS = 0.25  # how often the change counter is read
POOL_SIZE = 4
POOL_WAIT_SECONDS = 1.0  # then connect directly (see PostgresStore._conn)
LOCK_KEY = 0x46524543  # "FREC": the advisory lock held while the schema is created/upgraded

# Counting writes for `change_token`: one row, bumped once per writing transaction (the
# transaction-local setting remembers it was done), before the transaction's first write, so
# writers queue on this row before they hold any other lock (no deadlock through it).
_CHANGE_COUNTER = """
CREATE TABLE IF NOT EXISTS gallery_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    counter BIGINT NOT NULL
);
INSERT INTO gallery_changes (id, counter) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION gallery_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('face_recognizer.counted', true) IS DISTINCT FROM
            txid_current()::text THEN
        UPDATE gallery_changes SET counter = counter + 1 WHERE id = 1;
        PERFORM set_config('face_recognizer.counted', txid_current()::text, true);
    END IF;
    RETURN NULL;
END $$
"""
_COUNTED_TABLES = ("people", "faces", "settings")


def redact(url: str) -> str:
    """`url` with its password replaced by `***` (also a `password=` query parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = "&".join(
        "password=***" if item.lower().startswith("password=") else item
        for item in parts.query.split("&")
        if item
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _password(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.password:
        return parts.password
    for item in parts.query.split("&"):
        if item.lower().startswith("password="):
            return item.split("=", 1)[1]
    return None


def _driver() -> tuple[Any, Any]:
    """(psycopg, psycopg_pool), imported late: the extra is optional."""
    try:
        import psycopg
        import psycopg_pool

        # The pool logs each failed reconnection as a warning, which Python would print on
        # stderr; the store reports an unreachable server itself (once, in one sentence).
        logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
    except ImportError as exc:
        from face_recognizer.store import POSTGRES_HINT

        raise GalleryError(
            "This gallery is a PostgreSQL database, which this installation cannot open.",
            hint=POSTGRES_HINT,
        ) from exc
    return psycopg, psycopg_pool


def _reason(url: str, exc: BaseException) -> str:
    """The first line of a driver error, without the password, for messages."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    text = text.splitlines()[0].replace(url, redact(url))
    secret = _password(url)
    return text.replace(secret, "***") if secret else text


def _unavailable(url: str, exc: BaseException) -> GalleryUnavailableError:
    return GalleryUnavailableError(
        f"The gallery server at {redact(url)!r} cannot be reached ({_reason(url, exc)}).",
        hint="Check that it runs and that this machine may connect to it.",
    )


def _connect(url: str) -> Any:
    """One new autocommit connection to `url`; GalleryError naming the reason when refused."""
    psycopg, _ = _driver()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_SECONDS)
    except psycopg.OperationalError as exc:
        reason = _reason(url, exc)
        if "password authentication failed" in reason or "no password supplied" in reason:
            raise GalleryError(
                f"The gallery server at {redact(url)!r} refused the login ({reason}).",
                hint="Check the user name and password in --db / $FACE_RECOGNIZER_DB.",
            ) from exc
        if "does not exist" in reason and "database" in reason:
            raise GalleryError(
                f"The database of {redact(url)!r} does not exist on its server.",
                hint="Create it first (createdb NAME), then point --db at it.",
            ) from exc
        raise _unavailable(url, exc) from exc
    except psycopg.Error as exc:
        raise GalleryError(f"{redact(url)!r} cannot be opened: {_reason(url, exc)}.") from exc


class PostgresStore(SqlStore):
    """The gallery in the PostgreSQL database named by `url` (see the module docstring).

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (libpq's URL form).
        create: when False, a database without a gallery is a GalleryError instead of
            getting one.
        pool_size: most connections this process opens at once.

    Raises:
        GalleryError: the server cannot be reached, refuses the login, the database holds
            another program's tables, or a gallery from a newer version. Nothing is written.
    """

    PLACEHOLDER = "%s"
    BY_NAME = ' COLLATE "C"'
    LOCK_PERSON = " FOR UPDATE OF p"  # another station may be removing the same person

    def __init__(self, url: str, *, create: bool = True, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.location = redact(url)
        self._psycopg, pool_module = _driver()
        self._pool_errors = pool_module
        self._local = threading.local()
        self._own_writes = 0
        self._watch_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._closing = threading.Event()
        self._counter: int | None = None
        self._offline: str | None = None
        with self._connect() as conn:
            self._prepare(conn, create)
        self._pool = pool_module.ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, int(pool_size)),
            open=False,
            check=pool_module.ConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_SECONDS},
            timeout=CONNECT_SECONDS,
            name="face-recognizer",
        )
        self._pool.open(wait=False)

    # -- connections and errors ------------------------------------------------------------
    def _unavailable(self, exc: BaseException) -> GalleryUnavailableError:
        return _unavailable(self.url, exc)

    def _connect(self) -> Any:
        return _connect(self.url)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        """The connection of this thread's open transaction, else one from the pool; a
        server gone away becomes a GalleryUnavailableError.

        The pool replaces a dropped link by itself, but after an outage it retries with a
        growing pause; when it has none ready within `POOL_WAIT_SECONDS`, this call connects
        directly (the server may be back already; if not, the error says why)."""
        bound = getattr(self._local, "conn", None)
        if bound is not None:
            yield bound
            return
        psycopg = self._psycopg
        try:
            conn, pooled = self._pool.getconn(timeout=POOL_WAIT_SECONDS), True
        except self._pool_errors.PoolClosed as exc:
            raise GalleryError(f"The gallery {self.location!r} was closed.") from exc
        except self._pool_errors.PoolTimeout:
            conn, pooled = self._connect(), False
        try:
            yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._unavailable(exc) from exc
        finally:
            if pooled:
                self._pool.putconn(conn)  # a broken one is dropped and replaced
            else:
                conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        bound = getattr(self._local, "conn", None)
        if bound is not None:  # nested: a savepoint inside the open transaction
            with bound.transaction():
                yield
            return
        with self._conn() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._local.conn = None
        self._own_writes += 1

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        """A transaction on this thread's connection, yielding the connection."""
        with self.transaction():
            yield self._local.conn

    # -- what SqlStore asks of a dialect ---------------------------------------------------
    _read = _conn

    @contextlib.contextmanager
    def _blobs(self) -> Iterator[Any]:
        with self._conn() as conn, conn.cursor(binary=True) as cur:
            yield cur

    def _time(self, value: Any) -> datetime:
        return value  # type: ignore[no-any-return]

    def _time_arg(self, when: datetime) -> datetime:
        return when

    def _any(self, column: str, ids: Sequence[int]) -> tuple[str, list[int]]:
        return f"{column} = ANY(%s)", [int(i) for i in ids]

    def _insert_id(self, conn: Any, sql: str, args: Sequence[Any]) -> int:
        return int(conn.execute(sql + " RETURNING id", args).fetchone()[0])

    def _executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur:  # one pipelined batch
            cur.executemany(sql, rows)

    def close(self) -> None:
        self._closing.set()
        if self._watcher is not None:
            self._watcher.join(timeout=2 * CONNECT_SECONDS)
        self._pool.close()

    # -- schema ----------------------------------------------------------------------------
    def _prepare(self, conn: Any, create: bool) -> None:
        """Create or upgrade the schema (one transaction, under the advisory lock)."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = current_schema()"
                )
            }
            if MIGRATIONS_TABLE not in tables:
                if tables & {"people", "faces", "settings"}:
                    raise GalleryError(
                        f"The database {self.location!r} holds tables of another program, "
                        "not a face-recognizer gallery.",
                        hint="Point --db at another database; this one was left as it is.",
                    )
                if not create:
                    raise GalleryError(
                        f"No gallery at {self.location!r}.",
                        hint="Enrol someone first: `face-recognizer register -n NAME` or "
                        "`face-recognizer import DIR`.",
                    )
                conn.execute(
                    f"CREATE TABLE {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL, applied TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
            row = conn.execute(f"SELECT max(version) FROM {MIGRATIONS_TABLE}").fetchone()
            version = int(row[0] or 0)
            if version > SCHEMA_VERSION:
                raise GalleryError(
                    f"The gallery {self.location!r} was made by a newer face-recognizer "
                    f"(schema {version}, this one reads {SCHEMA_VERSION}).",
                    hint="Upgrade face-recognizer.",
                )
            for step in MIGRATIONS:
                if step.version <= version:
                    continue
                for statement in step.statements(DIALECT):
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (%s, %s)",
                    (step.version, step.name),
                )
            if "gallery_changes" not in tables:
                conn.execute(_CHANGE_COUNTER)
                for table in _COUNTED_TABLES:
                    conn.execute(
                        f"CREATE TRIGGER {table}_count_change BEFORE INSERT OR UPDATE OR DELETE"
                        f" OR TRUNCATE ON {table}"
                        " FOR EACH STATEMENT EXECUTE FUNCTION gallery_count_change()"
                    )

    def schema_version(self) -> int:
        with self._conn() as conn:
            row = conn.execute(f"SELECT max(version) FROM {MIGRATIONS_TABLE}").fetchone()
        return int(row[0] or 0)

    # -- changes by anyone -----------------------------------------------------------------
    def _read_counter(self, conn: Any) -> int:
        return int(conn.execute("SELECT counter FROM gallery_changes WHERE id = 1").fetchone()[0])

    def change_token(self) -> Hashable:
        """(write counter of the gallery, writes of this process). The first call reads it
        now; later ones return what the watcher thread read last (at most `WATCH_SECONDS`
        old), or raise GalleryUnavailableError while it cannot reach the server."""
        with self._watch_lock:
            if self._watcher is None:
                with self._conn() as conn:
                    self._counter = self._read_counter(conn)
                self._watcher = threading.Thread(
                    target=self._watch, name="gallery-watch", daemon=True
                )
                self._watcher.start()
            if self._offline is not None:
                raise GalleryUnavailableError(
                    self._offline, hint="Recognizing with the faces loaded until it is back."
                )
            return (self._counter, self._own_writes)

    def _watch(self) -> None:
        """Keep `_counter` current over a connection of its own; note when the server is
        away and reconnect (every `WATCH_SECONDS`..2 s) until it is back."""
        conn = None
        pause = WATCH_SECONDS
        while not self._closing.wait(pause):
            try:
                if conn is None or conn.closed:
                    conn = self._psycopg.connect(
                        self.url, autocommit=True, connect_timeout=CONNECT_SECONDS
                    )
                counter = self._read_counter(conn)
            except self._psycopg.Error as exc:
                with contextlib.suppress(Exception):
                    if conn is not None:
                        conn.close()
                conn = None
                self._offline = str(self._unavailable(exc).message)
                pause = min(2.0, pause * 2)
                continue
            self._counter, self._offline, pause = counter, None, WATCH_SECONDS
        if conn is not None:
            conn.close()

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
        with self._write() as conn:
            self.check_pack(recognizer_id, faces)
            row = conn.execute(
                "INSERT INTO people (name, created) VALUES (%s, now())"
                " ON CONFLICT (name) DO NOTHING RETURNING id",
                (name,),
            ).fetchone()
            created = row is not None
            if row is None:  # someone else's, maybe committed just now by another station
                row = conn.execute("SELECT id FROM people WHERE name = %s", (name,)).fetchone()
            if row is None:
                raise GalleryError(f"{name!r} was removed by another station meanwhile; retry.")
            person_id = int(row[0])
            taken: list[tuple[str, str]] = []
            if not same_photo_ok:  # one photo file, one name
                owners = dict(
                    conn.execute(
                        "SELECT DISTINCT ON (f.source_hash) f.source_hash, p.name FROM faces f"
                        " JOIN people p ON p.id = f.person_id WHERE f.source_hash = ANY(%s)"
                        " AND f.person_id <> %s ORDER BY f.source_hash, f.id",
                        ([f.source_hash for f in faces], person_id),
                    ).fetchall()
                )
                taken = [(f.source, str(owners[f.source_hash])) for f in faces
                         if f.source_hash in owners]  # fmt: skip
                faces = [f for f in faces if f.source_hash not in owners]
            with conn.cursor() as cur:  # one pipelined batch; rowcount sums its rows
                cur.executemany(
                    "INSERT INTO faces (person_id, recognizer_id, embedding, crop_png,"
                    " source, source_hash, created, det_score, face_px, blur)"
                    " VALUES (%s, %s, %s, %s, %s, %s, now(), %s, %s, %s)"
                    " ON CONFLICT (person_id, source_hash) DO NOTHING",
                    [
                        (
                            person_id,
                            recognizer_id,
                            face.embedding.tobytes(),
                            encode_png(face.crop),
                            face.source,
                            face.source_hash,
                            float(face.det_score),
                            float(face.face_px),
                            float(face.blur),
                        )
                        for face in faces
                    ],
                )
                added = max(0, cur.rowcount) if faces else 0
            if created and added == 0:  # a new person with nothing new: do not create
                conn.execute("DELETE FROM people WHERE id = %s", (person_id,))
        duplicates = len(faces) - added
        return AddResult(person_id, added, duplicates, created and added > 0, tuple(taken))

    def check_pack(self, recognizer_id: str, faces: Sequence[EnrolFace] = ()) -> None:
        with self._conn() as conn:  # two index range scans, not a count of every face
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM faces WHERE recognizer_id < %s)"
                " OR EXISTS (SELECT 1 FROM faces WHERE recognizer_id > %s)",
                (recognizer_id, recognizer_id),
            ).fetchone()
        others = self.recognizer_ids() if row[0] else {}
        self._refuse_other_packs(others, recognizer_id)
        with self._conn() as conn:
            row = conn.execute(
                "SELECT octet_length(embedding) FROM faces WHERE recognizer_id = %s LIMIT 1",
                (recognizer_id,),
            ).fetchone()
        self._refuse_mixed_sizes(faces, None if row is None else int(row[0]))

    def _purge(self, tables: str = ALL_TABLES) -> None:
        """Make the server drop the removed rows now (VACUUM), not at some later autovacuum:
        a person removed is gone from the tables' pages too. Inside an open transaction it
        is left to autovacuum (VACUUM cannot run in one)."""
        if getattr(self._local, "conn", None) is None:
            with self._conn() as conn:
                conn.execute(f"VACUUM {tables}")

    def _set_name(self, conn: Any, person_id: int, new: str) -> None:
        try:
            with conn.transaction():
                conn.execute("UPDATE people SET name = %s WHERE id = %s", (new, person_id))
        except self._psycopg.errors.UniqueViolation as exc:  # taken meanwhile
            raise GalleryError(f"{new!r} is already in the gallery.") from exc

    def move_faces(self, source: str, target: str) -> int:
        source, target = normalize_name(source), normalize_name(target)
        with self._write() as conn:
            from_id = self._person_id(conn, source)
            to_id = self._person_id(conn, target)
            moved = conn.execute(
                "UPDATE faces SET person_id = %s WHERE person_id = %s AND source_hash NOT IN"
                " (SELECT source_hash FROM faces WHERE person_id = %s)",
                (to_id, from_id, to_id),
            ).rowcount
            conn.execute("DELETE FROM faces WHERE person_id = %s", (from_id,))
            conn.execute("DELETE FROM people WHERE id = %s", (from_id,))
        return int(moved)

    # -- reading ---------------------------------------------------------------------------
    def embeddings(self, recognizer_id: str) -> tuple[np.ndarray, np.ndarray]:
        """As a binary COPY read straight into numpy: every row has the same layout (one
        pack's vectors all have one size), so no Python work per face (`_copy_rows`)."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT octet_length(embedding) FROM faces WHERE recognizer_id = %s LIMIT 1",
                (recognizer_id,),
            ).fetchone()
            if row is None:
                return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
            # unordered (a plain scan, no server-side sort of big rows); sorted here by id
            with conn.cursor().copy(
                "COPY (SELECT id, person_id, embedding FROM faces WHERE recognizer_id = %s)"
                " TO STDOUT (FORMAT BINARY)",
                (recognizer_id,),
            ) as copy:
                data = bytearray()
                for chunk in copy:
                    data += chunk
        rows = _copy_rows(data, int(row[0]))
        ids = rows["id"]
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():  # usually in order already
            rows = rows[np.argsort(ids, kind="stable")]
        return rows["person_id"].astype(np.int64), np.ascontiguousarray(rows["embedding"])

    def export_faces(self, *, crops: bool = True) -> Iterator[FaceRecord]:
        crop_column = "f.crop_png" if crops else "NULL"
        # a server-side cursor inside a transaction: rows arrive in batches, not all at once
        with self._conn() as conn, conn.transaction():
            cursor = conn.cursor(name="export_faces", binary=True)
            cursor.itersize = 500
            cursor.execute(
                "SELECT p.name, f.recognizer_id, f.embedding, " + crop_column + ","
                " f.source, f.source_hash, f.det_score, f.face_px, f.blur"
                ' FROM faces f JOIN people p ON p.id = f.person_id ORDER BY p.name COLLATE "C",'
                " f.id"
            )
            yield from (FaceRecord.from_row(row) for row in cursor)
            cursor.close()

    # -- API keys --------------------------------------------------------------------------
    def add_api_key(self, name: str, key_sha256: str, read_only: bool) -> None:
        with self._write() as conn:
            row = conn.execute(
                "INSERT INTO api_keys (name, key_sha256, read_only, created)"
                " VALUES (%s, %s, %s, now()) ON CONFLICT (name) DO NOTHING RETURNING id",
                (name, key_sha256, bool(read_only)),
            ).fetchone()
        if row is None:
            raise GalleryError(
                f"A key named {name!r} exists already; revoke it first or pick another name."
            )

    # -- sightings -------------------------------------------------------------------------
    def set_sighting_groups(self, groups: Mapping[int, int | None]) -> None:
        with self._write() as conn, conn.cursor() as cur:
            for group in sorted({g for g in groups.values() if g is not None}):
                cur.execute(
                    "INSERT INTO unknown_groups (id, created) VALUES (%s, now())"
                    " ON CONFLICT (id) DO NOTHING",
                    (int(group),),
                )
            cur.executemany(
                "UPDATE sightings SET group_id = %s WHERE id = %s",
                [(None if g is None else int(g), int(i)) for i, g in groups.items()],
            )


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _copy_rows(data: bytes | bytearray, embedding_bytes: int) -> np.ndarray:
    """Rows of a binary COPY of (id, person_id BIGINT, embedding BYTEA of `embedding_bytes`)
    as a numpy record array (fields "id", "person_id", "embedding" float32 (N, D));
    GalleryError when the data is not laid out like that (embeddings of different sizes)."""
    if not data.startswith(_COPY_SIGNATURE) or len(data) < 21:
        raise GalleryError("The gallery server sent an unexpected reply; the data is unchanged.")
    header_ext = int.from_bytes(data[15:19], "big")
    body = memoryview(data)[19 + header_ext : -2]  # the trailer is the int16 -1
    layout = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i8"),
            ("person_len", ">i4"),
            ("person_id", ">i8"),
            ("emb_len", ">i4"),
            ("embedding", np.float32, (embedding_bytes // 4,)),
        ]
    )
    if len(body) % layout.itemsize:
        raise GalleryError("Embeddings of different sizes cannot share one gallery.")
    rows = np.frombuffer(body, dtype=layout)
    if (
        (rows["fields"] != 3).any()
        or (rows["id_len"] != 8).any()
        or (rows["person_len"] != 8).any()
        or (rows["emb_len"] != embedding_bytes).any()
    ):
        raise GalleryError("Embeddings of different sizes cannot share one gallery.")
    return rows


def has_gallery(url: str) -> bool:
    """Whether the database at `url` holds a gallery already; creates nothing. GalleryError
    when the server cannot be asked (unreachable, login refused, no such database)."""
    with _connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (MIGRATIONS_TABLE,)).fetchone()
    return row is not None and row[0] is not None


def open_postgres(url: str, *, create: bool = True) -> PostgresStore:
    """The PostgreSQL store at `url` (what `store.open_store` calls for a postgresql:// URL)."""
    return PostgresStore(url, create=create)
