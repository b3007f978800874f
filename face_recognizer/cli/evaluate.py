"""Command `evaluate`: accuracy on the user's own labelled photos, and a suggested threshold."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from click.core import ParameterSource

from face_recognizer.cli.options import (
    SKIPPED_EXIT,
    SKIPPED_HELP,
    EngineOptions,
    db_option,
    engine_options,
    load_engine,
    threshold_option,
)


@click.command(epilog=SKIPPED_HELP)
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--unknowns",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of people who are never enrolled (DIR2/<person>/<photos>): the strangers.",
)
@click.option(
    "--enrol",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Enrol the first K photos (by file name) of each person; probe the rest.",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder to write ROC.png, histograms.png and summary.md into.",
)
@threshold_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option(
    "--apply", is_flag=True, help="Store the suggested threshold in the --db gallery's settings."
)
@db_option
@engine_options
def evaluate(
    folder: Path,
    unknowns: Path | None,
    enrol: int,
    report: Path | None,
    threshold: float | None,
    as_json: bool,
    apply: bool,
    db: str | None,
    engine_opts: EngineOptions,
) -> None:
    """Measure accuracy on your own labelled photos and suggest a threshold.

    FOLDER holds one sub-folder of photos per person. The first K photos of each are
    enrolled into a temporary gallery (never yours), the rest are probes; --unknowns
    people are strangers. The headline is what recognize decides: the majority vote at
    the threshold in use (how many probes it names correctly, wrongly or not at all, and
    how many strangers it names); nearest neighbour and mean template follow as
    comparisons, then the suggested threshold, open-set identification at FAR 10/1/0.1%
    and pair TPR at fixed FPRs with ROC-AUC. Every report names the version, model pack,
    command, threshold, data and date. What cannot be used (a folder whose name cannot be
    a person's, an unreadable photo, a photo without one usable face) is skipped and listed
    at the end with its reason.

    \b
    Examples:
      face-recognizer evaluate photos/ --unknowns strangers/ --report out/
      face-recognizer evaluate photos/ --enrol 5 --json
      face-recognizer evaluate photos/ --unknowns strangers/ --apply   # recognize uses it
    """
    from face_recognizer import __version__
    from face_recognizer.evaluation.evaluate import evaluate as run_evaluation
    from face_recognizer.evaluation.evaluate import split_dataset
    from face_recognizer.evaluation.report import (
        Provenance,
        report_json,
        summary_text,
        write_report,
    )
    from face_recognizer.matcher import DEFAULT_K
    from face_recognizer.verify import resolve_threshold

    command = _command_line(click.get_current_context())
    split = split_dataset(folder, enrol, unknowns)
    current, origin = resolve_threshold(threshold, db)
    engine = load_engine(engine_opts)
    total = len(split.enrol) + len(split.probes) + len(split.strangers)
    with click.progressbar(
        length=total, label="Embedding photos", file=sys.stderr, show_pos=True
    ) as bar:
        result = run_evaluation(engine, split, current, k=DEFAULT_K, on_progress=bar.update)
    provenance = Provenance(
        version=__version__,
        model_pack=engine.pack.name,
        command=command,
        threshold=current,
        threshold_origin=origin,
        k=DEFAULT_K,
        folder=str(folder.resolve()),
        unknowns=None if unknowns is None else str(unknowns.resolve()),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    if as_json:
        click.echo(json.dumps(report_json(result, provenance)))
    else:
        click.echo(summary_text(result, provenance), nl=False)
    if report is not None:
        for path in write_report(result, provenance, report):
            click.echo(f"Wrote {path}", err=True)
    if apply:
        _apply_threshold(db, result.suggested.threshold)
    if result.skipped:
        raise click.exceptions.Exit(SKIPPED_EXIT)


def _command_line(click_ctx: click.Context) -> str:
    """The command that reproduces this run: what was given on the command line (or through
    the environment), in canonical form, without the defaults."""
    words = click_ctx.command_path.split()
    for param in click_ctx.command.params:
        if param.name is None:
            continue
        source = click_ctx.get_parameter_source(param.name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        value = click_ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            words.append(str(value))
        elif isinstance(param, click.Option) and param.is_flag:
            if value:
                words.append(param.opts[0])
        elif value is not None:
            words += [param.opts[0], str(value)]
    return shlex.join(words)


def _apply_threshold(db: str | None, value: float) -> None:
    from face_recognizer.matcher import THRESHOLD_SETTING
    from face_recognizer.store import open_store

    with open_store(db) as gallery:
        gallery.set_setting(THRESHOLD_SETTING, f"{value:.3f}")
        where = gallery.location
    click.echo(f"Stored threshold {value:.3f} in the gallery {where}", err=True)
