"""Faults the SQLite gallery must survive (issue 18): kill -9 at random moments, a full disk,
damaged pages, read-only and unreadable folders, removal while another process reads, and
one photo under two names. Real subprocesses, real files, real faces."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from needs import missing
from test_store import RID, faces  # noqa: F401 - the real-faces fixture

from face_recognizer.cli import cli
from face_recognizer.errors import GalleryError
from face_recognizer.images import read_image
from face_recognizer.samples import sample_path
from face_recognizer.store import sqlite as sqlite_store
from face_recognizer.store.base import EnrolFace
from face_recognizer.store.sqlite import DB_FILE, Gallery

ROUNDS = 20
# Runs a real command after its imports, when told to: the kill lands in the command itself.
RUNNER = """
import sys
from face_recognizer.cli import main
print("ready", flush=True)
sys.stdin.readline()
main(sys.argv[1:])
"""
CREATE = """
import sys
from face_recognizer.store import open_store
import face_recognizer.store.sqlite  # imported before the go: the kill lands in the creation
print("ready", flush=True)
sys.stdin.readline()
open_store(sys.argv[1]).close()
print("done", flush=True)
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _go(proc: subprocess.Popen[str]) -> float:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    return time.perf_counter()


def _clean_run(script: str, *args: str) -> tuple[float, str]:
    """Seconds from the go to the command's first line of output (its work is done then, only
    the interpreter's exit is left), and its output."""
    proc = _start(script, *args)
    started = _go(proc)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    seconds = time.perf_counter() - started
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return seconds, first + out


def _killed_run(script: str, window_s: float, rng: random.Random, *args: str) -> bool:
    """Start the command, SIGKILL it at a random moment of its run; True if it ended first."""
    proc = _start(script, *args)
    started = _go(proc)
    delay = rng.uniform(0.0, window_s)
    while time.perf_counter() - started < delay:
        if proc.poll() is not None:
            break
        time.sleep(0.002)
    finished = proc.poll() is not None
    proc.kill()
    proc.communicate(timeout=60)
    return finished


def _counts(db: Path) -> list[tuple[str, int]]:
    """(name, photos) of everyone; the gallery must open (a missing one is finished)."""
    with Gallery(db) as gallery:
        return [(p.name, p.photos) for p in gallery.people()]


def _file_state(db: Path) -> str:
    path = db / DB_FILE
    if not path.exists():
        return "no file"
    if path.stat().st_size == 0:
        return "empty file"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return "complete" if tables else "unfinished"


def _copy(face: EnrolFace, digest: str) -> EnrolFace:
    return EnrolFace(
        face.embedding, face.crop, face.source, digest, face.det_score, face.face_px, face.blur
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, engine, faces) -> Path:  # noqa: F811
    """A closed gallery of three people with four photos each (a single file, no -wal).
    Every face is its own: the four real faces, as they are, mirrored and brightened, each
    embedded anew, so that one person's bytes are nobody else's."""
    variants = [
        lambda c: c,
        lambda c: np.ascontiguousarray(c[:, ::-1]),
        lambda c: cv2.convertScaleAbs(c, alpha=1.2, beta=10),
    ]
    db = tmp_path_factory.mktemp("seeded") / "db"
    with Gallery(db) as gallery:
        for p, name in enumerate(["Ana Lima", "Bruno", "Chloé"]):
            crops = np.stack([variants[p](f.crop) for f in faces])
            embeddings = engine.embed_crops(crops)
            mine = [
                EnrolFace(e, c, f"{name}/{i}.jpg", f"{p}-{i}", 0.9, 100.0, 100.0)
                for i, (e, c) in enumerate(zip(embeddings, crops, strict=True))
            ]
            gallery.add_faces(name, mine, RID)
    assert sorted(f.name for f in db.iterdir()) == [DB_FILE]
    return db


def _fresh(seeded: Path, where: Path) -> Path:
    shutil.copytree(seeded, where)
    return where


