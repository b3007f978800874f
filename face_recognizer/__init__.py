"""face_recognizer: real-time face recognition with InsightFace, ArcFace and a FAISS gallery.

The public API, imported on first use so that `import face_recognizer` stays light (no
ONNX Runtime, FAISS or OpenCV until a name below is touched):

* `Engine`, `find_pack`: detect, align and embed faces with a model pack;
* `open_store`: the gallery in a folder (SQLite) or at a `postgresql://` URL;
* `Matcher`, `Recognizer`: name the faces of a frame (`Recognizer.process(frame, still=True)`);
* `enrol_files`, `enrol_images`: add a person's photos (files, or uploaded bytes / arrays);
* `read_image`, `decode_image`: pictures from files or bytes (oversized ones refused);
* result types: `Frame`, `FrameResult`, `Track`, `Detections`, `Faces`, `Match`, `Person`,
  `Verification`, `EnrolReport`, `PhotoResult`; errors: `FaceRecognizerError` and subclasses.

See the README's "Use it from Python" for an example.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("face-recognizer")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Engine": "face_recognizer.engine",
    "find_pack": "face_recognizer.models",
    "open_store": "face_recognizer.store",
    "Matcher": "face_recognizer.matcher",
    "Recognizer": "face_recognizer.live",
    "enrol_files": "face_recognizer.enrol",
    "enrol_images": "face_recognizer.enrol",
    "EnrolReport": "face_recognizer.enrol",
    "PhotoResult": "face_recognizer.enrol",
    "read_image": "face_recognizer.images",
    "decode_image": "face_recognizer.images",
    "Frame": "face_recognizer.types",
    "FrameResult": "face_recognizer.types",
    "Track": "face_recognizer.types",
    "Detections": "face_recognizer.types",
    "Faces": "face_recognizer.types",
    "Match": "face_recognizer.types",
    "Person": "face_recognizer.types",
    "Verification": "face_recognizer.types",
    "FaceRecognizerError": "face_recognizer.errors",
    "FaceCountError": "face_recognizer.errors",
    "GalleryError": "face_recognizer.errors",
    "ImageReadError": "face_recognizer.errors",
    "ModelPackError": "face_recognizer.errors",
    "SourceError": "face_recognizer.errors",
}

__all__ = [
    "Detections",
    "Engine",
    "EnrolReport",
    "FaceCountError",
    "FaceRecognizerError",
    "Faces",
    "Frame",
    "FrameResult",
    "GalleryError",
    "ImageReadError",
    "Match",
    "Matcher",
    "ModelPackError",
    "Person",
    "PhotoResult",
    "Recognizer",
    "SourceError",
    "Track",
    "Verification",
    "__version__",
    "decode_image",
    "enrol_files",
    "enrol_images",
    "find_pack",
    "open_store",
    "read_image",
]

if TYPE_CHECKING:
    from face_recognizer.engine import Engine
    from face_recognizer.enrol import EnrolReport, PhotoResult, enrol_files, enrol_images
    from face_recognizer.errors import (
        FaceCountError,
        FaceRecognizerError,
        GalleryError,
        ImageReadError,
        ModelPackError,
        SourceError,
    )
    from face_recognizer.images import decode_image, read_image
    from face_recognizer.live import Recognizer
    from face_recognizer.matcher import Matcher
    from face_recognizer.models import find_pack
    from face_recognizer.store import open_store
    from face_recognizer.types import (
        Detections,
        Faces,
        Frame,
        FrameResult,
        Match,
        Person,
        Track,
        Verification,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'face_recognizer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
