"""`recognize` logs sightings: one per track on the shared clips, one per face of a still,
none with --no-log; Ctrl-C still writes the open tracks; kill -9 never damages the gallery."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from galleries import enrol_people, reference_people

from face_recognizer.samples import sample_path
from face_recognizer.sightings.log import MIN_FRAMES
from face_recognizer.store.sqlite import DB_FILE, Gallery
from face_recognizer.words import plural

CLI = [sys.executable, "-m", "face_recognizer"]
HAMILTON = "videos/hamilton_whitehouse_short.mp4"
PEDESTRIANS = "videos/pedestrians_covent_garden_4s.mp4"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "FACE_RECOGNIZER_DB")}


def _recognize(db: Path, source: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "recognize", "--ctx", "-1", "--db", str(db), "--source", str(source),
         "--no-window", *extra],
        capture_output=True, text=True, timeout=600, env=_env(),
    )  # fmt: skip


@pytest.fixture
def clip_db(engine, datasets: Path, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A fresh gallery of videos/references (folder name -> name, _ -> space)."""
    db = tmp_path / "db"
    enrol_people(engine, db, reference_people(datasets))
    return db


def _tracks(stdout: str) -> dict[int, list[int]]:
    """track id -> the frames it was seen in, from `recognize --json`."""
    seen: dict[int, list[int]] = defaultdict(list)
    for line in stdout.splitlines():
        frame = json.loads(line)
        for face in frame["faces"]:
            seen[face["track"]].append(frame["frame"])
    return seen


def test_hamilton_clip_logs_one_sighting_per_track_with_the_right_names(
    clip_db: Path, datasets: Path
) -> None:
    result = _recognize(clip_db, datasets / HAMILTON, "--json")
    assert result.returncode == 0, result.stderr
    tracks = _tracks(result.stdout)
    logged = {t: f for t, f in tracks.items() if len(f) >= MIN_FRAMES}
    short = len(tracks) - len(logged)
    with Gallery(clip_db) as gallery:
        rows = gallery.sightings()
    assert len(rows) == len(logged) >= 4
    assert f"Logged {plural(len(rows), 'sighting')}" in result.stderr
    if short:
        assert f"{plural(short, 'track')} seen in fewer than {MIN_FRAMES} frames" in result.stderr
    # Each sighting is exactly one track: same first and last frame, same frame count.
    spans = sorted((f[0], f[-1], len(f)) for f in logged.values())
    assert sorted((s.first_frame, s.last_frame, s.frames) for s in rows) == spans
    assert all(s.source == str(datasets / HAMILTON) for s in rows)
    assert all(s.start_pos is not None and s.end_pos is not None for s in rows)
    # Lin-Manuel Miranda: standing on the wide stage shot (frames 0-19, a small face) and in
    # his close-up (82-210); Barack Obama in the audience (211-274). Each shot is one track.
    lin = sorted((s for s in rows if s.name == "Lin Manuel Miranda"), key=lambda s: s.id)
    obama = [s for s in rows if s.name == "Barack Obama"]
    assert all(s.first_frame == 0 and s.last_frame <= 19 for s in lin[:-1])  # small: named
    close_up = lin[-1]  # or not, depending on the threshold
    assert 82 <= close_up.first_frame <= 90
    assert 200 <= close_up.last_frame <= 210
    assert len(obama) == 1
    assert 211 <= obama[0].first_frame <= 220
    assert obama[0].last_frame >= 265
    assert close_up.best_similarity >= close_up.mean_similarity > 0.3
    assert close_up.start_pos is not None
    assert abs(close_up.start_pos - close_up.first_frame / 29.97) < 0.05
    assert not any(s.name == "Joe Biden" for s in rows)
    named = {s.name for s in rows} - {None}
    assert named <= {"Lin Manuel Miranda", "Barack Obama", "Alex Lacamoire"}
    crops = gallery_crops(clip_db, [close_up.id])
    assert crops[close_up.id].shape[0] >= 80  # the best view: a big face, not a blink


def gallery_crops(db: Path, ids: list[int]) -> dict:
    with Gallery(db) as gallery:
        return gallery.sighting_crops(ids)


def test_pedestrians_are_all_strangers_and_no_log_logs_nothing(
    clip_db: Path, datasets: Path
) -> None:
    result = _recognize(clip_db, datasets / PEDESTRIANS)
    assert result.returncode == 0, result.stderr
    with Gallery(clip_db) as gallery:
        rows = gallery.sightings()
    assert len(rows) >= 5
    assert all(s.name is None for s in rows)
    assert all(s.frames >= MIN_FRAMES for s in rows)
    again = _recognize(clip_db, datasets / PEDESTRIANS, "--no-log")
    assert again.returncode == 0, again.stderr
    assert "Logged" not in again.stderr
    with Gallery(clip_db) as gallery:
        assert len(gallery.sightings()) == len(rows)


