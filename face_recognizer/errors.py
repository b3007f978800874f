"""One base error with a hint (what the user should do), and a few subclasses.

Library code raises these; only `cli/` and `server/` turn them into a message and an exit
code or an HTTP status. Messages and hints use words that a command-line user and an API
client both understand: they never name a command-line flag. An error caused by one argument
names it in `param` (the library's parameter name, e.g. "pick" or "db"), and `value` when a
particular value would fix it ("largest"); the CLI turns those into "--pick largest".
"""

from __future__ import annotations


class FaceRecognizerError(Exception):
    """Base error. `str(err)` is one sentence saying what went wrong; `hint` says what to do.

    Attributes:
        message: what went wrong, one sentence.
        hint: what to do about it, or None.
        param: the parameter at fault ("pick", "db", "enrol", ...), or None.
        value: a value of `param` that would help ("largest"), or None.
    """

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        param: str | None = None,
        value: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.param = param
        self.value = value

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class ModelPackError(FaceRecognizerError):
    """A model pack could not be found or is incomplete."""


class ImageReadError(FaceRecognizerError):
    """An image file is missing or could not be decoded."""


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than can be decoded safely (`images.MAX_PIXELS`)."""


class SourceError(FaceRecognizerError):
    """A camera, video, URL or folder could not be opened or read."""


class GalleryError(FaceRecognizerError):
    """The gallery database is missing, corrupt, foreign, or made with another model pack."""


class GalleryUnavailableError(GalleryError):
    """The gallery's server cannot be reached right now; the same call may work later."""


class FaceCountError(FaceRecognizerError):
    """A photo that must hold one face holds none or several."""
