"""The seed project's loop, kept as the baseline that `bench/fps.py` measures against.

InsightFace's own `FaceAnalysis` (detection + recognition of the built-in pack, det size
640x640, ONNX Runtime's default session settings) detects and embeds EVERY face of EVERY
frame, and each face is compared with every enrolled photo in a Python loop; the best single
photo above the threshold names the face. Built offline: `FaceAnalysis` is pointed at a temp
folder holding links to the built-in pack's two ONNX files.

    .venv/bin/python bench/baseline_naive.py VIDEO REFERENCES_DIR
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from face_recognizer.images import is_image_path, read_image
from face_recognizer.matcher import DEFAULT_THRESHOLD
from face_recognizer.models import find_pack


class NaiveRecognizer:
    """FaceAnalysis + a Python loop over the enrolled embeddings."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, *, tuned_ort: bool = False) -> None:
        """`tuned_ort`: give FaceAnalysis our ONNX Runtime settings (threads, no spinning)."""
        from insightface.app import FaceAnalysis

        from face_recognizer.engine import cpu_threads, session_options

        pack = find_pack()
        self._dir = tempfile.TemporaryDirectory(prefix="naive-pack-")
        root = Path(self._dir.name) / pack.name
        root.mkdir()
        for path in (pack.detector, pack.recognizer):
            (root / path.name).symlink_to(path)
        with contextlib.redirect_stdout(io.StringIO()):  # FaceAnalysis prints what it loads
            self.app = FaceAnalysis(
                name=str(root),
                allowed_modules=["detection", "recognition"],
                providers=["CPUExecutionProvider"],
                sess_options=session_options(cpu_threads()) if tuned_ort else None,
            )
            self.app.prepare(ctx_id=-1, det_size=(640, 640))
        self.threshold = threshold
        self.known: list[tuple[str, np.ndarray]] = []

    def enrol_folder(self, references: Path) -> None:
        """One entry per usable photo of `references/<Person_Name>/*`."""
        for person in sorted(p for p in references.iterdir() if p.is_dir()):
            name = person.name.replace("_", " ")
            for path in sorted(p for p in person.iterdir() if is_image_path(p)):
                faces = self.app.get(read_image(path))
                if faces:
                    biggest = max(faces, key=lambda f: f.bbox[2] - f.bbox[0])
                    self.known.append((name, biggest.normed_embedding))

    def recognize(self, image: np.ndarray) -> list[tuple[list[float], str | None, float]]:
        """(box, name or None, similarity) for every face of the frame."""
        out = []
        for face in self.app.get(image):
            best_name, best_sim = None, -1.0
            for name, known in self.known:  # the seed's Python loop
                sim = float(np.dot(face.normed_embedding, known))
                if sim > best_sim:
                    best_name, best_sim = name, sim
            out.append(
                (
                    [float(v) for v in face.bbox],
                    best_name if best_sim >= self.threshold else None,
                    best_sim,
                )
            )
        return out

    def close(self) -> None:
        self._dir.cleanup()


def frames(video: Path) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield image
    finally:
        capture.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("references", type=Path)
    args = parser.parse_args()
    naive = NaiveRecognizer()
    naive.enrol_folder(args.references)
    start, count = time.perf_counter(), 0
    for count, image in enumerate(frames(args.video), start=1):
        names = [name for _, name, _ in naive.recognize(image) if name]
        print(count - 1, names)
    print(f"{count / (time.perf_counter() - start):.1f} FPS")
    naive.close()


if __name__ == "__main__":
    main()
