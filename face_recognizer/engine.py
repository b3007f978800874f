"""Face detection, alignment and ArcFace embedding: the only importer of onnxruntime.
InsightFace's SCRFD detector and ArcFace recognizer run through `insight`, which runs them as
the insightface package does without its slow import.

`Engine` loads one model pack's detector and recognizer once, on the GPU asked for with
`ctx` when CUDA really works there and on the CPU otherwise, and turns a BGR frame into
`Faces`. All faces of a frame are embedded in one batched recognizer call.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from face_recognizer.errors import ModelPackError
from face_recognizer.models import (
    ModelPack,
    cache_home,
    file_fingerprint,
    import_onnxruntime,
    landmark_106_model,
)
from face_recognizer.types import Detections, Faces

log = logging.getLogger(__name__)

DEFAULT_DET_SIZE = 640
DEFAULT_DET_THRESHOLD = 0.5
_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"


def _ort() -> Any:
    try:
        ort = import_onnxruntime()
    except ImportError as exc:  # pragma: no cover - only on a broken install
        raise ModelPackError(
            "ONNX Runtime is not installed or cannot be imported.",
            hint="Reinstall with the README's setup command (it installs exactly one build).",
        ) from exc
    return ort


@dataclass(frozen=True, slots=True)
class Device:
    """Where the models really run, read back from the ONNX Runtime sessions.

    Attributes:
        ctx: the `--ctx` that was asked for (-1 CPU, N >= 0 CUDA device N).
        providers: the detector session's providers, in priority order.
        fallback_reason: why a GPU that was asked for is not used, or None.
    """

    ctx: int
    providers: tuple[str, ...]
    fallback_reason: str | None = None

    @property
    def is_gpu(self) -> bool:
        return bool(self.providers) and self.providers[0] == _CUDA

    @property
    def label(self) -> str:
        return f"GPU {self.ctx}" if self.is_gpu else "CPU"


def cpu_threads() -> int:
    """CPUs this process may run on (affinity-aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def nvidia_gpu_present(driver_dir: str = "/proc/driver/nvidia/gpus") -> bool:
    """Whether this machine shows an NVIDIA GPU, without loading any CUDA library: the NVIDIA
    kernel driver lists one in `driver_dir` (Linux), else a device node or `nvidia-smi` exists."""
    if os.path.isdir(driver_dir):
        return bool(os.listdir(driver_dir))
    return os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi") is not None


def auto_ctx() -> int:
    """The `ctx` for "auto": GPU 0 where an NVIDIA GPU is present, else the CPU (-1)."""
    return 0 if nvidia_gpu_present() else -1


def cuda_unavailable_reason(ctx: int) -> str | None:
    """Why CUDA device `ctx` cannot be used by this ONNX Runtime, or None if it may be.

    Checks, without creating a session: the build has a CUDA provider, and the provider's
    shared library and the CUDA/cuDNN libraries it links can be loaded.
    """
    ort = _ort()
    if _CUDA not in ort.get_available_providers():
        return "this ONNX Runtime build has no CUDA support"
    preload = getattr(ort, "preload_dlls", None)
    if callable(preload) and importlib.util.find_spec("nvidia") is not None:
        # CUDA/cuDNN from nvidia-* wheels (onnxruntime-gpu[cuda,cudnn]); only then, since
        # preload_dlls prints a line for every library it cannot find.
        with contextlib.suppress(Exception):  # what stays missing is reported below
            preload(directory="")
    capi = os.path.join(os.path.dirname(ort.__file__), "capi")
    names = ("onnxruntime_providers_shared", "onnxruntime_providers_cuda")
    for name in names:
        lib = f"lib{name}.so" if os.name != "nt" else f"{name}.dll"
        path = os.path.join(capi, lib)
        if not os.path.exists(path):
            return f"{lib} is missing from the ONNX Runtime install"
        try:
            ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_GLOBAL", 0))
        except OSError as exc:
            missing = re.search(r"([\w.+-]+\.(?:so[.\d]*|dll)): cannot open", str(exc))
            return f"{missing.group(1)} not found" if missing else str(exc).splitlines()[0]
    return None


def session_options(threads: int) -> Any:
    """ONNX Runtime settings for our sessions: `threads` intra-op threads, no spinning."""
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Busy-waiting worker threads steal the cores that decoding and drawing need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def error_summary(exc: BaseException, limit: int = 160) -> str:
    """The last line of an error's message (ONNX Runtime puts the cause there), cut to
    `limit` characters; the error's type name when the message is empty."""
    lines = str(exc).strip().splitlines()
    return lines[-1][:limit] if lines else type(exc).__name__


def _open_session(path: str | bytes, ctx: int, threads: int) -> tuple[Any, str | None]:
    """An InferenceSession for `path` (or a serialized model), on CUDA device `ctx` if
    possible; and why not."""
    ort = _ort()
    options = session_options(threads)
    reason = None
    if ctx >= 0:
        reason = cuda_unavailable_reason(ctx)
        if reason is None:
            ort.set_default_logger_severity(4)  # ORT's own fallback spam stays off the terminal
            try:
                providers = [(_CUDA, {"device_id": ctx}), _CPU]
                session = ort.InferenceSession(path, options, providers=providers)
            except Exception as exc:  # e.g. no such device: fall back below
                reason = error_summary(exc)
            else:
                if session.get_providers()[0] == _CUDA:
                    return session, None
                reason = "the CUDA provider did not start"
            finally:
                ort.set_default_logger_severity(3)
    try:
        session = ort.InferenceSession(path, options, providers=[_CPU])
    except Exception as exc:  # a truncated or foreign file: say which, in one sentence
        name = os.path.basename(path) if isinstance(path, str) else "A model"
        cause = re.sub(r"^.*failed:\s*", "", error_summary(exc)).rstrip(".")
        raise ModelPackError(
            f"{name} could not be loaded as an ONNX model ({cause}).",
            hint="Replace the file (a partial download?) or choose another pack.",
        ) from exc
    return session, reason


def _open_model(
    path: Path, ctx: int, threads: int, model_id: str | None = None
) -> tuple[Any, str | None]:
    """`_open_session` for a model file; on the CPU, its copy with PReLU rewritten
    (`insight.cpu_model`; `model_id`: the file's fingerprint if known), or the file itself
    where that copy does not load."""
    from face_recognizer.insight import cpu_model

    if ctx >= 0:
        return _open_session(str(path), ctx, threads)
    model = cpu_model(path, model_id or file_fingerprint(path), cache_home())
    try:
        return _open_session(model, ctx, threads)
    except Exception:
        if not isinstance(model, str) or model == str(path):
            raise
        # a damaged cached copy: drop it (the next start makes it again), use the original
        log.debug("the cached copy %s does not load; using %s", model, path)
        with contextlib.suppress(OSError):
            os.unlink(model)
        return _open_session(str(path), ctx, threads)


def detector_input_size(frame_wh: tuple[int, int], det_size: int) -> tuple[int, int]:
    """Detector input (w, h): the frame's aspect kept, long side `det_size`, multiples of 32."""
    w, h = frame_wh
    scale = det_size / max(w, h)
    return (
        max(32, math.ceil(w * scale / 32) * 32),
        max(32, math.ceil(h * scale / 32) * 32),
    )


class Engine:
    """Detects, aligns and embeds faces with one model pack.

    Args:
        pack: the model pack (see `models.find_pack`).
        ctx: -1 for CPU, N >= 0 for CUDA device N (falls back to CPU, see `device`).
        det_size: long side of the detector input in pixels (multiple of 32, 160-1920).
        det_threshold: minimum detector confidence, in (0, 1).
        threads: CPU threads per model; default: the CPUs this process may use.
    """

    def __init__(
        self,
        pack: ModelPack,
        ctx: int = 0,
        det_size: int = DEFAULT_DET_SIZE,
        det_threshold: float = DEFAULT_DET_THRESHOLD,
        threads: int | None = None,
    ) -> None:
        if not isinstance(ctx, int) or ctx < -1:
            raise ValueError(f"ctx must be -1 (CPU) or a CUDA device index >= 0, got {ctx!r}")
        if not (160 <= det_size <= 1920 and det_size % 32 == 0):
            raise ValueError(f"det_size must be a multiple of 32 in 160..1920, got {det_size}")
        if not 0.0 < det_threshold < 1.0:
            raise ValueError(f"det_threshold must be in (0, 1), got {det_threshold}")
        self.pack = pack
        self.ctx = ctx
        self.threads = threads or cpu_threads()
        self._landmark_session: Any = None
        self.det_size = det_size
        self.det_threshold = det_threshold
        threads = self.threads

        from face_recognizer.insight import ArcFace, Scrfd, arcface_input_scaling

        det_session, reason = _open_session(str(pack.detector), ctx, threads)
        rec_ctx = ctx if reason is None else -1
        rec_session, rec_reason = _open_model(pack.recognizer, rec_ctx, threads, pack.recognizer_id)
        try:
            self._detector = Scrfd(det_session)
        except ValueError as exc:
            raise ModelPackError(f"{pack.detector.name} is {exc}.") from None
        try:
            mean, std = arcface_input_scaling(pack.recognizer)
        except (OSError, ValueError, IndexError) as exc:
            raise ModelPackError(f"{pack.recognizer.name} cannot be read: {exc}") from None
        self._recognizer = ArcFace(rec_session, mean, std)
        self.crop_size = self._recognizer.input_wh[0]
        self.embedding_dim = int(rec_session.get_outputs()[0].shape[-1])
        self.device = Device(ctx, tuple(det_session.get_providers()), reason or rec_reason)

    # -- detection -------------------------------------------------------------------------
    def detect(self, image: np.ndarray, det_size: int | None = None) -> Detections:
        """Faces in a BGR uint8 image (H, W, 3), best score first.

        `det_size` overrides the engine's detector input size for this call (a multiple of 32).
        """
        _check_image(image)
        h, w = image.shape[:2]
        input_wh = detector_input_size((w, h), det_size or self.det_size)
        boxes, kps = self._detector.detect(image, input_wh, self.det_threshold)
        if not len(boxes):
            return Detections.empty()
        xyxy = boxes[:, :4].copy()
        np.clip(xyxy[:, 0::2], 0, w - 1, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, h - 1, out=xyxy[:, 1::2])
        return Detections(xyxy, boxes[:, 4], kps)

    # -- embedding -------------------------------------------------------------------------
    def align(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """ArcFace-aligned BGR crops, (N, S, S, 3) uint8, for (N, 5, 2) landmarks."""
        _check_image(image)
        return align_faces(image, landmarks, self.crop_size)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings (N, D) float32 of aligned BGR crops, in one batched call."""
        if len(crops) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        raw = self._recognizer.embed(crops)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        unit: np.ndarray = raw / np.maximum(norms, 1e-12)
        return unit

    def embed(self, image: np.ndarray, detections: Detections) -> Faces:
        """Embed every detected face of `image`."""
        crops = self.align(image, detections.landmarks)
        return Faces.from_detections(detections, self.embed_crops(crops))

    def analyze(self, image: np.ndarray) -> Faces:
        """Detect and embed all faces of a BGR image."""
        return self.embed(image, self.detect(image))

    # -- optional 106-point landmarks --------------------------------------------------------
    def load_landmarks_106(self) -> None:
        """Load the 106-point landmark model now (`landmarks_106` loads it on first use).

        Raises `ModelPackError` when the model file cannot be found.
        """
        if self._landmark_session is None:
            path = landmark_106_model(self.pack)
            ctx = self.ctx if self.device.is_gpu else -1
            self._landmark_session, _ = _open_model(path, ctx, self.threads)

    def landmarks_106(self, image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """InsightFace's 106 2D landmarks, (N, 106, 2) float32 in pixels, for (N, 4) face boxes.

        All boxes go through the model in one batched call. Each face is cut out as InsightFace
        does (a square 1.5x the box's long side around its centre, scaled to 192x192).
        """
        _check_image(image)
        boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        if not len(boxes):
            return np.zeros((0, LANDMARK_POINTS, 2), dtype=np.float32)
        self.load_landmarks_106()
        crops, matrices = landmark_crops(image, boxes)
        # the model normalises its input itself (mxnet style): RGB, NCHW float 0..255
        blob = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        session = self._landmark_session
        raw: np.ndarray = np.asarray(session.run(None, {session.get_inputs()[0].name: blob})[0])
        points = (raw.reshape(len(boxes), -1, 2)[:, -LANDMARK_POINTS:] + 1.0) * (LANDMARK_INPUT / 2)
        # back from crop pixels to frame pixels: p = (q - shift) / scale
        scale = matrices[:, 0, 0][:, None, None]
        shift = matrices[:, :, 2][:, None, :]
        frame_points: np.ndarray = ((points - shift) / scale).astype(np.float32)
        return frame_points


LANDMARK_POINTS = 106
LANDMARK_INPUT = 192  # the 2d106det model's input side in pixels


def landmark_crops(image: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 192x192 crops the 106-point model reads, (N, 192, 192, 3) uint8, and the (N, 2, 3)
    frame-to-crop matrices (scale and shift only)."""
    import cv2

    n = len(xyxy)
    crops = np.zeros((n, LANDMARK_INPUT, LANDMARK_INPUT, 3), dtype=np.uint8)
    matrices = np.zeros((n, 2, 3), dtype=np.float64)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(xyxy, dtype=np.float64)):
        scale = LANDMARK_INPUT / (max(x2 - x1, y2 - y1, 1.0) * 1.5)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = LANDMARK_INPUT / 2
        matrices[i] = [[scale, 0.0, half - scale * cx], [0.0, scale, half - scale * cy]]
        cv2.warpAffine(
            image, matrices[i], (LANDMARK_INPUT, LANDMARK_INPUT), dst=crops[i], borderValue=0
        )
    return crops, matrices


# Where ArcFace expects the five landmarks in a 112x112 crop (InsightFace's `arcface_dst`).
ARCFACE_LANDMARKS_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity transform (rotation, uniform scale, shift) src -> dst.

    Umeyama's closed form, the estimate InsightFace's `norm_crop` uses (via scikit-image).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = (s * d).sum() / var_src if var_src > 0 else 1.0
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_faces(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """ArcFace-aligned crops (N, size, size, 3) uint8 for (N, 5, 2) landmarks in `image`."""
    if size % 112:
        raise ValueError(f"crop size must be a multiple of 112, got {size}")
    import cv2

    target = ARCFACE_LANDMARKS_112 * (size / 112.0)
    out = np.zeros((len(landmarks), size, size, 3), dtype=np.uint8)
    for i, points in enumerate(landmarks):
        matrix = similarity_transform(points, target)
        cv2.warpAffine(image, matrix, (size, size), dst=out[i], borderValue=(0, 0, 0))
    return out


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"image must be a BGR array of shape (H, W, 3), got {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
