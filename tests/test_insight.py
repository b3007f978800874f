"""`insight` runs InsightFace's models exactly as the insightface package's own classes do:
the same boxes, scores, landmarks and embeddings, bit for bit, on real photos at the input
sizes the live loop uses (whole frames, half-size scans, region mosaics, padded copies). On
the CPU the PReLUs of the recognizer and the 106-point model are rewritten: the same
embeddings and points up to rounding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.model_zoo.scrfd import SCRFD

from face_recognizer.engine import Engine, detector_input_size, landmark_crops
from face_recognizer.images import read_image
from face_recognizer.insight import (
    PRELU_REWRITE,
    ArcFace,
    arcface_input_scaling,
    cpu_model,
    detector_blob,
    rewrite_prelu,
    suppress,
)
from face_recognizer.models import landmark_106_model
from face_recognizer.samples import sample_path


def _pictures() -> list[tuple[str, np.ndarray]]:
    players = read_image(sample_path("players.jpg"))
    t1 = read_image(sample_path("t1.jpg"))
    h, w = t1.shape[:2]
    return [
        ("t1", t1),
        ("players", players),
        ("gdp", read_image(sample_path("gdp.jpg"))),
        ("t1 portrait crop", np.ascontiguousarray(t1[:, w // 3 : w // 3 + h // 2])),
        ("players as a 384x256 mosaic", cv2.resize(players, (384, 256))),
        ("t1 padded", cv2.copyMakeBorder(t1, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_CONSTANT)),
    ]


@pytest.mark.parametrize("det_size", [640, 320, 160, 384])
@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_detections_equal_insightface_scrfd(
    engine: Engine, det_size: int, threshold: float
) -> None:
    theirs = SCRFD(model_file=str(engine.pack.detector), session=engine._detector.session)
    found_any = False
    for label, image in _pictures():
        input_wh = detector_input_size((image.shape[1], image.shape[0]), det_size)
        boxes, points = engine._detector.detect(image, input_wh, threshold)
        their_boxes, their_points = theirs.detect(image, input_size=input_wh, det_thresh=threshold)
        assert boxes.dtype == np.float32, label
        assert points.shape == (len(boxes), 5, 2), label
        np.testing.assert_array_equal(boxes, their_boxes, err_msg=label)
        np.testing.assert_array_equal(points, their_points, err_msg=label)
        found_any |= len(boxes) > 0
    assert found_any  # the comparison was not between two empty answers


def test_embeddings_equal_insightface_arcface(engine: Engine) -> None:
    original = _session(engine.pack.recognizer)
    theirs = ArcFaceONNX(model_file=str(engine.pack.recognizer), session=original)
    mine = ArcFace(original, *arcface_input_scaling(engine.pack.recognizer))
    image = read_image(sample_path("players.jpg"))
    crops = engine.align(image, engine.detect(image).landmarks)
    assert len(crops) >= 10
    np.testing.assert_array_equal(mine.embed(crops), theirs.get_feat(list(crops)))
    assert (mine.mean, mine.std) == (theirs.input_mean, theirs.input_std)


def test_cpu_recognizer_with_prelu_rewritten_embeds_as_the_original(engine: Engine) -> None:
    """The engine's CPU recognizer (PReLU rewritten) gives the original model's embeddings,
    up to rounding, and has no PReLU left."""
    original = ArcFace(
        _session(engine.pack.recognizer), *arcface_input_scaling(engine.pack.recognizer)
    )
    rewritten = rewrite_prelu(engine.pack.recognizer)
    assert rewritten is not None
    ops = {node.op_type for node in onnx.load_from_string(rewritten).graph.node}
    assert "PRelu" not in ops
    assert {"Relu", "Mul", "Add"} <= ops
    image = read_image(sample_path("players.jpg"))
    crops = engine.align(image, engine.detect(image).landmarks)
    theirs = original.embed(crops)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    mine = engine.embed_crops(crops)
    assert float(np.min(np.sum(mine * theirs, axis=1))) > 0.99999
    np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_106_points_with_prelu_rewritten_land_where_the_original_puts_them(
    engine: Engine,
) -> None:
    """`--liveness`'s 106-point model runs rewritten on the CPU too: the same points to a
    thousandth of a pixel."""
    image = read_image(sample_path("players.jpg"))
    boxes = engine.detect(image).xyxy
    mine = engine.landmarks_106(image, boxes)
    original = _session(landmark_106_model(engine.pack))
    crops, matrices = landmark_crops(image, boxes)
    blob = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    raw = original.run(None, {original.get_inputs()[0].name: blob})[0]
    points = (raw.reshape(len(boxes), -1, 2)[:, -106:] + 1.0) * 96
    theirs = (points - matrices[:, :, 2][:, None, :]) / matrices[:, 0, 0][:, None, None]
    assert len(boxes) >= 10
    np.testing.assert_allclose(mine, theirs, atol=1e-3)


def test_rewritten_recognizer_is_cached_once_and_reused(engine: Engine, tmp_path: Path) -> None:
    pack = engine.pack
    cache = tmp_path / "cache"
    first = cpu_model(pack.recognizer, pack.recognizer_id, cache)
    assert first == str(cache / f"{pack.recognizer_id}-{PRELU_REWRITE}.onnx")
    assert [p.name for p in cache.iterdir()] == [Path(first).name]  # no partial file left
    stamp = Path(first).stat().st_mtime_ns
    assert cpu_model(pack.recognizer, pack.recognizer_id, cache) == first
    assert Path(first).stat().st_mtime_ns == stamp  # read, not written again


def test_unwritable_cache_gives_the_rewritten_model_in_memory(
    engine: Engine, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    model = cpu_model(engine.pack.recognizer, engine.pack.recognizer_id, blocker)
    assert isinstance(model, bytes)
    assert _session_from(model).get_outputs()[0].shape[-1] == engine.embedding_dim


def test_a_model_without_prelu_is_used_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    _tiny_model(path, ["Relu", "Relu"])
    assert cpu_model(path, "x", tmp_path / "cache") == str(path)
    assert not (tmp_path / "cache").exists()


def test_a_damaged_cached_copy_is_replaced(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached = tmp_path / "face-recognizer" / f"{engine.pack.recognizer_id}-{PRELU_REWRITE}.onnx"
    cached.parent.mkdir()
    cached.write_bytes(b"half a model")
    fresh = Engine(engine.pack, ctx=-1, threads=1)
    image = read_image(sample_path("t1.jpg"))
    faces = fresh.analyze(image)
    np.testing.assert_allclose(faces.embeddings, engine.analyze(image).embeddings, atol=1e-5)
    assert not cached.exists()  # dropped: the next start writes it afresh
    Engine(engine.pack, ctx=-1, threads=1)
    assert cached.stat().st_size > 1_000_000


def _tiny_model(path: Path, ops: list[str]) -> None:
    """An ONNX graph chaining `ops` (named like the ops: "Sub_0", "Mul_1", ...) on one input."""
    helper = onnx.helper
    nodes, previous = [], "data"
    for i, op in enumerate(ops):
        output = f"t{i}"
        inputs = [previous] if op == "Relu" else [previous, "k"]
        nodes.append(helper.make_node(op, inputs, [output], name=f"{op}_{i}"))
        previous = output
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info(previous, onnx.TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor("k", onnx.TensorProto.FLOAT, [1], [0.5])],
    )
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    ("ops", "scaling"),
    [
        (["Sub", "Mul", "Relu"], (0.0, 1.0)),  # scales its own input: pixels go in as they are
        (["Mul", "Relu"], (127.5, 127.5)),
        (["Relu", "Relu"], (127.5, 127.5)),
    ],
)
def test_input_scaling_is_decided_as_insightface_decides(
    tmp_path: Path, ops: list[str], scaling: tuple[float, float]
) -> None:
    path = tmp_path / "model.onnx"
    _tiny_model(path, ops)
    assert arcface_input_scaling(path) == scaling
    theirs = ArcFaceONNX(model_file=str(path), session=_session(path))
    assert (theirs.input_mean, theirs.input_std) == scaling


def _session(path: Path):  # type: ignore[no-untyped-def]
    return _session_from(str(path))


def _session_from(model: str | bytes):  # type: ignore[no-untyped-def]
    return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("wh", [(640, 384), (384, 256), (160, 96), (33, 17)])
def test_detector_blob_is_opencvs_blob_bit_for_bit(wh: tuple[int, int]) -> None:
    canvas = np.random.default_rng(7).integers(0, 256, (wh[1], wh[0], 3), dtype=np.uint8)
    theirs = cv2.dnn.blobFromImage(canvas, 1 / 128, wh, (127.5,) * 3, swapRB=True)
    np.testing.assert_array_equal(detector_blob(canvas), theirs)


def test_suppression_keeps_the_best_of_overlapping_boxes() -> None:
    found = np.array(
        [
            [0, 0, 99, 99, 0.9],
            [5, 5, 104, 104, 0.8],  # overlaps the first by IoU ~0.82: dropped
            [200, 200, 260, 260, 0.7],
            [0, 0, 99, 99, 0.95],  # the best, although listed last
        ],
        dtype=np.float32,
    )
    assert suppress(found, 0.4) == [3, 2]
