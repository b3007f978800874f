"""Driving real OpenCV windows in tests: a private X server (Xvfb), keys, screenshots.

The `xdisplay` fixture starts `Xvfb` on a display number the server picks itself (so tests
running side by side never collide), yields the DISPLAY string (":3") and stops it.
Start the program under test with `env=desktop_env(display)`, then::

    window = wait_for_window(display, "face-recognizer: register: Ana", proc=proc)
    press(display, window, "s")          # the window gets it like a real key press
    image = screenshot(display, window)  # BGR array of what is on screen
    image = wait_for_screen(display, window, lambda im: im.max() > 0)  # retried until true
    close_window(display, window)        # like clicking the title bar's close button
    wait_for_file(folder, "snapshot-*.png")  # what a key press wrote

Needs `Xvfb`, `xdotool` and ImageMagick's `import`; the fixture skips naming what is
missing (fails in CI, see `needs.py`).
OpenCV's Qt windows accept xdotool's synthetic key events, so no window manager is needed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from needs import missing

TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "import": "imagemagick"}
SCREEN = "1280x800x24"


def desktop_env(display: str) -> dict[str, str]:
    """Environment for a child process that must open its windows on `display`."""
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    env.pop("WAYLAND_DISPLAY", None)
    return env


def _start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", SCREEN, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_fd)
    number = b""
    try:
        deadline = time.monotonic() + 15
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], 0.2)
            if ready:
                chunk = os.read(read_fd, 16)
                if not chunk:
                    break
                number += chunk
    finally:
        os.close(read_fd)
    if not number.strip().isdigit():
        proc.kill()
        err = proc.communicate()[1].decode(errors="replace").strip()
        raise RuntimeError(f"Xvfb did not start: {err[-500:] or 'no display number'}")
    return proc, f":{int(number)}"


@pytest.fixture
def xdisplay() -> Iterator[str]:
    """A fresh Xvfb display (":N") for one test; skipped when the X tools are missing."""
    absent = [
        f"{tool} (apt install {pkg})" for tool, pkg in TOOLS.items() if not shutil.which(tool)
    ]
    if absent:
        missing(f"what the window tests need: {', '.join(absent)}")
    proc, display = _start_xvfb()
    try:
        yield display
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _xdotool(display: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["xdotool", *args],
        env=desktop_env(display),
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def _explain(proc: subprocess.Popen[str] | None) -> str:
    if proc is None or proc.poll() is None:
        return ""
    out, err = proc.communicate(timeout=5)
    return f"; the program exited with {proc.returncode}:\n{out}\n{err}"


def wait_for_window(
    display: str,
    title: str,
    timeout: float = 60.0,
    proc: subprocess.Popen[str] | None = None,
) -> int:
    """Id of the first visible window whose title contains `title` (plain text).

    Fails fast, with the program's output, when `proc` exits before the window shows.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _xdotool(display, "search", "--onlyvisible", "--name", re.escape(title))
        ids = found.stdout.split()
        if ids:
            return int(ids[0])
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"no window titled {title!r} on {display}{_explain(proc)}")


def window_exists(display: str, window_id: int) -> bool:
    """True while the window is still mapped on the display."""
    return _xdotool(display, "getwindowname", str(window_id)).returncode == 0


def window_title(display: str, window_id: int) -> str:
    """The window's current title."""
    return _xdotool(display, "getwindowname", str(window_id)).stdout.strip()


def press(display: str, window_id: int, key: str) -> None:
    """Send one key press and release to the window ("s", "q", "Escape", "space", ...)."""
    result = _xdotool(display, "key", "--window", str(window_id), key)
    if result.returncode:
        raise AssertionError(f"xdotool could not press {key!r}: {result.stderr.strip()}")


def screenshot(display: str, window_id: int) -> np.ndarray:
    """What the window shows now, as a BGR uint8 array (includes OpenCV's toolbar if any)."""
    result = subprocess.run(
        ["import", "-display", display, "-window", str(window_id), "png:-"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    image = None
    if result.returncode == 0 and result.stdout:
        image = cv2.imdecode(np.frombuffer(result.stdout, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise AssertionError(f"screenshot failed: {result.stderr.decode(errors='replace')}")
    return image


def wait_for_screen(
    display: str,
    window_id: int,
    predicate: Callable[[np.ndarray], bool],
    timeout: float = 30.0,
    what: str = "the expected picture",
) -> np.ndarray:
    """Take screenshots until `predicate(image)` holds (a new window paints a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        image = screenshot(display, window_id)
        if predicate(image):
            return image
        if time.monotonic() > deadline:
            raise AssertionError(f"window {window_id} did not show {what} within {timeout:.0f} s")
        time.sleep(0.2)


def wait_for_title(
    display: str,
    window_id: int,
    text: str,
    timeout: float = 120.0,
    proc: subprocess.Popen[str] | None = None,
) -> str:
    """The window's title once it contains `text` (a program that says a state there)."""
    deadline = time.monotonic() + timeout
    while True:
        title = window_title(display, window_id)
        if text in title:
            return title
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            raise AssertionError(f"the title never said {text!r} (last: {title!r}){_explain(proc)}")
        time.sleep(0.2)


def screenshots_dir(tmp_path: Path) -> Path:
    """Where window tests keep their screenshots: `$FACE_RECOGNIZER_SCREENSHOTS` (e.g.
    `docs`, to regenerate the README's pictures), else the test's `tmp_path`."""
    folder = Path(os.environ.get("FACE_RECOGNIZER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_for_file(folder: Path, pattern: str, timeout: float = 15.0) -> Path:
    """The first file in `folder` matching the glob `pattern`, waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {pattern} appeared in {folder} within {timeout:.0f} s")
        time.sleep(0.2)


class _ClientMessage(ctypes.Structure):
    _fields_ = [  # layout of XClientMessageEvent
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


def close_window(display: str, window_id: int) -> None:
    """Ask the window to close (WM_DELETE_WINDOW), as a window manager's close button does."""
    path = ctypes.util.find_library("X11")
    if path is None:
        missing("libX11, needed to send WM_DELETE_WINDOW (apt install libx11-6)")
    x11 = ctypes.CDLL(path)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_int,
        ctypes.c_long,
        ctypes.POINTER(_XEvent),
    ]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x11.XOpenDisplay(display.encode())
    if not dpy:
        raise AssertionError(f"cannot open X display {display}")
    try:
        event = _XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = window_id
        event.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        event.xclient.data[1] = 0  # CurrentTime
        x11.XSendEvent(dpy, window_id, 0, 0, ctypes.byref(event))
        x11.XFlush(dpy)
    finally:
        x11.XCloseDisplay(dpy)
