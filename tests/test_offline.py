"""Nothing leaves the machine: the main commands run with network sockets refused.

A `sitecustomize.py` on PYTHONPATH makes every AF_INET/AF_INET6 socket raise in the command's
process (and writes down who asked); where `unshare -rn` works, the same commands also run in
an empty network namespace, which cuts native code (ONNX Runtime) off too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from needs import missing

SITECUSTOMIZE = """
import os, socket, traceback

_Socket = socket.socket


class _Refused(_Socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):
            with open(os.environ["NETWORK_ATTEMPTS"], "a") as log:
                log.write("".join(traceback.format_stack(limit=6)) + "\\n---\\n")
            raise PermissionError(13, "network access is cut for this test")
        super().__init__(family, type, proto, fileno)


socket.socket = _Refused
"""


def _short_clip(datasets: Path, tmp_path: Path) -> Path:
    """The first 30 frames of the Hamilton clip (Alex Lacamoire in profile) as an .avi."""
    out = tmp_path / "clip.avi"
    if not out.exists():
        capture = cv2.VideoCapture(str(datasets / "videos" / "hamilton_whitehouse_short.mp4"))
        writer = None
        for _ in range(30):
            ok, frame = capture.read()
            assert ok
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), 25, (w, h))
            writer.write(frame)
        capture.release()
        assert writer is not None
        writer.release()
    return out


def _commands(datasets: Path, tmp_path: Path) -> list[list[str]]:
    refs = datasets / "videos" / "references"
    labelled = tmp_path / "labelled"
    for person in ("Ben_Affleck", "Jerry_Seinfeld", "Madonna"):
        (labelled / person).mkdir(parents=True)
        for photo in sorted((datasets / "celeb5_kaggle" / person).glob("*.jpg"))[:5]:
            shutil.copy(photo, labelled / person)
    db = str(tmp_path / "db")
    return [
        ["import", str(refs), "--db", db],
        ["people", "list", "--db", db],
        ["recognize", "--source", str(refs / "Barack_Obama" / "obama1.jpg"), "--no-window",
         "--json", "--db", db],
        ["recognize", "--source", str(_short_clip(datasets, tmp_path)), "--no-window",
         "--json", "--db", db],
        ["evaluate", str(labelled), "--enrol", "2", "--json"],
    ]  # fmt: skip


def _run(prefix: list[str], args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run one command; it must finish as it does online (evaluate may exit 3: it lists a
    photo the checks refused)."""
    device = [] if args[:2] == ["people", "list"] else ["--ctx", "-1"]
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "face_recognizer", *args, *device],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode in ((0, 3) if args[0] == "evaluate" else (0,)), (args, result)
    assert "Traceback" not in result.stderr
    assert result.stdout.strip(), args
    return result


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    path = [str(site), env.get("PYTHONPATH", "")]
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in path if p),
            "NETWORK_ATTEMPTS": str(tmp_path / "attempts.txt")}  # fmt: skip


def test_main_commands_pass_with_sockets_refused(datasets, tmp_path, offline_env):
    # the cut works: a plain connection attempt is refused in such a process
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), 1)"],
        capture_output=True, text=True, env=offline_env, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 1, probe.stderr
    assert "network access is cut" in probe.stderr
    Path(offline_env["NETWORK_ATTEMPTS"]).unlink()

    results = [_run([], args, offline_env) for args in _commands(datasets, tmp_path)]
    assert not any("network access is cut" in r.stderr for r in results)
    photo = json.loads(results[2].stdout)  # recognize on Obama's photo: named, offline
    assert [face["name"] for face in photo["faces"]] == ["Barack Obama"]
    # the only socket asked for is urllib3's import-time IPv6 check (a bind on ::1, pulled
    # in by a dependency), never a connection
    attempts = Path(offline_env["NETWORK_ATTEMPTS"])
    asked = attempts.read_text().split("\n---\n") if attempts.exists() else []
    assert all("_has_ipv6" in stack for stack in asked if stack.strip()), asked


def test_main_commands_pass_in_an_empty_network_namespace(datasets, tmp_path):
    if shutil.which("unshare") is None:
        missing("unshare (apt install util-linux)")
    if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        missing("permission to make a network namespace (unshare -rn)")
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    for args in _commands(datasets, tmp_path):
        _run(["unshare", "-rn"], args, env)
