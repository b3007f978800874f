"""`people`, `import` and `reindex` through the real command line (subprocesses)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
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
SKIPPED = 3  # the exit status of an import that finished but skipped photos


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
    assert first.returncode == SKIPPED, first.stderr  # finished, with photos skipped
    lines = first.stdout.splitlines()
    assert len(lines) == 12, first.stdout
    assert lines[0] == "Yao Ming: used 2, skipped 5 (1 too blurred; 1 face too small; " + (
        "1 several faces, none clearly Yao Ming; 1 no face; 1 unreadable)"
    )  # the group photo t1.jpg: Yao Ming is not in it
    assert lines[1] == "  e_group.jpg: several faces, none clearly Yao Ming"
    assert lines[2] == "Zoë: used 1, skipped 0"
    assert lines[3] == "李雷: used 1, skipped 0"
    assert lines[4] == "Added 4 photos of 3 people."
    assert lines[5] == "Skipped 5:"  # each photo with its reason
    assert [line.rsplit("/", 1)[-1] for line in lines[6:10]] == [
        "c_blurred.jpg: too blurred",
        "d_small.jpg: face too small",
        "e_group.jpg: several faces, none clearly Yao Ming",
        "f_mask.jpg: no face",
    ]
    assert lines[10].startswith(f"  {tree / 'Yao Ming' / 'g_broken.jpg'}: unreadable: ")
    assert lines[11] == (
        "Fewer than 3 photos, recognition will be less sure: Yao Ming (2), Zoë (1), 李雷 (1)."
    )
    assert first.stderr.splitlines()[-1] == "9/9 photos, 3 people"  # piped: plain lines
    with Gallery(db) as gallery:
        assert {p.name: p.photos for p in gallery.people()} == {"Yao Ming": 2, "Zoë": 1, "李雷": 1}

    again = run_cli("import", str(tree), "--db", str(db), "--ctx", "-1")
    assert again.returncode == SKIPPED, again.stderr
    assert again.stdout.splitlines()[0].startswith("Yao Ming: used 0, already enrolled 2, ")
    assert "Added 0 photos of 0 people." in again.stdout.splitlines()
    with Gallery(db) as gallery:
        assert gallery.face_count() == 4


def test_people_list_rename_remove(tree, tmp_path):
    db = tmp_path / "db"
    assert run_cli("import", str(tree), "--db", str(db), "--ctx", "-1").returncode == SKIPPED
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
    assert gone.stdout.strip() == "Removed 李雷 (1 photo, 0 sightings)."
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
    assert run_cli("import", str(tree), "--db", str(db), "--ctx", "-1").returncode == SKIPPED
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
        "Alex Lacamoire: used 3, skipped 0",
        "Barack Obama: used 4, skipped 0",
        "Joe Biden: used 2, skipped 0",
        "Lin Manuel Miranda: used 1, skipped 0",
        "Added 10 photos of 4 people.",
        "Fewer than 3 photos, recognition will be less sure: Joe Biden (2), "
        "Lin Manuel Miranda (1).",
    ]
    assert (
        "Underscores in 4 folder names became spaces ('Alex_Lacamoire' is enrolled as "
        "'Alex Lacamoire'); --keep-underscores keeps them." in result.stderr
    )


def test_merge_and_show_on_shared_photos(datasets, tmp_path):
    """Obama's photos under two spellings, as two downloads would name him; merged into one,
    then listed and drawn on a contact sheet."""
    obama = sorted((datasets / "videos" / "references" / "Barack_Obama").iterdir())
    tree = tmp_path / "photos"
    for folder, photos in (("Barack_Obama", obama[:2]), ("Barack Obama", obama[2:])):
        (tree / folder).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, tree / folder / photo.name)
    db = tmp_path / "db"
    kept = run_cli("import", str(tree), "--keep-underscores", "--db", str(db), "--ctx", "-1")
    assert kept.returncode == 0, kept.stderr
    assert "Underscores" not in kept.stderr
    with Gallery(db) as gallery:
        assert {p.name: p.photos for p in gallery.people()} == {
            "Barack Obama": 2,
            "Barack_Obama": 2,
        }

    declined = run_cli(
        "people", "merge", "Barack_Obama", "Barack Obama", "--db", str(db), stdin="n\n"
    )
    assert declined.returncode == 0, declined.stderr
    assert "Nothing merged." in declined.stdout
    merged = run_cli("people", "merge", "Barack_Obama", "Barack Obama", "--yes", "--db", str(db))
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.strip() == "Merged Barack_Obama into Barack Obama (2 photos moved)."
    with Gallery(db) as gallery:
        assert {p.name: p.photos for p in gallery.people()} == {"Barack Obama": 4}
    again = run_cli("people", "merge", "Barack Obama", "Barack Obama", "--yes", "--db", str(db))
    assert again.returncode == 1
    assert again.stderr.startswith("Error: ")
    assert len(again.stderr.splitlines()) == 1

    sheet = tmp_path / "obama_sheet.png"
    shown = run_cli("people", "show", "Barack Obama", "--sheet", str(sheet), "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "Barack Obama: 4 photos"
    rows = lines[2:6]
    # every enrolled file, each with a date and three quality figures
    assert sorted(row.split()[-1].rsplit("/", 1)[-1] for row in rows) == [p.name for p in obama]
    for row in rows:
        fields = row.split()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields[1])
        assert 0.5 < float(fields[3]) <= 1.0  # detector score
        assert float(fields[4]) >= 40
        assert float(fields[5]) > 0
    assert lines[6] == f"Contact sheet: {sheet}"
    picture = read_image(sheet)
    assert picture.shape == (28 + 112, 4 * 112, 3)  # a title line above one row of 4 crops
    # each tile is a face crop, not blank paper
    tiles = [picture[28:, i * 112 : (i + 1) * 112] for i in range(4)]
    assert all(float(t.std()) > 20 for t in tiles)

    missing = run_cli("people", "show", "Michelle Obama", "--db", str(db))
    assert missing.returncode == 1
    assert "'Michelle Obama' is not in the gallery" in missing.stderr


def test_piped_import_prints_progress_every_few_seconds(datasets, tmp_path):
    """`import big/ | tee log`: stderr is a pipe, so plain lines come at least every 10 s.
    Up to 360 LFW photos: CI's CPU imports about 22 a second, so this takes over 15 s there
    (114 photos once finished inside the first 5 s interval and printed only the end line)."""
    lfw = datasets / "lfw_dev"
    people = sorted(p for p in lfw.iterdir() if p.is_dir())[:60]
    tree = tmp_path / "photos"
    for person in people:
        (tree / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:6]:
            shutil.copy(photo, tree / person.name / photo.name)
    total = sum(len(list((tree / p.name).iterdir())) for p in people)
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    args = [*CLI, "import", str(tree), "--db", str(tmp_path / "db"), "--ctx", "-1"]
    stamps: list[tuple[float, str]] = []
    with subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            stamps.append((time.monotonic(), line.rstrip("\n")))
        end = time.monotonic()
    assert proc.returncode in (0, SKIPPED), stamps  # LFW has photos the checks refuse
    progress = [
        (t, text)
        for t, text in stamps
        if re.fullmatch(r"\d+/\d+ photos, \d+ (person|people).*", text)
    ]
    assert progress[-1][1] == f"{total}/{total} photos, 60 people"
    assert len(progress) >= 2, stamps  # at least one line before the end
    assert any(re.search(r", about \d+ s left$", text) for _, text in progress[:-1])
    times = [t for t, _ in progress] + [end]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < 10, gaps


def test_help_shows_examples():
    for args in (["people", "--help"], ["import", "--help"], ["reindex", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0
        assert "face-recognizer " in result.stdout.split("xample")[-1]
