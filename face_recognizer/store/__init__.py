"""Where the gallery is stored: `open_store(spec)` picks the store for a folder or a URL.

A folder path is the embedded SQLite store (`store.sqlite`); a `postgresql://` URL the shared
PostgreSQL store (`store.postgres`, the `postgres` extra). Both implement `store.base.Store`;
`store.postgres` provides `open_postgres(url, *, create) -> Store`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from face_recognizer.errors import GalleryError
from face_recognizer.store.base import (
    SCHEMA_VERSION,
    AddResult,
    ApiKey,
    EnrolFace,
    Migration,
    Store,
    StoredCrop,
    normalize_name,
)

__all__ = [
    "ENV_DB",
    "SCHEMA_VERSION",
    "AddResult",
    "ApiKey",
    "EnrolFace",
    "Migration",
    "Store",
    "StoredCrop",
    "gallery_exists",
    "is_url",
    "normalize_name",
    "open_store",
    "resolve_db",
]

ENV_DB = "FACE_RECOGNIZER_DB"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
POSTGRES_HINT = "PostgreSQL support needs `pip install face-recognizer[postgres]`."


def resolve_db(db: str | Path | None) -> str | Path:
    """The gallery spec: `db` (from --db), else $FACE_RECOGNIZER_DB, else the folder ./db.

    A `postgresql://` URL stays a string; anything else is a folder `Path`."""
    text = "" if db is None else str(db)
    if not text:
        text = os.environ.get(ENV_DB, "") or "db"
    return text if is_url(text) else Path(text).expanduser()


def is_url(spec: str | Path) -> bool:
    """True for a `postgresql://` (or `postgres://`) URL."""
    return isinstance(spec, str) and spec.lower().startswith(POSTGRES_SCHEMES)


def gallery_exists(spec: str | Path | None = None) -> bool:
    """Whether a gallery is at `spec` (see `resolve_db`) already; creates nothing.

    Raises:
        GalleryError: a PostgreSQL server that cannot be asked (unreachable, login refused).
    """
    where = resolve_db(spec)
    if isinstance(where, str):
        from face_recognizer.store.postgres import has_gallery

        return has_gallery(where)
    from face_recognizer.store.sqlite import DB_FILE

    return (where / DB_FILE).is_file()


def open_store(spec: str | Path | None = None, *, create: bool = True) -> Store:
    """Open the gallery at `spec` (see `resolve_db`); with `create`, make it when missing.

    Raises:
        GalleryError: the gallery is missing (and not `create`), damaged, another program's,
            unreachable, or PostgreSQL support is not installed.
    """
    where = resolve_db(spec)
    if isinstance(where, str):
        try:
            module = importlib.import_module("face_recognizer.store.postgres")
        except ImportError as exc:
            raise GalleryError(
                "This gallery is a PostgreSQL database, which this installation cannot open.",
                hint=POSTGRES_HINT,
            ) from exc
        store: Store = module.open_postgres(where, create=create)
        return store
    from face_recognizer.store.sqlite import Gallery

    return Gallery(where, create=create)
