"""Gallery commands: `people list/remove/rename`, `import DIR`, `reindex`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from face_recognizer.cli.options import (
    SAME_PHOTO_OK,
    EngineOptions,
    db_option,
    engine_options,
    load_engine,
)
from face_recognizer.images import photo_tree
from face_recognizer.store import Store, open_store
from face_recognizer.store.base import normalize_name

if TYPE_CHECKING:
    from face_recognizer.enrol import EnrolReport


NOT_WIPED = (
    "{} is gone from the gallery, but another program reading it (a running recognize or "
    "serve) keeps the old data in the gallery's files until it closes."
)


def _open(db: str | None) -> Store:
    return open_store(db, create=False)


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
def list_people(as_json: bool, db: str | None) -> None:
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
def remove_person(name: str, yes: bool, db: str | None) -> None:
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
        seen = len(gallery.sightings(name=found.name))  # they go too (with their crops)
        if not yes and not click.confirm(
            f"Remove {found.name}, {found.photos} photo(s) and {seen} sighting(s)?"
        ):
            click.echo("Nothing removed.")
            return
        removed = gallery.remove_person(found.name)
        wiped = gallery.wiped
    click.echo(f"Removed {found.name} ({removed} photos, {seen} sightings).")
    if not wiped:
        click.echo(NOT_WIPED.format(found.name), err=True)


@people.command("rename")
@click.argument("old")
@click.argument("new")
@db_option
def rename_person(old: str, new: str, db: str | None) -> None:
    """Give an enrolled person another name.

    \b
    Example:
      face-recognizer people rename "Ana" "Ana Lima"
    """
    with _open(db) as gallery:
        gallery.rename_person(old, new)
        wiped = gallery.wiped
    click.echo(f"Renamed {old.strip()} to {new.strip()}.")
    if not wiped:
        click.echo(NOT_WIPED.format(old.strip()), err=True)


# -- import -------------------------------------------------------------------------------
def person_line(report: EnrolReport) -> str:
    """`Ana: used 5, already enrolled 1, skipped 2 (1 no face, 1 unreadable)`."""
    text = f"{report.name}: used {report.added}"
    if report.duplicates:
        text += f", already enrolled {report.duplicates}"
    skipped = report.skipped
    total = sum(skipped.values())
    text += f", skipped {total}"
    if total:
        reasons = ", ".join(f"{n} {why}" for why, n in skipped.most_common())
        text += f" ({reasons})"
    return text


@click.command("import")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@SAME_PHOTO_OK
@db_option
@engine_options
def import_folder(
    folder: Path, same_photo_ok: bool, db: str | None, engine_opts: EngineOptions
) -> None:
    """Enrol a tree of photos: FOLDER/<person name>/<photos>, one folder per person.

    Photos with no face, several faces, a face too small, too blurred or turned too far
    are skipped, with the reason per person. Photos already enrolled (same file content)
    are not added again, nor is a photo file already enrolled under another person (unless
    --same-photo-ok); a face nearly identical to another person's photo gets a warning.

    \b
    Example:
      face-recognizer import ~/photos/team --db ~/faces
    """
    from face_recognizer.enrol import enrol_tree

    plan = list(photo_tree(folder).items())
    engine = load_engine(engine_opts)
    with open_store(db) as gallery:
        gallery.check_pack(engine.pack.recognizer_id)
        total = sum(len(files) for _, files in plan)
        with click.progressbar(length=total, label="Importing", file=sys.stderr) as bar:
            reports = enrol_tree(
                engine,
                gallery,
                plan,
                on_photo=lambda _: bar.update(1),
                same_photo_ok=same_photo_ok,
            )
    for report in reports:
        for near in report.similar:
            click.echo(f"Warning: {near.sentence()}", err=True)
        click.echo(person_line(report))
    used = sum(r.added for r in reports)
    enrolled = sum(1 for r in reports if r.added)
    click.echo(f"Added {used} photos of {enrolled} people.")


# -- reindex ------------------------------------------------------------------------------
@click.command()
@db_option
@engine_options
def reindex(db: str | None, engine_opts: EngineOptions) -> None:
    """Re-embed every stored face crop with the current model pack.

    Needed after switching --model-pack or --model-dir: a gallery holds the embeddings of
    one pack only. All faces are replaced in one transaction.

    \b
    Example:
      face-recognizer reindex --model-pack buffalo_l
    """
    from face_recognizer.enrol import reembed

    engine = load_engine(engine_opts)
    with _open(db) as gallery:
        total = gallery.face_count()
        with click.progressbar(length=total, label="Re-embedding", file=sys.stderr) as bar:
            faces, people_count = reembed(engine, gallery, on_progress=bar.update)
    click.echo(f"Re-embedded {faces} faces of {people_count} people with {engine.pack.name}.")
