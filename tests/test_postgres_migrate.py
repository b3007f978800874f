"""`face-recognizer migrate` between SQLite and PostgreSQL, both ways, through the real command
line (subprocesses): exact copies, a non-empty destination refused unless --merge, and a copy
whose embedding differs found by the check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recognizer.images import read_image
from face_recognizer.samples import sample_path
from face_recognizer.store import EnrolFace, open_store

CLI = [sys.executable, "-m", "face_recognizer"]
RID = "testpack00000001"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def people(engine) -> dict[str, list[EnrolFace]]:  # type: ignore[no-untyped-def]
    """The faces of the bundled group photos as people of their own: each face and its
    mirror image (real embeddings and aligned crops)."""
    found: dict[str, list[EnrolFace]] = {}
    for photo in ("t1.jpg", "gdp.jpg"):
        image = read_image(sample_path(photo))
        for picture, tag in ((image, "a"), (cv2.flip(image, 1), "b")):
            faces = engine.analyze(picture)
            crops = engine.align(picture, faces.landmarks)
            order = np.argsort(faces.xyxy[:, 0] if tag == "a" else -faces.xyxy[:, 2])
            for n, i in enumerate(order):
                face = EnrolFace(faces.embeddings[i], crops[i], f"{photo}#{tag}{n}",
                                 f"{photo}-{tag}{n}", 0.9, 100.0, 100.0)  # fmt: skip
                found.setdefault(f"{photo} {n}", []).append(face)
    assert len(found) >= 8
    return found


def _fill(spec: str | Path, people: dict[str, list[EnrolFace]]) -> None:
    with open_store(spec) as store:
        for name, faces in people.items():
            store.add_faces(name, faces, RID)


def _snapshot(spec: str | Path) -> dict[tuple[str, str], tuple[bytes, bytes]]:
    """(name, source_hash) -> (embedding bytes, crop bytes) of every face in a gallery."""
    with open_store(spec, create=False) as store:
        return {
            (r.name, r.source_hash): (r.embedding.tobytes(), np.asarray(r.crop).tobytes())
            for r in store.export_faces()
        }


def test_sqlite_to_postgres_and_back_is_exact(postgres_server, pg_url, people, tmp_path):
    folder = tmp_path / "db"
    _fill(folder, people)
    with open_store(folder) as store:
        store.set_setting("threshold", "0.41")
        dates = {p.name: p.photos for p in store.people()}
    done = run_cli("migrate", "--from", str(folder), "--to", pg_url)
    assert done.returncode == 0, done.stderr
    faces = sum(len(f) for f in people.values())
    assert f"Copied {faces} faces of {len(people)} people" in done.stdout
    assert f"Checked: all {faces} faces are there with the same embeddings." in done.stdout
    assert postgres_server.password not in done.stdout + done.stderr
    original = _snapshot(folder)
    assert len(original) == faces
    assert _snapshot(pg_url) == original
    back = tmp_path / "back"
    done = run_cli("migrate", "--from", pg_url, "--to", str(back))
    assert done.returncode == 0, done.stderr
    assert _snapshot(back) == original
    with open_store(back) as store:
        assert store.get_setting("threshold") == "0.41"
        assert {p.name: p.photos for p in store.people()} == dates


def test_a_non_empty_destination_is_refused_unless_merge(postgres_server, pg_url, people, tmp_path):
    folder = tmp_path / "db"
    _fill(folder, people)
    first = next(iter(people))
    _fill(pg_url, {first: people[first]})
    refused = run_cli("migrate", "--from", str(folder), "--to", pg_url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: The destination 'postgresql://frtest:***@")
    assert "--merge" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert postgres_server.password not in refused.stdout + refused.stderr
    with open_store(pg_url) as store:
        assert [(p.name, p.photos) for p in store.people()] == [(first, 2)]  # untouched
    merged = run_cli("migrate", "--from", str(folder), "--to", pg_url, "--merge")
    assert merged.returncode == 0, merged.stderr
    assert "(2 were there already)" in merged.stdout
    assert _snapshot(pg_url) == _snapshot(folder)


def test_the_check_finds_an_embedding_that_differs(pg_url, people, tmp_path):
    folder = tmp_path / "db"
    _fill(folder, people)
    name, faces = next(iter(people.items()))
    right = faces[0]
    wrong = EnrolFace(-right.embedding, right.crop, right.source, right.source_hash, 0.9, 99, 99)
    _fill(pg_url, {name: [wrong]})  # the destination holds that photo with another vector
    done = run_cli("migrate", "--from", str(folder), "--to", pg_url, "--merge")
    assert done.returncode == 1
    assert f"Error: The copy differs: the embedding of {name!r}" in done.stderr


def test_bad_ends_are_one_sentence(tmp_path, pg_url):
    missing = run_cli("migrate", "--from", str(tmp_path / "nothing"), "--to", pg_url)
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: No gallery at")
    assert len(missing.stderr.strip().splitlines()) == 1
    same = run_cli("migrate", "--from", str(tmp_path / "db"), "--to", str(tmp_path / "db"))
    assert same.returncode == 1
    assert same.stderr == "Error: --from and --to name the same gallery.\n"
