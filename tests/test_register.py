"""`register.py -n NAME` as a person uses it: the real script in a window under Xvfb, driven
with xdotool (S snap, Q finish, Esc cancel, the close button); and `--images` from photos."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from desktop import (
    close_window,
    desktop_env,
    press,
    screenshot,
    wait_for_screen,
    wait_for_window,
    window_exists,
)

from face_recognizer.cli import main
from face_recognizer.draw import Swatch
from face_recognizer.engine import Engine
from face_recognizer.images import read_image
from face_recognizer.register import BAD, GOOD
from face_recognizer.samples import sample_path
from face_recognizer.store.sqlite import DB_FILE, Gallery

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "register.py"
CLIP_WH = (640, 360)


def make_clip(path: Path, photo: str, frames: int, fps: float = 10.0) -> Path:
    """A video of a bundled photo on a 640x360 canvas, moving a pixel per frame."""
    image = read_image(sample_path(photo))
    w, h = CLIP_WH
    scale = min(1.0, (w - 20) / image.shape[1], (h - 20) / image.shape[0])
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((h, w, 3), 40, np.uint8)
    y, x = (h - image.shape[0]) // 2, (w - image.shape[1]) // 2
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.roll(canvas, i - frames // 2, axis=1))  # every frame differs
    writer.release()
    return path


@pytest.fixture
def face_clip(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str, Path, Path]:
    """(clip, name, a photo of that person, a photo of someone else): the Hamilton clip, or
    a Yao Ming clip made from a bundled photo in a fresh clone."""
    try:
        datasets = request.getfixturevalue("datasets")
    except pytest.skip.Exception:
        clip = make_clip(tmp_path / "yao.avi", "yaoming.jpg", frames=60)
        return clip, "Yao Ming", sample_path("yaoming.jpg"), sample_path("gdp.jpg")
    videos = datasets / "videos"
    refs = videos / "references"
    return (
        videos / "hamilton_whitehouse_short.mp4",
        "Lin-Manuel Miranda",
        refs / "Lin_Manuel_Miranda" / "lin-manuel-miranda.png",
        refs / "Barack_Obama" / "obama.jpg",
    )


def start(display: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--ctx", "-1", *args],
        env=desktop_env(display),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"register.py did not exit:\n{out}\n{err}") from None
    return proc.returncode, out, err


def pixels(image: np.ndarray, color: Swatch, tol: int = 30) -> int:
    """How many pixels are within `tol` (sum of channel differences) of `color`."""
    diff = np.abs(image.astype(np.int16) - np.array(color.bgr, np.int16)).sum(axis=2)
    return int((diff < tol).sum())


def people(db: Path) -> dict[str, int]:
    with Gallery(db, create=False) as gallery:
        return {p.name: p.photos for p in gallery.people()}


def test_snap_while_the_box_is_green_then_q_stores_the_person(
    xdisplay: str, face_clip: tuple[Path, str, Path, Path], tmp_path: Path, engine: Engine
) -> None:
    clip, name, reference, other = face_clip
    db = tmp_path / "db"
    proc = start(xdisplay, "-n", name, "--source", str(clip), "--db", str(db))
    window = wait_for_window(xdisplay, f"face-recognizer: register: {name}", proc=proc)
    shot = wait_for_screen(
        xdisplay, window, lambda im: pixels(im, GOOD) > 300, 60, "a green face box"
    )
    assert shot.shape[:2] == (CLIP_WH[1], CLIP_WH[0])  # the video, unscaled, no toolbar
    assert shot.std() > 20  # a real picture, not a black window
    assert pixels(shot, BAD) == 0  # nothing red while the face is usable
    assert (shot[:24].min(axis=2) > 200).sum() > 100  # white text of the status line
    time.sleep(0.5)
    for _ in range(3):
        press(xdisplay, window, "s")
        time.sleep(0.4)
    press(xdisplay, window, "q")
    code, out, err = finish(proc)
    assert code == 0, err
    # the clip plays at its own pace: on a slow machine the third S can come after his shot
    # ends (frame 210), when several faces are in view and the snap is rightly refused
    said = re.fullmatch(
        rf"Registered {re.escape(name)}: ([23]) photos( \(1 skipped: several faces\))?\n", out
    )
    assert said is not None, out
    stored = int(said[1])
    assert (stored == 3) == (said[2] is None), out
    assert err == ""  # no Qt or OpenCV noise on the terminal
    assert not window_exists(xdisplay, window)
    assert people(db) == {name: stored}
    with Gallery(db, create=False) as gallery:
        _, vectors = gallery.embeddings(engine.pack.recognizer_id)
    with contextlib.closing(sqlite3.connect(db / DB_FILE)) as conn:
        sources = [row[0] for row in conn.execute("SELECT source FROM faces")]
    assert vectors.shape == (stored, 512)
    assert len(set(sources)) == stored
    assert all(s.startswith(f"{clip} frame ") for s in sources)
    if name == "Lin-Manuel Miranda":  # his shot is frames 82-210 of the clip
        assert all(82 <= int(s.rsplit(" ", 1)[1]) <= 210 for s in sources)
    # the stored faces are that person: closer to his photo than to anyone else's
    ref = engine.analyze(read_image(reference))
    assert len(ref) == 1
    same = vectors @ ref.embeddings[0]
    others = engine.analyze(read_image(other))
    assert len(others) >= 1
    assert same.min() > 0.35, same
    assert (vectors @ others.embeddings.T).max() < 0.2


def test_s_on_a_frame_without_a_face_stores_nothing(xdisplay: str, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "mask.avi", "mask_white.jpg", frames=20)
    db = tmp_path / "db"
    proc = start(xdisplay, "-n", "Nobody", "--source", str(clip), "--db", str(db))
    window = wait_for_window(xdisplay, "face-recognizer: register: Nobody", proc=proc)
    before = wait_for_screen(xdisplay, window, lambda im: pixels(im, BAD) > 500, 60, "red")
    assert pixels(before, GOOD) == 0
    press(xdisplay, window, "s")
    flashed = wait_for_screen(
        xdisplay, window, lambda im: pixels(im, BAD) > pixels(before, BAD) + 3000, 10, "a flash"
    )
    assert pixels(flashed, BAD) > 5000  # "Not taken: no face" across the middle
    press(xdisplay, window, "q")
    code, out, err = finish(proc)
    assert code == 1
    assert out == ""
    assert err == (
        "Error: No photo of Nobody was taken; nothing was stored. "
        "Press S while the face box is green.\n"
    )
    assert not (db / DB_FILE).exists()


def test_esc_cancels_without_storing(xdisplay: str, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "yao.avi", "yaoming.jpg", frames=60)
    db = tmp_path / "db"
    proc = start(xdisplay, "-n", "Yao Ming", "--source", str(clip), "--db", str(db))
    window = wait_for_window(xdisplay, "face-recognizer: register: Yao Ming", proc=proc)
    wait_for_screen(xdisplay, window, lambda im: pixels(im, GOOD) > 300, 60, "a green box")
    press(xdisplay, window, "s")
    time.sleep(0.3)
    press(xdisplay, window, "Escape")
    code, out, err = finish(proc)
    assert (code, out, err) == (1, "", "Cancelled: nothing was stored for Yao Ming.\n")
    assert not (db / DB_FILE).exists()


def test_closing_the_window_stores_and_an_existing_name_gets_more_photos(
    xdisplay: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    photo = str(sample_path("yaoming.jpg"))
    with pytest.raises(SystemExit) as exit_info:
        main(["register", "-n", "Yao Ming", "--ctx", "-1", "--db", str(db), "--images", photo])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"{photo}: ok\nRegistered Yao Ming: 1 photo\n"

    clip = make_clip(tmp_path / "yao.avi", "yaoming.jpg", frames=60)
    proc = start(xdisplay, "-n", " Yao Ming ", "--source", str(clip), "--db", str(db))
    window = wait_for_window(xdisplay, "face-recognizer: register: Yao Ming", proc=proc)
    wait_for_screen(xdisplay, window, lambda im: pixels(im, GOOD) > 300, 60, "a green box")
    press(xdisplay, window, "s")
    time.sleep(0.4)
    press(xdisplay, window, "s")
    time.sleep(0.4)
    close_window(xdisplay, window)
    code, out, err = finish(proc)
    assert code == 0, err
    assert err == "Yao Ming is already registered with 1 photo; new photos will be added.\n"
    assert out == "Added 2 photos to Yao Ming, who now has 3\n"
    assert people(db) == {"Yao Ming": 3}


def test_a_camera_that_does_not_open_is_one_sentence(xdisplay: str, tmp_path: Path) -> None:
    proc = start(xdisplay, "-n", "Ana", "--source", "7", "--db", str(tmp_path / "db"))
    code, out, err = finish(proc)
    assert (code, out) == (1, "")
    assert err == (
        "Error: Camera 7 could not be opened; pick another with --source N or give a video file.\n"
    )
    assert not (tmp_path / "db").exists()


UNPLUGGED = textwrap.dedent(
    """
    import time
    import numpy as np
    from face_recognizer.cli.options import EngineOptions, load_engine
    from face_recognizer.errors import SourceError
    from face_recognizer.images import read_image
    from face_recognizer.register import KEYS, LiveSession
    from face_recognizer.samples import sample_path
    from face_recognizer.sources import FrameSource
    from face_recognizer.types import Frame
    from face_recognizer.window import Window

    class Unplugged(FrameSource):
        # A camera whose cable is pulled after 40 frames (~4 s).
        def __init__(self):
            super().__init__("0", is_live=True, is_stills=False, fps=10.0)
        def __iter__(self):
            photo = read_image(sample_path("yaoming.jpg"))
            canvas = np.full((360, 640, 3), 40, np.uint8)
            canvas[40:40 + photo.shape[0], 200:200 + photo.shape[1]] = photo
            for i in range(40):
                yield Frame(np.roll(canvas, i % 9, axis=1), i, None, float(i))
                time.sleep(0.1)
            raise SourceError("Camera 0 stopped sending frames.")

    engine = load_engine(EngineOptions(-1, None, None, 640))
    with Window("Register Yao Ming", KEYS) as window:
        outcome = LiveSession(engine, "Yao Ming", Unplugged(), window, "camera:0").run()
    print(len(outcome.snaps), outcome.cancelled, outcome.source_error)
    """
)


def test_an_unplugged_camera_leaves_a_message_and_q_keeps_the_snaps(xdisplay: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", UNPLUGGED],
        env=desktop_env(xdisplay),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    window = wait_for_window(xdisplay, "Register Yao Ming", proc=proc)
    wait_for_screen(xdisplay, window, lambda im: pixels(im, GOOD) > 300, 60, "a green box")
    press(xdisplay, window, "s")
    # the message: a red banner in the middle and a red note at the bottom, no green box
    shot = wait_for_screen(
        xdisplay, window, lambda im: pixels(im, BAD) > 5000 and pixels(im, GOOD) == 0, 30, "red"
    )
    assert pixels(shot[-40:], BAD) > 1000
    assert pixels(screenshot(xdisplay, window)[150:210], BAD) > 3000  # it stays on screen
    press(xdisplay, window, "q")
    code, out, err = finish(proc)
    assert code == 0, err
    assert out == "1 False Camera 0 stopped sending frames.\n"


def test_images_every_file_gets_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    files = [str(sample_path(n)) for n in ("yaoming.jpg", "t1.jpg", "mask_white.jpg")]
    missing = str(tmp_path / "missing.jpg")
    args = ["register", "-n", "Yao Ming", "--ctx", "-1", "--db", str(db), "--images"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *files, str(notes), missing])
    assert exit_info.value.code == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{files[0]}: ok",
        f"{files[1]}: several faces, none clearly Yao Ming",  # Yao is not in t1.jpg
        f"{files[2]}: no face",
        f"{notes}: unreadable",
        f"{missing}: not found",
        "Registered Yao Ming: 1 photo (4 skipped: 1 several faces, none clearly Yao Ming; "
        "1 no face; 1 unreadable; 1 not found)",
    ]
    assert people(db) == {"Yao Ming": 1}

    # the same photo again, from a folder: nothing new, and it says why
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "yao.jpg").write_bytes(Path(files[0]).read_bytes())
    with pytest.raises(SystemExit) as exit_info:
        main([*args, str(folder)])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{folder / 'yao.jpg'}: already stored",
        "Added 0 photos to Yao Ming, who now has 1 (1 skipped: already stored)",
    ]
    assert people(db) == {"Yao Ming": 1}


def test_images_without_a_usable_photo_fail_and_store_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    files = [str(sample_path("t1.jpg")), str(sample_path("mask_white.jpg"))]
    with pytest.raises(SystemExit) as exit_info:
        main(["register", "-n", "Ana", "--ctx", "-1", "--db", str(db), "--images", *files])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == f"{files[0]}: several faces\n{files[1]}: no face\n"
    assert captured.err == "Error: None of the 2 photos has a usable face; nothing was stored.\n"
    assert not (db / DB_FILE).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "  ", "--images", "x.jpg"], "Error: A person's name cannot be empty."),
        (["-n", "Ana", "Lima"], "quote a name with spaces"),
        (["-n", "Ana", "--images"], "--images needs at least one photo"),
        (["-n", "Ana", "--source", "1", "--images", "x.jpg"], "either --images or --source"),
        (["-n", "Ana", "--auto", "--images", "x.jpg"], "--auto guides the live window"),
    ],
)
def test_bad_arguments_get_one_sentence(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["register", *args])
    assert exit_info.value.code in (1, 2)
    assert message in capsys.readouterr().err


def test_the_script_and_the_command_are_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=False
    )
    with pytest.raises(SystemExit):
        main(["register", "--help"])
    assert result.returncode == 0
    script_usage, *script_rest = result.stdout.splitlines()
    command_usage, *command_rest = capsys.readouterr().out.splitlines()
    assert script_usage.startswith(f"Usage: {SCRIPT.name} ")  # the script names itself
    assert command_usage.startswith("Usage: face-recognizer register ")
    assert script_usage.split(" ", 2)[2] == command_usage.split(" ", 3)[3]
    assert script_rest == command_rest
    assert "face-recognizer register -n Ana --images" in result.stdout
