"""The store interface and the SQLite store under threads, permissions, upgrades and faults."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
import sys
import threading
from collections import Counter

import numpy as np
import pytest

from face_recognizer.enrol import enrol_face
from face_recognizer.errors import GalleryError
from face_recognizer.images import read_image
from face_recognizer.matcher import Matcher
from face_recognizer.samples import sample_path
from face_recognizer.store import open_store, resolve_db
from face_recognizer.store import sqlite as sqlite_store
from face_recognizer.store.base import MIGRATIONS, SCHEMA_VERSION, EnrolFace, Store, encode_png
from face_recognizer.store.sqlite import APPLICATION_ID, DB_FILE, Gallery

RID = "testpack00000001"


@pytest.fixture(scope="module")
def faces(engine) -> list[EnrolFace]:
    """Real faces: yaoming.jpg and the three Spurs players of gdp.jpg."""
    yao, check = enrol_face(engine, read_image(sample_path("yaoming.jpg")), "yaoming.jpg")
    assert check.usable
    assert yao is not None
    image = read_image(sample_path("gdp.jpg"))
    found = engine.analyze(image)
    crops = engine.align(image, found.landmarks[:3])
    spurs = [
        EnrolFace(found.embeddings[i], crops[i], f"gdp.jpg#{i}", f"gdp{i}", 0.9, 99.0, 99.0)
        for i in range(3)
    ]
    return [yao, *spurs]


def _copy(face: EnrolFace, digest: str) -> EnrolFace:
    return EnrolFace(
        face.embedding, face.crop, face.source, digest, face.det_score, face.face_px, face.blur
    )


def test_eight_threads_at_once_store_every_write_or_fail_cleanly(tmp_path, faces):
    """8 threads x 25 writes (adds to own and shared people, renames, settings) plus reads
    on ONE Gallery: each write is stored or a GalleryError, and the counts add up."""
    threads, rounds = 8, 25
    outcomes: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    added_total = [0]
    lock = threading.Lock()
    start = threading.Barrier(threads)
    with Gallery(tmp_path / "db") as gallery:

        def work(t: int) -> None:
            start.wait()
            for i in range(rounds):
                try:
                    name = f"worker {t}" if i % 2 else "shared"
                    result = gallery.add_faces(name, [_copy(faces[i % 4], f"{t}-{i}")], RID)
                    gallery.set_setting(f"t{t}", str(i))
                    gallery.people()
                    gallery.change_token()
                    with gallery.transaction():  # two calls as one
                        gallery.face_count()
                        gallery.embeddings(RID)
                    with lock:
                        added_total[0] += result.added
                        outcomes["stored"] += 1
                except GalleryError:
                    with lock:
                        outcomes["clean error"] += 1
                except BaseException as exc:
                    with lock:
                        unexpected.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert unexpected == []
        assert sum(outcomes.values()) == threads * rounds
        assert outcomes["stored"] == threads * rounds  # one lock: nothing even fails
        assert gallery.face_count() == added_total[0] == threads * rounds
        people = {p.name: p.photos for p in gallery.people()}
        assert people["shared"] == threads * ((rounds + 1) // 2)
        assert all(people[f"worker {t}"] == rounds // 2 for t in range(threads))
        assert gallery.get_setting("t7") == str(rounds - 1)


def test_a_failed_transaction_rolls_back_every_call_in_it(tmp_path, faces):
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Kept", [faces[0]], RID)

        def three_calls() -> None:
            with gallery.transaction():
                gallery.add_faces("Lost", [faces[1]], RID)
                gallery.set_setting("threshold", "0.5")
                gallery.remove_person("Nobody")

        with pytest.raises(GalleryError, match="not in the gallery"):
            three_calls()
        assert [p.name for p in gallery.people()] == ["Kept"]
        assert gallery.get_setting("threshold") is None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_folder_and_files_are_readable_by_the_owner_only(tmp_path, faces):
    db = tmp_path / "new" / "db"
    with Gallery(db) as gallery:
        gallery.add_faces("Yao", [faces[0]], RID)
        files = sorted(db.iterdir())
        assert files[0].name == DB_FILE
        assert len(files) >= 2  # the -wal and -shm too while open
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    assert stat.S_IMODE(db.stat().st_mode) == 0o700


def _v1_gallery(db, face: EnrolFace) -> None:
    """A gallery exactly as version 1 wrote it: its schema, user_version 1, no migrations
    table, one person with one face."""
    db.mkdir()
    conn = sqlite3.connect(db / DB_FILE, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    for statement in MIGRATIONS[0].statements("sqlite"):
        conn.execute(statement)
    conn.execute("INSERT INTO people (name, created) VALUES ('Old Timer', '2025-01-01T00:00:00')")
    conn.execute(
        "INSERT INTO faces (person_id, recognizer_id, embedding, crop_png, source, source_hash,"
        " created, det_score, face_px, blur) VALUES (1, ?, ?, ?, 'x.jpg', 'h1',"
        " '2025-01-01T00:00:00', 0.9, 100, 100)",
        (RID, face.embedding.tobytes(), encode_png(face.crop)),
    )
    conn.execute("COMMIT")
    conn.close()


def test_a_version_1_gallery_is_upgraded_and_keeps_its_faces(tmp_path, faces):
    db = tmp_path / "db"
    _v1_gallery(db, faces[0])
    assert SCHEMA_VERSION >= 2
    with Gallery(db, create=False) as gallery:
        assert gallery.schema_version() == SCHEMA_VERSION
        assert [(p.name, p.photos) for p in gallery.people()] == [("Old Timer", 1)]
        _, vectors = gallery.embeddings(RID)
        assert np.array_equal(vectors[0], faces[0].embedding)
        again = gallery.add_faces("New", [_copy(faces[0], "h1")], RID)  # uses the new index
        assert (again.added, again.taken) == (0, (("yaoming.jpg", "Old Timer"),))
    with contextlib.closing(sqlite3.connect(db / DB_FILE)) as conn:
        steps = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert steps == [m.version for m in MIGRATIONS]
    assert "faces_source_hash" in indexes


def test_a_newer_gallery_is_refused_untouched(tmp_path, faces):
    db = tmp_path / "db"
    _v1_gallery(db, faces[0])
    with contextlib.closing(sqlite3.connect(db / DB_FILE)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = (db / DB_FILE).read_bytes()
    with pytest.raises(GalleryError, match="newer face-recognizer"):
        Gallery(db)
    assert (db / DB_FILE).read_bytes() == before


def test_an_unfinished_new_gallery_is_finished_not_called_foreign(tmp_path, faces):
    """What a kill between `journal_mode = WAL` and the schema transaction leaves."""
    db = tmp_path / "db"
    db.mkdir()
    with contextlib.closing(sqlite3.connect(db / DB_FILE)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    assert (db / DB_FILE).stat().st_size > 0
    with pytest.raises(GalleryError, match="No gallery"):
        Gallery(db, create=False)
    with Gallery(db) as gallery:
        assert gallery.schema_version() == SCHEMA_VERSION
        gallery.add_faces("Yao", [faces[0]], RID)
    with Gallery(db, create=False) as gallery:
        assert gallery.face_count() == 1


def test_matcher_refreshes_through_the_change_token(tmp_path, faces):
    """The matcher sees writes of this store, of another thread and of another connection
    (as another process would make) through `change_token`, and nothing else."""
    with Gallery(tmp_path) as gallery, Gallery(tmp_path) as other:
        gallery.add_faces("Yao", [faces[0]], RID)
        matcher = Matcher(gallery, RID)
        assert (matcher.size, matcher.refresh()) == (1, False)
        other.add_faces("Spurs", faces[1:3], RID)
        assert matcher.refresh() is True
        assert matcher.size == 3
        assert matcher.match(faces[1].embedding[None])[0].name == "Spurs"
        writer = threading.Thread(target=other.remove_person, args=("Spurs",))
        writer.start()
        writer.join()
        assert matcher.refresh() is True
        assert (matcher.size, matcher.refresh()) == (1, False)
        gallery.set_setting("threshold", "0.9")
        assert matcher.refresh() is True
        assert matcher.threshold == pytest.approx(0.9)


def test_one_photo_file_one_name_unless_asked(tmp_path, faces):
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Alpha", [faces[0]], RID)
        refused = gallery.add_faces("Beta", [faces[0], faces[1]], RID)
        assert (refused.added, refused.duplicates, refused.taken) == (
            1,
            0,
            ((faces[0].source, "Alpha"),),
        )
        near = gallery.similar_faces("Gamma", [faces[0], faces[2]], RID, 0.81)
        assert [(s.source, s.name) for s in near] == [(faces[0].source, "Alpha")]
        assert near[0].similarity == pytest.approx(1.0, abs=1e-5)
        assert gallery.similar_faces("Alpha", [faces[0]], RID, 0.81) == []  # not another's
        anyway = gallery.add_faces("Beta", [faces[0]], RID, same_photo_ok=True)
        assert (anyway.added, anyway.taken) == (1, ())


def test_merge_moves_faces_and_drops_the_duplicates(tmp_path, faces):
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Tim", faces[1:3], RID)
        gallery.add_faces("Timothy", [faces[2], faces[3]], RID)
        with pytest.raises(GalleryError, match="into itself"):
            gallery.merge_people("Tim", "Tim ")
        assert gallery.merge_people("Timothy", "Tim") == 1  # gdp1 was Tim's already
        assert [(p.name, p.photos) for p in gallery.people()] == [("Tim", 3)]


def test_locked_too_long_and_closed_are_clean_errors(tmp_path, faces, monkeypatch):
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 0.2)
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Yao", [faces[0]], RID)
        blocker = sqlite3.connect(tmp_path / DB_FILE, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(GalleryError, match="locked by another program"):
                gallery.add_faces("Tim", [faces[1]], RID)
            assert gallery.face_count() == 1  # reads go on while another process writes
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert gallery.add_faces("Tim", [faces[1]], RID).added == 1
    with pytest.raises(GalleryError, match="was closed"):
        gallery.people()


def test_open_store_and_resolve_db(tmp_path, monkeypatch):
    monkeypatch.delenv("FACE_RECOGNIZER_DB", raising=False)
    assert resolve_db(None) == resolve_db("") == type(tmp_path)("db")
    monkeypatch.setenv("FACE_RECOGNIZER_DB", "postgresql://u@h/faces")
    assert resolve_db(None) == "postgresql://u@h/faces"
    assert resolve_db(tmp_path) == tmp_path
    with open_store(tmp_path / "db") as store:
        assert isinstance(store, Store)
        assert store.people() == []
    with pytest.raises(GalleryError, match="No gallery"):
        open_store(tmp_path / "none", create=False)
    monkeypatch.setitem(sys.modules, "face_recognizer.store.postgres", None)  # not installed
    with pytest.raises(GalleryError, match=r"pip install face-recognizer\[postgres\]"):
        open_store("postgresql://u@h/faces")
