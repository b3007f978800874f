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


def test_a_picture_goes_beside_its_face_without_covering_a_tab() -> None:
    from face_recognizer.draw import Label, draw_labels, intersects

    image = np.zeros((300, 400, 3), np.uint8)
    photo = np.full((112, 112, 3), 200, np.uint8)
    (tab,) = draw_labels(image, [Label((100, 100, 180, 200), "Ana 0.61", KNOWN, picture=photo)])
    beside = image[100:200, 182:290]
    assert (beside == 200).all(axis=2).sum() > 5000  # the photo, right of the box
    assert not intersects(tab, (182, 100, 282, 200))


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
    assert verdict_label(stranger) == ("different: no match", STRANGER)
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
