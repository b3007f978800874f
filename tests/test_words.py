"""Words users read: plurals, one spelling, entry scripts that name themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from face_recognizer.live import status_text
from face_recognizer.words import plural

ROOT = Path(__file__).resolve().parent.parent


def test_plural_counts() -> None:
    assert plural(1, "face") == "1 face"
    assert plural(2, "face") == "2 faces"
    assert plural(0, "photo") == "0 photos"
    assert plural(1, "person") == "1 person"
    assert plural(5, "person") == "5 people"


def test_status_line_plurals() -> None:
    assert status_text(12.0, 1, 1, "CPU", None) == "12.0 FPS | 1 face | 1 person | CPU"
    assert status_text(12.0, 2, 5, "CPU", 3) == "12.0 FPS | 2 faces | 5 people | CPU | 3 dropped"


def test_one_spelling_of_recognize() -> None:
    """The British spelling appears in no message, docstring, test, benchmark or document."""
    british = "recogni" + "s"  # spelt in two parts, so that this file does not hold it
    suffixes = {".py", ".md", ".txt", ".toml", ".cfg", ".yml", ".yaml", ".html", ".js", ".css"}
    files = [ROOT / "README.md", *ROOT.glob("*.py")]
    for folder in ("face_recognizer", "tests", "bench", "docs", ".ci"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in suffixes]
    assert len(files) > 50
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if british in line.lower()
    ]
    assert found == []


@pytest.mark.parametrize(
    ("script", "first"),
    [("register.py", "Enrol a person"), ("face_recognition_v2.py", "Show every face")],
)
def test_entry_script_help_names_itself(script: str, first: str) -> None:
    result = subprocess.run(
        [sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith(f"Usage: {script} [OPTIONS]")
    assert first in result.stdout
    assert "face-recognizer register [" not in result.stdout.splitlines()[0]
