"""`face-recognizer recognize` end to end: --json on the shared clips (ground truth), stills,
the empty-gallery hint, and the window under Xvfb (labels on screen, Q quits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from desktop import (
    desktop_env,
    press,
    wait_for_file,
    wait_for_screen,
    wait_for_title,
    wait_for_window,
)
from galleries import enrol_people, reference_people

from face_recognizer.draw import KNOWN, STRANGER
from face_recognizer.images import is_image_path, read_image
from face_recognizer.live import WINDOW_TITLE
from face_recognizer.samples import sample_path
from face_recognizer.store.sqlite import Gallery

CLI = [sys.executable, "-m", "face_recognizer"]
HAMILTON = "videos/hamilton_whitehouse_short.mp4"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=300, env={**base, **(env or {})}
    )


@pytest.fixture(scope="module")
def clip_db(engine, datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A temporary gallery of videos/references (folder name -> name, _ -> space)."""
    db = tmp_path_factory.mktemp("clip") / "db"
    enrol_people(engine, db, reference_people(datasets))
    return db


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_json_on_the_hamilton_clip_names_the_right_people(clip_db: Path, datasets: Path) -> None:
    result = _cli(
        "recognize", "--ctx", "-1", "--db", str(clip_db), "--source", str(datasets / HAMILTON),
        "--no-window", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = _json_lines(result.stdout)  # stdout holds JSON lines only
    assert [f["frame"] for f in frames] == list(range(275))
    names = [{face["name"] for face in f["faces"]} - {None} for f in frames]
    lin = sum("Lin Manuel Miranda" in n for n in names[82:211])
    obama = sum("Barack Obama" in n for n in names[211:275])
    assert lin / 129 >= 0.95
    assert obama / 64 >= 0.90
    assert not any("Joe Biden" in n for n in names)
    face = frames[100]["faces"][0]
    assert set(face) == {"box", "name", "similarity", "track"}
    assert isinstance(face["track"], int)
    assert {f["source"] for f in frames} == {str(datasets / HAMILTON)}
    assert "faces embedded" in result.stderr


def test_nobody_is_named_on_the_pedestrians_clip(clip_db: Path, datasets: Path) -> None:
    clip = datasets / "videos" / "pedestrians_covent_garden_4s.mp4"
    result = _cli(
        "recognize", "--ctx", "-1", "--db", str(clip_db), "--source", str(clip), "--no-window",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = _json_lines(result.stdout)
    assert len(frames) == 105
    faces = [face for f in frames for face in f["faces"]]
    assert len(faces) > 300
    assert all(face["name"] is None for face in faces)


def test_stills_folder_labels_each_picture_without_tracks(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "db"
    enrol_people(engine, db, {"Yao Ming": [sample_path("yaoming.jpg")]})
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("players.jpg", "mask_white.jpg"):
        (folder / name).write_bytes(sample_path(name).read_bytes())
    gif = tmp_path / "out.gif"
    result = _cli(
        "recognize", "--ctx", "-1", "--db", str(db), "--source", str(folder), "--no-window",
        "--json", "--output", str(gif),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = _json_lines(result.stdout)
    assert [Path(f["source"]).name for f in frames] == ["mask_white.jpg", "players.jpg"]
    assert frames[0]["faces"] == []
    players = frames[1]["faces"]
    assert len(players) == 22
    assert all(face["track"] is None for face in players)
    named = [face for face in players if face["name"]]
    assert [face["name"] for face in named] == ["Yao Ming"]
    assert named[0]["similarity"] > 0.5
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_empty_gallery_runs_and_says_how_to_register(tmp_path: Path) -> None:
    result = _cli(
        "recognize", "--ctx", "-1", "--db", str(tmp_path / "db"), "--source",
        str(sample_path("yaoming.jpg")), "--no-window", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (frame,) = _json_lines(result.stdout)
    assert len(frame["faces"]) == 1
    assert frame["faces"][0]["name"] is None
    assert result.stderr.count("face-recognizer register -n NAME") == 1


def test_bad_source_and_no_screen_are_one_sentence(tmp_path: Path) -> None:
    bad = _cli("recognize", "--ctx", "-1", "--db", str(tmp_path / "db"), "--source", "7",
               "--no-window")  # fmt: skip
    assert bad.returncode == 1
    assert "Error: Camera 7 could not be opened" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "db").exists()  # a failed start leaves no empty gallery behind
    screen = _cli("recognize", "--ctx", "-1", "--db", str(tmp_path / "db"))
    assert screen.returncode == 1
    assert "No screen is available" in screen.stderr
    assert "--no-window" in screen.stderr


def _has(image: np.ndarray, color: tuple[int, int, int], at_least: int) -> bool:
    close = np.abs(image.astype(np.int16) - np.array(color, np.int16)).max(axis=2) <= 10
    return int(close.sum()) >= at_least


def test_window_shows_labels_s_saves_a_snapshot_and_q_quits(
    clip_db: Path, datasets: Path, xdisplay: str, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [*CLI, "recognize", "--ctx", "-1", "--db", str(clip_db.resolve()), "--source",
         str((datasets / HAMILTON).resolve())],
        env=desktop_env(xdisplay), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path,
    )  # fmt: skip
    try:
        window = wait_for_window(xdisplay, WINDOW_TITLE, proc=proc)
        shot = wait_for_screen(
            xdisplay,
            window,
            lambda im: _has(im, KNOWN.bgr, 300) and _has(im, STRANGER.bgr, 100),
            timeout=60,
            what="a green (known) and an orange (unknown) label",
        )
        assert shot.mean() > 10  # a picture (the audience shot is dark), not a black window
        press(xdisplay, window, "s")
        snapshot = wait_for_file(tmp_path, "snapshot-*.png")
        press(xdisplay, window, "q")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "frames in" in err
        assert f"Snapshot: {snapshot.name}" in err
        saved = read_image(snapshot)
        assert saved.shape == (360, 640, 3)  # the clip's frame size, labels drawn on it
        assert _has(saved, KNOWN.bgr, 100) or _has(saved, STRANGER.bgr, 100)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _still_clip(name: str, frames: int) -> list:  # type: ignore[type-arg]
    from face_recognizer.types import Frame

    image = read_image(sample_path(name))
    return [
        Frame(image=image.copy(), index=i, source=None, timestamp=i / 25) for i in range(frames)
    ]


def test_big_faces_are_followed_with_the_half_size_detector(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from face_recognizer.live import FULL_DETECT_EVERY, Levers, Recognizer
    from face_recognizer.matcher import Matcher

    enrol_people(engine, tmp_path / "db", {"Yao Ming": [sample_path("yaoming.jpg")]})
    with Gallery(tmp_path / "db") as gallery:
        matcher = Matcher(gallery, engine.pack.recognizer_id)
        recognizer = Recognizer(engine, matcher, levers=Levers(roi=False, coast=False))
        results = [recognizer.process(f) for f in _still_clip("yaoming.jpg", 30)]
    assert [len(r.faces) for r in results] == [1] * 30
    assert all(r.faces[0].name == "Yao Ming" for r in results[2:])
    # one full-size detection, then FULL_DETECT_EVERY half-size ones, and again
    assert recognizer.coarse_frames == 30 - 3
    assert FULL_DETECT_EVERY == 10
    assert len({r.faces[0].id for r in results}) == 1


def test_small_faces_keep_the_full_size_detector(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from face_recognizer.live import Levers, Recognizer
    from face_recognizer.matcher import Matcher

    enrol_people(engine, tmp_path / "db", {"Yao Ming": [sample_path("yaoming.jpg")]})
    with Gallery(tmp_path / "db") as gallery:
        matcher = Matcher(gallery, engine.pack.recognizer_id)
        recognizer = Recognizer(engine, matcher, levers=Levers(roi=False, coast=False))
        full = len(engine.detect(read_image(sample_path("players.jpg"))))
        results = [recognizer.process(f) for f in _still_clip("players.jpg", 6)]
    assert recognizer.coarse_frames == 0
    assert [len(r.faces) for r in results] == [full] * 6
    named = [[f.name for f in r.faces if f.name] for r in results]
    assert named[-1] == ["Yao Ming"]


def test_hamilton_sightings_end_at_the_cut_and_at_the_end_of_the_clip(  # type: ignore[no-untyped-def]
    engine, clip_db: Path, datasets: Path
) -> None:
    """Each person's track ends once: Lin-Manuel Miranda at the cut (frame 210 -> 211),
    Barack Obama when the clip ends; every track that starts also ends, exactly once."""
    from face_recognizer.live import CallbackSink, Recognizer, run
    from face_recognizer.matcher import DEFAULT_THRESHOLD, Matcher
    from face_recognizer.sources import open_source

    events = []
    started: set[int] = set()
    with Gallery(clip_db) as gallery, open_source(str(datasets / HAMILTON)) as source:
        recognizer = Recognizer(engine, Matcher(gallery, engine.pack.recognizer_id))
        sink = CallbackSink(
            on_result=lambda r: started.update(f.id for f in r.faces),
            on_track_end=events.append,
        )
        report = run(source, recognizer, sinks=[sink])
    assert report.frames == 275
    assert sorted(e.track_id for e in events) == sorted(started)  # each track ends once
    named = [(e.name, e.reason, e.first_index, e.last_index) for e in events if e.name]
    lin = [n for n in named if n[0] == "Lin Manuel Miranda" and n[2] >= 82]
    assert lin == [("Lin Manuel Miranda", "cut", 82, 210)]
    assert ("Barack Obama", "end", 211, 274) in named
    assert not any(n[0] == "Joe Biden" for n in named)
    obama = next(e for e in events if e.name == "Barack Obama")
    assert obama.frames == 64
    assert obama.best_similarity >= obama.mean_similarity > DEFAULT_THRESHOLD
    assert obama.crop is not None
    assert obama.embedding is not None


def test_region_detection_and_prediction_follow_moving_faces_like_full_detection(  # type: ignore[no-untyped-def]
    engine, tmp_path: Path
) -> None:
    """players.jpg (22 faces) sliding sideways: with regions and predicted frames every face
    keeps its track and its box stays on the face a full detection finds in that frame."""
    from face_recognizer.live import Recognizer
    from face_recognizer.matcher import Matcher
    from face_recognizer.tracker import iou_matrix
    from face_recognizer.types import Frame

    enrol_people(engine, tmp_path / "db", {"Yao Ming": [sample_path("yaoming.jpg")]})
    scene = read_image(sample_path("players.jpg"))
    w = scene.shape[1]
    frames = [
        Frame(np.ascontiguousarray(scene[:, 2 * i : w - 60 + 2 * i]), i, None, i / 25)
        for i in range(30)
    ]
    with Gallery(tmp_path / "db") as gallery:
        recognizer = Recognizer(engine, Matcher(gallery, engine.pack.recognizer_id))
        results = [recognizer.process(f) for f in frames]
    assert recognizer.roi_frames > 5, recognizer.roi_frames
    assert recognizer.coasted_frames > 2, recognizer.coasted_frames
    for frame, result in zip(frames, results, strict=True):
        truth = engine.detect(frame.image)
        assert len(truth) > 15
        boxes = np.array([f.xyxy for f in result.faces], np.float32)
        overlap = iou_matrix(truth.xyxy, boxes)
        # clear faces (the detector flickers on borderline ones from frame to frame) have a
        # reported box on them, but for one that came into view since the last whole-frame
        # scan (found at the next one); and the reported boxes sit on the faces
        clear = truth.scores >= 0.6
        assert int(clear.sum()) > 12
        assert int((overlap[clear].max(axis=1) <= 0.5).sum()) <= 1, frame.index
        sure = np.array([f.score >= 0.6 for f in result.faces])  # not borderline faces
        assert float(np.median(overlap.max(axis=0)[sure])) > 0.7, frame.index
        assert [f.name for f in result.faces if f.name] in ([], ["Yao Ming"])
    # every clear face keeps its track from the first frame to the last (tiny borderline
    # faces at the back come and go, with the detector's flicker; the picture slides 58 px
    # to the left, so faces at the left edge leave it)
    clear_ids = {f.id for f in results[0].faces if f.score >= 0.6 and f.xyxy[0] > 80}
    assert len(clear_ids) > 12
    assert clear_ids <= {f.id for f in results[-1].faces}
    assert [f.name for f in results[-1].faces if f.name] == ["Yao Ming"]


@pytest.mark.parametrize("subset", ["att_orl", "bbt8_faceapi", "glint18_aligned112"])
def test_recognize_finds_faces_that_fill_the_photo(
    subset: str, datasets: Path, tmp_path: Path
) -> None:
    """Tight crops (no context around the face) give no face to a plain detection; the
    padded pass of `recognize` finds one in each (first photo of up to 12 people)."""
    people = sorted(d for d in (datasets / subset).iterdir() if d.is_dir())[:12]
    tree = tmp_path / subset
    for person in people:
        first = sorted(p for p in person.iterdir() if is_image_path(p))[0]
        (tree / person.name).mkdir(parents=True)
        (tree / person.name / first.name).write_bytes(first.read_bytes())
    done = _cli(
        "recognize", "--source", str(tree), "--db", str(tmp_path / "db"), "--ctx", "-1",
        "--no-window", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = _json_lines(done.stdout)
    assert len(lines) == len(people) >= 8
    assert [len(line["faces"]) for line in lines] == [1] * len(people)
    for line in lines:
        assert Path(line["source"]).is_file()
        x1, y1, x2, y2 = line["faces"][0]["box"]
        image = read_image(Path(line["source"]))
        assert (x2 - x1) * (y2 - y1) > 0.3 * image.shape[0] * image.shape[1]  # fills it


def test_a_face_that_comes_close_until_it_fills_the_frame_stays_named(
    engine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A clip that zooms into Yao Ming's face until it fills the 360x360 frame: named in
    every frame, with one track, while a plain detection loses it at the end."""
    import cv2

    from face_recognizer.live import Recognizer
    from face_recognizer.matcher import Matcher
    from face_recognizer.types import Frame

    enrol_people(engine, tmp_path / "db", {"Yao Ming": [sample_path("yaoming.jpg")]})
    photo = read_image(sample_path("yaoming.jpg"))
    box = engine.detect(photo).xyxy[0]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    big = cv2.copyMakeBorder(photo, 200, 200, 200, 200, cv2.BORDER_REPLICATE)
    cx, cy = cx + 200, cy + 200
    face = float(max(box[2] - box[0], box[3] - box[1]))
    frames = []
    for i in range(40):  # from 4x the face down to 0.8x the face: it ends beyond the frame
        side = face * (4.0 - 3.2 * i / 39)
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        crop = big[y0 : y0 + round(side), x0 : x0 + round(side)]
        frames.append(Frame(cv2.resize(crop, (360, 360)), i, None, i / 25))
    assert len(engine.detect(frames[-1].image)) == 0  # too close for a plain detection
    with Gallery(tmp_path / "db") as gallery:
        recognizer = Recognizer(engine, Matcher(gallery, engine.pack.recognizer_id))
        results = [recognizer.process(f) for f in frames]
    assert [len(r.faces) for r in results] == [1] * 40
    assert [r.faces[0].name for r in results[3:]] == ["Yao Ming"] * 37
    assert len({r.faces[0].id for r in results}) == 1
    last = results[-1].faces[0].xyxy
    assert last[2] - last[0] > 300  # the face fills the frame


def test_a_1080p_video_window_fits_the_screen_and_plays_at_the_clip_frame_rate(
    xdisplay: str, tmp_path: Path
) -> None:
    """Under a 1280x800 screen a 1920x1080 clip opens scaled (aspect kept, whole picture
    visible, the status line says so), and 60 frames at 10 FPS play for about 6 s."""
    import time

    import cv2

    scene = cv2.resize(read_image(sample_path("players.jpg")), (1920, 1080))
    scene[-120:, -160:] = (255, 0, 255)  # a magenta corner: is the bottom right on screen?
    clip = tmp_path / "street.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (1920, 1080))
    for _ in range(60):
        writer.write(scene)
    writer.release()
    proc = subprocess.Popen(
        [*CLI, "recognize", "--ctx", "-1", "--db", str(tmp_path / "db"), "--source", str(clip)],
        env=desktop_env(xdisplay), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path,
    )  # fmt: skip
    try:
        window = wait_for_window(xdisplay, WINDOW_TITLE, proc=proc, timeout=120)
        shot = wait_for_screen(
            xdisplay, window, lambda im: _has(im, (255, 0, 255), 2000), 60, "the magenta corner"
        )
        opened = time.monotonic()
        cv2.imwrite(str(tmp_path / "fit.png"), shot)
        h, w = shot.shape[:2]
        assert w <= 1280
        assert h <= 800
        assert w < 1920
        assert abs(w / h - 16 / 9) < 0.05  # aspect kept
        corner = shot[int(h * 0.9) :, int(w * 0.93) :]
        assert _has(corner, (255, 0, 255), 100)  # the bottom right of the picture is shown
        wait_for_title(xdisplay, window, "end: press any key", proc=proc)  # the last frame stays
        played = time.monotonic() - opened
        press(xdisplay, window, "space")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "60 frames in" in err
        # ~6 s at 10 FPS from the first frame (not processing speed); the first screenshot
        # that shows the picture may come a second or so after the first frame
        assert played > 4.0, played
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
