"""Command line: the only place where errors become messages and exit codes.

Every command prints one line `Error: ...` for a user mistake or an environment problem,
the full traceback only with `face-recognizer --debug ...`, and exits 130 on Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from face_recognizer import __version__
from face_recognizer.errors import FaceRecognizerError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="face-recognizer")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(click_ctx: click.Context, debug: bool) -> None:
    """Real-time face recognition: register people, then recognize them live.

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
    """Commands that live in their own modules (`cli/*.py`), one line each."""
    from face_recognizer.cli import (
        evaluate,
        gallery,
        keys,
        migrate,
        recognize,
        register,
        serve,
        sightings,
        verify,
    )

    for command in (
        recognize.recognize,
        recognize.demo,
        verify.verify,
        evaluate.evaluate,
        register.register,
        gallery.people,
        gallery.import_folder,
        gallery.reindex,
        sightings.sightings,
        sightings.attendance,
        sightings.unknowns,
        migrate.migrate,
        serve.serve,
        keys.keys,
    ):
        cli.add_command(command)


_add_commands()


# Library parameters (`FaceRecognizerError.param`) whose flag is not "--" + the name.
FLAGS: dict[str, str] = {"db": "--db", "name": "--name"}


def error_text(exc: FaceRecognizerError) -> str:
    """The line after `Error: `: the library's message and hint, with the flag that fixes it
    (`param="pick", value="largest"` becomes "--pick largest")."""
    if exc.param is None:
        return str(exc)
    flag = FLAGS.get(exc.param, "--" + exc.param.replace("_", "-"))
    if exc.value is not None:
        flag += f" {exc.value}"
    if exc.hint:
        return f"{exc.message} {exc.hint.rstrip('.')}: {flag}."
    return f"{exc.message.rstrip('.')} ({flag})."


def main(argv: list[str] | None = None, command: str | None = None) -> None:
    """Entry point of the `face-recognizer` console script, and with `command` of an entry
    script that runs one command (`register.py`): its `--help` then names the script."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # without standalone mode, click returns the code of an Exit raised by a command
        if command is None:
            code = cli.main(args=args, prog_name="face-recognizer", standalone_mode=False)
        else:
            if debug:
                args = [a for a in args if a != "--debug"]
            prog = Path(sys.argv[0]).name or command
            code = cli.commands[command].main(
                args=args,
                prog_name=prog,
                obj={"debug": debug},
                standalone_mode=False,
                help_option_names=["-h", "--help"],  # as under the group
            )
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
        click.echo(f"Error: {error_text(exc)}", err=True)
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
