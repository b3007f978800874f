"""Sightings in the gallery database and the commands that read them (`sightings`,
`attendance`, `sightings purge`, `unknowns`), on real faces."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from face_recognizer.enrol import enrol_face
from face_recognizer.images import is_image_path, read_image
from face_recognizer.samples import sample_path
from face_recognizer.store.base import SCHEMA_VERSION, NewSighting
from face_recognizer.store.sqlite import DB_FILE, Gallery

CLI = [sys.executable, "-m", "face_recognizer"]
RID = "testpack00000001"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
# The `sightings --json` keys, in order (also the `--csv` header), as the issue gives them.
JSON_KEYS = ["id", "source", "start", "end", "name", "best_similarity", "mean_similarity", "frames"]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    env["TZ"] = "UTC"
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=300, input=stdin, env=env
    )


def sighting(
    crop: np.ndarray,
    embedding: np.ndarray | None,
    *,
    minutes: float = 0.0,
    name: str | None = None,
    source: str = "0",
    video: bool = False,
    face_px: float = 80.0,
    rid: str = RID,
) -> NewSighting:
    start = T0 + timedelta(minutes=minutes)
    return NewSighting(
        source=source,
        started=start,
        ended=start + timedelta(seconds=4),
        start_pos=12.5 if video else None,
        end_pos=16.5 if video else None,
        first_frame=300,
        last_frame=400,
        name=name,
        best_similarity=0.61 if name else 0.12,
        mean_similarity=0.55 if name else 0.08,
        frames=90,
        face_px=face_px,
        recognizer_id=rid,
        embedding=embedding,
        crop=crop,
    )


@pytest.fixture(scope="module")
def yao(engine):
    """(crop, embedding) of Yao Ming's portrait and an enrollable face of him."""
    image = read_image(sample_path("yaoming.jpg"))
    face, check = enrol_face(engine, image, "yaoming.jpg")
    assert face is not None, check
    return face


@pytest.fixture
def gallery(tmp_path, yao) -> Gallery:
    g = Gallery(tmp_path / "db")
    g.add_faces("Yao Ming", [yao], RID)
    return g


def test_sightings_round_trip_and_filters(gallery, yao) -> None:
    ids = gallery.add_sightings(
        [
            sighting(yao.crop, yao.embedding, minutes=0, name="Yao Ming"),
            sighting(yao.crop, yao.embedding, minutes=30, source="clip.mp4", video=True),
            sighting(yao.crop, None, minutes=60 * 26, name="Nobody Enrolled"),
        ]
    )
    assert len(ids) == 3
    everything = gallery.sightings()
    assert [s.id for s in everything] == ids
    first, second, third = everything
    assert first.name == "Yao Ming"
    assert first.started == T0
    assert first.start_pos is None
    assert (second.start_pos, second.end_pos) == (12.5, 16.5)
    assert third.name is None  # a name nobody has is stored as a stranger
    assert [s.id for s in gallery.sightings(name="Yao Ming")] == [ids[0]]
    assert [s.id for s in gallery.sightings(unknown=True)] == ids[1:]
    assert [s.id for s in gallery.sightings(source="clip.mp4")] == [ids[1]]
    assert [s.id for s in gallery.sightings(since=T0 + timedelta(minutes=1))] == ids[1:]
    assert [s.id for s in gallery.sightings(until=T0 + timedelta(minutes=30))] == [ids[0]]
    assert [s.id for s in gallery.sightings(ids=[ids[2], 999])] == [ids[2]]
    assert gallery.sightings(ids=[]) == []
    crops = gallery.sighting_crops(ids)
    assert set(crops) == set(ids)
    assert crops[ids[0]].shape == yao.crop.shape
    seen_ids, vectors = gallery.unknown_embeddings(RID)
    assert seen_ids.tolist() == [ids[1]]  # the third has no embedding
    assert np.allclose(vectors[0], yao.embedding)
    assert gallery.unknown_embeddings("another-pack")[0].tolist() == []
    assert gallery.delete_sightings([ids[1], 12345]) == 1
    assert [s.id for s in gallery.sightings()] == [ids[0], ids[2]]


