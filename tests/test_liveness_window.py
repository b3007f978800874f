"""`register --liveness` in a real window under Xvfb: a photo held up is refused, a live
face that meets the challenge is registered."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from desktop import press, screenshot, wait_for_screen, wait_for_window
from test_liveness import bench_module
from test_register import finish, people, pixels, start

from face_recognizer.images import read_image
from face_recognizer.register import CHALLENGE, GOOD
from face_recognizer.samples import sample_path
from face_recognizer.store.sqlite import DB_FILE


def attack_clip(path: Path, photo: Path, attack: str, seconds: float) -> Path:
    """A photo held up to the camera (bench/make_attacks.py), written as an .avi."""
    frames = bench_module("make_attacks").render_clip(
        read_image(photo), attack, seconds=seconds, fps=10.0, rng=np.random.default_rng(5)
    )
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def prompt_pixels(image: np.ndarray) -> int:
    """Pixels of the blue liveness prompt at the bottom of the window."""
    return pixels(image[-image.shape[0] // 5 :], CHALLENGE)


def test_a_photo_held_up_cannot_register_with_liveness(xdisplay: str, tmp_path: Path) -> None:
    clip = attack_clip(tmp_path / "photo.avi", sample_path("yaoming.jpg"), "handheld", 8.0)
    db = tmp_path / "db"
    proc = start(xdisplay, "-n", "Yao Ming", "--source", str(clip), "--db", str(db), "--liveness")
    window = wait_for_window(xdisplay, "face-recognizer: register: Yao Ming", proc=proc)
    shot = wait_for_screen(
        xdisplay, window, lambda im: prompt_pixels(im) > 500, 60, "the liveness prompt"
    )
    assert pixels(shot, GOOD) > 300  # the face itself is fine for a photo: a green box
    refused = 0
    deadline = time.monotonic() + 12  # the clip (8 s) plays to its end and holds
    while time.monotonic() < deadline:
        press(xdisplay, window, "s")
        refused += 1
        time.sleep(1.0)
    last = screenshot(xdisplay, window)
    cv2.imwrite(str(tmp_path / "photo_refused.png"), last)
    press(xdisplay, window, "q")
    code, out, err = finish(proc)
    assert refused >= 8
    assert code == 1
    assert out == ""
    assert err.startswith("Error: No photo of Yao Ming was taken; nothing was stored.")
    assert not (db / DB_FILE).exists()


def test_a_live_face_that_turns_registers_with_liveness(
    xdisplay: str, datasets: Path, tmp_path: Path
) -> None:
    """Lin-Manuel Miranda turns his head to his right at frames ~95-132 of the Hamilton clip
    (yaw ratio 0.28 -> -0.78): `--challenge right` is met by his track, then S takes him."""
    clip = datasets / "videos" / "hamilton_whitehouse_short.mp4"
    name = "Lin-Manuel Miranda"
    db = tmp_path / "db"
    args = (
        "-n",
        name,
        "--source",
        str(clip),
        "--db",
        str(db),
        "--liveness",
        "--challenge",
        "right",
    )
    proc = start(xdisplay, *args)
    window = wait_for_window(xdisplay, f"face-recognizer: register: {name}", proc=proc)
    asked = wait_for_screen(
        xdisplay, window, lambda im: prompt_pixels(im) > 500, 60, "the liveness prompt"
    )
    cv2.imwrite(str(tmp_path / "asked.png"), asked)
    passed = wait_for_screen(
        xdisplay,
        window,
        lambda im: prompt_pixels(im) == 0 and pixels(im, GOOD) > 300,
        60,
        "the prompt gone and a green box",
    )
    cv2.imwrite(str(tmp_path / "passed.png"), passed)
    press(xdisplay, window, "s")
    time.sleep(0.5)
    press(xdisplay, window, "q")
    code, out, err = finish(proc)
    assert code == 0, err
    assert out == f"Registered {name}: 1 photo\n"
    assert people(db) == {name: 1}
