"""Drawing (pure, on arrays) and the window (a real Qt window under Xvfb, driven by keys)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from desktop import close_window, desktop_env, press, wait_for_screen, wait_for_window

from face_recognizer.draw import (
    KNOWN,
    LANDMARK,
    NOTICE,
    STRANGER,
    ascii_text,
    draw_banner,
    draw_box,
    draw_status,
)
from face_recognizer.window import Window


def _count(image: np.ndarray, color: tuple[int, int, int]) -> int:
    return int(np.all(image == np.array(color, np.uint8), axis=2).sum())


def test_draw_box_frames_the_face_and_writes_the_label() -> None:
    image = np.zeros((240, 320, 3), np.uint8)
    landmarks = np.array([[120, 110], [160, 110], [140, 130], [125, 150], [155, 150]], float)
    draw_box(image, (100, 80, 180, 180), "José 0.61", KNOWN, landmarks=landmarks)
    assert _count(image[80:181, 98:103], KNOWN.bgr) > 150  # left edge drawn
    tab = image[40:80, 100:260]
    assert _count(tab, KNOWN.bgr) > 500  # the filled label tab above the box
    assert (tab.min(axis=2) > 200).sum() > 30  # white text on it
    assert _count(image, LANDMARK.bgr) >= 5 * 9  # five dots
    assert image[200:, :].max() == 0  # nothing drawn below the box


def test_label_of_a_face_at_the_top_edge_goes_inside_the_picture() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    draw_box(image, (10, 0, 90, 60), "Unknown", STRANGER)
    assert _count(image[60:100], STRANGER.bgr) > 300


def test_name_tab_of_a_face_just_under_the_status_line_goes_below_the_box(engine) -> None:  # type: ignore[no-untyped-def]
    """A real face near the top of a frame: its tab would cover the status line, so it is
    drawn below the box; the status line stays dark, with nothing green on it."""
    from face_recognizer.draw import status_height
    from face_recognizer.images import read_image
    from face_recognizer.live import annotate
    from face_recognizer.samples import sample_path
    from face_recognizer.types import FrameResult, Track

    frame = np.full((480, 640, 3), 128, np.uint8)
    photo = read_image(sample_path("yaoming.jpg"))
    found = engine.detect(photo)
    assert len(found) == 1
    top = 24 - int(found.xyxy[0][1])  # the face box starts 24 px from the top
    frame[max(0, top) : top + photo.shape[0], 100 : 100 + photo.shape[1]] = photo[max(0, -top) :]
    (face,) = engine.detect(frame).xyxy
    assert 10 < face[1] < 40
    bar = status_height(frame)
    assert face[1] < bar + 30  # no room for a tab between the status line and the box
    track = Track(1, tuple(float(v) for v in face), found.landmarks[0], "Yao Ming", 0.7)  # type: ignore[arg-type]
    annotate(frame, FrameResult(0, None, (track,), 1), status="30.0 FPS | 1 face")
    assert _count(frame[:bar], KNOWN.bgr) == 0  # the status line is not covered
    below = frame[int(face[3]) : int(face[3]) + 40, int(face[0]) : int(face[2])]
    assert _count(below, KNOWN.bgr) > 300  # the tab, under the box
    assert frame[: bar - 2, 300:].mean() < 128  # status line still darkened


def _assert_tabs_apart(tabs: list[tuple[int, int, int, int]], bar: int, size_wh) -> None:  # type: ignore[no-untyped-def]
    from face_recognizer.draw import intersects

    w, h = size_wh
    for i, a in enumerate(tabs):
        assert a[1] >= bar, f"tab {i} {a} covers the status line (0-{bar})"
        assert 0 <= a[0] < a[2] <= w, a
        assert a[3] <= h, a
        for j in range(i):
            assert not intersects(a, tabs[j]), f"tabs {j} {tabs[j]} and {i} {a} overlap"


def _crowd(engine, image: np.ndarray, names: dict[int, str]):  # type: ignore[no-untyped-def]
    """`image`'s faces as a still's result: face i named names[i], the others Unknown."""
    from face_recognizer.types import FrameResult, Track

    found = engine.detect(image)
    faces = tuple(
        Track(None, tuple(float(v) for v in found.xyxy[i]), found.landmarks[i],  # type: ignore[arg-type]
              names.get(i), 0.5 if i in names else 0.1)
        for i in range(len(found))
    )  # fmt: skip
    return FrameResult(0, None, faces, len(faces))


def test_the_demo_crowd_gets_22_name_tabs_that_never_overlap(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The demo's team photo: 22 faces side by side, close together. Every tab is readable
    (no two intersect), none covers the status line, landmarks stay under the tabs."""
    from face_recognizer.draw import status_height
    from face_recognizer.images import read_image, write_image
    from face_recognizer.live import annotate
    from face_recognizer.samples import sample_path

    image = read_image(sample_path("players.jpg"))
    result = _crowd(engine, image, {0: "Yao Ming", 5: "Shane Battier", 9: "Tracy McGrady"})
    assert len(result.faces) == 22
    tabs = annotate(image, result, landmarks=True, status="2.0 FPS | 22 faces | 4 people | CPU")
    write_image(image, tmp_path / "crowd.png")
    assert len(tabs) == 22
    _assert_tabs_apart(tabs, status_height(image), image.shape[1::-1])
    for face, tab in zip(result.faces, tabs, strict=True):  # every tab is drawn, on top
        colour = KNOWN.bgr if face.is_known else STRANGER.bgr
        inside = image[tab[1] : tab[3], tab[0] : tab[2]]
        assert _count(inside, colour) > 0.4 * inside.shape[0] * inside.shape[1]
        assert _count(inside, LANDMARK.bgr) == 0  # no landmark dot over a tab


