"""The web console in a real browser: Debian's chromium, headless, driven by chromedriver.

Log in with a key, add a person by uploading a photo, see them in People, see their name on
the Live view (the server recognizes a video file), identify a photo, remove the person; at
1280x800 and at phone width. Screenshots of every page go to `out/console/` (or
$FACE_RECOGNIZER_SCREENSHOTS) to be looked at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from needs import missing
from serving import Server, create_key, start_server

from face_recognizer.images import read_image
from face_recognizer.samples import sample_path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 120.0  # seconds: the live view needs the loop to reach the person's frames


def shots_dir() -> Path:
    folder = Path(os.environ.get("FACE_RECOGNIZER_SCREENSHOTS", REPO / "out" / "console"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def yao_clip(path: Path) -> Path:
    """A 640x360 clip of yaoming.jpg drifting a pixel per frame (when no shared clip exists)."""
    image = read_image(sample_path("yaoming.jpg"))
    canvas = np.full((360, 640, 3), 40, np.uint8)
    y, x = (360 - image.shape[0]) // 2, (640 - image.shape[1]) // 2
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (640, 360))
    for i in range(60):
        writer.write(np.roll(canvas, i - 30, axis=1))
    writer.release()
    return path


@dataclass(frozen=True)
class Scene:
    """What the browser test plays, enrols and identifies."""

    clip: Path
    person: str
    photos: list[Path]
    to_identify: Path


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    """The shared Hamilton clip, Lin-Manuel Miranda's reference photo and a frame of the clip
    to identify; else a clip made from yaoming.jpg, that photo, and the team photo."""
    from conftest import DATASETS

    videos = DATASETS / "videos"
    clip = videos / "hamilton_whitehouse_short.mp4"
    if clip.is_file():
        refs = sorted((videos / "references" / "Lin_Manuel_Miranda").iterdir())
        capture = cv2.VideoCapture(str(clip))
        capture.set(cv2.CAP_PROP_POS_FRAMES, 150)  # Lin-Manuel Miranda, frontal
        ok, frame = capture.read()
        capture.release()
        assert ok
        still = tmp_path / "frame 150.jpg"
        cv2.imwrite(str(still), frame)
        return Scene(clip, "Lin-Manuel Miranda", refs, still)
    yao = sample_path("yaoming.jpg")
    return Scene(yao_clip(tmp_path / "yao.avi"), "Yao Ming", [yao], sample_path("players.jpg"))


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        missing("Debian's chromium and chromedriver (apt install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,800")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(scene: Scene, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    db = tmp_path / "db"
    key = create_key(db, "admin")
    srv = start_server(db, "--source", str(scene.clip))
    yield srv, key
    assert srv.stop() == 130
    assert "Traceback" not in "".join(srv.stderr)


def wait_for(driver: Any, what: str, condition: Callable[[Any], Any], timeout: float = WAIT) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(condition)
    except TimeoutException:
        shot = shots_dir() / "timeout.png"
        driver.save_screenshot(str(shot))
        raise AssertionError(f"timed out waiting for {what} (screenshot {shot})") from None


def text_of(driver: Any, element_id: str) -> str:
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        return str(driver.find_element("id", element_id).text)
    except StaleElementReferenceException:  # re-rendered under us: read it next time
        return ""


def click(driver: Any, css: str) -> None:
    """Click the element `css` selects, again if the page re-rendered it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    def clicked(d: Any) -> bool:
        found = d.find_elements("css selector", css)
        if not found:
            return False
        try:
            found[0].click()
        except StaleElementReferenceException:
            return False
        return True

    wait_for(driver, f"{css} to click", clicked)


def fits_width(driver: Any) -> bool:
    """No horizontal scrolling: the page is as wide as the window."""
    return bool(
        driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1"
        )
    )


def live_picture(driver: Any) -> bool:
    """The MJPEG stream has shown a frame."""
    return bool(
        driver.execute_script(
            "const i = document.getElementById('live-img'); return i.src && i.naturalWidth > 0"
        )
    )