# -- kill -9 -------------------------------------------------------------------------------
def test_kill_during_create_leaves_a_gallery_that_opens(tmp_path):
    rng = random.Random(11)
    window, _ = _clean_run(CREATE, str(tmp_path / "clean"))
    states: Counter[str] = Counter()
    for i in range(ROUNDS):
        db = tmp_path / f"r{i}"
        finished = _killed_run(CREATE, window, rng, str(db))
        states["finished first" if finished else _file_state(db)] += 1
        assert _counts(db) == []  # opens (an unfinished one is finished), nothing invented
        _clean_run(CREATE, str(db))
        assert _counts(db) == _counts(tmp_path / "clean")
    print(f"create, {ROUNDS} kill -9 rounds: {dict(states)}")
    assert sum(states.values()) == ROUNDS


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["people", "remove", "Bruno", "--yes"], [("Ana Lima", 4), ("Chloé", 4)]),
        (
            ["people", "rename", "Bruno", "Bruno Alves"],
            [("Ana Lima", 4), ("Bruno Alves", 4), ("Chloé", 4)],
        ),
    ],
    ids=["remove", "rename"],
)
def test_kill_during_remove_and_rename_is_all_or_nothing(seeded, tmp_path, command, expected):
    rng = random.Random(len(command[1]))
    before = _counts(seeded)
    window, _ = _clean_run(RUNNER, *command, "--db", str(_fresh(seeded, tmp_path / "clean")))
    assert _counts(tmp_path / "clean") == expected
    outcomes: Counter[str] = Counter()
    for i in range(ROUNDS):
        db = _fresh(seeded, tmp_path / f"r{i}")
        _killed_run(RUNNER, window, rng, *command, "--db", str(db))
        after = _counts(db)
        assert after in (before, expected)  # never half of it
        outcomes["done" if after == expected else "not yet"] += 1
        rerun = subprocess.run(
            [
                sys.executable,
                "-c",
                "from face_recognizer.cli import main; main()",
                *command,
                "--db",
                str(db),
            ],
            input="\n",
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )
        assert rerun.returncode == (0 if after == before else 1), rerun.stderr
        assert _counts(db) == expected
    print(f"{command[1]}, {ROUNDS} kill -9 rounds: {dict(outcomes)}")
    assert sum(outcomes.values()) == ROUNDS


@pytest.fixture(scope="module")
def photo_tree(tmp_path_factory, faces) -> Path:  # noqa: F811
    """Two people, two photos each, from the bundled samples."""
    root = tmp_path_factory.mktemp("tree")
    yao = read_image(sample_path("yaoming.jpg"))
    (root / "Yao Ming").mkdir()
    (root / "Spurs").mkdir()
    cv2.imwrite(str(root / "Yao Ming" / "a.jpg"), yao)
    cv2.imwrite(str(root / "Yao Ming" / "b.png"), cv2.flip(yao, 1))
    padded = cv2.copyMakeBorder(faces[1].crop, 80, 80, 80, 80, cv2.BORDER_CONSTANT)
    cv2.imwrite(str(root / "Spurs" / "c.png"), padded)
    cv2.imwrite(str(root / "Spurs" / "d.png"), cv2.convertScaleAbs(padded, alpha=1.1, beta=5))
    return root


def test_kill_during_import_then_rerun_gives_the_clean_counts(photo_tree, tmp_path):
    rng = random.Random(7)
    command = ["import", str(photo_tree), "--ctx", "-1", "--db"]
    window, _ = _clean_run(RUNNER, *command, str(tmp_path / "clean"))
    clean = _counts(tmp_path / "clean")
    assert [n for n, _ in clean] == ["Spurs", "Yao Ming"]
    assert sum(c for _, c in clean) == 4
    outcomes: Counter[str] = Counter()
    for i in range(ROUNDS):
        db = tmp_path / f"r{i}"
        _killed_run(RUNNER, window, rng, *command, str(db))
        after = _counts(db)
        assert all(dict(clean)[n] == c for n, c in after)  # a person whole or not at all
        outcomes[f"{len(after)} of 2 people stored"] += 1
        _clean_run(RUNNER, *command, str(db))
        assert _counts(db) == clean
    print(f"import, {ROUNDS} kill -9 rounds: {dict(outcomes)}")
    assert sum(outcomes.values()) == ROUNDS


# -- full disk, damage, permissions --------------------------------------------------------
def test_full_disk_changes_nothing_and_the_gallery_stays_readable(tmp_path, faces):  # noqa: F811
    with Gallery(tmp_path) as gallery:
        gallery.add_faces("Yao", [faces[0]], RID)
        pages = gallery._conn.execute("PRAGMA page_count").fetchone()[0]
        gallery._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is "full"
        many = [_copy(faces[i % 4], f"h{i}") for i in range(40)]
        with pytest.raises(GalleryError, match=r"is full; nothing was changed\. Free some space"):
            gallery.add_faces("Spurs", many, RID)
        assert [(p.name, p.photos) for p in gallery.people()] == [("Yao", 1)]
        assert gallery.face_count() == 1
        gallery._conn.execute(f"PRAGMA max_page_count = {1 << 30}")  # space freed
        assert gallery.add_faces("Spurs", many, RID).added == 40