def test_pedestrian_frames_get_name_tabs_that_never_overlap(engine, datasets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Frames of the 1080p street clip (many small strangers, some overlapping)."""
    import cv2

    from face_recognizer.draw import status_height
    from face_recognizer.live import annotate

    capture = cv2.VideoCapture(str(datasets / "videos" / "pedestrians_covent_garden_4s.mp4"))
    frames = []
    for index in range(100):
        ok, frame = capture.read()
        if not ok:
            break
        if index % 20 == 0:
            frames.append(frame)
    capture.release()
    assert len(frames) == 5
    counted = 0
    for n, frame in enumerate(frames):
        result = _crowd(engine, frame, {})
        tabs = annotate(frame, result, status="8.0 FPS | many faces | 0 people | CPU")
        cv2.imwrite(str(tmp_path / f"pedestrians-{n}.png"), frame)
        _assert_tabs_apart(tabs, status_height(frame), frame.shape[1::-1])
        counted += len(tabs)
    assert counted >= 20  # a crowd, not an empty street


def test_a_matched_photo_goes_into_the_name_tab_beside_the_face() -> None:
    from face_recognizer.draw import Label, draw_labels

    image = np.zeros((300, 400, 3), np.uint8)
    photo = np.full((112, 112, 3), 200, np.uint8)
    (plain,) = draw_labels(image.copy(), [Label((100, 150, 180, 250), "Ana 0.61", KNOWN)])
    (tab,) = draw_labels(image, [Label((100, 150, 180, 250), "Ana 0.61", KNOWN, picture=photo)])
    assert tab[3] <= 150  # above the face
    assert tab[2] - tab[0] > plain[2] - plain[0] + 40  # room for the photo
    inside = image[tab[1] : tab[3], tab[0] : tab[2]]
    assert (inside == 200).all(axis=2).sum() >= 48 * 48  # the photo, in the tab
    assert _count(inside, KNOWN.bgr) > 500  # on the known colour


def test_status_and_banner() -> None:
    image = np.full((200, 400, 3), 200, np.uint8)
    draw_status(image, "12.0 FPS | 2 faces | CPU")
    assert image[:12].mean() < 150  # darkened bar with text
    assert image[100:].min() == 200  # untouched below
    draw_banner(image, "Saved", NOTICE)
    assert _count(image[80:120], NOTICE.bgr) > 1000


def test_palette_gives_each_meaning_its_own_colour_in_every_format() -> None:
    from face_recognizer.draw import OKABE_ITO, PALETTE, PROBLEM

    assert len({swatch.hex for swatch in PALETTE}) == len(PALETTE)  # one colour, one meaning
    assert len({swatch.meaning for swatch in PALETTE}) == len(PALETTE)
    assert KNOWN.hex == OKABE_ITO["bluish green"] == "#009E73"
    assert KNOWN.rgb == (0, 158, 115)
    assert KNOWN.bgr == (115, 158, 0)
    assert STRANGER.rgb01 == pytest.approx((213 / 255, 94 / 255, 0.0))
    assert KNOWN.ink == (255, 255, 255)
    assert PROBLEM.ink == (0, 0, 0)


def test_labels_say_the_state_in_words_and_never_show_a_negative_similarity() -> None:
    from face_recognizer.live import name_label, verdict_label
    from face_recognizer.types import Track
    from face_recognizer.words import similarity_text

    assert similarity_text(0.613) == "0.61"
    assert similarity_text(-0.02) == similarity_text(0.0) == "no match"
    box = (0.0, 0.0, 10.0, 10.0)
    known = Track(1, box, np.zeros((5, 2), np.float32), "Ana", 0.61)
    stranger = Track(2, box, np.zeros((5, 2), np.float32), None, -0.02)
    assert name_label(known) == ("Ana 0.61", KNOWN)
    assert name_label(stranger) == ("Unknown", STRANGER)
    assert verdict_label(known) == ("same 0.61", KNOWN)
    assert verdict_label(stranger) == ("different", STRANGER)
    assert verdict_label(Track(3, box, np.zeros((5, 2), np.float32), None, 0.12)) == (
        "different 0.12",
        STRANGER,
    )


def test_ascii_fallback_strips_accents() -> None:
    assert ascii_text("José Ñuñez") == "Jose Nunez"
    assert ascii_text("李") == "?"


def test_window_refuses_without_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        assert not Window.available()
        with pytest.raises(Exception, match="--no-window"):
            Window("x")


_SHOW = textwrap.dedent(
    """
    import numpy as np
    from face_recognizer.window import Window
    image = np.zeros((120, 160, 3), np.uint8); image[:, :, 1] = 200
    window = Window("Key test", {"q": "quit", 27: "quit", "s": "snap"})
    while True:
        action = window.show(image, 30)
        if action:
            print(action, flush=True)
        if action in ("quit", "close"):
            break
    window.close()
    """
)


def _start(display: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _SHOW],
        env=desktop_env(display),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_window_maps_keys_and_reports_close(xdisplay: str) -> None:
    proc = _start(xdisplay)
    try:
        window = wait_for_window(xdisplay, "Key test", proc=proc)
        wait_for_screen(xdisplay, window, lambda im: im[..., 1].max() >= 190, what="green")
        press(xdisplay, window, "s")
        press(xdisplay, window, "S")
        press(xdisplay, window, "Escape")
        out, err = proc.communicate(timeout=20)
        assert out.split() == ["snap", "snap", "quit"], err
        assert proc.returncode == 0

        proc = _start(xdisplay)
        window = wait_for_window(xdisplay, "Key test", proc=proc)
        close_window(xdisplay, window)
        out, err = proc.communicate(timeout=20)
        assert out.split() == ["close"], err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_key_hints_titles_and_a_steady_frame_rate() -> None:
    from face_recognizer.live import KEYS, _Rate
    from face_recognizer.window import LIVE_KEYS, key_hints, source_title, window_title

    assert key_hints(LIVE_KEYS) == "Q/Esc quit   S snapshot   L landmarks"
    assert key_hints(KEYS, video=True) == (
        "Q/Esc quit   S snapshot   L landmarks   F fast/real time   M matched photo"
    )
    assert key_hints(LIVE_KEYS, still=True).endswith("any other key: next")
    assert window_title("recognize", source_title("0")) == "face-recognizer: recognize: camera 0"
    assert source_title("/data/clips/street.mp4") == "street.mp4"
    rate = _Rate()
    shown = [rate.tick(t) for t in np.cumsum([0.05, 0.15] * 20)]  # uneven frames, 10 a second
    assert all(9.0 < fps < 11.5 for fps in shown[10:]), shown[10:]


# Windows of the live commands under Xvfb, one screenshot of each state (README pictures:
# FACE_RECOGNIZER_SCREENSHOTS=docs pytest tests/test_draw_window.py -k window_shows).


@pytest.fixture(scope="module")
def demo_db(engine, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A gallery of the demo's people: Yao Ming and three Spurs players (bundled photos)."""
    from face_recognizer.cli.recognize import _enrol_demo_people
    from face_recognizer.store.sqlite import Gallery

    db = tmp_path_factory.mktemp("demo") / "db"
    with Gallery(db) as gallery:
        assert len(_enrol_demo_people(engine, gallery)) == 4
    return db


def _launch(display: str, cwd, *args: str) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [sys.executable, "-m", "face_recognizer", *args],
        env=desktop_env(display), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=cwd,
    )  # fmt: skip


