"""`verify`: the real engine on the bundled photos (Yao Ming, three Spurs players)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from face_recognizer.cli import cli
from face_recognizer.engine import Engine
from face_recognizer.errors import FaceCountError
from face_recognizer.images import read_image
from face_recognizer.matcher import DEFAULT_THRESHOLD
from face_recognizer.samples import sample_path
from face_recognizer.verify import reference_face, resolve_threshold, verify_photos

# Crops (y1, y2, x1, x2) of gdp.jpg holding one player's face each, and of players.jpg
# around Yao Ming (shirt 13) with two small faces of team-mates at the edges.
GDP_CROPS = {"duncan": (86, 236, 318, 443), "ginobili": (8, 148, 99, 224)}
YAO_IN_TEAM = (100, 240, 680, 810)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("verify")
    gdp = read_image(sample_path("gdp.jpg"))
    team = read_image(sample_path("players.jpg"))
    out = {}
    for name, (y1, y2, x1, x2) in GDP_CROPS.items():
        out[name] = folder / f"{name}.png"
        cv2.imwrite(str(out[name]), gdp[y1:y2, x1:x2])
    y1, y2, x1, x2 = GDP_CROPS["duncan"]
    out["duncan_flipped"] = folder / "duncan_flipped.png"
    cv2.imwrite(str(out["duncan_flipped"]), cv2.flip(gdp[y1:y2, x1:x2], 1))
    y1, y2, x1, x2 = YAO_IN_TEAM
    out["yao_in_team"] = folder / "yao_in_team.png"
    cv2.imwrite(str(out["yao_in_team"]), team[y1:y2, x1:x2])
    out["yaoming"] = sample_path("yaoming.jpg")
    out["team"] = sample_path("players.jpg")
    out["mask"] = sample_path("mask_white.jpg")
    return out


def test_same_person_in_two_photos(engine: Engine, photos: dict[str, Path]) -> None:
    result = verify_photos(engine, photos["yaoming"], photos["yao_in_team"], 0.4, "largest")
    assert result.same_person
    assert result.similarity == pytest.approx(0.642, abs=0.02)
    assert result.threshold == 0.4


def test_two_different_players(engine: Engine, photos: dict[str, Path]) -> None:
    result = verify_photos(engine, photos["duncan"], photos["ginobili"], 0.4)
    assert not result.same_person
    assert result.similarity == pytest.approx(0.134, abs=0.03)


def test_face_and_its_mirror_image(engine: Engine, photos: dict[str, Path]) -> None:
    result = verify_photos(engine, photos["duncan"], photos["duncan_flipped"], 0.4)
    assert result.same_person
    assert result.similarity == pytest.approx(0.981, abs=0.01)


def test_several_faces_need_pick(engine: Engine, photos: dict[str, Path]) -> None:
    with pytest.raises(FaceCountError, match="holds 3 faces") as info:
        reference_face(engine, read_image(photos["yao_in_team"]), label="yao_in_team.png")
    assert "--pick" not in str(info.value)  # the library names no command-line flag
    assert (info.value.param, info.value.value) == ("pick", "largest")
    from face_recognizer.cli import error_text

    assert error_text(info.value).endswith("or take the largest face: --pick largest.")
    face = reference_face(engine, read_image(photos["yao_in_team"]), pick="largest")
    assert face.xyxy == pytest.approx([39.4, 40.0, 83.2, 92.2], abs=3)


def test_no_face(engine: Engine, photos: dict[str, Path]) -> None:
    with pytest.raises(FaceCountError, match=r"mask_white\.jpg holds no face"):
        reference_face(engine, read_image(photos["mask"]), label="mask_white.jpg")


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [*args, "--ctx", "-1"])
    if result.exception and not isinstance(result.exception, SystemExit):
        from face_recognizer.errors import FaceRecognizerError

        assert isinstance(result.exception, FaceRecognizerError), result.exception
        return 1, result.stdout, str(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_cli_verify_json_and_text(photos: dict[str, Path], tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    code, out, _ = _run(
        ["verify", str(photos["yaoming"]), str(photos["yao_in_team"]), "--pick", "largest",
         "--json", "--db", db]
    )  # fmt: skip
    assert code == 0
    answer = json.loads(out)
    assert answer["same_person"] is True
    assert answer["similarity"] == pytest.approx(0.642, abs=0.02)
    assert answer["threshold"] == DEFAULT_THRESHOLD  # no gallery, no --threshold
    assert not (tmp_path / "db").exists()  # reading the threshold never creates a gallery

    code, out, _ = _run(
        ["verify", str(photos["duncan"]), str(photos["ginobili"]), "--threshold", "0.1"]
    )
    assert code == 0
    assert out.startswith("similarity 0.1")
    assert "same person (threshold 0.100)" in out


def test_cli_verify_errors(photos: dict[str, Path]) -> None:
    code, _, err = _run(["verify", str(photos["yaoming"]), str(photos["team"])])
    assert code == 1
    assert "players.jpg holds 22 faces" in err
    code, _, err = _run(["verify", str(photos["mask"]), str(photos["yaoming"])])
    assert code == 1
    assert "holds no face" in err
    code, _, err = _run(["verify", str(photos["yaoming"])])
    assert code == 2
    assert "Give two photos" in err


def test_threshold_from_gallery_setting(tmp_path: Path) -> None:
    from face_recognizer.store.sqlite import Gallery

    assert resolve_threshold(None, tmp_path / "db") == (DEFAULT_THRESHOLD, "default")
    with Gallery(tmp_path / "db") as gallery:
        gallery.set_setting("threshold", "0.33")
    assert resolve_threshold(None, tmp_path / "db") == (0.33, "gallery")
    assert resolve_threshold(0.5, tmp_path / "db") == (0.5, "--threshold")


def test_live_verify_json_on_stills(photos: dict[str, Path], tmp_path: Path) -> None:
    """--reference with --no-window --json: one object per frame of the source."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, name in enumerate(("yao_in_team", "ginobili", "mask")):
        (frames / f"{i}.png").write_bytes(Path(photos[name]).read_bytes())
    code, out, _ = _run(
        ["verify", "--reference", str(photos["yaoming"]), "--source", str(frames),
         "--no-window", "--json"]
    )  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2]
    assert [line["source"] for line in lines] == [str(frames / f"{i}.png") for i in range(3)]
    team, ginobili, mask = (line["faces"] for line in lines)
    assert len(team) == 3
    assert len(ginobili) == 1
    assert mask == []
    verdicts = sorted((f["same_person"], f["similarity"]) for f in team)
    assert [v for v, _ in verdicts] == [False, False, True]
    assert verdicts[-1][1] == pytest.approx(0.642, abs=0.02)
    assert ginobili[0]["same_person"] is False
    assert np.array(team[0]["box"]).shape == (4,)


