"""Command line: the only place where errors become messages and exit codes.

Every command prints one line `Error: ...` for a user mistake or an environment problem,
the full traceback only with `face-recognizer --debug ...`, and exits 130 on Ctrl-C.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from face_recognizer import __version__
from face_recognizer.errors import FaceRecognizerError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class EngineOptions:
    ctx: int
    model_pack: str | None
    model_dir: Path | None
    det_size: int


def engine_options(func: F) -> F:
    """Add --ctx, --model-pack, --model-dir and --det-size; pass them as `engine_opts`."""
    from face_recognizer.engine import DEFAULT_DET_SIZE
    from face_recognizer.models import BUILTIN_PACK

    @click.option(
        "--ctx",
        type=click.IntRange(min=-1),
        default=0,
        show_default=True,
        help="CUDA device index, or -1 for CPU. Falls back to CPU when CUDA cannot be used.",
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
    """Add --db DIR (default: $FACE_RECOGNIZER_DB, else ./db); passed on as `db`."""
    return click.option(
        "--db",
        type=click.Path(path_type=Path),
        default=None,
        help="Gallery folder (default: $FACE_RECOGNIZER_DB, else ./db).",
    )(func)


def load_engine(opts: EngineOptions) -> Any:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="face-recognizer")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(click_ctx: click.Context, debug: bool) -> None:
    """Real-time face recognition: register people, then recognise them live.

    \b
    Examples:
      face-recognizer demo                      # no camera needed
      face-recognizer register -n Ana           # S to snap, Q to finish
      face-recognizer recognize --source 0      # live window
    """
    click_ctx.obj = {"debug": debug}


@cli.command()
def packs() -> None:
    """List the model packs that can be used without --model-dir.

    \b
    Example:
      face-recognizer packs
    """
    from face_recognizer.models import available_packs, find_pack

    names = available_packs()
    if not names:
        raise FaceRecognizerError(
            "No model pack was found.", hint="Run the README's setup command."
        )
    for name in names:
        pack = find_pack(name)
        click.echo(f"{name}\t{pack.origin}\t{pack.detector.name} + {pack.recognizer.name}")


def _add_commands() -> None:
    """Commands that live in their own modules (`cli_*.py`), one line each."""
    from face_recognizer.cli_recognize import demo, recognize

    cli.add_command(recognize)
    cli.add_command(demo)
    from face_recognizer.cli_verify import evaluate, verify

    cli.add_command(verify)
    cli.add_command(evaluate)
    from face_recognizer.cli_register import register

    cli.add_command(register)
    from face_recognizer.cli_gallery import import_folder, people, reindex

    cli.add_command(people)
    cli.add_command(import_folder)
    cli.add_command(reindex)


_add_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `face-recognizer` console script."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # without standalone mode, click returns the code of an Exit raised by a command
        code = cli.main(args=args, prog_name="face-recognizer", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except FaceRecognizerError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # one line for users, the traceback with --debug
        if debug:
            raise
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
