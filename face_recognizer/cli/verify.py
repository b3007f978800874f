"""Commands `verify` (same person?) and `evaluate` (accuracy on labelled photos)."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from face_recognizer.cli.options import EngineOptions, db_option, engine_options, load_engine

if TYPE_CHECKING:
    import numpy as np

    from face_recognizer.types import Faces, Verification

_PICK = click.Choice(["only", "largest"])


def _threshold_option(func: Any) -> Any:
    return click.option(
        "--threshold",
        type=click.FloatRange(-1.0, 1.0),
        default=None,
        help="Similarity needed for 'same person' (default: the gallery's setting, else the "
        "built-in one).",
    )(func)


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
@_threshold_option
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

    drawn = image.copy()
    for box, points, r in zip(faces.xyxy, faces.landmarks, results, strict=True):
        color = COLORS["known"] if r.same_person else COLORS["unknown"]
        label = f"{'same' if r.same_person else 'different'} {r.similarity:.2f}"
        draw_box(drawn, box, label, color, landmarks=points if landmarks else None)
    draw_status(drawn, status)
    return drawn


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--unknowns",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of people who are never enrolled (DIR2/<person>/<photos>): the strangers.",
)
@click.option(
    "--enrol",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Enrol the first K photos (by file name) of each person; probe the rest.",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder to write ROC.png, histograms.png and summary.md into.",
)
@_threshold_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option(
    "--apply", is_flag=True, help="Store the suggested threshold in the --db gallery's settings."
)
@db_option
@engine_options
def evaluate(
    folder: Path,
    unknowns: Path | None,
    enrol: int,
    report: Path | None,
    threshold: float | None,
    as_json: bool,
    apply: bool,
    db: Path | None,
    engine_opts: EngineOptions,
) -> None:
    """Measure accuracy on your own labelled photos and suggest a threshold.

    FOLDER holds one sub-folder of photos per person. The first K photos of each are
    enrolled into a temporary gallery (never yours), the rest are probes; --unknowns
    people are strangers. Prints rank-1 accuracy, open-set identification at FAR
    10/1/0.1%, pair TPR at fixed FPRs with ROC-AUC, the result at the current and the
    suggested threshold, and majority vote vs nearest neighbour vs mean template.

    \b
    Examples:
      face-recognizer evaluate photos/ --unknowns strangers/ --report out/
      face-recognizer evaluate photos/ --enrol 5 --json
      face-recognizer evaluate photos/ --unknowns strangers/ --apply   # recognize uses it
    """
    from face_recognizer.evaluation.evaluate import evaluate as run_evaluation
    from face_recognizer.evaluation.evaluate import (
        report_json,
        split_dataset,
        summary_markdown,
        write_report,
    )
    from face_recognizer.verify import resolve_threshold

    split = split_dataset(folder, enrol, unknowns)
    current, origin = resolve_threshold(threshold, db)
    engine = load_engine(engine_opts)
    total = len(split.enrol) + len(split.probes) + len(split.strangers)
    with click.progressbar(
        length=total, label="Embedding photos", file=sys.stderr, show_pos=True
    ) as bar:
        result = run_evaluation(engine, split, current, on_progress=bar.update)
    title = f"evaluate {folder.name}" + (f" + {unknowns.name}" if unknowns else "")
    if as_json:
        payload = report_json(result)
        payload["threshold_origin"] = origin
        click.echo(json.dumps(payload))
    else:
        click.echo(summary_markdown(result, title))
    if report is not None:
        for path in write_report(result, report, title):
            click.echo(f"Wrote {path}", err=True)
    if apply:
        _apply_threshold(db, result.suggested.threshold)


def _apply_threshold(db: Path | None, value: float) -> None:
    from face_recognizer.matcher import THRESHOLD_SETTING
    from face_recognizer.store.sqlite import Gallery, resolve_db_dir

    db_dir = resolve_db_dir(db)
    with Gallery(db_dir) as gallery:
        gallery.set_setting(THRESHOLD_SETTING, f"{value:.3f}")
    click.echo(f"Stored threshold {value:.3f} in the gallery {db_dir}", err=True)
