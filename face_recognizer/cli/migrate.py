"""`face-recognizer migrate`: copy a whole gallery between two stores and check the copy."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--from",
    "source",
    required=True,
    metavar="DB",
    help="The gallery to copy: a folder, or a postgresql:// URL.",
)
@click.option(
    "--to",
    "target",
    required=True,
    metavar="DB",
    help="Where to copy it: a folder, or a postgresql:// URL (created when missing).",
)
@click.option("--merge", is_flag=True, help="Add to a destination that already holds people.")
def migrate(source: str, target: str, merge: bool) -> None:
    """Copy every person, face and setting from one gallery to another, then check that each
    face arrived with the same embedding. The source is only read.

    A non-empty destination is refused unless --merge; with --merge, photos a person already
    has there are skipped, and settings the destination has keep its value. An interrupted
    copy keeps whole people: run it again with --merge to finish.

    \b
    Examples:
      face-recognizer migrate --from db --to postgresql://ana:PASS@db.example/faces
      face-recognizer migrate --from postgresql://ana:PASS@db.example/faces --to backup/
      face-recognizer migrate --from old/ --to db --merge
    """
    from face_recognizer.errors import GalleryError
    from face_recognizer.store import open_store, resolve_db
    from face_recognizer.store.copy import check_target, copy_gallery

    ends = [resolve_db(source), resolve_db(target)]
    same = [e.resolve() if isinstance(e, Path) else e for e in ends]
    if same[0] == same[1]:
        raise GalleryError("--from and --to name the same gallery.")
    with open_store(source, create=False) as src:
        total = src.face_count()
        if not total:
            raise GalleryError(f"The gallery {src.location!r} holds no faces; nothing to copy.")
        with open_store(target) as dst:
            check_target(src, dst, merge=merge)
            with click.progressbar(length=total, label="Copying", file=sys.stderr) as bar:
                report = copy_gallery(src, dst, merge=merge, progress=bar.update)
            where = (src.location, dst.location)
    line = f"Copied {report.faces_copied} faces of {report.people} people from {where[0]} to "
    line += f"{where[1]}"
    if report.faces_already_there:
        line += f" ({report.faces_already_there} were there already)"
    click.echo(line + ".")
    if report.settings_copied:
        click.echo(f"Settings copied: {', '.join(sorted(report.settings_copied))}.")
    if report.settings_kept:
        click.echo(
            f"Settings kept as the destination had them: {', '.join(sorted(report.settings_kept))}."
        )
    click.echo(f"Checked: all {report.faces_checked} faces are there with the same embeddings.")
