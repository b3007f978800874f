"""--ctx auto (the default), $FACE_RECOGNIZER_CTX, and when the CPU fallback line appears."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from face_recognizer.engine import cuda_unavailable_reason, nvidia_gpu_present

CLI = [sys.executable, "-m", "face_recognizer"]
FALLBACK = "not available"


def run_cli(*args: str, ctx_env: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "FACE_RECOGNIZER_CTX")}
    if ctx_env is not None:
        env["FACE_RECOGNIZER_CTX"] = ctx_env
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


def test_a_gpu_is_present_when_the_nvidia_driver_lists_one(tmp_path: Path) -> None:
    assert not nvidia_gpu_present(str(tmp_path))  # the driver is loaded but shows no GPU
    (tmp_path / "0000:01:00.0").mkdir()
    assert nvidia_gpu_present(str(tmp_path))


@pytest.mark.skipif(nvidia_gpu_present(), reason="this machine has an NVIDIA GPU")
def test_without_an_nvidia_gpu_the_default_runs_on_the_cpu_silently() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert FALLBACK not in result.stderr
    assert "on CPU" in result.stderr  # the device is still named
    assert "GPU" not in result.stderr


@pytest.mark.skipif(cuda_unavailable_reason(0) is None, reason="this machine can run CUDA")
def test_the_environment_sets_the_device_and_an_unusable_gpu_says_so_once() -> None:
    on_gpu0 = run_cli("demo", ctx_env="0")
    assert on_gpu0.returncode == 0, on_gpu0.stderr
    assert [line for line in on_gpu0.stderr.splitlines() if FALLBACK in line] == [
        f"GPU 0 {FALLBACK} ({cuda_unavailable_reason(0)}); running on CPU"
    ]
    # --ctx wins over the environment
    on_cpu = run_cli("demo", "--ctx", "-1", ctx_env="0")
    assert on_cpu.returncode == 0, on_cpu.stderr
    assert FALLBACK not in on_cpu.stderr
    assert "on CPU" in on_cpu.stderr


def test_a_bad_device_choice_is_one_clear_error() -> None:
    for args, env in ((["--ctx", "gpu"], None), ([], "fast"), (["--ctx", "-2"], None)):
        result = run_cli("demo", *args, ctx_env=env)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        error = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(error) == 1
        assert "is not auto, -1 (the CPU) or a CUDA device index" in error[0]
        assert "$FACE_RECOGNIZER_CTX" in error[0]


def test_help_names_auto_and_the_environment_variable() -> None:
    result = run_cli("demo", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "auto (GPU 0 when an NVIDIA GPU is there, else the CPU)" in text
    assert "Default: $FACE_RECOGNIZER_CTX, else auto." in text
