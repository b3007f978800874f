"""Real galleries for tests: the shared clip's reference people, the three players of gdp.jpg.

people = reference_people(datasets)      # {"Barack Obama": [photo paths], ...}
enrol_people(engine, db, people)         # a SQLite gallery at `db`, every photo checked
faces = spurs(engine)                    # 3 EnrolFaces: Duncan, Ginobili, Parker
"""

from __future__ import annotations

from pathlib import Path

from face_recognizer.engine import Engine
from face_recognizer.enrol import EnrolFace, enrol_face
from face_recognizer.images import is_image_path, read_image
from face_recognizer.samples import sample_path
from face_recognizer.store.sqlite import Gallery


def reference_people(datasets: Path) -> dict[str, list[Path]]:
    """`videos/references` of the shared datasets: folder name (underscores as spaces) ->
    that person's photos, sorted."""
    refs = datasets / "videos" / "references"
    return {
        d.name.replace("_", " "): sorted(p for p in d.iterdir() if is_image_path(p))
        for d in sorted(refs.iterdir())
        if d.is_dir()
    }


def enrol_people(engine: Engine, db: Path, people: dict[str, list[Path]]) -> None:
    """Enrol each person's usable photos into the SQLite gallery at `db` (every person must
    keep at least one)."""
    with Gallery(db) as gallery:
        for name, paths in people.items():
            faces = [enrol_face(engine, read_image(p), str(p))[0] for p in paths]
            kept = [f for f in faces if f is not None]
            assert kept, name
            gallery.add_faces(name, kept, engine.pack.recognizer_id)


def spurs(engine: Engine) -> list[EnrolFace]:
    """The three Spurs players of gdp.jpg (Duncan, Ginobili, Parker), each its own face."""
    image = read_image(sample_path("gdp.jpg"))
    faces = engine.analyze(image)
    assert len(faces) >= 3
    crops = engine.align(image, faces.landmarks[:3])
    return [
        EnrolFace(faces.embeddings[i], crops[i], f"gdp.jpg#{i}", f"gdp{i}", 0.9, 100.0, 100.0)
        for i in range(3)
    ]
