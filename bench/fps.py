"""Frames per second of `recognize` against the seed-style baseline, measured in the same run.

For each shared clip, on the CPU, frame by frame in order with no window: the baseline
(`bench/baseline_naive.py`: FaceAnalysis, every face embedded every frame, Python loop) and
ours (`Recognizer`: aspect-kept detector input, tracking, embedding only when needed, FAISS
vote). Both are enrolled from `videos/references` (ours into a temp gallery) and checked
against the clip's ground truth: Lin-Manuel Miranda named in >= 95% of frames 82-210,
Barack Obama in >= 90% of frames 211-274, no Joe Biden anywhere, no name on the
pedestrians clip.

Ours runs with all speed levers on (`live.Levers`), and once more with each lever off, so
each lever's gain is `FPS with all / FPS without it`, in the same run. "Whole process" times
the seed loop's script (`bench/baseline_naive.py`: start, enrol, every frame, exit) against
`face-recognizer recognize --no-window --json` on a gallery of the same photos (start, every
frame, exit), each as its own process.

    .venv/bin/python bench/fps.py [--datasets ../shared/datasets] [--threads 1 2] [--repeat 3]

With `--repeat N` every pipeline makes N passes over each clip, the pipelines taking turns, and
the table shows the median FPS of each (whole processes: N of each, in turn, the medians):
a burst of load on a shared machine then hits every pipeline alike instead of one.

Then the cost of logging sightings (`recognize` stores one per ended track unless
--no-log): ours with the sightings log on and off, alternated `--log-pairs` times per clip in
the same run, with the median of the on/off FPS ratios (`--log-only` skips the rest), and
the share of the run's time the writer thread spent on the CPU (what it can take from the
live loop on a machine with no core to spare: steadier than the FPS ratio on a busy machine).

Last, the cost of `recognize --liveness`: ours and ours wrapped in `LivenessStep`, one after
the other on each clip in the same run, and the FPS ratio (`--liveness-only` skips the rest).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_naive import NaiveRecognizer, frames

from face_recognizer.analysers.step import LivenessStep
from face_recognizer.engine import Engine, cpu_threads
from face_recognizer.enrol import enrol_face
from face_recognizer.images import is_image_path, read_image
from face_recognizer.live import (
    LIVENESS_LEVERS,
    CallbackSink,
    Levers,
    Recognizer,
    Sink,
    Step,
    run,
)
from face_recognizer.matcher import Matcher
from face_recognizer.models import find_pack
from face_recognizer.sightings.log import SightingLog
from face_recognizer.sources import open_source
from face_recognizer.store.sqlite import Gallery

HAMILTON = "hamilton_whitehouse_short.mp4"
PEDESTRIANS = "pedestrians_covent_garden_4s.mp4"


def enrol_references(engine: Engine, gallery: Gallery, references: Path) -> None:
    for person in sorted(p for p in references.iterdir() if p.is_dir()):
        faces = []
        for path in sorted(p for p in person.iterdir() if is_image_path(p)):
            face, _ = enrol_face(engine, read_image(path), str(path))
            if face is not None:
                faces.append(face)
        gallery.add_faces(person.name.replace("_", " "), faces, engine.pack.recognizer_id)


def figures(clip: str, names: list[set[str]]) -> str:
    """The clip's correctness figures, and whether they pass."""
    if clip == HAMILTON:
        lin = sum("Lin Manuel Miranda" in n for n in names[82:211]) / len(names[82:211])
        obama = sum("Barack Obama" in n for n in names[211:275]) / len(names[211:275])
        biden = sum("Joe Biden" in n for n in names)
        ok = lin >= 0.95 and obama >= 0.90 and biden == 0
        return f"Lin {lin:.0%}, Obama {obama:.0%}, Biden {biden} frames: {'PASS' if ok else 'FAIL'}"
    named = sum(bool(n) for n in names)
    return f"frames with a name: {named}: {'PASS' if named == 0 else 'FAIL'}"


WARMUP_FRAMES = 10
WRITER_SHARE: list[float] = []  # sightings writer CPU seconds / run seconds, per logged run


def bench_naive(naive: NaiveRecognizer, video: Path) -> tuple[float, list[set[str]]]:
    for i, image in enumerate(frames(video)):  # untimed: ONNX Runtime's first runs are slow
        naive.recognize(image)
        if i + 1 == WARMUP_FRAMES:
            break
    names: list[set[str]] = []
    start = time.perf_counter()
    for image in frames(video):
        names.append({name for _, name, _ in naive.recognize(image) if name})
    return len(names) / (time.perf_counter() - start), names


BASELINE = "baseline (FaceAnalysis, every face)"
TUNED = "baseline with our ONNX Runtime settings"


