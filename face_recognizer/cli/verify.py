"""Command `verify`: same person in two photos, or one person watched for live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from face_recognizer.cli.options import (
    EngineOptions,
    db_option,
    engine_options,
    load_engine,
    threshold_option,
)
from face_recognizer.cli.register import parse_steps

if TYPE_CHECKING:
    import numpy as np

    from face_recognizer.engine import Engine
    from face_recognizer.sources import FrameSource
    from face_recognizer.types import FrameResult, Track

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
@click.option(
    "--liveness",
    is_flag=True,
    help="Live mode: a face is 'same' only once it passed a liveness challenge (blink, turn "
    "the head left and right, in a random order, within 20 s).",
)
@click.option(
    "--challenge",
    "challenge_steps",
    default=None,
    metavar="STEPS",
    help="With --liveness: the steps, comma-separated (blink, left, right).",
)
@click.option(
    "--landmarks", is_flag=True, help="Live mode: draw the five face landmarks (L toggles)."
)
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
    landmarks: bool,
    db: str | None,
    engine_opts: EngineOptions,
    liveness: bool,
    challenge_steps: str | None,
) -> None:
    """Say whether two photos show the same person, or watch a camera for one person.

    \b
    Examples:
      face-recognizer verify ana1.jpg ana2.jpg
      face-recognizer verify group.jpg ana.jpg --pick largest --json
      face-recognizer verify --reference ana.jpg --source 0   # Q quits, S saves a snapshot
      face-recognizer verify --reference ana.jpg --liveness   # blink and turn to be 'same'
    """
    from face_recognizer.verify import resolve_threshold

    if reference is None and len(photos) != 2:
        raise click.UsageError("Give two photos, or --reference PHOTO for the live mode.")
    if reference is not None and photos:
        raise click.UsageError("Give either two photos or --reference, not both.")
    if (liveness or challenge_steps) and reference is None:
        raise click.UsageError("--liveness goes with --reference: photos cannot blink.")
    if challenge_steps is not None and not liveness:
        raise click.UsageError("--challenge goes with --liveness.")
    steps = parse_steps(challenge_steps) if challenge_steps is not None else None
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
    _verify_live(
        engine, reference, source, pick, value, as_json, no_window, liveness, steps, landmarks
    )


def _verify_live(
    engine: Engine,
    reference: Path,
    source: str,
    pick: str,
    threshold: float,
    as_json: bool,
    no_window: bool,
    liveness: bool = False,
    steps: list[str] | None = None,
    landmarks: bool = False,
) -> None:
    """`verify --reference`: the live loop of `recognize` with a `Verifier` step."""
    from face_recognizer.draw import KNOWN, NOTICE
    from face_recognizer.images import read_image
    from face_recognizer.live import (
        CallbackSink,
        Labeler,
        Step,
        Verifier,
        View,
        annotate,
        run,
        verdict_label,
    )
    from face_recognizer.sources import open_source
    from face_recognizer.verify import reference_face
    from face_recognizer.window import LIVE_KEYS, Window, source_title, window_title

    ref = reference_face(engine, read_image(reference), pick=pick, label=reference.name)  # type: ignore[arg-type]
    step: Step = Verifier(engine, ref.embedding, threshold, reference.name)
    label: Labeler = verdict_label
    checked = None
    if liveness:
        from face_recognizer.analysers.challenge import Challenge, prompt_text
        from face_recognizer.analysers.step import LivenessStep, liveness_label
        from face_recognizer.draw import draw_note

        engine.load_landmarks_106()
        checked = LivenessStep(
            step, engine.landmarks_106, require_live=True, challenge=Challenge(steps)
        )
        step, label = checked, liveness_label(verdict_label)
    status = f"reference {reference.name} | threshold {threshold:.2f} | {engine.device.label}"

    def emit(result: FrameResult) -> None:
        if as_json:
            payload = result.to_json()
            faces = [
                {
                    "box": face["box"],
                    "similarity": face["similarity"],
                    "same_person": bool(face["name"]),
                    **({"live": track.data.get("live")} if liveness else {}),
                }
                for face, track in zip(payload["faces"], result.faces, strict=True)
            ]
            where = source if result.source is None else result.source
            click.echo(json.dumps({"frame": result.index, "source": where, "faces": faces}))
        elif no_window:
            text = ", ".join(_verdict(f) for f in result.faces)
            click.echo(f"frame {result.index}: {text or 'no face'}")

    def draw(image: np.ndarray, result: FrameResult, view: View) -> None:
        annotate(
            image, result, landmarks=view.landmarks, label=label,
            reserved_top=view.reserved_top, reserved_bottom=view.reserved_bottom,
        )  # fmt: skip
        if checked is not None and checked.challenge_state is not None:
            state = checked.challenge_state
            draw_note(image, prompt_text(state), KNOWN if state.passed else NOTICE)

    title = window_title("verify", f"{reference.name} in {source_title(source)}")
    window = None if no_window else Window(title, LIVE_KEYS)
    try:
        with open_source(source) as frames:
            report = run(
                frames,
                step,
                sinks=[CallbackSink(on_result=emit)],
                annotator=draw,
                status=lambda fps, result, src: _verify_status(status, fps, result, src),
                window=window,
                landmarks=landmarks,
                snapshot_prefix="verify-snapshot",
            )
    finally:
        if window is not None:
            window.close()
    for path in report.snapshots:
        click.echo(f"Snapshot: {path}", err=True)


def _verdict(face: Track) -> str:
    """A live-mode face in words ("same 0.61", "different 0.12"); a face that matches but has
    not passed the liveness challenge yet (its name withheld) is "not live 0.49"."""
    from face_recognizer.live import verdict_label
    from face_recognizer.words import similarity_text

    if face.data.get("withheld"):
        return f"not live {similarity_text(face.similarity)}"
    return verdict_label(face)[0]


def _verify_status(fixed: str, fps: float, result: FrameResult, source: FrameSource) -> str:
    """`verify --reference`'s status line: FPS (stills: the file and "k of n"), faces, the
    reference, threshold and device."""
    from face_recognizer.live import still_text
    from face_recognizer.words import plural

    where = still_text(result, source) if source.is_stills else f"{fps:.1f} FPS" if fps else ""
    return " | ".join(part for part in (where, plural(len(result.faces), "face"), fixed) if part)
