"""Copy a whole gallery from one store to another and check the copy (`face-recognizer migrate`).

Works between any two stores (SQLite -> PostgreSQL and back, or two of a kind) through the
`Store` interface only: people and their faces (embedding, crop, source, quality) with
`add_faces`, settings with `set_setting`. The destination must be empty unless `merge`; in a
merge, photos a person already has there are skipped as usual, and the destination keeps
its own value of a setting both hold. Then every source face is looked up in the
destination by (name, source_hash) and its embedding compared bit for bit.

Each person's faces go in one transaction, so an interrupted copy leaves whole people; run
again with `merge` to finish it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from face_recognizer.errors import GalleryError
from face_recognizer.store.base import FaceRecord, Store

BATCH_FACES = 200  # faces per add_faces call while copying


@dataclass
class CopyReport:
    """What `copy_gallery` did and found."""

    people: int = 0
    faces_copied: int = 0
    faces_already_there: int = 0
    settings_copied: list[str] = field(default_factory=list)
    settings_kept: list[str] = field(default_factory=list)
    faces_checked: int = 0


def _fingerprint(record: FaceRecord) -> str:
    return hashlib.sha256(record.recognizer_id.encode() + record.embedding.tobytes()).hexdigest()


def _by_person(store: Store) -> Iterator[tuple[str, list[FaceRecord]]]:
    for name, records in groupby(store.export_faces(), key=lambda r: r.name):
        yield name, list(records)


def check_target(source: Store, target: Store, *, merge: bool) -> None:
    """GalleryError when `target` holds people and not `merge`, or embeddings of another
    model pack than `source`'s."""
    if not merge and (target.face_count() or target.people()):
        raise GalleryError(
            f"The destination {target.location!r} is not empty.",
            hint="Add --merge to add this gallery to what it holds.",
        )
    for rid in source.recognizer_ids():
        target.check_pack(rid)


def copy_gallery(
    source: Store,
    target: Store,
    *,
    merge: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CopyReport:
    """Copy `source` into `target`, then verify (see the module docstring).

    `progress(n)` is called after each batch with the faces it handled.

    Raises:
        GalleryError: `target` is not empty and not `merge`; the two hold embeddings of
            different model packs; or the check found a face missing or different.
    """
    check_target(source, target, merge=merge)
    report = CopyReport()
    for name, records in _by_person(source):
        report.people += 1
        with target.transaction():  # one person is copied whole or not at all
            for start in range(0, len(records), BATCH_FACES):
                part = records[start : start + BATCH_FACES]
                for rid, same_pack in groupby(part, key=lambda r: r.recognizer_id):
                    faces = [r.enrol_face() for r in same_pack]
                    result = target.add_faces(name, faces, rid)
                    report.faces_copied += result.added
                    report.faces_already_there += result.duplicates
                if progress is not None:
                    progress(len(part))
    theirs = target.settings()
    for key, value in source.settings().items():
        if merge and key in theirs and theirs[key] != value:
            report.settings_kept.append(key)
            continue
        target.set_setting(key, value)
        report.settings_copied.append(key)
    report.faces_checked = verify_copy(source, target)
    return report


def verify_copy(source: Store, target: Store) -> int:
    """Check that every face of `source` is in `target` (same person name and source_hash)
    with the same embedding and pack; returns how many were checked. GalleryError naming
    the first difference."""
    copied = {(r.name, r.source_hash): _fingerprint(r) for r in target.export_faces(crops=False)}
    checked = 0
    for record in source.export_faces(crops=False):
        found = copied.get((record.name, record.source_hash))
        if found is None:
            raise GalleryError(
                f"The copy is incomplete: a photo of {record.name!r} ({record.source}) is "
                f"missing in {target.location!r}.",
                hint="Run the same command again with --merge to finish it.",
            )
        if found != _fingerprint(record):
            raise GalleryError(
                f"The copy differs: the embedding of {record.name!r} ({record.source}) in "
                f"{target.location!r} is not the one in {source.location!r}.",
                hint="The destination already held that photo with another embedding; "
                "run `face-recognizer reindex` on both, then migrate again.",
            )
        checked += 1
    return checked
