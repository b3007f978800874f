"""Identify over HTTP vs in-process: what the server's HTTP layer costs.

Enrols the shared reference people (or the bundled Yao Ming photo) into a temporary gallery,
then identifies the same photos (a) in this process, one after another, through the very code
the server runs for a request (`GalleryService.identify` on the decoded upload), and (b)
against a real `face-recognizer serve` process with N concurrent HTTP clients, each request a
multipart upload of one photo. Both run in this same run on this machine, one after the other,
so the ratio of their throughputs is the HTTP overhead.

    .venv/bin/python bench/serve_load.py [--clients 1 4 8] [--requests 200] [--datasets DIR]

Prints a Markdown table: clients, requests, throughput (requests/s), p50 and p99 latency,
errors, and throughput as a ratio to the in-process rate.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from face_recognizer.engine import Engine
from face_recognizer.models import find_pack
from face_recognizer.samples import sample_path
from face_recognizer.server.gallery import GalleryService, LockedEngine, create_key
from face_recognizer.server.photos import Limits, Upload, decode_photo
from face_recognizer.store import open_store

WARMUP = 10


def photo_set(datasets: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """({person: photos to enrol}, photos to identify)."""
    refs = datasets / "videos" / "references"
    if refs.is_dir():
        people = {p.name: sorted(p.iterdir()) for p in sorted(refs.iterdir()) if p.is_dir()}
        probes = [f for files in people.values() for f in files]
        return people, probes
    yao = sample_path("yaoming.jpg")
    return {"Yao Ming": [yao]}, [yao, sample_path("players.jpg"), sample_path("gdp.jpg")]


def in_process(service: GalleryService, uploads: list[Upload], count: int) -> list[float]:
    """Seconds per identification, `count` of them, one after another."""
    times = []
    for i in range(WARMUP + count):
        start = time.perf_counter()
        service.identify(decode_photo(uploads[i % len(uploads)], service.limits), None)
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
    return times


def over_http(
    url: str, key: str, uploads: list[Upload], clients: int, count: int
) -> tuple[float, list[float], int]:
    """(wall seconds, seconds per request, errors) for `count` requests from `clients` threads."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    next_index = [0]

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=120) as client:
            while True:
                with lock:
                    i = next_index[0]
                    next_index[0] += 1
                if i >= count:
                    return
                upload = uploads[i % len(uploads)]
                start = time.perf_counter()
                try:
                    answer = client.post(
                        "/api/v1/identify", files={"file": (upload.label, upload.data)}
                    )
                    ok = answer.status_code == 200 and "faces" in answer.json()
                except httpx.HTTPError:
                    ok = False
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    errors[0] += not ok

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, errors[0]


def start_server(db: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "face_recognizer", "serve"]
    proc = subprocess.Popen(
        [*command, "--port", "0", "--ctx", "-1", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"Serving on (http://\S+?:\d+)", line)
    if not found:
        proc.kill()
        raise SystemExit(f"serve did not start: {line!r}")
    url = found.group(1)
    for _ in range(600):
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("serve did not answer /health")


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000.0, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=200, help="per client count")
    args = parser.parse_args()

    people, probes = photo_set(args.datasets)
    uploads = [Upload(p.name, p.read_bytes()) for p in probes]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db"
        engine = LockedEngine(Engine(find_pack(), ctx=-1))
        service = GalleryService(engine, open_store(db), Limits())
        for name, files in people.items():
            service.enrol_photos(name, [Upload(f.name, f.read_bytes()) for f in files])
        key = create_key(service.store, "bench", read_only=True)
        base = in_process(service, uploads, args.requests)
        base_rate = len(base) / sum(base)
        service.close()
        print(
            f"{len(people)} people enrolled, {len(uploads)} photos identified in turn, "
            f"{args.requests} requests per row, CPU"
        )
        print()
        print("| clients | requests | requests/s | p50 ms | p99 ms | errors | vs in-process |")
        print("|---|---|---|---|---|---|---|")
        print(
            f"| in-process (1) | {len(base)} | {base_rate:.1f} | {ms(base, 50):.0f} "
            f"| {ms(base, 99):.0f} | 0 | 1.00 |"
        )
        proc, url = start_server(db)
        try:
            over_http(url, key, uploads, 1, WARMUP)
            for clients in args.clients:
                wall, latencies, errors = over_http(url, key, uploads, clients, args.requests)
                rate = len(latencies) / wall
                print(
                    f"| {clients} | {len(latencies)} | {rate:.1f} | {ms(latencies, 50):.0f} "
                    f"| {ms(latencies, 99):.0f} | {errors} | {rate / base_rate:.2f} |",
                    flush=True,
                )
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