FILL_DISK = """
import json, subprocess, sys
import numpy as np
from face_recognizer.errors import GalleryError
from face_recognizer.store.base import EnrolFace
from face_recognizer.store.sqlite import Gallery

db, rid = sys.argv[1], sys.argv[2]
data = np.load(sys.argv[3])
rng = np.random.default_rng(0)
stored, error = 0, None
with Gallery(db) as gallery:
    for i in range(1000):  # noise crops: ~37 KB of PNG each, so the disk fills
        crop = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
        face = EnrolFace(data["embedding"], crop, "x", f"h{i}", 0.9, 99.0, 99.0)
        try:
            gallery.add_faces(f"P{i % 5}", [face], rid)
        except GalleryError as exc:
            error = str(exc)
            break
        stored += 1
    after = gallery.face_count()
cli = [sys.executable, "-m", "face_recognizer"]
listed = subprocess.run([*cli, "people", "list", "--json", "--db", db], capture_output=True)
removed = subprocess.run([*cli, "people", "remove", "P0", "--yes", "--db", db], capture_output=True)
print(json.dumps({"stored": stored, "error": error, "after": after,
                  "listed": json.loads(listed.stdout or b"null"),
                  "removed_rc": removed.returncode, "removed_err": removed.stderr.decode()}))
"""


def test_a_real_full_disk_keeps_the_gallery_readable(tmp_path, faces):  # noqa: F811
    """A 1 MB tmpfs in a private mount namespace: writes fail with one sentence and change
    nothing, `people list` still works, and a removal says the same sentence."""
    if shutil.which("unshare") is None:
        missing("unshare (apt install util-linux)")
    mount = tmp_path / "small"
    mount.mkdir()
    np.savez(tmp_path / "face.npz", embedding=faces[0].embedding)
    (tmp_path / "fill.py").write_text(FILL_DISK)
    shell = (
        f"mount -t tmpfs -o size=1m tmpfs {mount} || exit 77; "
        f"exec {sys.executable} {tmp_path / 'fill.py'} {mount / 'db'} {RID} {tmp_path / 'face.npz'}"
    )
    run = subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    if run.returncode == 77:
        missing("permission to mount a tmpfs in a private namespace (unshare -rm)")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    full = "is full; nothing was changed. Free some space and run the command again."
    assert result["stored"] >= 5
    assert result["error"].endswith(full)
    assert result["after"] == result["stored"]
    assert sum(p["photos"] for p in result["listed"]) == result["stored"]
    assert result["removed_rc"] == 1
    assert result["removed_err"].startswith("Error: The disk holding the gallery")
    assert result["removed_err"].count("\n") == 1


def test_damaged_pages_say_how_to_save_what_is_readable(seeded, tmp_path):
    db = _fresh(seeded, tmp_path / "db")
    path = db / DB_FILE
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    rng = np.random.default_rng(3)
    data[2 * page :] = rng.integers(0, 256, len(data) - 2 * page, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))

    def read_all() -> None:
        with Gallery(db) as gallery:
            gallery.people()
            gallery.crops()

    with pytest.raises(GalleryError, match=r"is damaged .* \.recover > saved\.sql") as err:
        read_all()
    assert str(path) in str(err.value)
    assert path.read_bytes() == bytes(data)  # left as it is


def _as_user(args: list[str]) -> list[str]:
    """Run `args` without root's power to ignore permission bits (as a user would)."""
    if os.geteuid() != 0:
        return args
    if shutil.which("setpriv") is None:
        missing("setpriv (apt install util-linux)")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *args]


def _cli_as_user(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _as_user([sys.executable, "-m", "face_recognizer", *args]),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )


def test_read_only_folder_and_unreadable_file_are_one_sentence(seeded, tmp_path):
    db = _fresh(seeded, tmp_path / "ro")
    db.chmod(0o500)
    try:
        result = _cli_as_user("people", "remove", "Bruno", "--yes", "--db", str(db))
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1, result.stderr
        assert "read-only" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        db.chmod(0o700)
    assert _counts(db) == _counts(seeded)

    db = _fresh(seeded, tmp_path / "locked")
    (db / DB_FILE).chmod(0o000)
    try:
        result = _cli_as_user("people", "list", "--db", str(db))
        assert result.returncode == 1
        assert result.stderr.startswith("Error: The gallery"), result.stderr
        assert "Permission denied" in result.stderr
        assert result.stderr.count("\n") == 1
    finally:
        (db / DB_FILE).chmod(0o600)


# -- removal is complete -------------------------------------------------------------------
HOLDER = """
import sys, time
from face_recognizer.store.sqlite import Gallery
with Gallery(sys.argv[1], create=False) as g:
    print("open", flush=True)
    while not sys.stdin.readline().strip() == "quit":
        g.people()   # what a running recognize does between frames
"""


def _leftovers(db: Path, needles: dict[str, bytes]) -> dict[str, int]:
    blob = b"".join(p.read_bytes() for p in sorted(db.iterdir()) if p.is_file())
    return {what: blob.count(needle) for what, needle in needles.items() if needle in blob}


