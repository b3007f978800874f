"""The package's shape: every module imports on its own, imports point one way, no `assert`
in library code, and the requirements match the APIs used."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest

import face_recognizer

PACKAGE = Path(face_recognizer.__file__).resolve().parent
MODULES = sorted(
    ".".join(("face_recognizer", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
        ".__init__"
    )
    for p in PACKAGE.rglob("*.py")
)
# Only these may import a user-interface or web framework (they sit at the top).
TOP = ("face_recognizer.cli", "face_recognizer.server", "face_recognizer.__main__")
FRAMEWORKS = ("click", "fastapi", "starlette", "uvicorn")
# Database drivers belong to the store; nothing else opens a database.
DRIVERS = ("sqlite3", "psycopg", "psycopg2", "asyncpg")


def _imports(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _module_path(name: str) -> Path:
    rel = Path(*name.split(".")[1:])
    package = PACKAGE / rel / "__init__.py"
    return package if package.is_file() else (PACKAGE / rel).with_suffix(".py")


def test_modules_were_found() -> None:
    assert len(MODULES) >= 25
    assert "face_recognizer.enrol" in MODULES
    assert "face_recognizer.cli.gallery" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports_on_its_own(module: str) -> None:
    """In a fresh interpreter, so an import cycle shows as `partially initialized module`.
    (`__main__` runs the command line when imported: it is run with --version instead.)"""
    code = f"import {module}"
    if module.endswith("__main__"):
        code = "import sys; sys.argv = ['face-recognizer', '--version']; import " + module
    if module.startswith("face_recognizer.server"):
        pytest.importorskip("fastapi")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_frameworks_only_at_the_top() -> None:
    checked = 0
    for module in MODULES:
        if module.startswith(TOP):
            continue
        used = {name.split(".")[0] for name in _imports(_module_path(module))}
        assert not used & set(FRAMEWORKS), f"{module} imports {used & set(FRAMEWORKS)}"
        checked += 1
    assert checked >= 15


def test_database_drivers_only_in_the_store() -> None:
    for module in MODULES:
        if module.startswith("face_recognizer.store"):
            continue
        used = {name.split(".")[0] for name in _imports(_module_path(module))}
        assert not used & set(DRIVERS), f"{module} imports {used & set(DRIVERS)}"


def test_the_pipeline_does_not_import_the_command_line() -> None:
    """Library modules never import `face_recognizer.cli` (or the server): the flow points up."""
    for module in MODULES:
        if module.startswith(TOP):
            continue
        ours = {n for n in _imports(_module_path(module)) if n.startswith("face_recognizer.")}
        bad = {n for n in ours if n.startswith(TOP)}
        assert not bad, f"{module} imports {bad}"


def test_no_assert_in_library_code() -> None:
    """`python -O` removes asserts: checks in library code must raise real errors."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{path.name}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Assert)]
    assert found == []


def test_opencv_requirement_has_imwriteanimation() -> None:
    """`recognize --output x.gif` calls cv2.imwriteanimation, which OpenCV added in 4.11."""
    reqs = [r for r in requires("face-recognizer") or [] if r.startswith("opencv-python")]
    assert len(reqs) == 1
    low = reqs[0].split(">=")[1].split(",")[0].split(";")[0].strip()
    assert tuple(int(x) for x in low.split(".")[:2]) >= (4, 11)


def test_error_summary_of_an_empty_error() -> None:
    """ONNX Runtime can raise an error with an empty message; the CUDA fallback used
    `str(exc).splitlines()[-1]`, an IndexError."""
    from face_recognizer.engine import error_summary

    assert error_summary(RuntimeError("")) == "RuntimeError"
    assert error_summary(RuntimeError("  \n ")) == "RuntimeError"
    assert error_summary(RuntimeError("load failed\nCUDA device 3 not found")) == (
        "CUDA device 3 not found"
    )


def test_import_face_recognizer_stays_light() -> None:
    code = (
        "import sys, face_recognizer as fr\n"
        "heavy = [m for m in ('cv2', 'onnxruntime', 'faiss', 'click') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert fr.Engine.__name__ == 'Engine' and callable(fr.open_store)\n"
        "print(len(fr.__all__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 20


def test_readme_python_example_runs(tmp_path: Path) -> None:
    """The README's "Use it from Python" block, as written, in a fresh folder."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use it from Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "1 ['ok']"
    assert lines[1].startswith("Yao Ming 1.0 (")
    assert len(lines) == 2
    assert (tmp_path / "example-gallery").is_dir()


def test_public_names_all_resolve() -> None:
    exported = [n for n in face_recognizer.__all__ if n != "__version__"]
    assert len(exported) >= 20
    for name in exported:
        assert getattr(face_recognizer, name).__name__ == name
