"""The SQLite gallery with real embeddings: storage, round trips, damaged files."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from galleries import spurs

from face_recognizer.enrol import EnrolFace, enrol_face
from face_recognizer.errors import GalleryError
from face_recognizer.images import read_image
from face_recognizer.samples import sample_path
from face_recognizer.store.sqlite import DB_FILE, Gallery, resolve_db_dir

RID = "testpack00000001"


@pytest.fixture(scope="module")
def yao(engine) -> EnrolFace:
    face, check = enrol_face(engine, read_image(sample_path("yaoming.jpg")), "yaoming.jpg")
    assert check.usable
    assert face is not None
    return face


@pytest.fixture(scope="module")
def gdp_faces(engine) -> list[EnrolFace]:
    """The three Spurs players of gdp.jpg, each as its own EnrolFace."""
    return spurs(engine)


def test_resolve_db_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("FACE_RECOGNIZER_DB", raising=False)
    assert str(resolve_db_dir(None)) == "db"
    monkeypatch.setenv("FACE_RECOGNIZER_DB", str(tmp_path / "env"))
    assert resolve_db_dir(None) == tmp_path / "env"
    assert resolve_db_dir(tmp_path / "x") == tmp_path / "x"


def test_add_list_and_embeddings_round_trip(tmp_path, yao, gdp_faces):
    with Gallery(tmp_path / "db") as gallery:
        result = gallery.add_faces("Yao Ming", [yao], RID)
        assert (result.added, result.duplicates, result.created) == (1, 0, True)
        again = gallery.add_faces("Yao Ming", [yao], RID)
        assert (again.added, again.duplicates, again.created) == (0, 1, False)
        gallery.add_faces("Spurs", gdp_faces, RID)
        people = gallery.people()
    assert [(p.name, p.photos) for p in people] == [("Spurs", 3), ("Yao Ming", 1)]
    # Reopened from disk: the same vectors, bit for bit, and the crop survives PNG.
    with Gallery(tmp_path / "db", create=False) as gallery:
        labels, vectors = gallery.embeddings(RID)
        assert vectors.shape == (4, 512)
        assert vectors.dtype == np.float32
        assert np.array_equal(vectors[0], yao.embedding)
        assert list(labels) == [result.person_id] + [people[0].id] * 3
        crops = gallery.crops()
        assert np.array_equal(crops[0].crop, yao.crop)
        assert gallery.embeddings("otherpack")[1].shape[0] == 0
    assert [p.name for p in (tmp_path / "db").iterdir() if "Yao" in p.name] == []


def test_unicode_names_remove_and_rename(tmp_path, yao, gdp_faces):
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Zoë", [yao], RID)
        gallery.add_faces("李雷", gdp_faces[:2], RID)
        assert {p.name for p in gallery.people()} == {"Zoë", "李雷"}
        # NFD input finds the NFC-stored name.
        gallery.rename_person("Zoe\u0308", "../Zoë Two")
        assert {p.name for p in gallery.people()} == {"../Zoë Two", "李雷"}
        with pytest.raises(GalleryError, match="already in the gallery"):
            gallery.rename_person("李雷", "../Zoë Two")
        assert gallery.remove_person("李雷") == 2
        with pytest.raises(GalleryError, match="not in the gallery"):
            gallery.remove_person("李雷")
        labels, _ = gallery.embeddings(RID)
        assert len(labels) == 1
        assert gallery.face_count() == 1
    names = [p.name for p in tmp_path.iterdir()]
    assert names
    assert all(n.startswith(DB_FILE) for n in names)


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", "x" * 101])
def test_bad_names_are_refused(tmp_path, yao, bad):
    with Gallery(tmp_path) as gallery, pytest.raises(GalleryError):
        gallery.add_faces(bad, [yao], RID)


def test_another_pack_is_refused_with_reindex_hint(tmp_path, yao):
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Yao", [yao], RID)
        with pytest.raises(GalleryError, match="face-recognizer reindex"):
            gallery.add_faces("Yao", [yao], "anotherpack00000")
        assert gallery.recognizer_ids() == {RID: 1}


def test_change_token_sees_own_and_other_writes(tmp_path, yao):
    with Gallery(tmp_path) as gallery, Gallery(tmp_path) as other:
        token = gallery.change_token()
        assert gallery.change_token() == token
        other.add_faces("Yao", [yao], RID)
        assert gallery.change_token() != token
        token = gallery.change_token()
        gallery.set_setting("threshold", "0.4")
        assert gallery.change_token() != token
        assert other.get_setting("threshold") == "0.4"
        assert other.get_setting("nothing") is None


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    garbage = b"this is not a database" * 100
    (corrupt / DB_FILE).write_bytes(garbage)
    with pytest.raises(GalleryError, match="not a gallery database"):
        Gallery(corrupt)
    assert (corrupt / DB_FILE).read_bytes() == garbage

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    conn = sqlite3.connect(foreign / DB_FILE)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    before = (foreign / DB_FILE).read_bytes()
    with pytest.raises(GalleryError, match="another program"):
        Gallery(foreign)
    assert (foreign / DB_FILE).read_bytes() == before

    a_file = tmp_path / "file.db"
    a_file.write_bytes(b"x")
    with pytest.raises(GalleryError, match="is a file, not a gallery folder"):
        Gallery(a_file)
    assert a_file.read_bytes() == b"x"


def test_missing_gallery_without_create(tmp_path):
    with pytest.raises(GalleryError, match="No gallery"):
        Gallery(tmp_path / "none", create=False)
    assert not (tmp_path / "none").exists()


def test_failed_write_leaves_nothing_half_done(tmp_path, yao):
    with Gallery(tmp_path) as gallery:
        bad = EnrolFace(np.ones(128, np.float32), yao.crop, "x", "h", 0.9, 100.0, 100.0)
        with pytest.raises(GalleryError, match="different sizes"):
            gallery.add_faces("Half", [yao, bad], RID)
        assert gallery.people() == []
        assert gallery.face_count() == 0
