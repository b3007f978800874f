"""`recognize --csv` (one row per face, like face_recognition's one-shot over a folder) and
the `"source"` of `--json` for every kind of source, on real photos with a real gallery."""

from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recognizer.cli.recognize import CSV_HEADER, json_object
from face_recognizer.enrol import enrol_face
from face_recognizer.images import read_image
from face_recognizer.samples import sample_path
from face_recognizer.store.sqlite import Gallery
from face_recognizer.types import FrameResult, Track

CLI = [sys.executable, "-m", "face_recognizer"]
PEOPLE = ("Adrien_Brody", "Al_Sharpton", "Ali_Naimi")  # lfw_dev: 12, 7 and 8 photos
STRANGERS = ("Abdulaziz_Kamilov", "Abel_Aguilar")  # lfw_unknowns_dev: never enrolled


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".jpg")


@pytest.fixture(scope="module")
def lfw_tree(engine, datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """(a gallery of three LFW people from their first 3 photos, a person/photo.jpg tree of
    their next 2 photos and of two strangers)."""
    root = tmp_path_factory.mktemp("csv")
    db = root / "db"
    tree = root / "probes"
    with Gallery(db) as gallery:
        for person in PEOPLE:
            photos = _photos(datasets / "lfw_dev" / person)
            faces = [enrol_face(engine, read_image(p), str(p))[0] for p in photos[:3]]
            kept = [f for f in faces if f is not None]
            assert kept, person
            gallery.add_faces(person.replace("_", " "), kept, engine.pack.recognizer_id)
            (tree / person).mkdir(parents=True)
            for photo in photos[3:5]:
                (tree / person / photo.name).write_bytes(photo.read_bytes())
    for person in STRANGERS:
        photo = _photos(datasets / "lfw_unknowns_dev" / person)[0]
        (tree / "strangers").mkdir(exist_ok=True)
        (tree / "strangers" / photo.name).write_bytes(photo.read_bytes())
    return db, tree


def test_csv_over_a_nested_folder_names_each_face(lfw_tree: tuple[Path, Path]) -> None:
    db, tree = lfw_tree
    common = ["recognize", "--ctx", "-1", "--db", str(db), "--source", str(tree), "--no-log"]
    result = _cli(*common, "--csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == CSV_HEADER == (
        "file", "frame", "name", "similarity", "x1", "y1", "x2", "y2",
    )  # fmt: skip
    rows = rows[1:]
    # the same faces as --json finds, in the same order, one row each
    frames = [
        json.loads(line) for line in _cli(*common, "--json", "--no-window").stdout.splitlines()
    ]
    faces = [(f["source"], face) for f in frames for face in f["faces"]]
    assert len(rows) == len(faces) >= 8
    for row, (source, face) in zip(rows, faces, strict=True):
        assert row[0] == source
        assert row[2] == (face["name"] or "")
        assert float(row[3]) == pytest.approx(face["similarity"], abs=0.001)
        assert [int(v) for v in row[4:]] == face["box"]
    # every photo of the tree has a row, under its nested path
    files = sorted({row[0] for row in rows})
    assert files == sorted(str(p) for p in tree.rglob("*.jpg"))
    assert len(files) == 2 * len(PEOPLE) + len(STRANGERS)
    # LFW photos are centred on their person (250x250): the face over the centre is named
    # right, and a stranger's is left empty
    checked = 0
    for path in files:
        centre = [
            row
            for row in rows
            if row[0] == path
            and int(row[4]) < 125 < int(row[6])
            and int(row[5]) < 125 < int(row[7])
        ]
        assert len(centre) == 1, path
        person = Path(path).parent.name
        expected = "" if person == "strangers" else person.replace("_", " ")
        assert centre[0][2] == expected, path
        checked += 1
    assert checked == 8


def test_csv_and_json_together_are_refused(tmp_path: Path) -> None:
    result = _cli("recognize", "--source", str(sample_path("t1.jpg")), "--csv", "--json")
    assert result.returncode == 2
    assert "--csv and --json both print on stdout: choose one." in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame video of a real group photo (t1.jpg, six faces) sliding sideways (MJPG in
    AVI: it plays from a plain HTTP server that ignores range requests)."""
    path = tmp_path_factory.mktemp("clip") / "t1.avi"
    image = read_image(sample_path("t1.jpg"))
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (w, h))
    for i in range(12):
        writer.write(np.roll(image, 4 * i, axis=1))
    writer.release()
    assert path.stat().st_size > 0
    return path


def _json_sources(*args: str) -> list[str]:
    result = _cli("recognize", "--ctx", "-1", "--no-window", "--no-log", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["source"] for line in result.stdout.splitlines()]


def test_json_source_of_a_video_an_image_and_a_folder(clip: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    assert _json_sources("--db", db, "--source", str(clip)) == [str(clip)] * 12
    image = sample_path("t1.jpg")
    assert _json_sources("--db", db, "--source", str(image)) == [str(image)]
    (tmp_path / "pics" / "a").mkdir(parents=True)
    for name in ("t1.jpg", "gdp.jpg"):
        (tmp_path / "pics" / "a" / name).write_bytes(sample_path(name).read_bytes())
    folder = tmp_path / "pics"
    assert _json_sources("--db", db, "--source", str(folder)) == [
        str(folder / "a" / "gdp.jpg"),
        str(folder / "a" / "t1.jpg"),
    ]


@pytest.fixture
def served(clip: Path) -> Iterator[str]:
    """The clip's URL on a local HTTP server (a stream: `recognize` reopens it when it ends)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(clip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
    finally:
        server.shutdown()
        server.server_close()


def test_json_source_of_a_url(served: str, tmp_path: Path) -> None:
    args = ["recognize", "--ctx", "-1", "--db", str(tmp_path / "db"), "--source", served]
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    process = subprocess.Popen(
        [*CLI, *args, "--no-window", "--no-log", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert [json.loads(line)["source"] for line in lines] == [served] * 3


def test_json_source_of_a_camera(engine) -> None:  # type: ignore[no-untyped-def]
    """No camera here: a camera frame (source None, as `sources` makes it) gets --source's
    index as its "source"; a still keeps its own path."""
    from face_recognizer.types import Frame

    image = read_image(sample_path("t1.jpg"))
    detections = engine.detect(image)
    assert len(detections) == 6
    tracks = tuple(
        Track(i, tuple(map(float, detections.xyxy[i])), detections.landmarks[i], None, 0.1)
        for i in range(len(detections))
    )
    camera = Frame(image, 7, None, 0.0)
    result = FrameResult(camera.index, camera.source, tracks, len(detections))
    payload = json_object(result, "0")
    assert payload["source"] == "0"
    assert payload["frame"] == 7
    assert len(payload["faces"]) == 6
    still = FrameResult(0, "photos/t1.jpg", tracks, len(detections))
    assert json_object(still, "photos")["source"] == "photos/t1.jpg"