def test_remove_while_another_process_reads_leaves_nothing_in_the_files(seeded, tmp_path):
    db = _fresh(seeded, tmp_path / "db")
    with contextlib.closing(sqlite3.connect(db / DB_FILE)) as conn:
        rows = conn.execute(
            "SELECT embedding, crop_png FROM faces JOIN people p ON p.id = person_id"
            " WHERE p.name = 'Chloé'"
        ).fetchall()
    assert len(rows) == 4
    needles = {"name": "Chloé".encode()}
    for i, (embedding, crop) in enumerate(rows):
        needles[f"embedding {i}"] = bytes(embedding)[:64]
        needles[f"crop {i}"] = bytes(crop)[-256:]  # the PNG's pixel data and end
    assert len(_leftovers(db, needles)) == len(needles)  # all there before
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        removed = subprocess.run(
            [
                sys.executable,
                "-m",
                "face_recognizer",
                "people",
                "remove",
                "Chloé",
                "--yes",
                "--db",
                str(db),
            ],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )
        assert removed.returncode == 0, removed.stderr
        assert removed.stdout.startswith("Removed Chloé (4 photos")
        assert removed.stderr == ""
        assert holder.poll() is None  # still holding the gallery open
        assert _leftovers(db, needles) == {}
    finally:
        assert holder.stdin is not None
        holder.stdin.write("quit\n")
        holder.stdin.flush()
        holder.wait(timeout=60)
    assert _leftovers(db, needles) == {}
    assert [n for n, _ in _counts(db)] == ["Ana Lima", "Bruno"]


def test_a_long_read_elsewhere_is_said_and_the_wipe_follows_when_it_ends(
    seeded, tmp_path, monkeypatch
):
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 0.3)
    db = _fresh(seeded, tmp_path / "db")
    reader = sqlite3.connect(db / DB_FILE, isolation_level=None)
    reader.execute("BEGIN")
    assert len(reader.execute("SELECT * FROM faces").fetchall()) == 12  # a long read
    result = CliRunner().invoke(cli, ["people", "remove", "Bruno", "--yes", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "Removed Bruno (4 photos" in result.output
    assert "keeps the old data in the gallery's files until it closes" in result.output
    reader.execute("COMMIT")
    reader.close()  # the last connection: SQLite checkpoints and drops the log
    assert _leftovers(db, {"name": b"Bruno"}) == {}


# -- one face, one name --------------------------------------------------------------------
def test_one_photo_one_name_and_a_warning_for_a_near_copy(tmp_path, faces):  # noqa: F811
    yao = read_image(sample_path("yaoming.jpg"))
    root = tmp_path / "tree"
    for who in ("Alpha", "Beta"):
        (root / who).mkdir(parents=True)
    cv2.imwrite(str(root / "Alpha" / "yao.jpg"), yao)
    shutil.copy(root / "Alpha" / "yao.jpg", root / "Beta" / "same.jpg")
    cv2.imwrite(str(root / "Beta" / "copy.jpg"), yao, [cv2.IMWRITE_JPEG_QUALITY, 60])
    db = str(tmp_path / "db")
    env = _env()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "face_recognizer", *args, "--db", db, "--ctx", "-1"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    first = run("import", str(root))
    assert first.returncode == 3, first.stderr  # finished, and says what it skipped
    assert f"  {root / 'Beta' / 'same.jpg'}: already enrolled as Alpha" in first.stdout
    assert "Beta: used 1, skipped 1 (1 already enrolled as Alpha)" in first.stdout.splitlines()
    warnings = [line for line in first.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1, first.stderr
    assert (
        "copy.jpg shows a face nearly identical to one of Alpha's photos (similarity 0.9"
        in (warnings[0])
    )
    assert _counts(Path(db)) == [("Alpha", 1), ("Beta", 1)]

    again = run("register", "-n", "Gamma", "--images", str(root / "Alpha" / "yao.jpg"))
    assert again.returncode == 1
    assert "yao.jpg is already enrolled as Alpha; nothing was stored for Gamma." in again.stderr
    assert "--same-photo-ok" in again.stderr
    assert _counts(Path(db)) == [("Alpha", 1), ("Beta", 1)]

    anyway = run("import", str(root), "--same-photo-ok")
    assert anyway.returncode == 0, anyway.stderr
    assert "Beta: used 1, already enrolled 1, skipped 0" in anyway.stdout.splitlines()
    assert _counts(Path(db)) == [("Alpha", 1), ("Beta", 2)]


def test_nan_threshold_is_one_clean_sentence():
    result = subprocess.run(
        [sys.executable, "-m", "face_recognizer", "recognize", "--threshold", "nan"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert result.returncode == 2
    assert "Invalid value for '--threshold': 'nan' is not a number" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ValueError" not in result.stderr