def test_live_window_marks_the_reference_face_green_and_q_quits(
    photos: dict[str, Path], tmp_path: Path, xdisplay: str
) -> None:
    """`verify --reference` on a clip made from the team photo, in a real window under Xvfb."""
    import subprocess
    import sys

    from desktop import (
        desktop_env,
        press,
        screenshots_dir,
        wait_for_file,
        wait_for_screen,
        wait_for_window,
    )

    from face_recognizer.draw import KNOWN, STRANGER

    clip = tmp_path / "team.avi"
    team = np.ascontiguousarray(read_image(sample_path("players.jpg"))[100:520, 480:1000])
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 10, team.shape[1::-1])
    for _ in range(200):
        writer.write(team)
    writer.release()

    def has(image: np.ndarray, color: tuple[int, int, int], pixels: int) -> bool:
        return int(np.all(np.abs(image.astype(int) - color) <= 12, axis=2).sum()) >= pixels

    cmd = [sys.executable, "-m", "face_recognizer", "verify", "--ctx", "-1", "--db",
           str(tmp_path / "db"), "--reference", str(sample_path("yaoming.jpg")),
           "--source", str(clip)]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        env=desktop_env(xdisplay),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        window = wait_for_window(
            xdisplay, "face-recognizer: verify: yaoming.jpg in team.avi", proc=proc
        )
        shot = wait_for_screen(
            xdisplay,
            window,
            lambda im: has(im, KNOWN.bgr, 200) and has(im, STRANGER.bgr, 200),
            timeout=90,
            what="one green (same) box and red (different) boxes",
        )
        assert shot.mean() > 20
        cv2.imwrite(str(screenshots_dir(tmp_path / "shots") / "window-verify.png"), shot)
        press(xdisplay, window, "s")  # the same keys as recognize: S saves a snapshot
        snapshot = wait_for_file(tmp_path, "verify-snapshot-*.png")
        press(xdisplay, window, "q")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert f"Snapshot: {snapshot.name}" in err
        assert read_image(snapshot).shape == team.shape
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
