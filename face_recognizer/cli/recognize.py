"""`face-recognizer recognize` (the live window) and `face-recognizer demo` (no camera needed)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import click

from face_recognizer.cli.options import (
    SIMILARITY,
    EngineOptions,
    db_option,
    engine_options,
    load_engine,
)
from face_recognizer.errors import FaceRecognizerError
from face_recognizer.types import FrameResult
from face_recognizer.words import plural

_EMPTY_HINT = (
    "The gallery {db!r} is empty, so everyone shows as Unknown; register someone with "
    "`face-recognizer register -n NAME` (or `face-recognizer import FOLDER`)."
)


@click.command()
@click.option(
    "--source",
    default="0",
    show_default=True,
    metavar="SRC",
    help="Camera index, video file, rtsp:// or http(s):// URL, image file or folder of images.",
)
@db_option
@engine_options
@click.option(
    "--threshold",
    type=SIMILARITY,
    default=None,
    help="Minimum similarity of a voting neighbour (default: the gallery's, else calibrated).",
)
@click.option(
    "--k", type=click.IntRange(min=1), default=5, show_default=True, help="Neighbours that vote."
)
@click.option("--no-window", is_flag=True, help="Do not open a window (use with --json/--output).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per frame on stdout (and nothing else there).",
)
@click.option(
    "--csv",
    "as_csv",
    is_flag=True,
    help="Print one CSV row per face on stdout: file, frame, name (empty for a stranger), "
    "similarity, box x1 y1 x2 y2; a header row first. Implies --no-window.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the annotated frames to a .mp4, .avi or .gif file.",
)
@click.option("--landmarks", is_flag=True, help="Draw the five face landmarks (L toggles).")
@click.option(
    "--show-match",
    is_flag=True,
    help="Show the enrolled photo each named face matched best, in its name tab (M toggles).",
)
@click.option(
    "--no-log", is_flag=True, help="Do not store sightings (who was seen when) in the gallery."
)
@click.option(
    "--auto-enrol",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help='Label a stranger seen in N sightings "Visitor <group id>" from then on.',
)
@click.option(
    "--liveness",
    is_flag=True,
    help="Judge every tracked face live once it blinks: labels and --json say live / not yet "
    '/ photo? ("live": true, null, false).',
)
@click.option(
    "--require-live",
    is_flag=True,
    help="Name only live faces; others show as 'Unknown (not live)' (implies --liveness).",
)
def recognize(
    source: str,
    db: str | None,
    engine_opts: EngineOptions,
    threshold: float | None,
    k: int,
    no_window: bool,
    as_json: bool,
    as_csv: bool,
    output: Path | None,
    landmarks: bool,
    show_match: bool,
    no_log: bool,
    auto_enrol: int | None,
    liveness: bool,
    require_live: bool,
) -> None:
    """Show every face with its name, or Unknown, live.

    Keys (shown along the window's bottom): Q or Esc quit, S saves a snapshot PNG, L toggles
    landmarks, M the matched enrolled photos, F plays a video as fast as possible. Closing
    the window quits. Still images (a file or a folder) wait for a key each; a video that
    ends keeps its last frame until a key.

    Every face followed becomes one sighting in the gallery when its track ends (see
    `face-recognizer sightings`); a still photo logs one per face. --no-log turns it off.

    \b
    Examples:
      face-recognizer recognize                          # camera 0
      face-recognizer recognize --source clip.mp4 --no-window --json > labels.jsonl
      face-recognizer recognize --source photos/ --output labelled.gif --no-window
      face-recognizer recognize --source photos/ --csv > faces.csv   # one row per face
      face-recognizer recognize --auto-enrol 3           # "Visitor 7" after 3 sightings
      face-recognizer recognize --require-live           # a door: names only for live faces
      face-recognizer recognize --show-match             # the matched photo by each name
    """
    from face_recognizer.live import (
        KEYS,
        LIVENESS_LEVERS,
        CallbackSink,
        Labeler,
        MatchedPhotos,
        Recognizer,
        Sink,
        Step,
        VideoOutput,
        name_annotator,
        name_label,
        recognizer_status,
        run,
    )
    from face_recognizer.matcher import Matcher
    from face_recognizer.sources import open_source
    from face_recognizer.store import open_store
    from face_recognizer.window import Window, require_screen, source_title, window_title

    if output is not None and output.suffix.lower() not in VideoOutput.SUFFIXES:
        raise click.BadParameter("must end in .mp4, .avi or .gif", param_hint="--output")
    if as_csv and as_json:
        raise click.UsageError("--csv and --json both print on stdout: choose one.")
    no_window = no_window or as_csv
    if auto_enrol is not None and no_log:
        raise click.UsageError("--auto-enrol needs the sightings that --no-log turns off.")
    if not no_window:
        require_screen()
    # the source first: a camera or file that fails leaves no new gallery behind, and a
    # video's first frames decode while the models load
    with contextlib.ExitStack() as stack:
        frames = stack.enter_context(open_source(source))
        engine = load_engine(engine_opts)
        gallery = stack.enter_context(open_store(db))
        matcher = Matcher(
            gallery,
            engine.pack.recognizer_id,
            k=k,
            threshold=threshold,
            on_connection=lambda message: click.echo(message, err=True),  # lost / back
        )
        liveness = liveness or require_live
        # the eyes need a real detection on every frame: no predicted frames, no region mosaics
        levers = LIVENESS_LEVERS if liveness else None
        recognizer = Recognizer(engine, matcher, levers=levers)
        label: Labeler = name_label
        if matcher.people_count == 0:
            click.echo(_EMPTY_HINT.format(db=gallery.location), err=True)
        writer = VideoOutput(output, frames.fps) if output is not None else None
        title = window_title("recognize", source_title(source))
        window = None if no_window else Window(title, KEYS)

        def emit(result: FrameResult) -> None:
            payload = json_object(result, frames.spec)
            if liveness:
                for face_json, face in zip(payload["faces"], result.faces, strict=True):
                    face_json["live"] = face.data.get("live")
            sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
            sys.stdout.flush()

        sinks: list[Sink] = []
        if as_json:
            sinks.append(CallbackSink(on_result=emit))
        if as_csv:
            sinks.append(CallbackSink(on_result=csv_writer(sys.stdout, frames.spec)))
        if writer is not None:
            sinks.append(writer)
        step: Step = recognizer
        log = None
        if not no_log:
            log, step, log_sink = _sightings_log(db, frames, recognizer, auto_enrol)
            sinks.append(log_sink)
        if liveness:
            from face_recognizer.analysers.step import LivenessStep, liveness_label

            engine.load_landmarks_106()
            step = LivenessStep(step, engine.landmarks_106, require_live=require_live)
            label = liveness_label(name_label)
        try:
            report = run(
                frames,
                step,
                sinks=sinks,
                annotator=name_annotator(MatchedPhotos(engine, gallery.photos_of), label),
                status=recognizer_status(recognizer, engine.device.label),
                window=window,
                keys=KEYS,
                landmarks=landmarks,
                show_match=show_match,
            )
        finally:
            if window is not None:
                window.close()
    fps = report.frames / report.seconds if report.seconds > 0 else 0.0
    line = (
        f"{plural(report.frames, 'frame')} in {report.seconds:.1f} s ({fps:.1f} FPS), "
        f"{plural(report.embedded, 'face')} embedded"
    )
    if frames.is_live:
        line += f", {plural(report.dropped, 'frame')} dropped"
    click.echo(line, err=True)
    for path in report.snapshots:
        click.echo(f"Snapshot: {path}", err=True)
    if output is not None:
        click.echo(f"Wrote {output}", err=True)
    if log is not None:
        click.echo(_log_line(log.summary), err=True)


CSV_HEADER = ("file", "frame", "name", "similarity", "x1", "y1", "x2", "y2")


def json_object(result: FrameResult, spec: str) -> dict[str, Any]:
    """A frame's `--json` object; "source" is the picture's path for stills and the --source
    given (camera index, video file, URL) for every other source."""
    payload = result.to_json()
    if payload["source"] is None:
        payload["source"] = spec
    return payload


def csv_writer(stream: TextIO, spec: str) -> Callable[[FrameResult], None]:
    """A callback writing the `--csv` header row once, then one row per face of each frame."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_HEADER)

    def write(result: FrameResult) -> None:
        for face in result.faces:
            box = [round(float(v)) for v in face.xyxy]
            name = "" if face.name is None else face.name
            source = spec if result.source is None else result.source
            writer.writerow([source, result.index, name, f"{face.similarity:.3f}", *box])
        stream.flush()

    return write


def _sightings_log(
    db: str | None, frames: Any, recognizer: Any, auto_enrol: int | None
) -> tuple[Any, Any, Any]:
    """(the `SightingLog`, the step to run, a live-loop sink feeding the log)."""
    from face_recognizer.live import Sink
    from face_recognizer.sightings.log import SightingLog
    from face_recognizer.store import open_store
    from face_recognizer.types import Frame, TrackEnd

    rid = recognizer.engine.pack.recognizer_id
    step = recognizer
    on_written = None
    if auto_enrol is not None:
        from face_recognizer.sightings.visitors import Visitors, VisitorStep

        visitors = Visitors(auto_enrol)
        with open_store(db) as store:
            visitors.update(store, rid)  # the strangers who came back before this run
        step = VisitorStep(recognizer, visitors)

        def on_written(store: Any, ids: list[int]) -> None:
            visitors.update(store, rid)

    log = SightingLog(
        lambda: open_store(db),
        source=frames.spec,
        is_live=frames.is_live,
        recognizer_id=rid,
        on_written=on_written,
    )

    class LogSink(Sink):
        def on_frame(self, frame: Frame, result: FrameResult, image: Any) -> None:
            log.on_frame(frame, result, image)

        def on_track_end(self, ended: TrackEnd) -> None:
            log.on_track_end(ended)

        def close(self) -> None:
            log.close()

    return log, step, LogSink()


def _log_line(summary: Any) -> str:
    """What the sightings log did, in one line for stderr."""
    from face_recognizer.sightings.log import MIN_FRAMES

    line = f"Logged {plural(summary.written, 'sighting')}"
    if summary.too_short:
        line += (
            f" ({plural(summary.too_short, 'track')} seen in fewer than {MIN_FRAMES} frames"
            " not logged: a face in view for a blink, or a detector flicker)"
        )
    if summary.error:
        line += f"; writing failed: {summary.error}"
    return line


def _enrol_demo_people(engine: Any, gallery: Any) -> list[str]:
    """Yao Ming from yaoming.jpg; Duncan, Ginobili, Parker (left to right) from gdp.jpg."""
    from face_recognizer.enrol import EnrolFace, enrol_face
    from face_recognizer.images import read_image
    from face_recognizer.quality import blur_score
    from face_recognizer.samples import sample_path

    rec_id = engine.pack.recognizer_id
    path = sample_path("yaoming.jpg")
    face, check = enrol_face(engine, read_image(path), str(path))
    if face is None:
        raise FaceRecognizerError(f"The demo photo {path.name} was rejected ({check.reason}).")
    gallery.add_faces("Yao Ming", [face], rec_id)
    names = ["Yao Ming"]

    path = sample_path("gdp.jpg")
    image = read_image(path)
    detections = engine.detect(image)
    biggest = sorted(range(len(detections)), key=lambda i: -detections.box_wh[i].min())[:3]
    spurs = ["Tim Duncan", "Manu Ginobili", "Tony Parker"]
    if len(biggest) == 3:
        ordered = sorted(biggest, key=lambda i: detections.xyxy[i][0])
        crops = engine.align(image, detections.landmarks[ordered])
        embeddings = engine.embed_crops(crops)
        for j, (name, i) in enumerate(zip(spurs, ordered, strict=True)):
            digest = hashlib.sha256(f"{path.name}#{j}".encode()).hexdigest()
            face = EnrolFace(
                embeddings[j],
                crops[j],
                f"{path} face {j + 1}",
                digest,
                float(detections.scores[i]),
                float(detections.box_wh[i].min()),
                blur_score(image, detections.xyxy[i]),
            )
            gallery.add_faces(name, [face], rec_id)
            names.append(name)
    return names


@click.command()
@engine_options
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("out") / "demo.png",
    show_default=True,
    help="Where to write the annotated picture (.png or .jpg).",
)
@click.option("--no-window", is_flag=True, help="Do not show the picture even with a screen.")
def demo(engine_opts: EngineOptions, output: Path, no_window: bool) -> None:
    """Recognize Yao Ming in a team photo, with no camera and no gallery of yours.

    Enrols people from photos that ship with the installed packages into a temporary
    gallery (your db/ is not touched), labels players.jpg, writes the annotated picture
    and prints who was found where. With a screen it also shows it (any key closes).

    \b
    Example:
      face-recognizer demo --ctx -1 --output out/demo.png
    """
    from face_recognizer.draw import draw_keys
    from face_recognizer.images import read_image, write_image
    from face_recognizer.live import Recognizer, annotate, status_text
    from face_recognizer.matcher import Matcher
    from face_recognizer.samples import sample_path
    from face_recognizer.store.sqlite import Gallery
    from face_recognizer.types import Frame
    from face_recognizer.window import Window, window_title

    if output.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise click.BadParameter("must end in .png or .jpg", param_hint="--output")
    engine = load_engine(engine_opts)
    click.echo(f"Model pack {engine.pack.name} on {engine.device.label}", err=True)
    scene_path = sample_path("players.jpg")
    image = read_image(scene_path)
    with (
        tempfile.TemporaryDirectory(prefix="face-recognizer-demo-") as tmp,
        Gallery(Path(tmp) / "db") as gallery,
    ):
        enrolled = _enrol_demo_people(engine, gallery)
        click.echo(f"Enrolled (temporary gallery): {', '.join(enrolled)}")
        matcher = Matcher(gallery, engine.pack.recognizer_id)
        result = Recognizer(engine, matcher).process(
            Frame(image, 0, str(scene_path), 0.0), still=True
        )
    faces = sorted(result.faces, key=lambda f: f.xyxy[0])
    known = [f for f in faces if f.is_known]
    click.echo(f"{scene_path.name}: {plural(len(faces), 'face')}, {len(known)} recognized")
    for face in known:
        box = ",".join(str(round(v)) for v in face.xyxy)
        click.echo(f"  {face.name} at [{box}] (similarity {face.similarity:.2f})")
    click.echo(f"  {len(faces) - len(known)} Unknown")
    drawn = image.copy()
    status = status_text(None, len(faces), len(enrolled), engine.device.label)
    annotate(drawn, result, status=f"{scene_path.name} | {status}")
    write_image(drawn, output)
    click.echo(f"Wrote {output}")
    if not no_window and Window.available():
        window = Window(window_title("demo", scene_path.name), {})
        try:
            shown = drawn.copy()
            draw_keys(shown, "any key: close")
            window.show(shown, 0)
        finally:
            window.close()
