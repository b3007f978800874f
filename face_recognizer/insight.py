"""InsightFace's SCRFD detector and ArcFace recognizer, run on ONNX Runtime sessions the way
insightface's `SCRFD` and `ArcFaceONNX` classes run them: the same resizing, padding, input
scaling, box and landmark decoding and suppression, so the same faces and embeddings come
out (tests/test_insight.py checks them against those classes on real photos).

On the CPU, the PReLU activations of the recognizer and of the 106-point landmark model
are rewritten (`cpu_model`).

Why not those classes: importing any part of the insightface package runs its `__init__`,
which imports its whole application layer (SciPy, scikit-image, onnx, requests): 0.45 s of
every start on 2 cores. insightface 2.1's `SCRFD` also builds one more ONNX Runtime session
for each new input size (a fixed-shape copy of the model, about 30 ms each, while the first
frames wait), where one session with a free input size runs as fast here. And per call it
decodes every anchor before keeping those above the threshold; this decodes only those.

The sessions are `engine.Engine`'s; nothing here imports onnxruntime.
"""

from __future__ import annotations

import logging
import mmap
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

NMS_THRESHOLD = 0.4  # insightface's `SCRFD.nms_thresh`
DETECTOR_MEAN, DETECTOR_STD = 127.5, 128.0  # SCRFD's input scaling
# SCRFD variants with landmarks, by output count: their feature strides and anchors per place
_SCRFD_LAYOUTS = {9: ((8, 16, 32), 2), 15: ((8, 16, 32, 64, 128), 1)}


