"""The person's face in group photos (issue 20), on group pictures composed from real photos.

Each group picture puts two LFW photos side by side, so which face is the person's is known
from where it sits. Nothing here is mocked: the real detector and embedder decide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recognizer.enrol import (
    AGREES,
    RECURS,
    EnrolReport,
    Photo,
    enrol_files,
    enrol_images,
    examine,
)
from face_recognizer.images import read_image
from face_recognizer.store.sqlite import Gallery

PEOPLE = ("Tony_Blair", "Gerhard_Schroeder", "Hugo_Chavez", "Bill_Clinton", "David_Beckham")


def _single_face_photos(engine, folder: Path, count: int) -> list[Path]:
    """The first `count` photos of `folder` that hold exactly one usable face."""
    kept = []
    for path in sorted(folder.iterdir()):
        image = read_image(path)
        aligned, _ = examine(engine, Photo(image, str(path), "x"))
        if aligned is not None:
            kept.append(path)
        if len(kept) == count:
            return kept
    pytest.fail(f"{folder.name} has fewer than {count} single-face photos")


@pytest.fixture(scope="module")
def lfw(engine, datasets) -> dict[str, list[Path]]:
    """Six single-face photos of each of PEOPLE."""
    return {p: _single_face_photos(engine, datasets / "lfw_dev" / p, 6) for p in PEOPLE}


def _crop(engine, path: Path) -> np.ndarray:
    aligned, _ = examine(engine, Photo(read_image(path), str(path), "x"))
    assert aligned is not None, path
    return aligned.crop


def side_by_side(left: Path, right: Path) -> np.ndarray:
    a, b = read_image(left), read_image(right)
    h = min(a.shape[0], b.shape[0])
    return np.hstack(
        [
            cv2.resize(a, (a.shape[1] * h // a.shape[0], h)),
            cv2.resize(b, (b.shape[1] * h // b.shape[0], h)),
        ]
    )


def write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def face_side(report: EnrolReport, source: str, width: int) -> str:
    photo = next(p for p in report.photos if p.source == source)
    assert photo.xyxy is not None, photo
    centre = float(photo.xyxy[0] + photo.xyxy[2]) / 2
    return "left" if centre < width / 2 else "right"


def test_group_photo_enrols_the_face_that_agrees_with_single_photos(engine, lfw, tmp_path):
    blair, other = lfw["Tony_Blair"], lfw["Hugo_Chavez"]
    folder = tmp_path / "Tony Blair"
    for i, path in enumerate(blair[:3]):
        write(folder / f"a{i}.jpg", read_image(path))
    groups = [
        write(folder / "g_left.jpg", side_by_side(blair[3], other[0])),
        write(folder / "g_right.jpg", side_by_side(other[1], blair[4])),
    ]
    with Gallery(tmp_path / "db") as gallery:
        report = enrol_files(engine, gallery, "Tony Blair", sorted(folder.iterdir()))
    assert report.added == 5
    assert report.skipped == {}
    widths = [read_image(g).shape[1] for g in groups]
    assert face_side(report, str(groups[0]), widths[0]) == "left"
    assert face_side(report, str(groups[1]), widths[1]) == "right"
    for group in groups:
        photo = next(p for p in report.photos if p.source == str(group))
        assert photo.how == AGREES
        assert photo.faces == 2
        assert photo.compared == 3
        assert photo.describe().startswith("ok, the face at ")
        assert "agrees" in photo.describe()


def test_stored_faces_are_references_for_a_later_group_photo(engine, lfw, tmp_path):
    blair, other = lfw["Tony_Blair"], lfw["Bill_Clinton"]
    with Gallery(tmp_path / "db") as gallery:
        first = enrol_files(engine, gallery, "Tony Blair", blair[:2])
        assert first.added == 2
        group = write(tmp_path / "group.jpg", side_by_side(other[0], blair[5]))
        later = enrol_files(engine, gallery, "Tony Blair", [group])
    assert later.added == 1
    assert later.stored == 3
    assert face_side(later, str(group), read_image(group).shape[1]) == "right"
    assert later.photos[0].compared == 2  # the two stored faces


def test_every_photo_a_group_photo_takes_the_recurring_face(engine, lfw, tmp_path):
    schroeder = lfw["Gerhard_Schroeder"]
    strangers = [lfw["Hugo_Chavez"][0], lfw["Bill_Clinton"][0], lfw["David_Beckham"][0]]
    folder = tmp_path / "Gerhard Schroeder"
    sides = []
    for i, (mine, stranger) in enumerate(zip(schroeder[:3], strangers, strict=True)):
        left = i % 2 == 0
        image = side_by_side(mine, stranger) if left else side_by_side(stranger, mine)
        write(folder / f"g{i}.jpg", image)
        sides.append(("left" if left else "right", image.shape[1]))
    with Gallery(tmp_path / "db") as gallery:
        report = enrol_files(engine, gallery, "Gerhard Schroeder", sorted(folder.iterdir()))
    assert report.added == 3
    for (side, width), photo in zip(sides, report.photos, strict=True):
        assert photo.how == RECURS
        assert face_side(report, photo.source, width) == side
        assert "recurs" in photo.describe()


def test_two_people_in_every_photo_are_refused_as_ambiguous(engine, lfw, tmp_path):
    blair, merkel = lfw["Tony_Blair"], lfw["Hugo_Chavez"]
    folder = tmp_path / "Tony Blair"
    for i in range(3):
        write(folder / f"g{i}.jpg", side_by_side(blair[i], merkel[i]))
    with Gallery(tmp_path / "db") as gallery:
        report = enrol_files(engine, gallery, "Tony Blair", sorted(folder.iterdir()))
        assert gallery.face_count() == 0
    assert report.added == 0
    assert report.skipped == {"several faces, none clearly Tony Blair": 3}


def test_one_group_photo_alone_needs_pick(engine, lfw, tmp_path):
    blair, merkel = lfw["Tony_Blair"], lfw["Hugo_Chavez"]
    image = side_by_side(blair[0], merkel[0])
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    with Gallery(tmp_path / "db") as gallery:
        refused = enrol_images(engine, gallery, "Tony Blair", [data.tobytes()])
        assert refused.added == 0
        assert refused.photos[0].reason == "several faces"
        taken = enrol_images(engine, gallery, "Tony Blair", [data.tobytes()], pick="center")
    assert taken.added == 1
    assert taken.photos[0].how == "center"
    assert taken.photos[0].describe().endswith("(the center face, as asked)")


def test_import_names_who_got_no_photo_and_exits_3(engine, lfw, tmp_path):
    root = tmp_path / "photos"
    for i, path in enumerate(lfw["Bill_Clinton"][:3]):
        write(root / "Bill Clinton" / f"{i}.jpg", read_image(path))
    for i in range(2):  # two people in every photo: nobody can tell which is "Tony Blair"
        image = side_by_side(lfw["Tony_Blair"][i], lfw["Hugo_Chavez"][i])
        write(root / "Tony Blair" / f"g{i}.jpg", image)
    write(root / "David Beckham" / "0.jpg", read_image(lfw["David_Beckham"][0]))
    (root / "Dora Empty").mkdir()  # her photos did not copy: only a note is there
    (root / "Dora Empty" / "notes.txt").write_text("photos to follow")
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    args = [sys.executable, "-m", "face_recognizer", "import", str(root), "--db"]
    out = subprocess.run(
        [*args, str(tmp_path / "db"), "--ctx", "-1"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 3, out.stderr
    lines = out.stdout.splitlines()
    end = lines[lines.index("Added 4 photos of 2 people.") :]
    assert end[1] == "Skipped 2:"  # each group photo of Tony Blair, with its reason
    assert [line.rsplit("/", 1)[-1] for line in end[2:4]] == [
        "g0.jpg: several faces, none clearly Tony Blair",
        "g1.jpg: several faces, none clearly Tony Blair",
    ]
    assert end[4:] == [
        "Not enrolled: Dora Empty (no photos in the folder).",
        "Not enrolled: Tony Blair (no usable photo: 2 several faces, none clearly Tony Blair).",
        "Fewer than 3 photos, recognition will be less sure: David Beckham (1).",
    ]
    assert "  g0.jpg: several faces, none clearly Tony Blair" in lines

    again = subprocess.run(
        [*args, str(tmp_path / "db2"), "--ctx", "-1", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert again.returncode == 3, again.stderr
    summary = json.loads(again.stdout)
    assert summary["not_enrolled"] == [
        {"name": "Dora Empty", "skipped": {}},
        {"name": "Tony Blair", "skipped": {"several faces, none clearly Tony Blair": 2}},
    ]
    assert summary["fewer_than_recommended"] == [{"name": "David Beckham", "photos": 1}]
    assert [p["added"] for p in summary["people"]] == [3, 1, 0, 0]


def test_people_show_lists_and_draws_the_face_taken_from_group_photos(engine, lfw, tmp_path):
    """After an import with group photos, `people show --sheet` lists the group photos and its
    tiles are the person's face (the picked one), not the stranger beside them."""
    blair, other = lfw["Tony_Blair"], lfw["David_Beckham"]
    folder = tmp_path / "photos" / "Tony Blair"
    for i, path in enumerate(blair[:3]):
        write(folder / f"a{i}.jpg", read_image(path))
    write(folder / "g_left.jpg", side_by_side(blair[3], other[0]))
    write(folder / "g_right.jpg", side_by_side(other[1], blair[4]))
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    cli = [sys.executable, "-m", "face_recognizer"]
    db = str(tmp_path / "db")
    done = subprocess.run(
        [*cli, "import", str(tmp_path / "photos"), "--db", db, "--ctx", "-1"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    sheet = tmp_path / "blair.png"
    shown = subprocess.run(
        [*cli, "people", "show", "Tony Blair", "--sheet", str(sheet), "--db", db],
        capture_output=True,
        text=True,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "Tony Blair: 5 photos"
    files = [row.split()[-1].rsplit("/", 1)[-1] for row in lines[2:7]]
    assert sorted(files) == ["a0.jpg", "a1.jpg", "a2.jpg", "g_left.jpg", "g_right.jpg"]
    picture = read_image(sheet)
    tiles = np.stack([picture[28:140, i * 112 : (i + 1) * 112] for i in range(5)])
    vectors = engine.embed_crops(tiles)
    mine = engine.embed_crops(np.stack([_crop(engine, p) for p in blair[:3]]))
    theirs = engine.embed_crops(np.stack([_crop(engine, p) for p in other[:2]]))
    for name, vector in zip(files, vectors, strict=True):
        to_blair = float((mine @ vector).mean())
        to_other = float((theirs @ vector).mean())
        assert to_blair > to_other + 0.2, (name, to_blair, to_other)
