"""CI installs what the tests use: every external program the tests look up or run, and every
Debian package a `missing(...)` message asks for, is listed in `.ci/apt-packages.txt`.

Without this, a new tool would make its tests skip on a fresh CI machine and CI would stay green
(or, with `CI` set, fail only there); here the gap shows on any machine.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from desktop import TOOLS

TESTS = Path(__file__).resolve().parent
APT_PACKAGES = TESTS.parent / ".ci" / "apt-packages.txt"
RUNNERS = {"run", "Popen", "call", "check_call", "check_output"}
APT_INSTALL = re.compile(r"apt(?:-get)? install ([a-z0-9][a-z0-9.+-]+)")  # as skip messages say


def apt_lines() -> dict[str, str]:
    """probe -> package, as `.ci/run` reads the file."""
    lines = {}
    for line in APT_PACKAGES.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            assert len(fields) == 2, f"{APT_PACKAGES}: expected 'probe package', got {line!r}"
            lines[fields[0]] = fields[1]
    return lines


def _name(node: ast.expr) -> str:
    """The called name: "which" for `shutil.which(...)`, "run" for `subprocess.run(...)`."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def programs_in(source: str) -> set[str]:
    """Programs a test file looks up (`which("x")`) or starts (`subprocess.run(["x", ...])`)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        called = _name(node.func)
        if called == "which" and isinstance(first, ast.Constant):
            found.add(str(first.value))
        elif called in RUNNERS and isinstance(first, ast.List) and first.elts:
            program = first.elts[0]
            if isinstance(program, ast.Constant) and isinstance(program.value, str):
                found.add(program.value)
    return found


def test_programs_in_a_snippet_are_found() -> None:
    snippet = (
        "import shutil, subprocess, sys\n"
        "shutil.which('convert')\n"
        "subprocess.run(['xdotool', 'key'])\n"
        "subprocess.Popen([sys.executable, '-c', 'pass'])\n"
    )
    assert programs_in(snippet) == {"convert", "xdotool"}


def test_every_program_the_tests_use_is_installed_by_ci() -> None:
    programs = set(TOOLS)
    for path in sorted(TESTS.glob("*.py")):
        programs |= programs_in(path.read_text(encoding="utf-8"))
    assert {"Xvfb", "xdotool", "import"} <= programs  # the scan sees what desktop.py runs
    probes = apt_lines()
    absent = sorted(p for p in programs if p not in probes)
    assert not absent, f"add a 'program package' line to {APT_PACKAGES} for: {absent}"


def test_every_package_a_skip_names_is_installed_by_ci() -> None:
    named = set(TOOLS.values())
    for path in sorted(TESTS.glob("*.py")):
        named |= set(APT_INSTALL.findall(path.read_text(encoding="utf-8")))
    packages = set(apt_lines().values())
    absent = sorted(named - packages)
    assert not absent, f"add these packages to {APT_PACKAGES}: {absent}"
