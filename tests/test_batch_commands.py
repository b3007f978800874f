"""Batch commands go on: `import` and `evaluate` skip what they cannot use, finish the rest,
list every skipped item with its reason and exit 3 (real photos, real processes)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from face_recognizer.store.sqlite import Gallery

CLI = [sys.executable, "-m", "face_recognizer"]
SKIPPED_EXIT = 3


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=600, env=env
    )


def test_import_skips_a_bad_folder_in_the_middle_and_goes_on(datasets: Path, tmp_path: Path):
    refs = datasets / "videos" / "references"
    tree = tmp_path / "photos"
    shutil.copytree(refs, tree)
    bad = tree / "Bad\x01Name"  # sorts between Alex_Lacamoire and Barack_Obama
    shutil.copytree(refs / "Joe_Biden", bad)
    group = tree / "Barack_Obama" / "z_group.jpg"
    shutil.copy(datasets / "multi_face_scenes" / "obama_and_biden.jpg", group)
    broken = tree / "Joe_Biden" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    db = tmp_path / "db"

    result = run_cli("import", tree, "--db", db, "--ctx", "-1")

    assert result.returncode == SKIPPED_EXIT, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    # Obama's face in the photo with Biden agrees with his 4 portraits: it is enrolled
    assert lines[1] == "Barack Obama: used 5, skipped 0"
    pattern = r"  z_group\.jpg: ok, the face at \d+,\d+ of \d \(agrees 0\.\d\d with 4 other faces\)"
    assert re.fullmatch(pattern, lines[2]), lines[2]
    assert [lines[0], *lines[3:6]] == [
        "Alex Lacamoire: used 3, skipped 0",
        "Joe Biden: used 2, skipped 1 (1 unreadable)",
        "Lin Manuel Miranda: used 1, skipped 0",
        "Added 11 photos of 4 people.",
    ]
    assert lines[6] == "Skipped 2:"
    assert lines[7] == (
        f"  {str(bad) + os.sep!r}: The name 'Bad\\x01Name' holds control characters or line breaks."
    )
    assert lines[8].startswith(f"  {broken}: unreadable: Image {str(broken)!r} is not a picture")
    assert lines[9].startswith("Fewer than 3 photos, recognition will be less sure: Joe Biden (2)")
    assert len(lines) == 10
    # the people after the bad folder are stored too, with every usable photo
    with Gallery(db) as gallery:
        assert {p.name: p.photos for p in gallery.people()} == {
            "Alex Lacamoire": 3,
            "Barack Obama": 5,
            "Joe Biden": 2,
            "Lin Manuel Miranda": 1,
        }

    # the exit status is documented; a tree with nothing to skip exits 0
    assert "3 when the run finished but skipped" in " ".join(
        run_cli("import", "--help").stdout.split()
    )
    shutil.rmtree(bad)
    group.unlink()
    broken.unlink()
    again = run_cli("import", tree, "--db", tmp_path / "db2", "--ctx", "-1")
    assert again.returncode == 0, again.stderr
    assert "Skipped" not in again.stdout


def test_evaluate_skips_a_bad_folder_and_unusable_photos(datasets: Path, tmp_path: Path):
    celeb = datasets / "celeb5_kaggle"
    tree = tmp_path / "labelled"
    for person in ("Ben_Affleck", "Jerry_Seinfeld", "Madonna"):
        (tree / person).mkdir(parents=True)
        for photo in sorted((celeb / person).glob("*.jpg"))[:6]:
            shutil.copy(photo, tree / person)
    bad = tree / "Dan\x07Brown"  # sorts between Ben_Affleck and Jerry_Seinfeld
    shutil.copytree(datasets / "videos" / "references" / "Barack_Obama", bad)
    group = tree / "Madonna" / "0_group.jpg"  # sorts first: an enrolment photo
    shutil.copy(datasets / "multi_face_scenes" / "bbt1.jpg", group)
    broken = tree / "Jerry_Seinfeld" / "0_broken.jpg"
    broken.write_bytes(b"\xff\xd8 cut short")

    result = run_cli("evaluate", tree, "--enrol", "3", "--json", "--ctx", "-1")

    assert result.returncode == SKIPPED_EXIT, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    reasons = {item["item"]: item["reason"] for item in report["skipped"]}
    assert reasons[str(bad) + os.sep] == (
        "The name 'Dan\\x07Brown' holds control characters or line breaks."
    )
    assert reasons[str(group)] == "several faces, none clearly Madonna"  # she is not in it
    assert reasons[str(broken)].startswith("unreadable: ")
    # nothing of the refused folder was measured, everyone else was
    assert not any(
        item.startswith(str(bad) + os.sep) for item in reasons if item != str(bad) + os.sep
    )
    assert report["people"] == 4
    assert report["enrolled_people"] == 3
    assert all(why for why in reasons.values())

    # the terminal's summary lists the same items (aligned plain text, names quoted)
    text = run_cli("evaluate", tree, "--enrol", "3", "--ctx", "-1")
    assert text.returncode == SKIPPED_EXIT, text.stderr
    assert f"Skipped {len(reasons)} (left out of every figure above):" in text.stdout
    assert any(
        line.startswith(f"  {str(group)!r} ")
        and line.endswith("  several faces, none clearly Madonna")
        for line in text.stdout.splitlines()
    )
    assert "3 when the run finished but skipped" in " ".join(
        run_cli("evaluate", "--help").stdout.split()
    )
