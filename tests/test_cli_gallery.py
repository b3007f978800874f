"""`people`, `import` and `reindex` through the real command line (subprocesses)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recognizer.images import read_image
from face_recognizer.matcher import Matcher
from face_recognizer.models import find_pack
from face_recognizer.samples import sample_path
from face_recognizer.store.sqlite import DB_FILE, Gallery

CLI = [sys.executable, "-m", "face_recognizer"]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=300, input=stdin, env=env
    )


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(data.tobytes())


@pytest.fixture(scope="module")
def tree(tmp_path_factory, engine) -> Path:
    """DIR/<person>/<photos> from the bundled samples, one photo per skip reason."""
    root = tmp_path_factory.mktemp("photos")
    yao = read_image(sample_path("yaoming.jpg"))
    _write(root / "Yao Ming" / "a_portrait.jpg", yao)
    _write(root / "Yao Ming" / "b_flipped.png", cv2.flip(yao, 1))
    _write(root / "Yao Ming" / "c_blurred.jpg", cv2.GaussianBlur(yao, (0, 0), 3.0))
    _write(root / "Yao Ming" / "d_small.jpg", cv2.resize(yao, None, fx=0.25, fy=0.25))
    shutil.copy(sample_path("t1.jpg"), root / "Yao Ming" / "e_group.jpg")
    shutil.copy(sample_path("mask_white.jpg"), root / "Yao Ming" / "f_mask.jpg")
    (root / "Yao Ming" / "g_broken.jpg").write_bytes(b"not a jpeg")
    (root / "Yao Ming" / "notes.txt").write_text("not a photo, ignored")
    image = read_image(sample_path("gdp.jpg"))
    _write(root / "李雷" / "one.jpg", cv2.convertScaleAbs(yao, alpha=0.7, beta=10))
    x1, y1, x2, y2 = engine.detect(image).xyxy[0].astype(int)
    w, h = x2 - x1, y2 - y1
    m, n = w // 4, h // 4
    _write(root / "Zoë" / "spurs.jpg", image[max(0, y1 - n) : y2 + n, max(0, x1 - m) : x2 + m])
    return root


def test_import_reports_reasons_and_reimport_adds_nothing(tree, tmp_path):
    db = tmp_path / "db"
    first = run_cli("import", str(tree), "--db", str(db), "--ctx", "-1")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 4, first.stdout
    assert lines[0] == "Yao Ming: used 2, skipped 5 (1 too blurred, 1 face too small, " + (
        "1 several faces, 1 no face, 1 unreadable)"
    )
    assert lines[1] == "Zoë: used 1, skipped 0"
    assert lines[2] == "李雷: used 1, skipped 0"
    assert lines[3] == "Added 4 photos of 3 people."
    assert "Importing" in first.stderr
    with Gallery(db) as gallery:
        assert {p.name: p.photos for p in gallery.people()} == {"Yao Ming": 2, "Zoë": 1, "李雷": 1}

    again = run_cli("import", str(tree), "--db", str(db), "--ctx", "-1")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0].startswith("Yao Ming: used 0, already enrolled 2, ")
    assert again.stdout.splitlines()[-1] == "Added 0 photos of 0 people."
    with Gallery(db) as gallery:
        assert gallery.face_count() == 4


def test_people_list_rename_remove(tree, tmp_path):
    db = tmp_path / "db"
    assert run_cli("import", str(tree), "--db", str(db), "--ctx", "-1").returncode == 0
    listed = run_cli("people", "list", "--json", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["photos"]) for r in rows] == [("Yao Ming", 2), ("Zoë", 1), ("李雷", 1)]

    assert run_cli("people", "rename", "Zoë", "Zoë Lima", "--db", str(db)).returncode == 0
    kept = run_cli("people", "remove", "李雷", "--db", str(db), stdin="n\n")
    assert kept.returncode == 0
    assert "Nothing removed." in kept.stdout
    gone = run_cli("people", "remove", "李雷", "--yes", "--db", str(db))
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.strip() == "Removed 李雷 (1 photos, 0 sightings)."
    table = run_cli("people", "list", "--db", str(db)).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHOTOS", "ENROLLED"]
    assert [line.rsplit(None, 2)[0] for line in table[1:]] == ["Yao Ming", "Zoë Lima"]

    missing = run_cli("people", "remove", "Nobody", "--yes", "--db", str(db))
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: 'Nobody' is not in the gallery.")


@pytest.mark.parametrize("kind", ["corrupt", "foreign", "file"])
def test_bad_db_is_a_clear_error_and_untouched(tmp_path, tree, kind):
    db = tmp_path / "db"
    if kind == "file":
        target = db
        target.write_bytes(b"just a file")
    else:
        db.mkdir()
        target = db / DB_FILE
        if kind == "corrupt":
            target.write_bytes(b"\x00garbage" * 512)
        else:
            conn = sqlite3.connect(target)
            conn.execute("CREATE TABLE notes (body TEXT)")
            conn.commit()
            conn.close()
    before = target.read_bytes()
    for args in (["people", "list"], ["import", str(tree), "--ctx", "-1"]):
        result = run_cli(*args, "--db", str(db))
        assert result.returncode == 1
        assert result.stderr.startswith("Error: ")
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert target.read_bytes() == before


def test_other_pack_needs_reindex_and_reindex_restores(tree, tmp_path, engine):
    db = tmp_path / "db"
    assert run_cli("import", str(tree), "--db", str(db), "--ctx", "-1").returncode == 0
    rid = find_pack().recognizer_id
    with Gallery(db) as gallery:
        labels, before = gallery.embeddings(rid)
    conn = sqlite3.connect(db / DB_FILE)
    conn.execute("UPDATE faces SET recognizer_id = 'otherpack0000000', embedding = zeroblob(16)")
    conn.commit()
    conn.close()
    refused = run_cli("import", str(tree), "--db", str(db), "--ctx", "-1")
    assert refused.returncode == 1
    assert "face-recognizer reindex" in refused.stderr
    with Gallery(db) as gallery, pytest.raises(Exception, match="face-recognizer reindex"):
        Matcher(gallery, rid)

    done = run_cli("reindex", "--db", str(db), "--ctx", "-1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Re-embedded 4 faces of 3 people with buffalo_sc."
    with Gallery(db) as gallery:
        assert gallery.recognizer_ids() == {rid: 4}
        labels_after, after = gallery.embeddings(rid)
        matcher = Matcher(gallery, rid)
        yao = engine.analyze(read_image(sample_path("yaoming.jpg"))).embeddings
        assert matcher.match(yao)[0].name == "Yao Ming"
    # Crops are stored losslessly: re-embedding gives back the same vectors.
    assert np.array_equal(labels_after, labels)
    assert np.abs(after - before).max() < 1e-4


def test_import_reference_photos(datasets, tmp_path):
    db = tmp_path / "db"
    result = run_cli(
        "import", str(datasets / "videos" / "references"), "--db", str(db), "--ctx", "-1"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Alex_Lacamoire: used 3, skipped 0",
        "Barack_Obama: used 4, skipped 0",
        "Joe_Biden: used 2, skipped 0",
        "Lin_Manuel_Miranda: used 1, skipped 0",
        "Added 10 photos of 4 people.",
    ]


def test_help_shows_examples():
    for args in (["people", "--help"], ["import", "--help"], ["reindex", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0
        assert "face-recognizer " in result.stdout.split("xample")[-1]
