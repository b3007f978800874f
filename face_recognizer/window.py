"""The on-screen window: the only caller of `imshow` and `waitKey`.

Keys are a plain table `{key: action}` where a key is a character (`"q"`, matched in either
case) or a key code (`27` for Esc); `show()` returns the action of the key pressed, `"close"`
when the user closed the window, or None. `Viewer` adds what the live commands (`recognize`,
`verify --reference`) share: snapshots, quitting, stills that wait for a key.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from face_recognizer.draw import NOTICE, draw_banner, draw_keys
from face_recognizer.errors import FaceRecognizerError
from face_recognizer.images import write_image

CLOSE = "close"  # the user closed the window
ANY_KEY = "any"  # an unmapped key, reported only by `show(image, wait_ms=0)`
QUIT = "quit"
SNAPSHOT = "snapshot"
LANDMARKS = "landmarks"
MATCH = "match"  # recognize --show-match: the matched enrolled photo in each name tab
FAST = "fast"  # video files: play as fast as processing allows instead of at their frame rate
TOGGLES = (LANDMARKS, MATCH)  # actions that switch a way of drawing on and off
LIVE_KEYS: dict[str | int, str] = {
    "q": QUIT,
    27: QUIT,
    "s": SNAPSHOT,
    "l": LANDMARKS,
    "f": FAST,
}
APP = "face-recognizer"


def window_title(command: str, what: str) -> str:
    """Every window's title: "face-recognizer: recognize: clip.mp4"."""
    return f"{APP}: {command}: {what}"


def source_title(spec: str) -> str:
    """A source as a title names it: "camera 0", a file's or folder's name, a URL as given."""
    if spec.isdigit():
        return f"camera {spec}"
    if "://" in spec:
        return spec
    return Path(spec).name or spec


_KEY_WORDS = {QUIT: "quit", SNAPSHOT: "snapshot", LANDMARKS: "landmarks", MATCH: "matched photo",
              FAST: "fast/real time"}  # fmt: skip


def key_hints(keys: Mapping[str | int, str], *, still: bool = False, video: bool = False) -> str:
    """A window's key line: "Q/Esc quit   S snapshot   L landmarks" (F only for a video
    file; "any other key: next" for stills)."""
    by_action: dict[str, list[str]] = {}
    for key, action in keys.items():
        name = key.upper() if isinstance(key, str) else {27: "Esc"}.get(int(key))
        if name is None or (action == FAST and not video):
            continue
        by_action.setdefault(action, []).append(name)
    parts = [f"{'/'.join(names)} {_KEY_WORDS.get(a, a)}" for a, names in by_action.items()]
    if still:
        parts.append("any other key: next")
    return "   ".join(parts)


SCREEN_MARGIN_PX = (40, 80)  # room left for window decorations and a panel (width, height)


def screen_size() -> tuple[int, int] | None:
    """The screen's (width, height) in pixels, or None when it cannot be told.

    Read from the X server (libX11 through ctypes) on Linux; elsewhere None (no scaling).
    """
    if not sys.platform.startswith("linux") or not os.environ.get("DISPLAY"):
        return None
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("X11")
    if name is None:
        return None
    try:
        xlib = ctypes.CDLL(name)
    except OSError:
        return None
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XDefaultScreen.argtypes = [ctypes.c_void_p]
    xlib.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = xlib.XOpenDisplay(None)
    if not display:
        return None
    try:
        screen = xlib.XDefaultScreen(display)
        return int(xlib.XDisplayWidth(display, screen)), int(xlib.XDisplayHeight(display, screen))
    finally:
        xlib.XCloseDisplay(display)


def fit_scale(image_wh: tuple[int, int], screen_wh: tuple[int, int] | None) -> float:
    """The scale (<= 1) at which a picture of `image_wh` fits the screen, aspect kept."""
    if screen_wh is None:
        return 1.0
    w, h = image_wh
    room_w = max(160, screen_wh[0] - SCREEN_MARGIN_PX[0])
    room_h = max(120, screen_wh[1] - SCREEN_MARGIN_PX[1])
    return min(1.0, room_w / w, room_h / h)


BANNER_SECONDS = 1.5
NO_SCREEN_HINT = "Run with --no-window, and --json or --output FILE to see the results."


def require_screen(hint: str = NO_SCREEN_HINT) -> None:
    """Raise FaceRecognizerError (with `hint`) when there is no screen for a window."""
    if not Window.available():
        raise FaceRecognizerError(
            "No screen is available to show the window (DISPLAY is not set).", hint=hint
        )