class Scrfd:
    """An SCRFD face detector (with its five landmarks) on an ONNX Runtime session.

    Raises `ValueError` when the session's outputs are not an SCRFD with landmarks.
    """

    def __init__(self, session: Any) -> None:
        outputs = session.get_outputs()
        layout = _SCRFD_LAYOUTS.get(len(outputs))
        if layout is None:
            raise ValueError(
                f"not an SCRFD face detector with landmarks ({len(outputs)} outputs, "
                f"expected {' or '.join(map(str, _SCRFD_LAYOUTS))})"
            )
        self.session = session
        self.strides, self.anchors = layout
        self.batched = len(outputs[0].shape) == 3  # outputs carry a batch axis
        self.input_name = session.get_inputs()[0].name
        self.output_names = [output.name for output in outputs]
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

    def detect(
        self, image: np.ndarray, input_wh: tuple[int, int], threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Faces in a BGR image: (N, 5) float32 boxes `xyxy` + score in image pixels, best
        first, and their (N, 5, 2) float32 landmarks. The image is scaled to fit `input_wh`
        (aspect kept, padded with black at the right or bottom)."""
        h, w = image.shape[:2]
        input_w, input_h = input_wh
        aspect = float(h) / w
        if aspect > float(input_h) / input_w:
            new_h, new_w = input_h, int(input_h / aspect)
        else:
            new_w, new_h = input_w, int(input_w * aspect)
        scale = float(new_h) / h
        if (new_w, new_h) == (w, h) == (input_w, input_h):
            canvas = np.ascontiguousarray(
                image
            )  # already the input's size: nothing to scale or pad
        else:
            canvas = np.zeros((input_h, input_w, 3), dtype=np.uint8)
            canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
        outputs = self.session.run(self.output_names, {self.input_name: detector_blob(canvas)})
        if self.batched:
            outputs = [output[0] for output in outputs]
        levels = len(self.strides)
        scores, boxes, points = [], [], []
        for level, stride in enumerate(self.strides):
            level_scores = outputs[level]
            keep = np.flatnonzero(level_scores[:, 0] >= threshold)
            if not len(keep):
                continue
            centres = self._anchor_centres(input_h // stride, input_w // stride, stride)[keep]
            distances = outputs[level + levels][keep] * stride
            offsets = outputs[level + 2 * levels][keep] * stride
            scores.append(level_scores[keep])
            boxes.append(
                np.stack(
                    [
                        centres[:, 0] - distances[:, 0],
                        centres[:, 1] - distances[:, 1],
                        centres[:, 0] + distances[:, 2],
                        centres[:, 1] + distances[:, 3],
                    ],
                    axis=-1,
                )
            )
            points.append(offsets.reshape(len(keep), -1, 2) + centres[:, None, :])
        if not scores:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        all_scores = np.vstack(scores)
        order = np.argsort(-all_scores.ravel(), kind="stable")
        found = np.hstack((np.vstack(boxes) / scale, all_scores)).astype(np.float32)[order]
        landmarks = (np.vstack(points) / scale)[order]
        kept = suppress(found, NMS_THRESHOLD)
        return found[kept], landmarks[kept].astype(np.float32, copy=False)

    def _anchor_centres(self, rows: int, cols: int, stride: int) -> np.ndarray:
        """(rows * cols * anchors, 2) float32 anchor centres `xy` in input pixels."""
        key = (rows, cols, stride)
        centres = self._centres.get(key)
        if centres is None:
            ys, xs = np.mgrid[:rows, :cols]
            grid = np.stack([xs, ys], axis=-1).astype(np.float32)
            centres = (grid * stride).reshape(-1, 2)
            if self.anchors > 1:
                centres = np.repeat(centres, self.anchors, axis=0)
            if len(self._centres) < 100:
                self._centres[key] = centres
        return centres


def detector_blob(canvas: np.ndarray) -> np.ndarray:
    """The (1, 3, H, W) float32 detector input of a BGR uint8 canvas: RGB planes of
    (pixel - 127.5) / 128. Bit for bit what `cv2.dnn.blobFromImage(canvas, 1 / 128, mean
    127.5, swapRB=True)` gives (each value, (2 * pixel - 255) / 256, is exact in float32
    whatever the order of operations), in a seventh of its time at 640x384 (0.6 vs 4.2 ms)."""
    blob = np.empty((1, 3, *canvas.shape[:2]), np.float32)
    for channel, plane in enumerate(reversed(cv2.split(canvas))):
        np.multiply(plane, np.float32(1.0 / DETECTOR_STD), out=blob[0, channel], dtype=np.float32)
    blob -= np.float32(DETECTOR_MEAN / DETECTOR_STD)
    return blob


def suppress(found: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression of (N, 5) `xyxy` + score rows sorted best first: the
    rows kept, each overlapping no better kept row by more than `threshold` (IoU, boxes
    measured inclusively in pixels, as insightface does)."""
    x1, y1, x2, y2 = found[:, 0], found[:, 1], found[:, 2], found[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-found[:, 4], kind="stable")
    kept: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(int(best))
        inter_w = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1
        inter_h = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1
        inter = np.maximum(0.0, inter_w) * np.maximum(0.0, inter_h)
        overlap = inter / (areas[best] + areas[rest] - inter)
        order = rest[overlap <= threshold]
    return kept


class ArcFace:
    """An ArcFace recognizer on an ONNX Runtime session: raw (unnormalised) embeddings of
    aligned BGR crops, all in one call.

    `mean`, `std`: the input scaling (see `arcface_input_scaling`).
    """

    def __init__(self, session: Any, mean: float, std: float) -> None:
        self.session = session
        self.mean, self.std = mean, std
        inputs = session.get_inputs()
        self.input_name = inputs[0].name
        self.input_wh = (int(inputs[0].shape[3]), int(inputs[0].shape[2]))
        self.output_names = [output.name for output in session.get_outputs()]

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, D) float32 embeddings of (N, H, W, 3) uint8 BGR crops."""
        blob = cv2.dnn.blobFromImages(
            list(crops), 1.0 / self.std, self.input_wh, (self.mean,) * 3, swapRB=True
        )
        raw: np.ndarray = self.session.run(self.output_names, {self.input_name: blob})[0]
        return raw.astype(np.float32, copy=False)


def arcface_input_scaling(path: str | Path) -> tuple[float, float]:
    """(mean, std) an ArcFace ONNX expects its 0-255 pixels scaled by, decided as insightface
    decides: (0, 1) when the graph's first 8 nodes include a subtraction and a multiplication
    (a converted MXNet model that scales its input itself), else (127.5, 127.5).

    The node names are read from the file's ONNX protobuf directly (only the few bytes
    needed), sparing the onnx package's import.
    """
    names = _first_node_names(Path(path), 8)
    has_sub = any(name.startswith(("Sub", "_minus")) for name in names)
    has_mul = any(name.startswith(("Mul", "_mul")) for name in names)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


# ONNX protobuf field numbers: ModelProto.graph, GraphProto.node, NodeProto.name
_MODEL_GRAPH, _GRAPH_NODE, _NODE_NAME = 7, 1, 3


def _first_node_names(path: Path, count: int) -> list[str]:
    """The names of the first `count` nodes of an ONNX model's graph ("" for a nameless one)."""
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        graph = _field(data, 0, len(data), _MODEL_GRAPH)
        if graph is None:
            return []
        names: list[str] = []
        for start, end in _fields(data, *graph, _GRAPH_NODE):
            name = _field(data, start, end, _NODE_NAME)
            names.append("" if name is None else data[name[0] : name[1]].decode("utf-8", "replace"))
            if len(names) == count:
                break
        return names


