"""Gallery commands: `people list/remove/rename`, `import DIR`, `reindex`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from face_recognizer.cli.options import (
    SAME_PHOTO_OK,
    SKIPPED_EXIT,
    SKIPPED_HELP,
    EngineOptions,
    count_reasons,
    db_option,
    engine_options,
    enrol_pick_option,
    load_engine,
)
from face_recognizer.errors import GalleryError
from face_recognizer.images import person_folders, photo_tree
from face_recognizer.store import Store, open_store
from face_recognizer.store.base import normalize_name
from face_recognizer.words import plural

if TYPE_CHECKING:
    from face_recognizer.enrol import EnrolReport
    from face_recognizer.quality import Pick


NOT_WIPED = (
    "{} is gone from the gallery, but another program reading it (a running recognize or "
    "serve) keeps the old data in the gallery's files until it closes."
)


def _open(db: str | None) -> Store:
    return open_store(db, create=False)


# -- people -------------------------------------------------------------------------------
@click.group()
def people() -> None:
    """List, show, remove, rename and merge enrolled people.

    \b
    Examples:
      face-recognizer people list
      face-recognizer people rename "Ana" "Ana Lima"
      face-recognizer people remove "Ana Lima" --yes
      face-recognizer people merge "A. Lima" "Ana Lima" --yes
      face-recognizer people show "Ana Lima" --sheet ana.png
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
        question = (
            f"Remove {found.name}, {plural(found.photos, 'photo')} and {plural(seen, 'sighting')}?"
        )
        if not yes and not click.confirm(question):
            click.echo("Nothing removed.")
            return
        removed = gallery.remove_person(found.name)
        wiped = gallery.wiped
    click.echo(f"Removed {found.name} ({plural(removed, 'photo')}, {plural(seen, 'sighting')}).")
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


@people.command("merge")
@click.argument("source", metavar="FROM")
@click.argument("target", metavar="INTO")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@db_option
def merge_people(source: str, target: str, yes: bool, db: str | None) -> None:
    """Fold FROM into INTO: FROM's photos go to INTO and FROM is removed.

    Photos INTO already has (same file content) are dropped.

    \b
    Example:
      face-recognizer people merge "Barack_Obama" "Barack Obama" --yes
    """
    with _open(db) as gallery:
        counts = {p.name: p.photos for p in gallery.people()}
        name = normalize_name(source)
        if not yes and name in counts and normalize_name(target) in counts:
            question = f"Move {plural(counts[name], 'photo')} of {name} to {target.strip()}?"
            if not click.confirm(question):
                click.echo("Nothing merged.")
                return
        moved = gallery.merge_people(source, target)
    click.echo(f"Merged {name} into {target.strip()} ({plural(moved, 'photo')} moved).")


@people.command("show")
@click.argument("name")
@click.option(
    "--sheet",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a contact sheet of the enrolled face crops (.png or .jpg).",
)
@db_option
def show_person(name: str, sheet: Path | None, db: str | None) -> None:
    """List a person's enrolled photos: file, date, quality.

    Quality is the detector's score, the face's size in pixels and its sharpness
    (variance of the Laplacian; higher is sharper).

    \b
    Examples:
      face-recognizer people show "Ana Lima"
      face-recognizer people show "Ana Lima" --sheet ana.png
    """
    from face_recognizer.images import write_image
    from face_recognizer.sightings.groups import contact_sheet

    if sheet is not None and sheet.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise click.BadParameter("must end in .png or .jpg", param_hint="--sheet")
    with _open(db) as gallery:
        photos = gallery.photos_of(name)
    click.echo(f"{normalize_name(name)}: {plural(len(photos), 'photo')}")
    click.echo("  #  ENROLLED          SCORE  FACE PX  SHARPNESS  FILE")
    for n, photo in enumerate(photos, 1):
        click.echo(
            f"{n:>3}  {photo.created:%Y-%m-%d %H:%M}  {photo.det_score:5.2f}  "
            f"{photo.face_px:7.0f}  {photo.blur:9.0f}  {photo.source}"
        )
    if sheet is not None:
        title = f"{normalize_name(name)}: {plural(len(photos), 'photo')}, in the order listed"
        written = write_image(contact_sheet([p.crop for p in photos], title), sheet)
        click.echo(f"Contact sheet: {written}")


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
        text += f" ({count_reasons(skipped)})"
    return text


def name_refused(name: str) -> str | None:
    """Why a folder name cannot be a person's name (a control character, too long), or None."""
    try:
        normalize_name(name)
    except GalleryError as exc:
        return str(exc)
    return None


def printable(text: str) -> str:
    """`text` as is, or quoted with escapes when it holds a control character."""
    return text if text.isprintable() else repr(text)


def skipped_list(skipped: list[tuple[str, str]]) -> str:
    """`Skipped 2:` and one indented `item: why` line each (what a batch command left out)."""
    lines = [f"Skipped {len(skipped)}:"]
    lines += [f"  {printable(item)}: {why}" for item, why in skipped]
    return "\n".join(lines)


