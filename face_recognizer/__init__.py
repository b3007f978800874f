"""face_recognizer: real-time face recognition with InsightFace, ArcFace and a FAISS gallery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("face-recognizer")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
