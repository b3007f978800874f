"""FPS of `recognize`'s loop with small exact searches on one thread (the default) against
FAISS's OpenMP threads, alternated in the same process (see `index.SINGLE_THREAD_MAX`).

Enrolled from `videos/references` as bench/fps.py; each round runs the clip once each way.

    .venv/bin/python bench/faiss_threads.py [--datasets ../shared/datasets] [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fps import HAMILTON, bench_ours, enrol_references

import face_recognizer.index as index
from face_recognizer.engine import Engine, cpu_threads
from face_recognizer.live import Recognizer
from face_recognizer.matcher import Matcher
from face_recognizer.models import find_pack
from face_recognizer.store.sqlite import Gallery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--clip", default=HAMILTON)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    default = index.SINGLE_THREAD_MAX
    engine = Engine(find_pack(), ctx=-1, threads=cpu_threads())
    with tempfile.TemporaryDirectory() as tmp, Gallery(Path(tmp) / "db") as gallery:
        enrol_references(engine, gallery, args.datasets / "videos" / "references")
        recognizer = Recognizer(engine, Matcher(gallery, engine.pack.recognizer_id))
        clip = args.datasets / "videos" / args.clip
        fps: dict[str, list[float]] = {"one thread": [], "OpenMP threads": []}
        for _ in range(args.rounds):
            for label, limit in (("one thread", default), ("OpenMP threads", 0)):
                index.SINGLE_THREAD_MAX = limit
                fps[label].append(bench_ours(recognizer, clip)[0])
    index.SINGLE_THREAD_MAX = default
    ratios = [a / b for a, b in zip(fps["one thread"], fps["OpenMP threads"], strict=True)]
    print(f"| clip | small searches on | FPS (median of {args.rounds}) | vs OpenMP |")
    print("|---|---|---|---|")
    for label, runs in fps.items():
        ratio = statistics.median(ratios) if label == "one thread" else 1.0
        print(f"| {args.clip} | {label} | {statistics.median(runs):.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