class Progress:
    """Import progress wherever the output goes: a bar on a terminal (stderr), else a plain
    line at most every `every` seconds ("120/1351 photos, 14 people, about 38 s left")."""

    def __init__(self, total: int, every: float = 5.0) -> None:
        self.total, self.every = total, every
        self.done = self.people = 0
        self.start = self.last = time.monotonic()
        self.bar = (
            click.progressbar(length=total, label="Importing", file=sys.stderr)
            if sys.stderr.isatty()
            else None
        )

    def photo(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= self.every and self.done < self.total:  # close() says the end
            self.last = now
            click.echo(self.line(now), err=True)

    def line(self, now: float) -> str:
        text = f"{self.done}/{plural(self.total, 'photo')}, {plural(self.people, 'person')}"
        if 0 < self.done < self.total:
            left = (now - self.start) / self.done * (self.total - self.done)
            text += f", about {left:.0f} s left"
        return text

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()
        else:
            click.echo(self.line(time.monotonic()), err=True)


def folder_names(plan: list[tuple[str, list[Path]]], keep: bool) -> list[tuple[str, list[Path]]]:
    """Person names from folder names: underscores become spaces unless `keep`."""
    if keep:
        return plan
    renamed = [(name.replace("_", " ").strip() or name, files) for name, files in plan]
    changed = [(old, new) for (old, _), (new, _) in zip(plan, renamed, strict=True) if old != new]
    if changed:
        old, new = changed[0]
        click.echo(
            f"Underscores in {plural(len(changed), 'folder name')} became spaces "
            f"({old!r} is enrolled as {new!r}); --keep-underscores keeps them.",
            err=True,
        )
    return renamed


@click.command("import", epilog=SKIPPED_HELP)
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--keep-underscores",
    is_flag=True,
    help="Keep underscores in folder names (by default Barack_Obama is enrolled as Barack Obama).",
)
@enrol_pick_option
@SAME_PHOTO_OK
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@db_option
@engine_options
def import_folder(
    folder: Path,
    keep_underscores: bool,
    pick: Pick | None,
    same_photo_ok: bool,
    as_json: bool,
    db: str | None,
    engine_opts: EngineOptions,
) -> None:
    """Enrol a tree of photos: FOLDER/<person name>/<photos>, one folder per person.

    Underscores in folder names become spaces. In a photo of several faces, the face that
    agrees with the person's other photos is enrolled (the line under the person says
    which, and how similar); a photo where no face clearly does is skipped. Photos with no
    face, a face too small, too blurred or turned too far, unreadable files and folders
    whose name cannot be a person's (a control character) are skipped and the rest is
    imported; every skipped item is listed with its reason at the end, then everyone who
    got no photo at all (exit status 3) and those with fewer than 3. Photos already
    enrolled (same file content) are not added again, nor is a photo file already enrolled
    under another person (unless --same-photo-ok); a face nearly identical to another
    person's photo gets a warning. Each person's result is printed as it finishes; progress
    goes to stderr (a bar on a terminal, a line every few seconds otherwise).

    \b
    Examples:
      face-recognizer import ~/photos/team --db ~/faces
      face-recognizer import ~/photos/party --pick largest --json
    """
    from face_recognizer.enrol import RECOMMENDED_PHOTOS, enrol_files

    photo_tree(folder)  # a clear error when FOLDER is no folder or holds no photos at all
    # every person folder, also one without photos: nobody leaves without a word
    plan = folder_names(list(person_folders(folder).items()), keep_underscores)
    engine = load_engine(engine_opts)
    reports: list[EnrolReport] = []
    skipped: list[tuple[str, str]] = []  # (folder or photo, why), listed at the end
    with open_store(db) as gallery:
        gallery.check_pack(engine.pack.recognizer_id)
        progress = Progress(sum(len(files) for _, files in plan))
        try:
            for name, files in plan:
                refused = name_refused(name)
                if refused is not None:  # the rest of the tree goes on
                    where = files[0].parent if files else folder / name
                    skipped.append((f"{where}{os.sep}", refused))
                    for _ in files:
                        progress.photo()
                    progress.people += 1
                    continue
                report = enrol_files(
                    engine,
                    gallery,
                    name,
                    files,
                    pick=pick,
                    on_progress=progress.photo,
                    same_photo_ok=same_photo_ok,
                )
                reports.append(report)
                skipped += report.skipped_photos()
                progress.people += 1
                if as_json:
                    continue
                if progress.bar is not None:
                    click.echo("\r\033[K", nl=False, err=True)  # clear the bar's line first
                for near in report.similar:
                    click.echo(f"Warning: {near.sentence()}", err=True)
                click.echo(person_line(report))
                for photo in report.photos:
                    if photo.faces > 1:
                        click.echo(f"  {Path(photo.source).name}: {photo.describe()}")
        finally:
            progress.close()
    missing = [r for r in reports if r.stored == 0]
    few = [r for r in reports if 0 < r.stored < RECOMMENDED_PHOTOS]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "people": [r.to_json() for r in reports],
                    "added": sum(r.added for r in reports),
                    "skipped": [{"item": item, "why": why} for item, why in skipped],
                    "not_enrolled": [
                        {"name": r.name, "skipped": dict(r.skipped.most_common())} for r in missing
                    ],
                    "fewer_than_recommended": [{"name": r.name, "photos": r.stored} for r in few],
                    "recommended_photos": RECOMMENDED_PHOTOS,
                },
                ensure_ascii=False,
            )
        )
    else:
        used = sum(r.added for r in reports)
        enrolled = sum(1 for r in reports if r.added)
        click.echo(f"Added {plural(used, 'photo')} of {plural(enrolled, 'person')}.")
        if skipped:
            click.echo(skipped_list(skipped))
        for report in missing:
            why = (
                f"no usable photo: {count_reasons(report.skipped)}"
                if report.photos
                else "no photos in the folder"
            )
            click.echo(f"Not enrolled: {report.name} ({why}).")
        if few:
            names = ", ".join(f"{r.name} ({r.stored})" for r in few)
            click.echo(
                f"Fewer than {RECOMMENDED_PHOTOS} photos, recognition will be less sure: {names}."
            )
    if skipped or missing:
        raise click.exceptions.Exit(SKIPPED_EXIT)


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
    click.echo(
        f"Re-embedded {plural(faces, 'face')} of {plural(people_count, 'person')} "
        f"with {engine.pack.name}."
    )
