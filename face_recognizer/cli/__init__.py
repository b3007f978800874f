"""Command line: the only place where errors become messages and exit codes.

Every command prints one line `Error: ...` for a user mistake or an environment problem,
the full traceback only with `face-recognizer --debug ...`, and exits 130 on Ctrl-C.
SIGTERM (`kill`, `timeout`, service managers) and SIGHUP (the terminal closed) end a command
the same way as Ctrl-C: temporary galleries are removed, open transactions roll back, a live
run writes its open tracks; the exit status is then 143 or 129 (128 + the signal's number).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click

from face_recognizer import __version__
from face_recognizer.errors import FaceRecognizerError


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit status: 0 done, 1 an error (one `Error:` line), 2 a wrong option, 3 a batch "
    "command (import, evaluate) finished but skipped something it lists, 130 Ctrl-C, "
    "143 SIGTERM, 129 SIGHUP (both stop a command as Ctrl-C does).",
)
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


# SIGTERM and SIGHUP stop a command as Ctrl-C does; the one that came, for the exit status.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
_stopped_by: int | None = None


def _stop(signum: int, _frame: FrameType | None) -> None:
    """Raise KeyboardInterrupt in the main thread, once: a second signal lets the cleanup
    that the first started finish."""
    global _stopped_by
    if _stopped_by is None:
        _stopped_by = signum
        raise KeyboardInterrupt


def _stop_on_signals() -> dict[int, Any]:
    """Install `_stop` for SIGTERM and SIGHUP (main thread only); the handlers it replaced."""
    global _stopped_by
    _stopped_by = None
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}


def exit_interrupted(text: str, signum: int | None = None) -> NoReturn:
    """Say how the command was stopped and exit 130 (Ctrl-C) or 128 + the signal's number
    (`signum`, or the one `_stop` caught)."""
    signum = signum or _stopped_by
    if signum is None:
        click.echo(text, err=True)
        sys.exit(130)
    click.echo(f"Stopped by {signal.Signals(signum).name}.", err=True)
    sys.exit(128 + signum)


def main(argv: list[str] | None = None, command: str | None = None) -> None:
    """Entry point of the `face-recognizer` console script, and with `command` of an entry
    script that runs one command (`register.py`): its `--help` then names the script."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    previous = _stop_on_signals()
    try:
        _run(args, command, debug)
    finally:  # a caller in the same process (a test) gets its own handlers back
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(args: list[str], command: str | None, debug: bool) -> None:
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
        exit_interrupted("Aborted.")
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        exit_interrupted("Interrupted.")
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
