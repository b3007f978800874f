"""Command `verify`: same person in two photos, or one person watched for live."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from face_recognizer.cli.options import (
    EngineOptions,
    db_option,
    engine_options,
    load_engine,
    threshold_option,
)

if TYPE_CHECKING:
    import numpy as np

    from face_recognizer.types import Faces, Verification

_PICK = click.Choice(["only", "largest"])


@click.command()
@click.argument("photos", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    default=None,
    help="Live mode: compare every face of --source with the face in this photo.",
)
@click.option(
    "--source", default="0", show_default=True, help="Live mode: camera index, video, URL."
)
@click.option(
    "--pick",
    type=_PICK,
    default="only",
    show_default=True,
    help="With several faces in a photo: 'only' refuses, 'largest' takes the largest.",
)
@threshold_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per frame live).")
@click.option("--no-window", is_flag=True, help="Live mode: no window (print results instead).")
@db_option
@engine_options
def verify(
    photos: tuple[Path, ...],
    reference: Path | None,
    source: str,
    pick: str,
    threshold: float | None,
    as_json: bool,
    no_window: bool,
    db: Path | None,
    engine_opts: EngineOptions,
) -> None:
    """Say whether two photos show the same person, or watch a camera for one person.

    \b
    Examples:
      face-recognizer verify ana1.jpg ana2.jpg
      face-recognizer verify group.jpg ana.jpg --pick largest --json
      face-recognizer verify --reference ana.jpg --source 0   # Q quits, S saves a snapshot
    """
    from face_recognizer.verify import resolve_threshold

    if reference is None and len(photos) != 2:
        raise click.UsageError("Give two photos, or --reference PHOTO for the live mode.")
    if reference is not None and photos:
        raise click.UsageError("Give either two photos or --reference, not both.")
    value, _ = resolve_threshold(threshold, db)
    engine = load_engine(engine_opts)
    if reference is None:
        from face_recognizer.verify import verify_photos

        result = verify_photos(engine, photos[0], photos[1], value, pick)  # type: ignore[arg-type]
        if as_json:
            click.echo(json.dumps(result.to_json()))
        else:
            verdict = "same person" if result.same_person else "different people"
            click.echo(f"similarity {result.similarity:.3f}: {verdict} (threshold {value:.3f})")
        return
    _verify_live(engine, reference, source, pick, value, as_json, no_window)


def _verify_live(
    engine: Any,
    reference: Path,
    source: str,
    pick: str,
    threshold: float,
    as_json: bool,
    no_window: bool,
) -> None:
    from face_recognizer.images import read_image
    from face_recognizer.sources import open_source
    from face_recognizer.verify import reference_face, verify_faces
    from face_recognizer.window import CLOSE, LIVE_KEYS, QUIT, Viewer, Window

    ref = reference_face(engine, read_image(reference), pick=pick, label=reference.name)  # type: ignore[arg-type]
    status = (
        f"reference {reference.name} | threshold {threshold:.2f} | Q quit, S snapshot, L landmarks"
    )
    window = None if no_window else Window(f"face-recognizer verify: {reference.name}", LIVE_KEYS)
    viewer = None
    if window is not None:
        viewer = Viewer(window, landmarks=True, prefix="verify-snapshot")
    try:
        with open_source(source) as frames:
            for frame in frames:
                faces = engine.analyze(frame.image)
                results = verify_faces(faces, ref.embedding, threshold)
                if as_json:
                    faces_json = [
                        {
                            "box": [round(float(v)) for v in box],
                            "similarity": round(r.similarity, 4),
                            "same_person": r.same_person,
                        }
                        for box, r in zip(faces.xyxy, results, strict=True)
                    ]
                    click.echo(json.dumps({"frame": frame.index, "faces": faces_json}))
                elif viewer is None:
                    text = ", ".join(
                        f"{'same person' if r.same_person else 'different'} {r.similarity:.2f}"
                        for r in results
                    )
                    click.echo(f"frame {frame.index}: {text or 'no face'}")
                if viewer is None:
                    continue
                draw = functools.partial(_draw_verdicts, frame.image, faces, results, status)
                image = draw(viewer.landmarks)
                if viewer.present(image, draw, still=frames.is_stills) in (QUIT, CLOSE):
                    break
    finally:
        if window is not None:
            window.close()
    for path in viewer.snapshots if viewer is not None else ():
        click.echo(f"Snapshot: {path}", err=True)


def _draw_verdicts(
    image: np.ndarray,
    faces: Faces,
    results: list[Verification],
    status: str,
    landmarks: bool,
) -> np.ndarray:
    """A copy of `image` with each face boxed green (same person) or red, and a status line."""
    from face_recognizer.draw import COLORS, draw_box, draw_status

    drawn: np.ndarray = image.copy()
    for box, points, r in zip(faces.xyxy, faces.landmarks, results, strict=True):
        color = COLORS["known"] if r.same_person else COLORS["unknown"]
        label = f"{'same' if r.same_person else 'different'} {r.similarity:.2f}"
        draw_box(drawn, box, label, color, landmarks=points if landmarks else None)
    draw_status(drawn, status)
    return drawn