def test_sighting_writes_do_not_look_like_gallery_changes(tmp_path, yao) -> None:
    """A running recognize reloads the gallery when its change token moves: sightings,
    written all the time, must not move it; people and settings must (from any process)."""
    db = tmp_path / "db"
    reader, writer = Gallery(db), Gallery(db)
    token = reader.change_token()
    writer.add_sightings([sighting(yao.crop, yao.embedding)])
    assert reader.change_token() == token
    assert writer.change_token() == token
    writer.add_faces("Yao Ming", [yao], RID)
    moved = reader.change_token()
    assert moved != token
    writer.set_setting("threshold", "0.4")
    assert reader.change_token() != moved
    reader.close()
    writer.close()


def test_removing_a_person_removes_their_sightings_and_merging_keeps_them(
    gallery, yao, engine
) -> None:
    ids = gallery.add_sightings([sighting(yao.crop, yao.embedding, name="Yao Ming")] * 2)
    gallery.add_sightings([sighting(yao.crop, yao.embedding)])
    flipped, _ = enrol_face(engine, cv2.flip(read_image(sample_path("yaoming.jpg")), 1), "f")
    assert flipped is not None
    gallery.add_faces("Yao", [flipped], RID)
    gallery.name_sightings(ids[:1], "Yao")
    assert len(gallery.sightings(name="Yao")) == 1
    gallery.merge_people("Yao", "Yao Ming")
    assert [s.id for s in gallery.sightings(name="Yao Ming")] == ids
    gallery.remove_person("Yao Ming")
    left = gallery.sightings()
    assert len(left) == 1
    assert left[0].name is None
    raw = sqlite3.connect(gallery.path).execute("SELECT count(*) FROM sightings").fetchone()
    assert raw[0] == 1


def test_old_gallery_is_upgraded_and_keeps_its_people(tmp_path, yao) -> None:
    db = tmp_path / "db"
    with Gallery(db) as g:
        g.add_faces("Yao Ming", [yao], RID)
    conn = sqlite3.connect(db / DB_FILE, isolation_level=None)
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' OR name IN "
            "('sightings', 'unknown_groups', 'gallery_changes')"
        )
    ]
    assert len(names) == 12
    for name in names:  # back to what version 2 of the schema held
        kind = "TRIGGER" if name.endswith("_counted") else "TABLE"
        conn.execute(f"DROP {kind} {name}")
    conn.execute("DROP TABLE api_keys")  # schema step 4 (serve's API keys)
    conn.execute("DELETE FROM schema_migrations WHERE version >= 3")
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with Gallery(db) as g:
        assert g.schema_version() == SCHEMA_VERSION
        assert [p.name for p in g.people()] == ["Yao Ming"]
        assert g.add_sightings([sighting(yao.crop, yao.embedding, name="Yao Ming")]) == [1]


def test_sightings_command_json_csv_and_table(gallery, yao) -> None:
    gallery.add_sightings(
        [
            sighting(yao.crop, yao.embedding, minutes=0, name="Yao Ming"),
            sighting(yao.crop, yao.embedding, minutes=5, source="clip.mp4", video=True),
        ]
    )
    db = str(gallery.path.parent)
    gallery.close()
    out = run_cli("sightings", "--json", "--db", db)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert list(row) == JSON_KEYS
    assert rows[0] == {
        "id": 1,
        "source": "0",
        "start": "2026-11-30T09:00:00+00:00",
        "end": "2026-11-30T09:00:04+00:00",
        "name": "Yao Ming",
        "best_similarity": 0.61,
        "mean_similarity": 0.55,
        "frames": 90,
    }
    assert (rows[1]["start"], rows[1]["end"], rows[1]["name"]) == (12.5, 16.5, None)

    unknown = run_cli("sightings", "--unknown", "--csv", "--db", db)
    table = list(csv.reader(io.StringIO(unknown.stdout)))
    assert table[0] == JSON_KEYS
    assert [r[0] for r in table[1:]] == ["2"]

    text = run_cli("sightings", "--since", "2026-11-30 09:01", "--db", db)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split() == ["ID", "START", "END", "NAME", "BEST", "MEAN", "FRAMES", "SOURCE"]
    assert "Unknown" in lines[1]
    assert "clip.mp4 (12.5-16.5 s)" in lines[1]

    bad = run_cli("sightings", "--since", "last tuesday", "--db", db)
    assert bad.returncode == 2
    assert "is not a time" in bad.stderr
    assert "Traceback" not in bad.stderr
    both = run_cli("sightings", "--name", "Yao Ming", "--unknown", "--db", db)
    assert both.returncode == 2
    assert "exclude each other" in both.stderr


