"""Shared fixtures: one real engine per session, the shared datasets when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from desktop import xdisplay  # noqa: F401 - Xvfb fixture for window tests (tests/desktop.py)
from needs import missing
from pg import pg_url, postgres_server, store_spec  # noqa: F401 - PostgreSQL (tests/pg.py)

from face_recognizer.engine import Engine
from face_recognizer.models import find_pack

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FACE_RECOGNIZER_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The built-in pack on CPU (the machines that run the tests have no GPU)."""
    return Engine(find_pack(), ctx=-1)


@pytest.fixture(scope="session")
def datasets() -> Path:
    """`../shared/datasets`, or skip: a fresh clone of the project does not have it (in CI,
    where it is always beside the checkout, its absence fails the test)."""
    if not (DATASETS / "README.md").is_file():
        missing(f"the shared datasets at {DATASETS} (set FACE_RECOGNIZER_DATASETS)")
    return DATASETS