def _varint(data: Any, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: Any, pos: int, end: int, number: int) -> Any:
    """(start, end) of each length-delimited field `number` in the message at data[pos:end]."""
    while pos < end:
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            if key >> 3 == number:
                yield pos, pos + length
            pos += length
        else:  # groups (3, 4) are not used by ONNX
            raise ValueError(f"unexpected protobuf wire type {wire}")


def _field(data: Any, pos: int, end: int, number: int) -> tuple[int, int] | None:
    return next(_fields(data, pos, end, number), None)


PRELU_REWRITE = "prelu1"  # names the rewrite in cached models' file names: change it with it


def cpu_model(path: Path, model_id: str, cache_dir: Path | None) -> str | bytes:
    """The model at `path` as run on the CPU (the recognizer, the 106-point landmark model):
    `path` itself when it has no PReLU, else a copy in which each
    PReLU(x) = max(x, 0) + slope * min(x, 0) is computed as Relu(x) * (1 - slope) + x * slope.

    ONNX Runtime's CPU kernels lay convolutions out in blocks of channels, and PReLU is not
    among the operators that work on that layout: it converts each activation back and
    forth around every PReLU, and broadcasts the slope slowly. Multiplications by a
    constant and additions after a convolution are folded into it instead. On ArcFace
    MobileFaceNet (34 PReLUs) one face takes 7 ms instead of 14 on 2 cores; embeddings
    differ from the original's by rounding (cosine similarity above 0.99999).

    The copy is written once to `cache_dir` as `<model_id>-<PRELU_REWRITE>.onnx` (atomically,
    so an interrupted write leaves nothing half-written) and read from there afterwards:
    the rewrite needs the onnx package, 0.1 s to import. Without a writable `cache_dir`
    the copy is returned as bytes, rewritten at each start.
    """
    cached = None if cache_dir is None else cache_dir / f"{model_id}-{PRELU_REWRITE}.onnx"
    if cached is not None and cached.is_file():
        return str(cached)
    try:
        rewritten = rewrite_prelu(path)
    except Exception as exc:  # no onnx package, or a file it cannot read: ORT will say
        log.debug("kept %s as it is: %s", path, exc)
        return str(path)
    if rewritten is None:
        return str(path)
    if cached is None:
        return rewritten
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".part-", suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(rewritten)
            os.replace(tmp, cached)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:  # a read-only home: rewrite again next time
        log.debug("could not cache the rewritten recognizer in %s: %s", cache_dir, exc)
        return rewritten
    return str(cached)


def rewrite_prelu(path: Path) -> bytes | None:
    """The ONNX model at `path` with every PReLU whose slope is a stored tensor rewritten as
    Relu(x) * (1 - slope) + x * slope (see `cpu_model`), serialized; None when
    it has no such PReLU."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    stored = {tensor.name: tensor for tensor in graph.initializer}
    nodes, rewritten = [], 0
    for node in graph.node:
        slope = stored.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is None or slope.data_type != onnx.TensorProto.FLOAT:
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]  # tensor names are unique: they name the parts
        keep = numpy_helper.from_array(
            (1.0 - numpy_helper.to_array(slope)).astype(np.float32), f"{y}/1-slope"
        )
        graph.initializer.append(keep)
        nodes += [
            helper.make_node("Relu", [x], [f"{y}/relu"], name=f"{y}/relu"),
            helper.make_node("Mul", [f"{y}/relu", keep.name], [f"{y}/kept"], name=f"{y}/kept"),
            helper.make_node("Mul", [x, slope.name], [f"{y}/sloped"], name=f"{y}/sloped"),
            helper.make_node("Add", [f"{y}/kept", f"{y}/sloped"], [y], name=f"{y}/sum"),
        ]
        rewritten += 1
    if not rewritten:
        return None
    del graph.node[:]
    graph.node.extend(nodes)
    return bytes(model.SerializeToString())