def test_a_folder_of_photos_logs_one_sighting_per_face(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "db"
    enrol_people(engine, db, {"Yao Ming": [sample_path("yaoming.jpg")]})
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("players.jpg", "mask_white.jpg", "gdp.jpg"):
        (folder / name).write_bytes(sample_path(name).read_bytes())
    result = _recognize(db, folder, "--json")
    assert result.returncode == 0, result.stderr
    faces = {json.loads(line)["source"]: len(json.loads(line)["faces"]) for line in
             result.stdout.splitlines()}  # fmt: skip
    with Gallery(db) as gallery:
        rows = gallery.sightings()
    assert len(rows) == sum(faces.values()) >= 25
    per_source: dict[str, int] = defaultdict(int)
    for s in rows:
        per_source[s.source] += 1
    assert dict(per_source) == {k: v for k, v in faces.items() if v}
    assert [s.name for s in rows if s.name] == ["Yao Ming"]
    yao = next(s for s in rows if s.name)
    assert Path(yao.source).name == "players.jpg"
    assert yao.frames == 1
    assert yao.start_pos is None


def _wait_for_frame(proc: subprocess.Popen[str], frame: int) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["frame"] >= frame:
            return
    raise AssertionError(f"the clip ended before frame {frame}")


def test_ctrl_c_mid_clip_writes_the_open_tracks(clip_db: Path, datasets: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "recognize", "--ctx", "-1", "--db", str(clip_db), "--source",
         str(datasets / HAMILTON), "--no-window", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        _wait_for_frame(proc, 150)  # Lin-Manuel Miranda is on stage (frames 82-210)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    with Gallery(clip_db) as gallery:
        lin = [s for s in gallery.sightings(name="Lin Manuel Miranda") if s.first_frame >= 82]
    assert len(lin) == 1  # his close-up's track was open at Ctrl-C, and was written
    assert 150 <= lin[0].last_frame < 210


def _lin_close_up_stored(db: Path) -> bool:
    with Gallery(db) as gallery:
        rows = gallery.sightings(name="Lin Manuel Miranda")
    return any(s.first_frame >= 82 for s in rows)


def test_kill_9_loses_at_most_the_open_tracks_and_never_damages_the_gallery(
    clip_db: Path, datasets: Path
) -> None:
    proc = subprocess.Popen(
        [*CLI, "recognize", "--ctx", "-1", "--db", str(clip_db), "--source",
         str(datasets / HAMILTON), "--no-window", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(),
    )  # fmt: skip
    try:
        _wait_for_frame(proc, 230)  # Lin's track ended at the cut at frame 211
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _lin_close_up_stored(clip_db):
            time.sleep(0.02)  # the writer thread stores it off the loop's thread
        proc.kill()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(clip_db / DB_FILE)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Gallery(clip_db) as gallery:
        rows = gallery.sightings()
        close_ups = [s for s in rows if s.name == "Lin Manuel Miranda" and s.first_frame >= 82]
        assert len(close_ups) == 1
        # tracks still open at the kill were lost: none reaches the clip's last frame (274),
        # which only the end of the source (never reached) would have written
        assert all(s.last_frame < 274 for s in rows)
        assert len(gallery.people()) == 4
    again = _recognize(clip_db, datasets / HAMILTON)
    assert again.returncode == 0, again.stderr
    with Gallery(clip_db) as gallery:
        lin = gallery.sightings(name="Lin Manuel Miranda")
        assert len([s for s in lin if s.first_frame >= 82]) == 2


def _photos(folder: Path, files: list[Path]) -> Path:
    folder.mkdir()
    for f in files:
        (folder / f.name).write_bytes(f.read_bytes())
    return folder


def test_auto_enrol_labels_a_recurring_stranger_and_naming_keeps_the_history(
    engine, datasets: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "db"
    enrol_people(engine, db, {"Yao Ming": [sample_path("yaoming.jpg")]})
    brody = sorted((datasets / "lfw_dev" / "Adrien_Brody").glob("*.jpg"))
    first = _photos(tmp_path / "monday", brody[:3])
    later = _photos(tmp_path / "tuesday", brody[3:5])
    seen = _recognize(db, first, "--auto-enrol", "3")
    assert seen.returncode == 0, seen.stderr
    groups = json.loads(
        subprocess.run(
            [*CLI, "unknowns", "--json", "--db", str(db)],
            capture_output=True, text=True, timeout=300, env=_env(),
        ).stdout
    )  # fmt: skip
    assert [g["sightings"] for g in groups] == [3]
    visitor = groups[0]["id"]

    again = _recognize(db, later, "--auto-enrol", "3", "--json")
    assert again.returncode == 0, again.stderr
    frames = [json.loads(line) for line in again.stdout.splitlines()]
    assert len(frames) == 2
    central = [max(f["faces"], key=lambda x: x["box"][2] - x["box"][0]) for f in frames]
    assert [(c["name"], c["visitor"]) for c in central] == [(None, visitor)] * 2

    named = subprocess.run(
        [*CLI, "unknowns", "name", str(visitor), "Adrien Brody", "--ctx", "-1", "--db", str(db)],
        capture_output=True, text=True, timeout=300, env=_env(),
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    assert f"Named group {visitor} Adrien Brody: enrolled " in named.stdout
    assert "5 sightings are now Adrien Brody's." in named.stdout
    with Gallery(db) as gallery:
        assert len(gallery.sightings(name="Adrien Brody")) == 5  # his history is kept
        assert "Adrien Brody" in {p.name for p in gallery.people()}
    third = _recognize(db, later, "--json")
    names = [
        max(json.loads(line)["faces"], key=lambda x: x["box"][2] - x["box"][0])["name"]
        for line in third.stdout.splitlines()
    ]
    assert names == ["Adrien Brody"] * 2


def test_a_visitor_is_labelled_visitor_in_the_window() -> None:
    from face_recognizer.live import name_label
    from face_recognizer.types import VISITOR, Track

    face = Track(None, (0, 0, 10, 10), np.zeros((5, 2), np.float32), None, 0.1, data={VISITOR: 7})
    assert name_label(face)[0] == "Visitor 7"
    assert name_label(dataclasses.replace(face, data={}))[0] == "Unknown"
