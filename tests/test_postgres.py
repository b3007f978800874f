"""The PostgreSQL store against a real server (tests/pg.py): what only a shared server has."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from galleries import spurs
from pg import PostgresServer

from face_recognizer.errors import GalleryError, GalleryUnavailableError
from face_recognizer.matcher import Matcher
from face_recognizer.store import open_store
from face_recognizer.store.base import AddResult, EnrolFace
from face_recognizer.store.postgres import PostgresStore, redact

RID = "testpack00000001"


@pytest.fixture(scope="module")
def gdp_faces(engine) -> list[EnrolFace]:
    """The three Spurs players of gdp.jpg, each as its own EnrolFace."""
    return spurs(engine)


def test_server_takes_its_password_only(postgres_server: PostgresServer, pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        assert row[0] == pg_url.rsplit("/", 1)[1]
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(postgres_server.url("postgres", password="wrong"))


def test_redact_hides_the_password() -> None:
    assert redact("postgresql://ana:s3cr%40t@db.example:5432/gal") == (
        "postgresql://ana:***@db.example:5432/gal"
    )
    assert redact("postgresql://ana@db/gal?password=x&sslmode=require") == (
        "postgresql://ana@db/gal?password=***&sslmode=require"
    )
    assert redact("postgresql://db.example/gal") == "postgresql://db.example/gal"


def test_open_store_picks_postgres_for_a_url(pg_url) -> None:
    with open_store(pg_url) as store:
        assert isinstance(store, PostgresStore)
        assert store.location == redact(pg_url)


def test_wrong_password_names_the_fix_and_hides_the_password(postgres_server) -> None:
    url = postgres_server.url("postgres", password="Wr0ngPassw0rd")
    with pytest.raises(GalleryError, match="refused the login") as info:
        PostgresStore(url)
    assert "Wr0ngPassw0rd" not in str(info.value)
    assert "***" in str(info.value)


def test_unreachable_server_and_missing_database(postgres_server) -> None:
    dead = postgres_server.url("postgres").replace(f":{postgres_server.port}/", ":1/")
    with pytest.raises(GalleryUnavailableError, match="cannot be reached") as info:
        PostgresStore(dead)
    assert postgres_server.password not in str(info.value)
    with pytest.raises(GalleryError, match="does not exist"):
        PostgresStore(postgres_server.url("no_such_db"))


def test_schema_is_created_once_and_foreign_tables_are_refused(postgres_server, pg_url):
    with pytest.raises(GalleryError, match="No gallery"):
        PostgresStore(pg_url, create=False)
    with PostgresStore(pg_url) as store:
        assert store.face_count() == 0
        version = store.schema_version()
    with PostgresStore(pg_url, create=False) as store:  # reopened: nothing re-run
        assert store.schema_version() == version
    other = postgres_server.create_database()
    try:
        postgres_server.sql("CREATE TABLE people (x int)", database=other)
        with pytest.raises(GalleryError, match="another program"):
            PostgresStore(postgres_server.url(other))
    finally:
        postgres_server.drop_database(other)


def test_round_trip_bit_for_bit(pg_url, gdp_faces):
    with PostgresStore(pg_url) as store:
        result = store.add_faces("Spurs", gdp_faces, RID)
        assert (result.added, result.duplicates, result.created) == (3, 0, True)
    with PostgresStore(pg_url, create=False) as store:
        labels, vectors = store.embeddings(RID)
        assert vectors.dtype == np.float32
        assert vectors.shape == (3, 512)
        for face, vector in zip(gdp_faces, vectors, strict=True):
            assert np.array_equal(face.embedding, vector)
        assert list(labels) == [result.person_id] * 3
        crops = store.crops()
        assert len(crops) == 3
        assert np.array_equal(crops[1].crop, gdp_faces[1].crop)


def test_two_stations_enrolling_one_person_at_once_keep_every_photo_once(pg_url, gdp_faces):
    """Each station enrols the same new person with an overlapping set of photos, at the
    same instant, many times over: the person exists once with the union, each photo once."""
    stations = [PostgresStore(pg_url), PostgresStore(pg_url)]
    try:
        for round_ in range(10):
            name = f"Person {round_}"
            mine = [replace(f, source_hash=f"{f.source_hash}-{round_}") for f in gdp_faces]
            sets = [mine[:2], mine[1:]]  # the second photo in both
            start = threading.Barrier(2)
            results: list[AddResult] = []

            def enrol(i: int, name=name, sets=sets, start=start, results=results) -> None:
                start.wait()
                results.append(stations[i].add_faces(name, sets[i], RID))

            threads = [threading.Thread(target=enrol, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(results) == 2
            assert sum(r.added for r in results) == 3
            assert sum(r.created for r in results) == 1
            assert stations[0].source_hashes(name) == {f.source_hash for f in mine}
        people = stations[1].people()
        assert [p.photos for p in people] == [3] * 10
    finally:
        for s in stations:
            s.close()


def test_another_station_s_write_changes_the_token_within_a_second(pg_url, gdp_faces):
    with PostgresStore(pg_url) as watcher, PostgresStore(pg_url) as writer:
        before = watcher.change_token()
        assert watcher.change_token() == before
        writer.add_faces("Ana", gdp_faces[:1], RID)
        started = time.monotonic()
        while watcher.change_token() == before and time.monotonic() - started < 5:
            time.sleep(0.02)
        assert watcher.change_token() != before
        assert time.monotonic() - started < 1.0
        unchanged = watcher.change_token()
        time.sleep(0.6)
        assert watcher.change_token() == unchanged  # nobody wrote: same token


def test_server_restart_offline_then_back_by_itself(postgres_server, pg_url, gdp_faces):
    with PostgresStore(pg_url) as store:
        store.add_faces("Ana", gdp_faces[:1], RID)
        store.change_token()
        postgres_server.stop()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    store.change_token()
                except GalleryUnavailableError as exc:
                    offline = exc
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the store did not notice the server going away")
            assert "cannot be reached" in str(offline)
            assert postgres_server.password not in str(offline)
            with pytest.raises(GalleryUnavailableError):
                store.add_faces("Bob", gdp_faces[1:2], RID)
        finally:
            postgres_server.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                store.change_token()
                break
            except GalleryUnavailableError:
                time.sleep(0.1)
        store.add_faces("Bob", gdp_faces[1:2], RID)  # the same object writes again
        assert [p.name for p in store.people()] == ["Ana", "Bob"]


def test_matcher_keeps_its_index_while_the_server_is_away(postgres_server, pg_url, gdp_faces):
    said: list[str] = []
    with PostgresStore(pg_url) as store:
        store.add_faces("Duncan", gdp_faces[:1], RID)
        matcher = Matcher(store, RID, on_connection=said.append)
        query = np.stack([gdp_faces[0].embedding])
        assert matcher.match(query)[0].name == "Duncan"
        postgres_server.stop()
        try:
            deadline = time.monotonic() + 10
            while matcher.offline is None and time.monotonic() < deadline:
                assert matcher.refresh() is False
                time.sleep(0.05)
            for _ in range(5):  # said once, however often it is asked
                assert matcher.refresh() is False
            assert matcher.match(query)[0].name == "Duncan"  # the index it has
        finally:
            postgres_server.start()
        assert len(said) == 1
        assert "cannot be reached" in said[0]
        assert "1 faces loaded" in said[0]
        with PostgresStore(pg_url) as other:
            other.add_faces("Parker", gdp_faces[2:3], RID)
        deadline = time.monotonic() + 10
        while not matcher.refresh() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert matcher.offline is None
        assert said[1] == f"The gallery {store.location!r} is back."
        assert matcher.match(np.stack([gdp_faces[2].embedding]))[0].name == "Parker"