class Window:
    """A resizable window showing BGR frames.

    Args:
        title: window title (also how tests find it).
        keys: `{key: action}`; see the module docstring.

    Raises:
        FaceRecognizerError: no screen is available (see `Window.available`).
    """

    def __init__(self, title: str, keys: Mapping[str | int, str] | None = None) -> None:
        require_screen()
        self.title = title
        self._keys: dict[int, str] = {}
        for key, action in (keys or {}).items():
            if isinstance(key, str):
                if len(key) != 1:
                    raise ValueError(f"key must be one character or a key code, got {key!r}")
                self._keys[ord(key.lower())] = action
                self._keys[ord(key.upper())] = action
            else:
                self._keys[int(key)] = action
        self._shown = False
        self._closed = False
        self._screen = screen_size()
        self.scale = 1.0  # how the first picture was scaled to fit the screen
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)

    def retitle(self, title: str) -> None:
        """Show `title` in the title bar (the window keeps its name for OpenCV)."""
        with contextlib.suppress(cv2.error):  # a backend without titles
            cv2.setWindowTitle(self.title, title)

    def scale_for(self, image_wh: tuple[int, int]) -> float:
        """The scale at which a picture of `image_wh` is shown (<= 1: it fits the screen)."""
        return fit_scale(image_wh, self._screen)

    @staticmethod
    def available() -> bool:
        """False when there is no screen to draw on (Linux without DISPLAY/WAYLAND_DISPLAY)."""
        if sys.platform.startswith("linux"):
            return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        return True

    def show(self, image: np.ndarray, wait_ms: int = 1) -> str | None:
        """Show `image`, wait up to `wait_ms` ms and return the pressed key's action or None.

        With `wait_ms=0` it waits until any key (unmapped keys give `ANY_KEY`) or a close.
        """
        if self._closed:
            return CLOSE
        if not self._shown:  # open no larger than the screen (scaled, aspect kept)
            h, w = image.shape[:2]
            self.scale = self.scale_for((w, h))
            cv2.resizeWindow(self.title, round(w * self.scale), round(h * self.scale))
        cv2.imshow(self.title, image)
        self._shown = True
        if wait_ms <= 0:
            while True:  # until a key or the window is closed
                code, action = self._poll(100)
                if action is not None or code >= 0:
                    return action or ANY_KEY
        return self._poll(wait_ms)[1]

    def _poll(self, wait_ms: int) -> tuple[int, str | None]:
        code = cv2.waitKey(wait_ms)
        if self._gone():
            self._closed = True
            return code, CLOSE
        if code < 0:
            return code, None
        return code, self._keys.get(code, self._keys.get(code & 0xFF))

    def _gone(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        """Destroy the window (idempotent)."""
        if not self._closed:
            self._closed = True
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass

    def __enter__(self) -> Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Viewer:
    """A `Window` as the live commands use it (keys: `LIVE_KEYS`, and M with --show-match).

    `present()` shows a frame with the key line (`hints`) along its bottom: `SNAPSHOT` saves
    the frame (without the key line) as `<snapshot_dir>/<prefix>-<time>.png` (a banner names
    the file), a toggle (`TOGGLES`: L landmarks, M matched photos) switches `toggles[action]`
    and redraws, `QUIT` and `CLOSE` are returned to the caller, and a still waits until a key
    moves on. `hold()` keeps a finished video's last frame until a key.
    """

    def __init__(
        self,
        window: Window,
        *,
        toggles: Mapping[str, bool] | None = None,
        snapshot_dir: Path = Path("."),
        prefix: str = "snapshot",
        hints: str = "",
    ) -> None:
        self.window = window
        self.toggles: dict[str, bool] = dict(toggles or {})
        self.snapshot_dir = snapshot_dir
        self.prefix = prefix
        self.hints = hints
        self.snapshots: list[Path] = []
        self.fast = False  # F: video files play as fast as processing allows
        self._banner: tuple[str, float] = ("", 0.0)

    @property
    def landmarks(self) -> bool:
        return self.toggles.get(LANDMARKS, False)

    def _shown(self, image: np.ndarray, hints: str) -> np.ndarray:
        shown: np.ndarray = image.copy()
        if hints:
            draw_keys(shown, hints)
        text, until = self._banner
        if time.monotonic() < until:
            draw_banner(shown, text, NOTICE)
        return shown

    def present(
        self,
        image: np.ndarray,
        redraw: Callable[[Mapping[str, bool]], np.ndarray],
        *,
        still: bool,
        wait_ms: int = 1,
    ) -> str | None:
        """Show `image` and return the action that ends its turn (None: no key).

        `redraw(toggles)` draws the frame again when a toggle's key is pressed. A video
        frame's turn ends after one short poll; a still's with the first key that is
        neither `SNAPSHOT`, `FAST` nor a toggle.
        """
        while True:
            action = self.window.show(
                self._shown(image, self.hints), 0 if still else max(1, wait_ms)
            )
            if action == FAST:
                self.fast = not self.fast
                self._banner = (
                    "As fast as possible" if self.fast else "At the video's frame rate",
                    time.monotonic() + BANNER_SECONDS,
                )
            if action == SNAPSHOT:
                self._save(image)
            elif action in TOGGLES and action in self.toggles:
                self.toggles[action] = not self.toggles[action]
                image = redraw(self.toggles)
            elif action in (QUIT, CLOSE):
                return action
            if not still or action not in (SNAPSHOT, FAST, *TOGGLES):
                return action

    def hold(self, image: np.ndarray) -> str:
        """Keep `image` (a finished video's last frame) until any key or a close; the title
        says so too."""
        self.window.retitle(f"{self.window.title} (end: press any key)")
        while True:
            action = self.window.show(self._shown(image, "any key: close"), 0)
            if action == SNAPSHOT:
                self._save(image)
                continue
            return action or ANY_KEY

    def _save(self, image: np.ndarray) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = self.snapshot_dir / f"{self.prefix}-{stamp}.png"
        try:
            write_image(image, path)
        except FaceRecognizerError as exc:
            self._banner = (f"Not saved: {exc.message}", time.monotonic() + BANNER_SECONDS)
            return
        self.snapshots.append(path)
        self._banner = (f"Saved {path.name}", time.monotonic() + BANNER_SECONDS)