def test_attendance_and_purge(gallery, yao) -> None:
    gallery.add_sightings(
        [
            sighting(yao.crop, yao.embedding, minutes=0, name="Yao Ming"),
            sighting(yao.crop, yao.embedding, minutes=90, name="Yao Ming"),
            sighting(yao.crop, yao.embedding, minutes=60 * 24, name="Yao Ming"),
            sighting(yao.crop, yao.embedding, minutes=10),
        ]
    )
    db = str(gallery.path.parent)
    gallery.close()
    out = run_cli("attendance", "--csv", "--db", db)
    assert out.returncode == 0, out.stderr
    assert list(csv.reader(io.StringIO(out.stdout))) == [
        ["date", "name", "first_seen", "last_seen", "sightings"],
        ["2026-11-30", "Yao Ming", "09:00:00", "10:30:04", "2"],
        ["2026-12-01", "Yao Ming", "09:00:00", "09:00:04", "1"],
    ]
    one_day = run_cli("attendance", "--date", "2026-12-01", "--db", db)
    assert one_day.stdout.splitlines()[1].split() == [
        "2026-12-01",
        "Yao",
        "Ming",
        "09:00:00",
        "09:00:04",
        "1",
    ]
    purge = run_cli("sightings", "purge", "--before", "2026-11-30T10:00:00+00:00", "--yes")
    assert purge.returncode != 0  # no --db: ./db does not exist here
    purge = run_cli(
        "sightings", "purge", "--before", "2026-11-30T10:00:00+00:00", "--yes", "--db", db
    )
    assert purge.returncode == 0, purge.stderr
    assert purge.stdout.strip() == "Deleted 2 sightings before 2026-11-30T10:00:00+00:00."
    with Gallery(db) as g:
        assert len(g.sightings()) == 2


