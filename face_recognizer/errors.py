"""One base error with a hint (what the user should do), and a few subclasses.

Library code raises these; only `cli/` turns them into a message and an exit code.
"""

from __future__ import annotations


class FaceRecognizerError(Exception):
    """Base error. `str(err)` is one sentence saying what went wrong; `hint` says what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class ModelPackError(FaceRecognizerError):
    """A model pack could not be found or is incomplete."""


class ImageReadError(FaceRecognizerError):
    """An image file is missing or could not be decoded."""


class SourceError(FaceRecognizerError):
    """A camera, video, URL or folder could not be opened or read."""


class GalleryError(FaceRecognizerError):
    """The gallery database is missing, corrupt, foreign, or made with another model pack."""


class FaceCountError(FaceRecognizerError):
    """A photo that must hold one face holds none or several."""