def test_console_login_add_live_identify_remove(
    browser: Any, served: tuple[Server, str], scene: Scene
) -> None:
    srv, key = served
    person, photos = scene.person, scene.photos
    shots = shots_dir()
    driver = browser

    driver.get(srv.url + "/")
    wait_for(driver, "the login form", lambda d: d.find_element("id", "key").is_displayed())
    driver.find_element("id", "key").send_keys("frk_wrong")
    click(driver, "#login-form button")
    wait_for(driver, "the wrong-key message", lambda d: "not valid" in text_of(d, "login-error"))
    driver.save_screenshot(str(shots / "login.png"))
    driver.find_element("id", "key").clear()
    driver.find_element("id", "key").send_keys(key)
    click(driver, "#login-form button")

    # Live: the stream plays and the status line is the recognizer's
    wait_for(driver, "the live status line", lambda d: "FPS" in text_of(d, "live-status"))
    assert re.search(r"\b0 (people|persons?)\b", text_of(driver, "live-status"))

    # People: add the person by upload, with a result per photo
    click(driver, "button[data-page=people]")
    wait_for(driver, "the empty people page", lambda d: "No one" in text_of(d, "people-summary"))
    driver.find_element("id", "add-name").send_keys(person)
    driver.find_element("id", "add-files").send_keys("\n".join(str(p) for p in photos))
    click(driver, "#add-form button")
    wait_for(driver, "the upload result", lambda d: "added" in text_of(d, "add-result"))
    results = [li.text for li in driver.find_elements("css selector", "#add-result li")]
    assert results[0].startswith(f"{person}: ")
    assert len(results) == 1 + len(photos)
    assert any(line.endswith(": ok") for line in results[1:])
    card = f".person[data-name='{person}']"
    wait_for(driver, "the person's card", lambda d: d.find_elements("css selector", card))
    wait_for(
        driver,
        "the thumbnail",
        lambda d: (
            d.execute_script(
                "const i = document.querySelector(arguments[0]);"
                "return i !== null && i.complete && i.naturalWidth",
                f"{card} img.main",
            )
            == 112
        ),
    )
    text = wait_for(
        driver,
        "the card's text",
        lambda d: d.execute_script(
            "const c = document.querySelector(arguments[0]); return c && c.innerText", card
        ),
    )
    assert person in text
    assert f"{len(photos)} photo" in text
    assert fits_width(driver)
    driver.save_screenshot(str(shots / "people.png"))

    # Live: the person's name on the video
    click(driver, "button[data-page=live]")
    wait_for(driver, f"{person} on the live view", lambda d: person in text_of(d, "live-names"))
    wait_for(
        driver,
        "the live picture",
        lambda d: d.execute_script(
            "const i = document.getElementById('live-img'); return i.naturalWidth > 0"
        ),
    )
    assert re.search(r"\b1 (people|person)\b", text_of(driver, "live-status"))
    assert fits_width(driver)
    driver.save_screenshot(str(shots / "live.png"))

    # Snap: the newest raw frame (what "Snap and enrol" sends) and the status, over the API
    with srv.client(key) as client:
        frame = client.get("/api/v1/live/frame.jpg")
        assert frame.status_code == 200
        assert frame.headers["content-type"] == "image/jpeg"
        picture = cv2.imdecode(np.frombuffer(frame.content, np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == (360, 640, 3)
        status = client.get("/api/v1/live/status").json()
        assert status["running"] is True
        assert status["source"] == str(scene.clip)
        assert "FPS" in status["status"]
    click(driver, "#snap-name")
    driver.find_element("id", "snap-name").send_keys("Snapped")
    click(driver, "#snap-form button")
    wait_for(
        driver,
        "the snap result",
        lambda d: text_of(d, "snap-result").startswith(("Added a photo to Snapped", "No photo")),
    )
    with srv.client(key) as client:
        if "Added" in text_of(driver, "snap-result"):
            assert client.delete("/api/v1/people/Snapped").status_code == 200

    # Identify: a photo, labelled
    click(driver, "button[data-page=identify]")
    driver.find_element("id", "identify-file").send_keys(str(scene.to_identify))
    wait_for(driver, "the identify result", lambda d: person in text_of(d, "identify-result"))
    assert driver.find_element("id", "identify-canvas").is_displayed()
    driver.save_screenshot(str(shots / "identify.png"))

    # Phone width: every page fits without sideways scrolling
    driver.set_window_size(390, 844)
    for page in ("people", "live", "identify"):
        click(driver, f"button[data-page={page}]")
        wait_for(
            driver, f"the {page} page", lambda d, p=page: d.find_element("id", p).is_displayed()
        )
        assert fits_width(driver), page
        driver.save_screenshot(str(shots / f"phone-{page}.png"))
    driver.set_window_size(1280, 800)

    # Remove, after a confirmation
    click(driver, "button[data-page=people]")
    click(driver, f".person[data-name='{person}'] .remove")
    alert = wait_for(driver, "the confirmation", lambda d: d.switch_to.alert)
    assert f"Remove {person}" in alert.text
    alert.accept()
    wait_for(driver, "the empty gallery", lambda d: "No one" in text_of(d, "people-summary"))
    with srv.client(key) as client:
        assert client.get("/api/v1/people").json()["total"] == 0
