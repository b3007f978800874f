"""Start-up load of a large gallery: PostgreSQL vs SQLite, the same faces into the FAISS index.

Both stores get the same gallery, written through the same `Store.add_faces` a user's enrolment
uses: `--faces / 5` people with 5 photos each; every photo a unit vector (512-d, like ArcFace)
near its person's centre, and a real 112x112 aligned crop stored as PNG (the faces of the
sample photos, so rows are as big as real ones). The load is what `recognize` does at start:
open the store and build `Matcher(store, rid)` (embeddings, names, settings, FAISS index).
After one untimed load of each (imports, page cache), each load runs --repeat times in turn per
store; the table gives the median and the ratio
PostgreSQL / SQLite from this run. Both files/tables are in the page cache after the fill.

    .venv/bin/python bench/store_load.py [--faces 100000] [--pg postgresql://...]

Without --pg a private PostgreSQL server is started in a temporary folder, as the tests do
(`tests/pg.py`: Debian's postgresql package). The server is on this machine (no network).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from face_recognizer.engine import Engine
from face_recognizer.images import read_image
from face_recognizer.matcher import Matcher
from face_recognizer.models import find_pack
from face_recognizer.samples import sample_path
from face_recognizer.store import EnrolFace, Store, open_store

DIM = 512
PHOTOS = 5
RID = "bench-store-load"
BATCH_PEOPLE = 500  # people per transaction while filling


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def real_crops() -> list[np.ndarray]:
    """The aligned 112x112 crops of every face in the sample photos."""
    engine = Engine(find_pack(), ctx=-1)
    crops: list[np.ndarray] = []
    for name in ("gdp.jpg", "players.jpg", "yaoming.jpg"):
        image = read_image(sample_path(name))
        faces = engine.detect(image)
        crops.extend(engine.align(image, faces.landmarks))
    return crops


def fill(store: Store, faces: int, crops: list[np.ndarray], seed: int = 0) -> float:
    """Write the gallery (same for every store with the same seed); returns seconds."""
    rng = np.random.default_rng(seed)
    people = faces // PHOTOS
    start = time.perf_counter()
    for first in range(0, people, BATCH_PEOPLE):
        with store.transaction():
            for person in range(first, min(people, first + BATCH_PEOPLE)):
                centre = unit(rng.standard_normal(DIM))
                vectors = unit(centre + 0.045 * rng.standard_normal((PHOTOS, DIM)))
                batch = [
                    EnrolFace(
                        vectors[i],
                        crops[(person * PHOTOS + i) % len(crops)],
                        f"bench/{person}/{i}.jpg",
                        f"{person:08d}-{i}",
                        0.9,
                        120.0,
                        300.0,
                    )
                    for i in range(PHOTOS)
                ]
                store.add_faces(f"Person {person:06d}", batch, RID)
    return time.perf_counter() - start


def load(spec: str | Path) -> tuple[float, float, int]:
    """Open the store and build the matcher, as `recognize` does.

    Returns (seconds for the whole load, seconds of it spent reading the store, faces). The
    read is timed apart (the same calls `Matcher` makes, once more before it) because at
    `HNSW_MIN_SIZE` faces and more the FAISS build, the same for both stores, dominates.
    """
    start = time.perf_counter()
    with open_store(spec, create=False) as store:
        opened = time.perf_counter()
        store.embeddings(RID)
        store.person_names()
        read = time.perf_counter() - opened
        built = time.perf_counter()
        matcher = Matcher(store, RID)  # reads the same again, then builds the index
        size = matcher.size
        build = time.perf_counter() - built
    open_s = opened - start
    return open_s + build, open_s + read, size


@contextmanager
def private_server() -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pg import PostgresServer, find_bin_dir  # tests/pg.py

    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("No PostgreSQL server programs (apt install postgresql), or pass --pg.")
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="fr-bench-pg-")))
    try:
        server.start()
        yield server.url(server.create_database())
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg", help="an EMPTY PostgreSQL database to fill (default: private)")
    args = parser.parse_args()
    crops = real_crops()
    with (
        tempfile.TemporaryDirectory() as tmp,
        private_server() if args.pg is None else nullcontext(args.pg) as url,
    ):
        stores: dict[str, str | Path] = {"SQLite": Path(tmp) / "db", "PostgreSQL": url}
        for label, spec in stores.items():
            with open_store(spec) as store:
                if store.face_count():
                    raise SystemExit(f"{label} gallery is not empty; give an empty database.")
                seconds = fill(store, args.faces, crops)
            print(f"filled {label}: {args.faces} faces in {seconds:.1f} s", file=sys.stderr)
        for spec in stores.values():  # warm up: imports (FAISS) and the page cache
            load(spec)
        times: dict[str, list[float]] = {label: [] for label in stores}
        reads: dict[str, list[float]] = {label: [] for label in stores}
        for _ in range(args.repeat):
            for label, spec in stores.items():
                seconds, read, size = load(spec)
                if size != args.faces // PHOTOS * PHOTOS:
                    raise SystemExit(f"{label} loaded {size} faces, expected {args.faces}")
                times[label].append(seconds)
                reads[label].append(read)
    sqlite = statistics.median(times["SQLite"])
    sqlite_read = statistics.median(reads["SQLite"])
    print(
        f"| faces | store | load s (median of {args.repeat}) | vs SQLite "
        "| of it reading the store, s | read vs SQLite |"
    )
    print("|---|---|---|---|---|---|")
    for label, runs in times.items():
        median, read = statistics.median(runs), statistics.median(reads[label])
        print(
            f"| {args.faces:,} | {label} | {median:.2f} | {median / sqlite:.2f}x "
            f"| {read:.2f} | {read / sqlite_read:.2f}x |"
        )


if __name__ == "__main__":
    main()
