"""What running InsightFace's models ourselves (`face_recognizer/insight.py`) buys against
insightface's own classes, on the CPU, each pair measured in the same run and taking turns:

1. Start: a fresh Python process imports what it needs, opens both models, detects the faces
   of one picture and embeds them; with insightface's `SCRFD` and `ArcFaceONNX` (on the same
   session settings and alignment as ours) against `Engine`. The picture is the first frame of
   the 1080p pedestrians clip, or t1.jpg without the shared datasets.
2. One detector call on one session: insightface's `SCRFD.detect` against `insight.Scrfd`,
   on that picture at `--det-size` 640 and on a 384x256 mosaic (the size region detection
   uses for up to 6 tracked faces).
3. One face's embedding: the recognizer as shipped against its copy with PReLU rewritten
   (`insight.cpu_model`, what `Engine` runs on the CPU), batches of 1 and 4.

    .venv/bin/python bench/engine_parts.py [--datasets ../shared/datasets] [--threads 2]
        [--repeat 5]

Times are medians of `--repeat` rounds; the ratio is insightface's time / ours.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from face_recognizer.engine import Engine, cpu_threads, detector_input_size, session_options
from face_recognizer.images import read_image
from face_recognizer.models import find_pack
from face_recognizer.samples import sample_path

CLIP = "videos/pedestrians_covent_garden_4s.mp4"

THEIRS = """
import sys
import cv2, onnxruntime
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.model_zoo.scrfd import SCRFD
from face_recognizer.engine import align_faces, detector_input_size, session_options
det_path, rec_path, picture, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
options, cpu = session_options(threads), ["CPUExecutionProvider"]
det = onnxruntime.InferenceSession(det_path, options, providers=cpu)
rec = onnxruntime.InferenceSession(rec_path, options, providers=cpu)
detector = SCRFD(model_file=det_path, session=det)
recognizer = ArcFaceONNX(model_file=rec_path, session=rec)
image = cv2.imread(picture)
input_wh = detector_input_size((image.shape[1], image.shape[0]), 640)
boxes, points = detector.detect(image, input_size=input_wh, det_thresh=0.5)
assert len(boxes), "no face"
recognizer.get_feat(list(align_faces(image, points)))
"""

OURS = """
import sys
import cv2
from face_recognizer.engine import Engine
from face_recognizer.models import find_pack
picture, threads = sys.argv[3], int(sys.argv[4])
engine = Engine(find_pack(), ctx=-1, threads=threads)
assert len(engine.analyze(cv2.imread(picture))), "no face"
"""


def picture(datasets: Path, folder: Path) -> Path:
    """The clip's first frame as a PNG in `folder`, or t1.jpg without the datasets."""
    capture = cv2.VideoCapture(str(datasets / CLIP))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        return sample_path("t1.jpg")
    path = folder / "frame.png"
    cv2.imwrite(str(path), frame)
    return path


def seconds(call: Callable[[], object], runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        call()
    return (time.perf_counter() - start) / runs


def process_seconds(code: str, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True)
    return time.perf_counter() - start


def row(label: str, theirs: list[float], ours: list[float], unit: float, name: str) -> str:
    a, b = statistics.median(theirs), statistics.median(ours)
    return f"| {label} | {a * unit:.2f} {name} | {b * unit:.2f} {name} | {a / b:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--threads", type=int, default=cpu_threads())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from insightface.model_zoo.scrfd import SCRFD  # what we compare with

    pack = find_pack()
    engine = Engine(pack, ctx=-1, threads=args.threads)  # also writes the rewritten model
    with tempfile.TemporaryDirectory() as tmp:
        shot = picture(args.datasets, Path(tmp))
        image = read_image(shot)
        argv = [str(pack.detector), str(pack.recognizer), str(shot), str(args.threads)]
        starts: dict[str, list[float]] = {"theirs": [], "ours": []}
        for _ in range(args.repeat):
            starts["theirs"].append(process_seconds(THEIRS, argv))
            starts["ours"].append(process_seconds(OURS, argv))

    theirs = SCRFD(model_file=str(pack.detector), session=engine._detector.session)
    mosaic = cv2.resize(image, (384, 256))
    whole_wh = detector_input_size((image.shape[1], image.shape[0]), 640)
    calls = {
        "a detector call, the picture at 640": (image, whole_wh),
        "a detector call, a 384x256 mosaic": (mosaic, (384, 256)),
    }
    import onnxruntime

    shipped = onnxruntime.InferenceSession(
        str(pack.recognizer), session_options(args.threads), providers=["CPUExecutionProvider"]
    )
    crops = engine.align(image, engine.detect(image).landmarks)
    crops = np.concatenate([crops] * 4)[:4]
    blob = cv2.dnn.blobFromImages(list(crops), 1 / 127.5, (112, 112), (127.5,) * 3, swapRB=True)
    rewritten, name = engine._recognizer.session, shipped.get_inputs()[0].name

    results: dict[str, tuple[list[float], list[float]]] = {}
    for _ in range(args.repeat):
        for label, (picture_, input_wh) in calls.items():
            a = seconds(lambda p=picture_, s=input_wh: theirs.detect(p, input_size=s), 20)
            b = seconds(lambda p=picture_, s=input_wh: engine._detector.detect(p, s, 0.5), 20)
            results.setdefault(label, ([], []))[0].append(a)
            results[label][1].append(b)
        for batch in (1, 4):
            label = f"one face's embedding, batch of {batch}"
            feed = {name: blob[:batch]}
            a = seconds(lambda f=feed: shipped.run(None, f), 20) / batch
            b = seconds(lambda f=feed: rewritten.run(None, f), 20) / batch
            results.setdefault(label, ([], []))[0].append(a)
            results[label][1].append(b)

    print(f"CPU, {args.threads} threads, medians of {args.repeat} rounds; picture: {shot.name}")
    print()
    print("| | insightface's way | ours | ratio |")
    print("|---|---|---|---|")
    print(row("start, detect and embed one picture (process)", *starts.values(), 1, "s"))
    for label, (a_times, b_times) in results.items():
        print(row(label, a_times, b_times, 1000, "ms"))


if __name__ == "__main__":
    main()
