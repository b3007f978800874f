"""`face-recognizer register` (and `python register.py`): enrol one person."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from face_recognizer.cli.options import (
    SAME_PHOTO_OK,
    EngineOptions,
    count_reasons,
    db_option,
    engine_options,
    enrol_pick_option,
    load_engine,
)
from face_recognizer.errors import FaceRecognizerError
from face_recognizer.words import plural

if TYPE_CHECKING:
    from face_recognizer.quality import Pick


def summary_line(name: str, added: int, stored_before: int, skipped: Counter[str]) -> str:
    """`Registered Ana: 6 photos (1 skipped: several faces)`, or `Added ... to Ana` when the
    person already had photos."""
    if stored_before:
        line = f"Added {plural(added, 'photo')} to {name}, who now has {stored_before + added}"
    else:
        line = f"Registered {name}: {plural(added, 'photo')}"
    total = sum(skipped.values())
    if total:
        reasons = skipped.most_common()
        detail = reasons[0][0] if len(reasons) == 1 else count_reasons(skipped)
        line += f" ({total} skipped: {detail})"
    return line


@click.command()
@click.option(
    "-n", "--name", required=True, help="The person's name; an existing one gets more photos."
)
@click.option(
    "--source",
    default=None,
    metavar="SRC",
    help="Camera index (default 0), video file or stream URL for the live window.",
)
@click.option(
    "--images",
    "from_images",
    is_flag=True,
    help="Register from the photo files and folders given after it, without a window.",
)
@click.option(
    "--liveness",
    is_flag=True,
    help="Refuse snaps until the face in view passes a liveness challenge (blink, turn the "
    "head left and right, in a random order) within 20 s; photos are then taken of that face.",
)
@click.option(
    "--challenge",
    "challenge_steps",
    default=None,
    metavar="STEPS",
    help="With --liveness: the steps to ask for, comma-separated, in this order "
    "(blink, left, right; default all three in a random order).",
)
@click.option(
    "--auto",
    is_flag=True,
    help="Guided: ask for 5 poses in turn (straight, a little left, right, up, down) and take "
    "each by itself when the face is sharp, big enough and in the pose; S still snaps by hand. "
    "With --liveness the challenge comes first.",
)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH]...")
@enrol_pick_option
@SAME_PHOTO_OK
@db_option
@engine_options
def register(
    name: str,
    source: str | None,
    from_images: bool,
    paths: tuple[Path, ...],
    auto: bool,
    pick: Pick | None,
    same_photo_ok: bool,
    db: str | None,
    engine_opts: EngineOptions,
    liveness: bool,
    challenge_steps: str | None,
) -> None:
    """Enrol a person from the camera or from photos.

    The window boxes the face green when the picture is usable and red with the reason
    otherwise. S takes a photo, Q (or closing the window) stores the photos taken, Esc
    cancels. With --auto the window asks for a few poses in turn and takes each by itself
    when the face shows it, so that the person is enrolled from the angles a door camera
    sees. With --images every file gets a line saying `ok` or why it cannot be used;
    in a photo of several faces, the face that agrees with the person's other photos is
    taken (the line says which) and a photo where none clearly does is skipped.

    \b
    Examples:
      face-recognizer register -n Ana                      # camera 0: S snap, Q finish
      face-recognizer register -n Ana --source clip.mp4    # a video file plays once
      face-recognizer register -n Ana --auto               # asks for 5 poses, snaps itself
      face-recognizer register -n Ana --images ana.jpg photos_of_ana/
      face-recognizer register -n Ana --liveness           # blink and turn before S counts
    """
    from face_recognizer.store import resolve_db
    from face_recognizer.store.base import normalize_name

    if paths and not from_images:
        raise click.UsageError(
            f"Unexpected argument {str(paths[0])!r}: quote a name with spaces "
            '(-n "Ana Lima"), or put --images in front of photo paths.'
        )
    if from_images and not paths:
        raise click.UsageError("--images needs at least one photo file or folder after it.")
    if from_images and source is not None:
        raise click.UsageError("Use either --images or --source, not both.")
    if from_images and auto:
        raise click.UsageError("--auto guides the live window: use it without --images.")
    if from_images and liveness:
        raise click.UsageError("--liveness needs a camera or a video: photos cannot blink.")
    steps = parse_steps(challenge_steps) if challenge_steps is not None else None
    if steps is not None and not liveness:
        raise click.UsageError("--challenge goes with --liveness.")
    if pick is not None and not from_images:
        raise click.UsageError("--pick chooses a face in photos: use it with --images.")
    name = normalize_name(name)
    db_dir = resolve_db(db)
    if from_images:
        _register_images(name, paths, db_dir, engine_opts, pick, same_photo_ok)
    else:
        _register_live(name, source or "0", db_dir, engine_opts, liveness, steps, auto)


def _register_images(
    name: str,
    paths: tuple[Path, ...],
    db_dir: str | Path,
    engine_opts: EngineOptions,
    pick: Pick | None = None,
    same_photo_ok: bool = False,
) -> None:
    from face_recognizer.enrol import TAKEN, enrol_files
    from face_recognizer.register import GalleryAt, existing_photos, image_paths

    files = image_paths(paths)
    if not files:
        raise FaceRecognizerError("The folders given hold no image files (.jpg, .png, ...).")
    engine = load_engine(engine_opts)
    stored_before = existing_photos(db_dir, name, engine.pack.recognizer_id)

    report = enrol_files(
        engine, GalleryAt(db_dir), name, files, pick=pick, same_photo_ok=same_photo_ok
    )
    for result in report.photos:
        click.echo(f"{result.source}: {result.describe()}")
    for near in report.similar:
        click.echo(f"Warning: {near.sentence()}", err=True)
    taken = [p for p in report.photos if (p.reason or "").startswith(TAKEN)]
    if taken and not report.added and not report.duplicates:
        raise FaceRecognizerError(
            f"{taken[0].source} is {taken[0].reason}; nothing was stored for {name}.",
            hint="One photo file belongs to one person: add --same-photo-ok to enrol it anyway.",
        )
    if not report.added and not report.duplicates:
        what = "The photo has no" if len(files) == 1 else f"None of the {len(files)} photos has a"
        raise FaceRecognizerError(f"{what} usable face; nothing was stored.")
    skipped = report.skipped
    if report.duplicates:
        skipped["already stored"] += report.duplicates
    click.echo(summary_line(name, report.added, stored_before, skipped))


def parse_steps(text: str) -> list[str]:
    """`--challenge blink,left` -> ["blink", "left"], or a usage error naming the bad step."""
    from face_recognizer.analysers.challenge import STEPS

    steps = [s.strip().lower() for s in text.split(",") if s.strip()]
    bad = [s for s in steps if s not in STEPS]
    if bad or not steps:
        raise click.BadParameter(
            f"{', '.join(bad) or 'nothing'} is not a step; use some of {', '.join(STEPS)}",
            param_hint="--challenge",
        )
    return steps


def _register_live(
    name: str,
    spec: str,
    db_dir: str | Path,
    engine_opts: EngineOptions,
    liveness: bool = False,
    steps: list[str] | None = None,
    auto: bool = False,
) -> None:
    from face_recognizer.guide import Guide
    from face_recognizer.register import (
        KEYS,
        LiveSession,
        existing_photos,
        source_label,
    )
    from face_recognizer.sources import open_source
    from face_recognizer.window import Window, require_screen, window_title

    require_screen(hint="Register from photos instead: --images PATH...")
    with open_source(spec) as frames:
        if frames.is_stills:
            raise FaceRecognizerError(
                f"{spec!r} is a photo or a folder, not a camera or a video.",
                hint=f"Use --images {spec} to register from photos.",
            )
        engine = load_engine(engine_opts)
        stored_before = existing_photos(db_dir, name, engine.pack.recognizer_id)
        if stored_before:
            click.echo(
                f"{name} is already registered with {plural(stored_before, 'photo')}; "
                "new photos will be added.",
                err=True,
            )
        challenge = None
        if liveness:
            from face_recognizer.analysers.challenge import Challenge, ChallengeSession

            engine.load_landmarks_106()
            challenge = ChallengeSession(engine.landmarks_106, Challenge(steps))
        with Window(window_title("register", name), KEYS) as window:
            session = LiveSession(
                engine,
                name,
                frames,
                window,
                source_label(spec),
                stored_before,
                challenge,
                Guide() if auto else None,
            )
            outcome = session.run()
    if outcome.cancelled:
        click.echo(f"Cancelled: nothing was stored for {name}.", err=True)
        raise click.exceptions.Exit(1)
    if outcome.source_error:
        click.echo(outcome.source_error, err=True)
    skipped = Counter(dict(outcome.refused))
    if not outcome.snaps:
        raise FaceRecognizerError(
            f"No photo of {name} was taken; nothing was stored.",
            hint="Press S while the face box is green.",
        )
    from face_recognizer.enrol import embed_faces
    from face_recognizer.register import GalleryAt

    faces = embed_faces(engine, outcome.snaps)
    added = GalleryAt(db_dir).add_faces(name, faces, engine.pack.recognizer_id)
    if added.duplicates:
        skipped["already stored"] += added.duplicates
    click.echo(summary_line(name, added.added, stored_before, skipped))
