"""Missing tools and data: a skip with the reason on a user's machine, a failure in CI.

CI (`CI` set, as `.ci/run` runs) installs every tool the tests need and has `../shared/datasets`
beside the checkout, so a skip there would only hide a missing install step.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing(what: str) -> NoReturn:
    """Skip (or, in CI, fail) the current test because `what` is not there; `what` says how to
    get it, e.g. "ImageMagick's `import` (apt install imagemagick)"."""
    if in_ci():
        pytest.fail(f"CI is set but {what} is missing: .ci/run must install it", pytrace=False)
    pytest.skip(f"{what} is missing")
