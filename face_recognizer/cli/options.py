"""Options shared by the commands: the engine (--ctx, --model-pack, ...) and the gallery (--db)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from face_recognizer.engine import Engine

F = TypeVar("F", bound=Callable[..., Any])


class _Similarity(click.FloatRange):
    """A cosine similarity in [-1, 1]; click's FloatRange lets `nan` through."""

    name = "similarity"

    def __init__(self) -> None:
        super().__init__(-1.0, 1.0)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:  # nan
            self.fail(f"{value!r} is not a number; give a similarity between -1 and 1.", param, ctx)
        return number


SIMILARITY = _Similarity()

SKIPPED_EXIT = 3  # a batch command finished, but left out what it lists as skipped
SKIPPED_HELP = (
    f"Exit status: 0 when everything was used, {SKIPPED_EXIT} when the run finished but "
    "skipped something (each item is listed with its reason), 1 on an error, 130 on Ctrl-C, "
    "143 on SIGTERM and 129 on SIGHUP (each stops it as Ctrl-C does)."
)

SAME_PHOTO_OK = click.option(
    "--same-photo-ok",
    is_flag=True,
    help="Enrol a photo even when the same file is already enrolled under another person.",
)


@dataclass(frozen=True)
class EngineOptions:
    ctx: int
    model_pack: str | None
    model_dir: Path | None
    det_size: int


CTX_ENV = "FACE_RECOGNIZER_CTX"


def parse_ctx(click_ctx: click.Context, param: click.Parameter, value: str | int) -> int:
    """--ctx: "auto" (resolved here, see `engine.auto_ctx`), -1 for the CPU or a GPU index."""
    text = str(value).strip().lower()
    if text == "auto":
        from face_recognizer.engine import auto_ctx

        return auto_ctx()
    try:
        number = int(text)
    except ValueError:
        number = -2
    if number < -1:
        raise click.BadParameter(
            f"{value!r} is not auto, -1 (the CPU) or a CUDA device index (from --ctx or ${CTX_ENV})"
        )
    return number


def engine_options(func: F) -> F:
    """Add --ctx, --model-pack, --model-dir and --det-size; pass them as `engine_opts`."""
    from face_recognizer.engine import DEFAULT_DET_SIZE
    from face_recognizer.models import BUILTIN_PACK

    @click.option(
        "--ctx",
        metavar="auto|N",
        default="auto",
        callback=parse_ctx,
        envvar=CTX_ENV,
        help=(
            "Where the models run: auto (GPU 0 when an NVIDIA GPU is there, else the CPU), a "
            "CUDA device index, or -1 for the CPU; a GPU that cannot be used falls back to the "
            f"CPU, saying so. Default: ${CTX_ENV}, else auto."
        ),
    )
    @click.option(
        "--model-pack",
        metavar="NAME",
        default=None,
        help=f"Model pack: {BUILTIN_PACK} (built in) or a folder name in ~/.insightface/models.",
    )
    @click.option(
        "--model-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Folder holding one detector and one recognizer ONNX (overrides --model-pack).",
    )
    @click.option(
        "--det-size",
        type=click.IntRange(160, 1920),
        default=DEFAULT_DET_SIZE,
        show_default=True,
        help="Long side of the detector input in pixels (multiple of 32).",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        ctx: int,
        model_pack: str | None,
        model_dir: Path | None,
        det_size: int,
        **kwargs: Any,
    ) -> Any:
        if det_size % 32:
            raise click.BadParameter("must be a multiple of 32", param_hint="--det-size")
        opts = EngineOptions(ctx, model_pack, model_dir, det_size)
        return func(*args, engine_opts=opts, **kwargs)

    return wrapper  # type: ignore[return-value]


def db_option(func: F) -> F:
    """Add --db DIR|URL (default: $FACE_RECOGNIZER_DB, else ./db); passed on as `db` (a str:
    a folder, or a postgresql:// URL, which a click.Path would mangle)."""
    return click.option(
        "--db",
        metavar="DIR|URL",
        default=None,
        help="Gallery: a folder, or postgresql://user:pass@host/db "
        "(default: $FACE_RECOGNIZER_DB, else ./db).",
    )(func)


def count_reasons(counts: Counter[str]) -> str:
    """`1 no face, 2 too blurred`, most common first; `; ` between them when a reason holds a
    comma ("several faces, none clearly Ana")."""
    items = counts.most_common()
    sep = "; " if any("," in reason for reason, _ in items) else ", "
    return sep.join(f"{n} {reason}" for reason, n in items)


def enrol_pick_option(func: F) -> F:
    """Add --pick largest|center (enrolment from photos); passed on as `pick`."""
    return click.option(
        "--pick",
        type=click.Choice(["largest", "center"]),
        default=None,
        help="In a photo of several faces with nothing to compare them with (no other photo "
        "of the person shows one of them), take this face instead of skipping the photo.",
    )(func)


def threshold_option(func: F) -> F:
    """Add --threshold (a similarity in [-1, 1]; default: the gallery's, else built in)."""
    return click.option(
        "--threshold",
        type=SIMILARITY,
        default=None,
        help="Similarity needed for 'same person' (default: the gallery's setting, else the "
        "built-in one).",
    )(func)


def load_engine(opts: EngineOptions) -> Engine:
    """Build the engine and say in one line (stderr) when a GPU asked for is not used."""
    from face_recognizer.engine import Engine
    from face_recognizer.models import find_pack

    pack = find_pack(opts.model_pack, opts.model_dir)
    engine = Engine(pack, ctx=opts.ctx, det_size=opts.det_size)
    if engine.device.fallback_reason:
        click.echo(
            f"GPU {opts.ctx} not available ({engine.device.fallback_reason}); running on CPU",
            err=True,
        )
    return engine