def _has(image: np.ndarray, color: tuple[int, int, int], at_least: int) -> bool:
    close = np.abs(image.astype(np.int16) - np.array(color, np.int16)).max(axis=2) <= 12
    return int(close.sum()) >= at_least


def _finish(proc: subprocess.Popen[str]) -> str:
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def test_window_shows_a_folder_of_stills_one_by_one_fitted_with_aspect_kept(
    demo_db,
    xdisplay: str,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """The team photo (22 faces, Yao Ming named) then a portrait photo: one window size,
    each still fitted into it with its aspect kept (black bars), the key line at the bottom,
    any key moves on and the last one ends."""
    import shutil

    from desktop import screenshots_dir

    from face_recognizer.samples import sample_path

    shots = screenshots_dir(tmp_path / "shots")
    folder = tmp_path / "team photos"
    folder.mkdir()
    shutil.copy(sample_path("players.jpg"), folder / "1 players.jpg")
    shutil.copy(sample_path("gdp.jpg"), folder / "2 spurs.jpg")
    proc = _launch(xdisplay, tmp_path, "recognize", "--ctx", "-1", "--db", str(demo_db),
                   "--no-log", "--source", str(folder))  # fmt: skip
    try:
        window = wait_for_window(xdisplay, "face-recognizer: recognize: team photos", proc=proc)
        crowd = wait_for_screen(
            xdisplay, window, lambda im: _has(im, KNOWN.bgr, 300), 120, "a name"
        )
        cv2_write(shots / "window-crowd.png", crowd)
        h, w = crowd.shape[:2]
        assert abs(w / h - 1237 / 800) < 0.03  # the first still's aspect, fitted to the screen
        assert w > 1000  # as large as the 1280x800 screen allows
        assert _has(crowd, STRANGER.bgr, 1000)  # the other 21 are Unknown
        assert crowd[-8:].mean() < crowd[h // 2 :].mean()  # the dark key line along the bottom
        press(xdisplay, window, "space")
        portrait = wait_for_screen(
            xdisplay, window, lambda im: im[h // 3 : -h // 3, : w // 8].max() < 40, 60,
            "the portrait photo between black bars",
        )  # fmt: skip
        cv2_write(shots / "window-stills.png", portrait)
        assert portrait.shape == crowd.shape  # one window size for every still
        assert _has(portrait, KNOWN.bgr, 300)  # the Spurs, named
        filled = np.flatnonzero(portrait[h // 2].max(axis=1) > 40)
        assert abs((filled[-1] - filled[0]) / h - 500 / 665) < 0.08  # aspect kept, not stretched
        press(xdisplay, window, "space")
        err = _finish(proc)
        assert "2 frames in" in err
    finally:
        _stop(proc)


def cv2_write(path, image: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    import cv2

    assert cv2.imwrite(str(path), image)


def test_window_shows_the_end_of_a_video_until_a_key(demo_db, xdisplay: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A short clip plays to its end; its last frame stays, the status line and title say
    "end: press any key", and only a key closes it."""
    import cv2
    from desktop import screenshots_dir, wait_for_title

    from face_recognizer.images import read_image
    from face_recognizer.samples import sample_path

    shots = screenshots_dir(tmp_path / "shots")
    team = np.ascontiguousarray(read_image(sample_path("players.jpg"))[60:560, 300:1100])
    clip = tmp_path / "team.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 10, team.shape[1::-1])
    for _ in range(12):
        writer.write(team)
    writer.release()
    proc = _launch(xdisplay, tmp_path, "recognize", "--ctx", "-1", "--db", str(demo_db),
                   "--no-log", "--source", str(clip))  # fmt: skip
    try:
        window = wait_for_window(xdisplay, "face-recognizer: recognize: team.avi", proc=proc)
        wait_for_title(xdisplay, window, "end: press any key", proc=proc)
        end = wait_for_screen(xdisplay, window, lambda im: _has(im, KNOWN.bgr, 300), 60, "a name")
        cv2_write(shots / "window-end.png", end)
        assert proc.poll() is None  # held open: nothing closes it but a key
        assert end[: end.shape[0] // 20].mean() < end.mean()  # the status line on top
        press(xdisplay, window, "space")
        assert "12 frames in" in _finish(proc)
    finally:
        _stop(proc)


def test_window_shows_the_matched_enrolled_photo_beside_a_named_face(
    demo_db,
    xdisplay: str,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """`--show-match`: beside Yao Ming, the enrolled photo he matched; M hides it again."""
    from desktop import screenshots_dir

    from face_recognizer.samples import sample_path

    shots = screenshots_dir(tmp_path / "shots")
    proc = _launch(xdisplay, tmp_path, "recognize", "--ctx", "-1", "--db", str(demo_db),
                   "--no-log", "--show-match", "--source", str(sample_path("gdp.jpg")))  # fmt: skip
    try:
        window = wait_for_window(xdisplay, "face-recognizer: recognize: gdp.jpg", proc=proc)
        shown = wait_for_screen(xdisplay, window, lambda im: _has(im, KNOWN.bgr, 300), 120, "names")
        cv2_write(shots / "window-show-match.png", shown)
        press(xdisplay, window, "m")
        hidden = wait_for_screen(
            xdisplay, window, lambda im: np.abs(im.astype(int) - shown).max() > 60, 30, "a change"
        )
        changed = np.abs(hidden.astype(int) - shown).max(axis=2) > 40
        ys, xs = np.nonzero(changed)
        area = (ys.max() - ys.min()) * (xs.max() - xs.min())
        h, w = shown.shape[:2]
        assert 3 * 40 * 40 < area < h * w // 2  # three photos of faces went, nothing else
        inside = shown[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert _has(inside, KNOWN.bgr, 3 * 4 * 40)  # framed in the known colour
        press(xdisplay, window, "q")
        _finish(proc)
    finally:
        _stop(proc)
