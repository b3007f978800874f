"""Gallery commands: `people list/remove/rename`, `import DIR`, `reindex`."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from face_recognizer.cli.options import EngineOptions, db_option, engine_options, load_engine
from face_recognizer.errors import FaceRecognizerError, GalleryError, ImageReadError
from face_recognizer.images import file_sha256, person_folders, read_image
from face_recognizer.store.sqlite import (
    EnrolFace,
    Gallery,
    enrol_face,
    normalize_name,
    resolve_db_dir,
)

UNREADABLE = "unreadable file"
REINDEX_BATCH = 64


def _open(db: Path | None) -> Gallery:
    return Gallery(resolve_db_dir(db), create=False)


# -- people -------------------------------------------------------------------------------
@click.group()
def people() -> None:
    """List, remove and rename enrolled people.

    \b
    Examples:
      face-recognizer people list
      face-recognizer people rename "Ana" "Ana Lima"
      face-recognizer people remove "Ana Lima" --yes
    """


@people.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@db_option
def list_people(as_json: bool, db: Path | None) -> None:
    """Show everyone enrolled: name, photos, date enrolled.

    \b
    Examples:
      face-recognizer people list
      face-recognizer people list --json --db ~/faces
    """
    with _open(db) as gallery:
        everyone = gallery.people()
    if as_json:
        rows = [
            {"name": p.name, "photos": p.photos, "created": p.created.isoformat()} for p in everyone
        ]
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not everyone:
        click.echo("No one is enrolled yet.", err=True)
        return
    width = max(len("NAME"), *(len(p.name) for p in everyone))
    click.echo(f"{'NAME':<{width}}  PHOTOS  ENROLLED")
    for p in everyone:
        click.echo(f"{p.name:<{width}}  {p.photos:>6}  {p.created:%Y-%m-%d}")


@people.command("remove")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@db_option
def remove_person(name: str, yes: bool, db: Path | None) -> None:
    """Remove a person with all their photos and embeddings.

    \b
    Example:
      face-recognizer people remove "Ana Lima" --yes
    """
    with _open(db) as gallery:
        found = next((p for p in gallery.people() if p.name == normalize_name(name)), None)
        if found is None:
            gallery.remove_person(name)  # raises the "not in the gallery" error
            return
        if not yes and not click.confirm(f"Remove {found.name} and {found.photos} photo(s)?"):
            click.echo("Nothing removed.")
            return
        removed = gallery.remove_person(found.name)
    click.echo(f"Removed {found.name} ({removed} photos).")


@people.command("rename")
@click.argument("old")
@click.argument("new")
@db_option
def rename_person(old: str, new: str, db: Path | None) -> None:
    """Give an enrolled person another name.

    \b
    Example:
      face-recognizer people rename "Ana" "Ana Lima"
    """
    with _open(db) as gallery:
        gallery.rename_person(old, new)
    click.echo(f"Renamed {old.strip()} to {new.strip()}.")


# -- import -------------------------------------------------------------------------------
@dataclass
class PersonReport:
    """What importing one sub-folder did."""

    name: str
    used: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        text = f"{self.name}: used {self.used}"
        if self.duplicates:
            text += f", already enrolled {self.duplicates}"
        total = sum(self.skipped.values())
        text += f", skipped {total}"
        if total:
            reasons = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common())
            text += f" ({reasons})"
        return text


def import_plan(root: Path) -> list[tuple[str, list[Path]]]:
    """(person name, image files) for each sub-folder of `root`, by name."""
    if not root.is_dir():
        raise FaceRecognizerError(f"{str(root)!r} is not a folder.")
    plan = list(person_folders(root).items())
    if not any(files for _, files in plan):
        raise FaceRecognizerError(
            f"{str(root)!r} holds no photos in sub-folders.",
            hint="Lay it out as DIR/<person name>/<photos>, one folder per person.",
        )
    return plan


def import_person(
    engine: Any,
    gallery: Gallery,
    name: str,
    files: list[Path],
    recognizer_id: str,
    step: Any = None,
) -> PersonReport:
    """Check, embed and store one person's photos (one transaction); `step()` per file."""
    report = PersonReport(name)
    known = gallery.source_hashes(name)
    faces: list[EnrolFace] = []
    for path in files:
        try:
            digest = file_sha256(path)
            if digest in known:
                report.duplicates += 1
                continue
            known.add(digest)
            face, check = enrol_face(engine, read_image(path), str(path), digest)
        except (OSError, ImageReadError):
            report.skipped[UNREADABLE] += 1
            continue
        finally:
            if step is not None:
                step()
        if face is None:
            report.skipped[check.reason or "unusable"] += 1
        else:
            faces.append(face)
    if faces:
        result = gallery.add_faces(name, faces, recognizer_id)
        report.used = result.added
        report.duplicates += result.duplicates
    return report


@click.command("import")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@db_option
@engine_options
def import_folder(folder: Path, db: Path | None, engine_opts: EngineOptions) -> None:
    """Enrol a tree of photos: FOLDER/<person name>/<photos>, one folder per person.

    Photos with no face, several faces, a face too small, too blurred or turned too far
    are skipped, with the reason per person. Photos already enrolled (same file content)
    are not added again.

    \b
    Example:
      face-recognizer import ~/photos/team --db ~/faces
    """
    plan = import_plan(folder)
    engine = load_engine(engine_opts)
    rid = engine.pack.recognizer_id
    reports = []
    with Gallery(resolve_db_dir(db)) as gallery:
        gallery.check_pack(rid)
        total = sum(len(files) for _, files in plan)
        with click.progressbar(length=total, label="Importing", file=sys.stderr) as bar:
            for name, files in plan:
                reports.append(
                    import_person(engine, gallery, name, files, rid, lambda: bar.update(1))
                )
    for report in reports:
        click.echo(report.line())
    used = sum(r.used for r in reports)
    enrolled = sum(1 for r in reports if r.used)
    click.echo(f"Added {used} photos of {enrolled} people.")


# -- reindex ------------------------------------------------------------------------------
def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


@click.command()
@db_option
@engine_options
def reindex(db: Path | None, engine_opts: EngineOptions) -> None:
    """Re-embed every stored face crop with the current model pack.

    Needed after switching --model-pack or --model-dir: a gallery holds the embeddings of
    one pack only. All faces are replaced in one transaction.

    \b
    Example:
      face-recognizer reindex --model-pack buffalo_l
    """
    import cv2

    engine = load_engine(engine_opts)
    rid = engine.pack.recognizer_id
    with _open(db) as gallery:
        stored = gallery.crops()
        if not stored:
            raise GalleryError("The gallery holds no faces to re-embed.")
        size = int(engine.crop_size)
        vectors = []
        with click.progressbar(length=len(stored), label="Re-embedding", file=sys.stderr) as bar:
            for part in _batches(len(stored), REINDEX_BATCH):
                crops = np.stack(
                    [
                        s.crop if s.crop.shape[0] == size else cv2.resize(s.crop, (size, size))
                        for s in stored[part]
                    ]
                )
                vectors.append(engine.embed_crops(crops))
                bar.update(len(crops))
        gallery.replace_embeddings([s.face_id for s in stored], np.concatenate(vectors), rid)
        people_count = len({s.person_id for s in stored})
    click.echo(f"Re-embedded {len(stored)} faces of {people_count} people with {engine.pack.name}.")