@dataclasses.dataclass(frozen=True)
class Run:
    """One pass of a pipeline over a clip."""

    fps: float
    names: list[set[str]]
    embedded: str = "all"  # faces embedded
    frames: str = "0"  # predicted / region / half-size frames


LEVER_NAMES = {
    "roi": "detect around tracked faces",
    "coast": "predicted frames",
    "coarse": "half-size scans",
    "sure": "trusting clear votes",
}


def whole_process(command: list[str]) -> float:
    """Seconds from start to exit of `command` (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def bench_ours(
    recognizer: Recognizer, video: Path, log_db: Path | None = None, step: Step | None = None
) -> tuple[float, list[set[str]], int, int]:
    """FPS of `run` over the clip, with a sightings log into the gallery `log_db` if given;
    `step` (default: the recognizer itself) is what runs, as `recognize` runs it."""
    step = step or recognizer
    with open_source(str(video)) as source:  # untimed warm-up, as for the baseline
        for i, frame in enumerate(source):
            step.process(frame)
            if i + 1 == WARMUP_FRAMES:
                break
    names: list[set[str]] = []
    step.reset()
    if isinstance(step, LivenessStep):
        step.liveness.landmark_runs = 0  # count the timed frames only
    coarse_before = recognizer.coarse_frames
    start = time.perf_counter()
    with open_source(str(video)) as source:
        sinks: list[Sink] = [
            CallbackSink(on_result=lambda r: names.append({f.name for f in r.faces if f.name}))
        ]
        if log_db is not None:
            log = SightingLog(
                lambda: Gallery(log_db),
                source=str(video),
                is_live=False,
                recognizer_id=recognizer.engine.pack.recognizer_id,
            )
            sinks.append(CallbackSink(on_track_end=log.on_track_end))
        try:
            report = run(source, step, sinks=sinks)
        finally:
            if log_db is not None:
                log.close()  # the writer's last batch counts: it is part of the run
    seconds = time.perf_counter() - start
    if log_db is not None:
        WRITER_SHARE.append(log.summary.writer_cpu_s / seconds)
    return len(names) / seconds, names, report.embedded, recognizer.coarse_frames - coarse_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--threads", type=int, nargs="+", default=[cpu_threads()])
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Passes of every pipeline over each clip, in turn (FPS: the median).",
    )
    parser.add_argument("--log-pairs", type=int, default=3, help="Sightings log off/on pairs.")
    parser.add_argument("--log-only", action="store_true", help="Only the sightings log rows.")
    parser.add_argument(
        "--liveness-only", action="store_true", help="Only the recognize --liveness cost rows."
    )
    args = parser.parse_args()
    videos = args.datasets / "videos"
    if args.liveness_only:
        liveness_cost(videos, max(args.threads))
        return
    if args.log_only:
        log_cost(videos, max(args.threads), args.log_pairs)
        return
    naive = NaiveRecognizer()
    naive.enrol_folder(videos / "references")
    tuned = NaiveRecognizer(tuned_ort=True)
    tuned.enrol_folder(videos / "references")
    ours: dict[str, Recognizer] = {}
    with tempfile.TemporaryDirectory(prefix="fps-gallery-") as tmp:
        for threads in args.threads:
            engine = Engine(find_pack(), ctx=-1, threads=threads)
            gallery = Gallery(Path(tmp) / f"db{threads}")
            enrol_references(engine, gallery, videos / "references")
            matcher = Matcher(gallery, engine.pack.recognizer_id)
            ours[f"ours, {threads} thread(s)"] = Recognizer(engine, matcher)
            if threads == max(args.threads):
                for lever, what in LEVER_NAMES.items():
                    off = dataclasses.replace(Levers(), **{lever: False})
                    label = f"ours, {threads} thread(s), without {what}"
                    ours[label] = Recognizer(engine, matcher, levers=off)
                none = Levers(roi=False, coast=False, coarse=False, sure=False)
                ours[f"ours, {threads} thread(s), no levers"] = Recognizer(
                    engine, matcher, levers=none
                )
        print("| clip | pipeline | FPS | vs baseline | faces embedded | predicted / region / "
              "half-size frames | correctness |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for clip in (HAMILTON, PEDESTRIANS):
            runs: dict[str, list[Run]] = {label: [] for label in (BASELINE, TUNED, *ours)}
            for _ in range(args.repeat):  # the pipelines take turns, so load hits them alike
                runs[BASELINE].append(Run(*bench_naive(naive, videos / clip)))
                runs[TUNED].append(Run(*bench_naive(tuned, videos / clip)))
                for label, recognizer in ours.items():
                    before = (recognizer.coasted_frames, recognizer.roi_frames)
                    fps, names, embedded, coarse = bench_ours(recognizer, videos / clip)
                    runs[label].append(
                        Run(
                            fps,
                            names,
                            f"{embedded}",
                            f"{recognizer.coasted_frames - before[0]} / "
                            f"{recognizer.roi_frames - before[1]} / {coarse}",
                        )
                    )
            base_fps = statistics.median(r.fps for r in runs[BASELINE])
            for label, rows in runs.items():
                fps = statistics.median(r.fps for r in rows)
                checks = " / ".join(dict.fromkeys(figures(clip, r.names) for r in rows))
                print(f"| {clip} | {label} | {fps:.1f} | {fps / base_fps:.2f} | "
                      f"{rows[0].embedded} | {rows[0].frames} | {checks} |",
                      flush=True)  # fmt: skip
        naive.close()
        tuned.close()
        db = Path(tmp) / f"db{max(args.threads)}"
        here = Path(__file__).resolve().parent
        print()
        print("| clip | whole process: seed loop (s) | ours (s) | ratio | runs |")
        print("|---|---|---|---|---|")
        for clip in (HAMILTON, PEDESTRIANS):
            seeds, mine = [], []
            for _ in range(args.repeat):
                seeds.append(whole_process(
                    [sys.executable, str(here / "baseline_naive.py"), str(videos / clip),
                     str(videos / "references")]
                ))  # fmt: skip
                mine.append(whole_process(
                    [sys.executable, "-m", "face_recognizer", "recognize", "--source",
                     str(videos / clip), "--db", str(db), "--ctx", "-1", "--no-window", "--json"]
                ))  # fmt: skip
            seed, ours_s = statistics.median(seeds), statistics.median(mine)
            print(f"| {clip} | {seed:.1f} | {ours_s:.1f} | {seed / ours_s:.2f} | {args.repeat} |",
                  flush=True)  # fmt: skip
    log_cost(videos, max(args.threads), args.log_pairs)
    liveness_cost(videos, max(args.threads))


def liveness_cost(videos: Path, threads: int) -> None:
    """Ours, then ours wrapped in `LivenessStep` (as `recognize --liveness`), on each clip in
    the same run: FPS, their ratio, and the faces the landmark model ran on."""
    print("\n| clip | pipeline | FPS | landmark runs (faces) | FPS vs without liveness "
          "| correctness |\n|---|---|---|---|---|---|")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fps-live-") as tmp:
        engine = Engine(find_pack(), ctx=-1, threads=threads)
        gallery = Gallery(Path(tmp) / "db")
        enrol_references(engine, gallery, videos / "references")
        matcher = Matcher(gallery, engine.pack.recognizer_id)
        recognizer = Recognizer(engine, matcher)
        needs = Recognizer(engine, matcher, levers=LIVENESS_LEVERS)  # as recognize --liveness
        for clip in (HAMILTON, PEDESTRIANS):
            fps, names, _, _ = bench_ours(recognizer, videos / clip)
            print(f"| {clip} | ours | {fps:.1f} | 0 | 1.00 | {figures(clip, names)} |")
            checked = LivenessStep(needs, engine.landmarks_106)
            live_fps, names, _, _ = bench_ours(needs, videos / clip, step=checked)
            print(f"| {clip} | ours + --liveness | {live_fps:.1f} | "
                  f"{checked.liveness.landmark_runs} | {live_fps / fps:.2f} | "
                  f"{figures(clip, names)} |", flush=True)  # fmt: skip


def log_cost(videos: Path, threads: int, pairs: int) -> None:
    """Ours with the sightings log off and on, alternated, and the median on/off ratio."""
    print(f"\n| clip | sightings log | FPS (median of {pairs}) | on/off (median of pairs) "
          "| sightings written | writer CPU / run time |\n|---|---|---|---|---|---|")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fps-log-") as tmp:
        engine = Engine(find_pack(), ctx=-1, threads=threads)
        gallery = Gallery(Path(tmp) / "db")
        enrol_references(engine, gallery, videos / "references")
        recognizer = Recognizer(engine, Matcher(gallery, engine.pack.recognizer_id))
        for clip in (HAMILTON, PEDESTRIANS):
            off, on, ratios = [], [], []
            for _ in range(pairs):
                off.append(bench_ours(recognizer, videos / clip)[0])
                on.append(bench_ours(recognizer, videos / clip, Path(tmp) / "db")[0])
                ratios.append(on[-1] / off[-1])
            written = len(gallery.sightings(source=str(videos / clip)))
            share = statistics.median(WRITER_SHARE[-pairs:])
            print(f"| {clip} | off | {statistics.median(off):.1f} | 1.00 | 0 | - |")
            print(f"| {clip} | on | {statistics.median(on):.1f} | "
                  f"{statistics.median(ratios):.3f} | {written // pairs} per run | "
                  f"{share:.2%} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
