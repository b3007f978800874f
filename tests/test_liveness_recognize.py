"""`recognize --liveness / --require-live` and `verify --reference --liveness` through the
real CLI: the drawn labels and the --json lines on the Hamilton clip, where Obama blinks at
frames 221-224 and nobody else is seen blinking."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
from test_recognize import CLI, HAMILTON, _cli, clip_db  # noqa: F401 - clip_db: fixture

from face_recognizer.draw import KNOWN, PROBLEM
from face_recognizer.samples import sample_path


def near(image: np.ndarray, color: tuple[int, int, int], tol: int = 40) -> int:
    """Pixels within `tol` (largest channel difference) of `color` (video-compressed)."""
    diff = np.abs(image.astype(np.int16) - np.array(color, np.int16)).max(axis=2)
    return int((diff <= tol).sum())


def test_require_live_names_obama_only_after_his_blink(
    clip_db: Path,  # noqa: F811 - the fixture imported above
    datasets: Path,
    tmp_path: Path,
) -> None:
    """The labels as drawn (--output) and as printed (--json) in one run."""
    video = tmp_path / "labels.avi"
    proc = subprocess.run(
        [*CLI, "recognize", "--ctx", "-1", "--db", str(clip_db.resolve()), "--source",
         str((datasets / HAMILTON).resolve()), "--require-live", "--json", "--no-window",
         "--no-log", "--output", str(video)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out, err = proc.stdout, proc.stderr
    drawn = []
    capture = cv2.VideoCapture(str(video))
    while True:
        ok, image = capture.read()
        if not ok:
            break
        drawn.append(image)
    assert len(drawn) == 275
    cv2.imwrite(str(tmp_path / "not_live.png"), drawn[150])
    cv2.imwrite(str(tmp_path / "live.png"), drawn[240])
    # Lin-Manuel Miranda (frame 150) is known but not live: an orange label, no green one
    assert near(drawn[150], PROBLEM.bgr) > 300
    assert near(drawn[150], KNOWN.bgr) < 50
    # Obama (frame 240) blinked at 221-224: his green label is drawn
    assert near(drawn[240], KNOWN.bgr) > 300
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 275
    faces = [(line["frame"], face) for line in lines for face in line["faces"]]
    assert all(face["live"] in (True, False, None) for _, face in faces)
    named = [(frame, face) for frame, face in faces if face["name"] is not None]
    assert named, "nobody was named"
    assert all(face["name"] == "Barack Obama" and face["live"] is True for _, face in named)
    assert min(frame for frame, _ in named) >= 224  # not before his eyes reopened
    lin = [face for frame, face in faces if 82 <= frame <= 210]
    assert len(lin) >= 120
    assert all(face["live"] is not True for face in lin)


def test_stills_are_never_live(tmp_path: Path) -> None:
    photo = sample_path("yaoming.jpg")
    result = _cli("recognize", "--ctx", "-1", "--source", str(photo), "--no-window", "--json",
                  "--liveness", "--db", str(tmp_path / "db"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1
    assert [face["live"] for face in lines[0]["faces"]] == [None]


def test_verify_reference_with_liveness_says_same_only_after_the_blink(datasets: Path) -> None:
    refs = datasets / "videos" / "references"
    result = _cli("verify", "--ctx", "-1", "--reference", str(refs / "Barack_Obama" / "obama.jpg"),
                  "--source", str(datasets / HAMILTON), "--no-window", "--json", "--liveness",
                  "--challenge", "blink")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 275
    same = [(line["frame"], f) for line in lines for f in line["faces"] if f["same_person"]]
    assert same, "Obama was never accepted"
    assert min(frame for frame, _ in same) >= 224  # his blink at 221-224, then the eyes reopen
    assert all(f["live"] is True and f["similarity"] > 0.32 for _, f in same)
    # without the blink he would have been 'same' from the first frame of his shot (211)
    close = [line["frame"] for line in lines for f in line["faces"] if f["similarity"] > 0.4]
    assert min(close) <= 212


def test_verify_reference_with_liveness_text_says_not_live_before_the_blink(
    datasets: Path,
) -> None:
    """Without --json, Obama's face before his blink reads 'not live', not 'different'."""
    refs = datasets / "videos" / "references"
    result = _cli("verify", "--ctx", "-1", "--reference", str(refs / "Barack_Obama" / "obama.jpg"),
                  "--source", str(datasets / HAMILTON), "--no-window", "--liveness",
                  "--challenge", "blink")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 275
    not_live = [i for i, line in enumerate(lines) if "not live" in line]
    same = [i for i, line in enumerate(lines) if "same 0." in line]
    assert not_live
    assert same
    assert min(not_live) <= 212  # his shot starts at 211
    assert max(not_live) < min(same)  # withheld until the blink, then 'same' while followed
    assert all(line.startswith(f"frame {i}: ") for i, line in enumerate(lines))