@pytest.fixture(scope="module")
def strangers(engine, datasets) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(person, aligned crop, embedding): 4 crops each of 3 glint18 people, then one crop of
    each of 5 others (people seen once). Person 2's first 4 crops do not all meet the cut
    (glint holds hard poses), so 0, 1 and 3 recur."""
    folders = sorted(p for p in (datasets / "glint18_aligned112").iterdir() if p.is_dir())
    picks = [(0, 4), (1, 4), (3, 4)] + [(i, 1) for i in range(4, 9)]
    out = []
    for person, count in picks:
        files = sorted(p for p in folders[person].iterdir() if is_image_path(p))[:count]
        crops = np.stack([read_image(f) for f in files])
        for crop, emb in zip(crops, engine.embed_crops(crops), strict=True):
            out.append((person, crop, emb))
    assert len(out) == 17
    return out


def test_unknowns_groups_keep_their_ids_draw_sheets_and_forget(tmp_path, strangers, engine) -> None:
    db = tmp_path / "db"
    rid = engine.pack.recognizer_id
    first = [s for i, s in enumerate(strangers) if i % 4 < 2 or i >= 12]  # 2 each + 5
    later = [s for s in strangers if not any(s is f for f in first)]
    with Gallery(db) as g:
        g.add_sightings([sighting(c, e, minutes=i, rid=rid) for i, (_, c, e) in enumerate(first)])
    out = run_cli("unknowns", "--json", "--db", str(db))
    assert out.returncode == 0, out.stderr
    groups = json.loads(out.stdout)
    assert len(groups) == 3
    assert [g["sightings"] for g in groups] == [2, 2, 2]
    before = {g["id"]: g["sighting_ids"] for g in groups}
    assert sorted(before) == [1, 2, 3]
    assert set(groups[0]) == {"id", "sightings", "days", "first", "last", "sighting_ids"}

    with Gallery(db) as g:  # the same people come back the next day
        g.add_sightings(
            [sighting(c, e, minutes=60 * 24 + i, rid=rid) for i, (_, c, e) in enumerate(later)]
        )
    sheets = tmp_path / "sheets"
    out = run_cli("unknowns", "--json", "--sheet", str(sheets), "--db", str(db))
    assert out.returncode == 0, out.stderr
    after = json.loads(out.stdout)
    assert [g["sightings"] for g in after] == [4, 4, 4]
    assert all(g["days"] == 2 for g in after)
    for g in after:  # same ids, old sightings still in them
        assert set(before[g["id"]]) < set(g["sighting_ids"])
    pngs = sorted(p.name for p in sheets.iterdir())
    assert pngs == ["group-1.png", "group-2.png", "group-3.png"]
    sheet = cv2.imread(str(sheets / "group-1.png"))
    assert sheet.shape == (28 + 112, 4 * 112, 3)

    forget = run_cli("unknowns", "forget", "2", "--yes", "--db", str(db))
    assert forget.returncode == 0, forget.stderr
    assert forget.stdout.strip() == "Forgot group 2: deleted 4 sightings."
    out = run_cli("unknowns", "--json", "--db", str(db))
    assert sorted(g["id"] for g in json.loads(out.stdout)) == [1, 3]
    missing = run_cli("unknowns", "forget", "2", "--yes", "--db", str(db))
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: There is no group 2.")


def test_small_faces_are_never_grouped(tmp_path, yao) -> None:
    with Gallery(tmp_path / "db") as g:
        g.add_sightings([sighting(yao.crop, yao.embedding, face_px=30.0)] * 3)
        from face_recognizer.sightings.groups import regroup

        assert regroup(g, RID) == []
        g.add_sightings([sighting(yao.crop, yao.embedding, face_px=80.0)] * 2)
        groups = regroup(g, RID)
        assert [len(x.sighting_ids) for x in groups] == [2]


def test_unknowns_name_enrols_the_group_and_keeps_its_history(tmp_path, strangers, engine) -> None:
    db = tmp_path / "db"
    rid = engine.pack.recognizer_id
    with Gallery(db) as g:
        g.add_sightings(
            [sighting(c, e, minutes=i, rid=rid) for i, (_, c, e) in enumerate(strangers)]
        )
    groups = json.loads(run_cli("unknowns", "--json", "--db", str(db)).stdout)
    assert [g["sightings"] for g in groups] == [4, 4, 4]
    target = groups[0]
    named = run_cli(
        "unknowns", "name", str(target["id"]), "Ana Lima", "--ctx", "-1", "--db", str(db)
    )
    assert named.returncode == 0, named.stderr
    assert named.stdout.startswith(f"Named group {target['id']} Ana Lima: enrolled ")
    assert named.stdout.rstrip().endswith("4 sightings are now Ana Lima's.")
    with Gallery(db) as g:
        assert sorted(s.id for s in g.sightings(name="Ana Lima")) == target["sighting_ids"]
        people = {p.name: p.photos for p in g.people()}
    assert 1 <= people["Ana Lima"] <= 4
    left = json.loads(run_cli("unknowns", "--json", "--db", str(db)).stdout)
    assert sorted(g["id"] for g in left) == sorted(g["id"] for g in groups[1:])
    gone = run_cli("people", "remove", "Ana Lima", "--yes", "--db", str(db))
    assert gone.returncode == 0, gone.stderr
    assert "4 sightings" in gone.stdout
    with Gallery(db) as g:
        assert g.sightings(ids=target["sighting_ids"]) == []
    missing = run_cli("unknowns", "name", "99", "Bob", "--ctx", "-1", "--db", str(db))
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: There is no group 99.")
