"""The same gallery behaviour from both stores (`store_spec`: a SQLite folder, then a database
on the session's PostgreSQL server): the library through `open_store`, the matcher, and the
gallery commands through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

import cv2
import galleries
import numpy as np
import pytest

from face_recognizer.errors import GalleryError
from face_recognizer.images import read_image
from face_recognizer.matcher import Matcher
from face_recognizer.samples import sample_path
from face_recognizer.store import EnrolFace, Store, open_store

RID = "testpack00000001"
CLI = [sys.executable, "-m", "face_recognizer"]


@pytest.fixture(scope="module")
def spurs(engine) -> list[EnrolFace]:  # type: ignore[no-untyped-def]
    """The three Spurs players of gdp.jpg (Duncan, Ginobili, Parker), each its own face."""
    return galleries.spurs(engine)


def _changed(store: Store, token: object, seconds: float = 3.0) -> bool:
    """Whether `store.change_token()` moves away from `token` within `seconds` (another
    station's write reaches a PostgreSQL store within its watcher's period)."""
    deadline = time.monotonic() + seconds
    while store.change_token() == token:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_round_trip_dedup_and_export(store_spec, spurs):
    with open_store(store_spec) as store:
        first = store.add_faces("Spurs", spurs[:2], RID)
        assert (first.added, first.duplicates, first.created) == (2, 0, True)
        again = store.add_faces("Spurs", spurs, RID)
        assert (again.added, again.duplicates, again.created) == (1, 2, False)
        store.set_setting("threshold", "0.35")
    with open_store(store_spec, create=False) as store:
        labels, vectors = store.embeddings(RID)
        assert vectors.shape == (3, 512)
        assert list(labels) == [first.person_id] * 3
        for face, vector in zip(spurs, vectors, strict=True):
            assert np.array_equal(face.embedding, vector)
        exported = list(store.export_faces())
        assert [r.source_hash for r in exported] == ["gdp0", "gdp1", "gdp2"]
        assert np.array_equal(exported[2].crop, spurs[2].crop)
        assert [r.crop for r in store.export_faces(crops=False)] == [None] * 3
        assert store.settings() == {"threshold": "0.35"}
        taken = store.add_faces("Someone Else", spurs[1:2], RID)  # one photo file, one name
        assert (taken.added, taken.taken) == (0, (("gdp.jpg#1", "Spurs"),))
        assert store.face_count() == 3
        assert store.recognizer_ids() == {RID: 3}


def test_names_rename_remove_and_merge(store_spec, spurs):
    with open_store(store_spec) as store:
        store.add_faces("Zoë", spurs[:1], RID)
        store.add_faces("李雷", spurs[1:], RID)
        assert [p.name for p in store.people()] == ["Zoë", "李雷"]
        store.rename_person("Zoe\u0308", "Zoë Lima")  # NFD finds the NFC name
        with pytest.raises(GalleryError, match="already in the gallery"):
            store.rename_person("Zoë Lima", "李雷")
        assert store.merge_people("李雷", "Zoë Lima") == 2
        assert [(p.name, p.photos) for p in store.people()] == [("Zoë Lima", 3)]
        with pytest.raises(GalleryError, match="not in the gallery"):
            store.remove_person("李雷")
        assert store.remove_person("Zoë Lima") == 3
        assert store.people() == []
        assert store.face_count() == 0


def test_photos_of_lists_source_date_quality_and_crop(store_spec, spurs):
    """`people show` reads the same rows from both stores."""
    with open_store(store_spec) as store:
        store.add_faces("Spurs", spurs, RID)
        photos = store.photos_of("Spurs")
        assert [p.source for p in photos] == ["gdp.jpg#0", "gdp.jpg#1", "gdp.jpg#2"]
        assert all(p.created.tzinfo is not None for p in photos)
        assert [(p.det_score, p.face_px, p.blur) for p in photos] == [(0.9, 100.0, 100.0)] * 3
        for photo, face in zip(photos, spurs, strict=True):
            assert np.array_equal(photo.crop, face.crop)
        with pytest.raises(GalleryError, match="not in the gallery"):
            store.photos_of("Nobody")


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", "x" * 101])
def test_bad_names_are_refused(store_spec, spurs, bad):
    with open_store(store_spec) as store, pytest.raises(GalleryError):
        store.add_faces(bad, spurs[:1], RID)


def test_another_pack_and_other_sizes_are_refused_leaving_nothing(store_spec, spurs):
    with open_store(store_spec) as store:
        store.add_faces("Duncan", spurs[:1], RID)
        with pytest.raises(GalleryError, match="face-recognizer reindex"):
            store.add_faces("Duncan", spurs[1:2], "anotherpack00000")
        bad = EnrolFace(np.ones(128, np.float32), spurs[2].crop, "x", "h", 0.9, 100.0, 100.0)
        with pytest.raises(GalleryError, match="different sizes"):
            store.add_faces("Half", [spurs[2], bad], RID)
        assert [p.name for p in store.people()] == ["Duncan"]
        assert store.face_count() == 1
        stored = store.crops()
        store.replace_embeddings([c.face_id for c in stored], -spurs[0].embedding[None], "p2")
        assert store.recognizer_ids() == {"p2": 1}
        assert np.array_equal(store.embeddings("p2")[1][0], -spurs[0].embedding)


def test_a_write_in_a_transaction_is_all_or_nothing(store_spec, spurs):
    with open_store(store_spec) as store:

        def enrol_then_fail() -> None:
            with store.transaction():
                store.add_faces("Duncan", spurs[:1], RID)
                store.add_faces("Parker", spurs[2:], RID)
                raise RuntimeError("the caller failed half-way")

        with pytest.raises(RuntimeError):
            enrol_then_fail()
        assert store.people() == []
        with store.transaction():
            store.add_faces("Duncan", spurs[:1], RID)
            store.add_faces("Parker", spurs[2:], RID)
        assert [p.name for p in store.people()] == ["Duncan", "Parker"]


def test_the_matcher_sees_another_station_s_writes(store_spec, spurs):
    with open_store(store_spec) as station, open_store(store_spec) as other:
        other.add_faces("Duncan", spurs[:1], RID)
        matcher = Matcher(station, RID)
        queries = np.stack([f.embedding for f in spurs])
        assert [m.name for m in matcher.match(queries)] == ["Duncan", None, None]
        token = station.change_token()
        other.add_faces("Parker", spurs[2:], RID)
        other.set_setting("threshold", "0.5")
        assert _changed(station, token)
        assert matcher.refresh()
        assert matcher.threshold == 0.5
        assert [m.name for m in matcher.match(queries)] == ["Duncan", None, "Parker"]
        token = station.change_token()
        other.remove_person("Duncan")
        assert _changed(station, token)
        assert matcher.refresh()
        assert [m.name for m in matcher.match(queries)] == [None, None, "Parker"]
        assert not matcher.refresh()  # nothing new: no rebuild


# -- the gallery commands -----------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FACE_RECOGNIZER_DB"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


def test_import_people_and_reindex_commands(store_spec, tmp_path):
    tree = tmp_path / "photos"
    yao = read_image(sample_path("yaoming.jpg"))
    for name, image in (("Yao Ming", yao), ("Zoë", cv2.flip(yao, 1))):
        (tree / name).mkdir(parents=True)
        assert cv2.imwrite(str(tree / name / "a.jpg"), image)
    done = run_cli("import", str(tree), "--db", store_spec, "--ctx", "-1")
    assert done.returncode == 0, done.stderr
    assert "Added 2 photos of 2 people." in done.stdout
    again = run_cli("import", str(tree), "--db", store_spec, "--ctx", "-1")
    assert "Added 0 photos of 0 people." in again.stdout
    listed = run_cli("people", "list", "--json", "--db", store_spec)
    assert [(p["name"], p["photos"]) for p in json.loads(listed.stdout)] == [
        ("Yao Ming", 1),
        ("Zoë", 1),
    ]
    renamed = run_cli("people", "rename", "Zoë", "Zoë Lima", "--db", store_spec)
    assert renamed.stdout == "Renamed Zoë to Zoë Lima.\n"
    reindexed = run_cli("reindex", "--db", store_spec, "--ctx", "-1")
    assert reindexed.returncode == 0, reindexed.stderr
    assert "Re-embedded 2 faces of 2 people" in reindexed.stdout
    removed = run_cli("people", "remove", "Yao Ming", "--yes", "--db", store_spec)
    assert removed.stdout == "Removed Yao Ming (1 photo, 0 sightings).\n"
    missing = run_cli("people", "remove", "Nobody", "--yes", "--db", store_spec)
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: 'Nobody' is not in the gallery.")
    everything = "".join(
        r.stdout + r.stderr for r in (done, again, listed, renamed, reindexed, removed, missing)
    )
    password = urlsplit(store_spec).password
    assert password is None or password not in everything


def test_sightings_round_trip(store_spec, spurs):
    from datetime import datetime, timedelta, timezone

    from face_recognizer.store.base import NewSighting

    start = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)

    def seen(minutes: int, name: str | None, face: EnrolFace) -> NewSighting:
        when = start + timedelta(minutes=minutes)
        return NewSighting("camera:0", when, when + timedelta(seconds=5), None, None,
                           10 * minutes, 10 * minutes + 9, name, 0.8, 0.7, 10, 120.0,
                           recognizer_id=RID, embedding=face.embedding, crop=face.crop)  # fmt: skip

    with open_store(store_spec) as store:
        store.add_faces("Duncan", spurs[:1], RID)
        ids = store.add_sightings([seen(0, "Duncan", spurs[0]), seen(1, None, spurs[1]),
                                   seen(2, None, spurs[2])])  # fmt: skip
        assert len(set(ids)) == 3
        assert [s.name for s in store.sightings()] == ["Duncan", None, None]
        assert store.sightings(since=start + timedelta(minutes=1))[0].started == start + timedelta(
            minutes=1
        )
        unknown_ids, vectors = store.unknown_embeddings(RID)
        assert list(unknown_ids) == ids[1:]
        assert np.array_equal(vectors[1], spurs[2].embedding)
        assert np.array_equal(store.sighting_crops(ids[1:2])[ids[1]], spurs[1].crop)
        group = store.next_group_id()
        store.set_sighting_groups({ids[1]: group, ids[2]: group})
        assert [s.id for s in store.sightings(group_id=group)] == ids[1:]
        assert store.next_group_id() == group + 1
        assert store.name_sightings(ids[1:2], "Duncan") == 1
        assert [s.name for s in store.sightings(unknown=True)] == [None]
        assert store.delete_sightings(ids[2:]) == 1
        assert [s.id for s in store.sightings()] == ids[:2]
