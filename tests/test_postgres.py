"""The PostgreSQL store against a real server (tests/pg.py)."""

from __future__ import annotations

import pytest
from pg import PostgresServer


def test_server_takes_its_password_only(postgres_server: PostgresServer, pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        assert row[0] == pg_url.rsplit("/", 1)[1]
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(postgres_server.url("postgres", password="wrong"))
