"""Sightings commands: `sightings` (and `sightings purge`), `attendance`, `unknowns` (and
`unknowns name`, `unknowns forget`)."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click

from face_recognizer.cli.options import EngineOptions, db_option, engine_options, load_engine
from face_recognizer.errors import FaceRecognizerError
from face_recognizer.store import Store, open_store
from face_recognizer.store.base import Sighting
from face_recognizer.words import plural

SHEET_CROPS = 18  # crops on a contact sheet
NAME_CROPS = 5  # best crops of a group enrolled by `unknowns name`
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, option: str) -> datetime:
    """A time given on the command line, as an aware datetime.

    Accepts `2026-11-30`, `2026-11-30 14:05`, `2026-11-30T14:05:00+01:00`, `today`,
    `yesterday`, `now`, and `30m` / `2h` / `3d` / `1w` ago. Times without an offset are local.
    """
    clean = text.strip().lower()
    now = datetime.now().astimezone()
    midnight = datetime.combine(now.date(), time()).astimezone()
    if clean == "now":
        return now
    if clean == "today":
        return midnight
    if clean == "yesterday":
        return midnight - timedelta(days=1)
    relative = _RELATIVE.match(clean)
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: use e.g. 2026-11-30, '2026-11-30 14:05', today, "
            "yesterday or 2h (two hours ago).",
            param_hint=option,
        ) from None
    return when if when.tzinfo is not None else when.astimezone()


def parse_day(text: str) -> date:
    clean = text.strip().lower()
    today = datetime.now().astimezone().date()
    if clean == "today":
        return today
    if clean == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a day: use e.g. 2026-11-30, today or yesterday.",
            param_hint="--date",
        ) from None


def _local(when: datetime) -> str:
    return when.astimezone().isoformat(timespec="seconds")


def sighting_json(s: Sighting) -> dict[str, Any]:
    """The `--json` object of a sighting. `start`/`end` are seconds into the file for a
    video, local times (ISO 8601 with offset) for cameras, URLs and photos."""
    return {
        "id": s.id,
        "source": s.source,
        "start": round(s.start_pos, 3) if s.start_pos is not None else _local(s.started),
        "end": round(s.end_pos, 3) if s.end_pos is not None else _local(s.ended),
        "name": s.name,
        "best_similarity": round(s.best_similarity, 3),
        "mean_similarity": round(s.mean_similarity, 3),
        "frames": s.frames,
    }


def _open(db: Path | None) -> Store:
    return open_store(db, create=False)


def _print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    text = [[str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(header)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _print_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


# -- sightings ------------------------------------------------------------------------------
@click.group(invoke_without_command=True)
@click.option("--since", metavar="WHEN", help="Only sightings that started at or after WHEN.")
@click.option("--until", metavar="WHEN", help="Only sightings that started before WHEN.")
@click.option("--name", metavar="NAME", help="Only this person's sightings.")
@click.option("--unknown", is_flag=True, help="Only strangers' sightings.")
@click.option("--source", metavar="S", help="Only sightings from this source (as given).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@db_option
@click.pass_context
def sightings(
    click_ctx: click.Context,
    since: str | None,
    until: str | None,
    name: str | None,
    unknown: bool,
    source: str | None,
    as_json: bool,
    as_csv: bool,
    db: Path | None,
) -> None:
    """Who was seen when: one row per tracked face (logged by `recognize`).

    WHEN is a date or time (2026-11-30, '2026-11-30 14:05', local time unless it has an
    offset), today, yesterday, or an age: 30m, 2h, 3d, 1w.

    \b
    Examples:
      face-recognizer sightings --since today
      face-recognizer sightings --name "Ana Lima" --json
      face-recognizer sightings --unknown --since 2h --csv > strangers.csv
      face-recognizer sightings purge --before 30d
    """
    if click_ctx.invoked_subcommand is not None:
        return
    if name is not None and unknown:
        raise click.UsageError("--name and --unknown exclude each other.")
    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other.")
    start = parse_when(since, "--since") if since else None
    end = parse_when(until, "--until") if until else None
    with _open(db) as store:
        rows = store.sightings(since=start, until=end, name=name, unknown=unknown, source=source)
    header = ["id", "source", "start", "end", "name", "best_similarity", "mean_similarity"]
    header.append("frames")
    if as_json:
        for s in rows:
            click.echo(json.dumps(sighting_json(s), ensure_ascii=False))
        return
    if as_csv:
        _print_csv(header, [list(sighting_json(s).values()) for s in rows])
        return
    if not rows:
        click.echo("No sightings.", err=True)
        return
    table = []
    for s in rows:
        data = sighting_json(s)
        where = "" if s.start_pos is None else f" ({s.start_pos:.1f}-{s.end_pos or 0:.1f} s)"
        table.append(
            [
                s.id,
                s.started.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                s.ended.astimezone().strftime("%H:%M:%S"),
                s.name if s.name is not None else "Unknown",
                f"{data['best_similarity']:.2f}",
                f"{data['mean_similarity']:.2f}",
                s.frames,
                s.source + where,
            ]
        )
    _print_table(["ID", "START", "END", "NAME", "BEST", "MEAN", "FRAMES", "SOURCE"], table)


@sightings.command("purge")
@click.option("--before", metavar="WHEN", required=True, help="Delete what started before.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@db_option
def purge(before: str, yes: bool, db: Path | None) -> None:
    """Delete the sightings (with their crops and embeddings) that started before WHEN.

    \b
    Examples:
      face-recognizer sightings purge --before 30d --yes
      face-recognizer sightings purge --before 2026-11-01
    """
    cutoff = parse_when(before, "--before")
    with _open(db) as store:
        old = [s.id for s in store.sightings(until=cutoff)]
        if not old:
            click.echo(f"No sightings before {_local(cutoff)}.")
            return
        question = f"Delete {plural(len(old), 'sighting')} before {_local(cutoff)}?"
        if not yes and not click.confirm(question):
            click.echo("Nothing deleted.")
            return
        gone = store.delete_sightings(old)
    click.echo(f"Deleted {plural(gone, 'sighting')} before {_local(cutoff)}.")


# -- attendance -----------------------------------------------------------------------------
@click.command()
@click.option("--date", "day", metavar="DAY", help="Only this day (2026-11-30, today, ...).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@db_option
def attendance(day: str | None, as_csv: bool, db: Path | None) -> None:
    """One row per person per day: first seen, last seen, number of sightings.

    Days are local calendar days; strangers are not listed (see `unknowns`).

    \b
    Examples:
      face-recognizer attendance --date today
      face-recognizer attendance --csv > attendance.csv
    """
    since = until = None
    if day is not None:
        when = parse_day(day)
        since = datetime.combine(when, time()).astimezone()
        until = datetime.combine(when + timedelta(days=1), time()).astimezone()
    with _open(db) as store:
        rows = [s for s in store.sightings(since=since, until=until) if s.name is not None]
    days: dict[tuple[date, str], list[Sighting]] = {}
    for s in rows:
        days.setdefault((s.started.astimezone().date(), str(s.name)), []).append(s)
    table = [
        [
            d.isoformat(),
            who,
            min(s.started for s in seen).astimezone().strftime("%H:%M:%S"),
            max(s.ended for s in seen).astimezone().strftime("%H:%M:%S"),
            len(seen),
        ]
        for (d, who), seen in sorted(days.items())
    ]
    header = ["date", "name", "first_seen", "last_seen", "sightings"]
    if as_csv:
        _print_csv(header, table)
    elif not table:
        click.echo("No one was seen.", err=True)
    else:
        _print_table([h.upper().replace("_", " ") for h in header], table)


# -- unknowns -------------------------------------------------------------------------------
def _pack_id(model_pack: str | None, model_dir: Path | None) -> str:
    from face_recognizer.models import find_pack

    return find_pack(model_pack, model_dir).recognizer_id


def pack_options(func: Any) -> Any:
    func = click.option(
        "--model-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Folder with the model pack whose embeddings to group.",
    )(func)
    return click.option(
        "--model-pack", metavar="NAME", default=None, help="Model pack whose embeddings to group."
    )(func)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@click.option(
    "--sheet",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write a contact sheet PNG of each group's faces into this folder.",
)
@pack_options
@db_option
@click.pass_context
def unknowns(
    click_ctx: click.Context,
    as_json: bool,
    sheet: Path | None,
    model_pack: str | None,
    model_dir: Path | None,
    db: Path | None,
) -> None:
    """Strangers who came back: the unknown sightings grouped by face.

    Each group has an id that stays the same when more sightings arrive, how many sightings
    it has, on how many days, and when it was first and last seen.

    \b
    Examples:
      face-recognizer unknowns
      face-recognizer unknowns --json
      face-recognizer unknowns --sheet sheets/
      face-recognizer unknowns name 3 "Ana Lima"
      face-recognizer unknowns forget 4
    """
    if click_ctx.invoked_subcommand is not None:
        return
    from face_recognizer.sightings.groups import best_crops, contact_sheet, regroup

    with _open(db) as store:
        groups = regroup(store, _pack_id(model_pack, model_dir))
        sheets = []
        if sheet is not None:
            import cv2

            sheet.mkdir(parents=True, exist_ok=True)
            for g in groups:
                crops = [c for _, c in best_crops(store, g, SHEET_CROPS)]
                title = f"Group {g.id}: {plural(g.sightings, 'sighting')}, {plural(g.days, 'day')}"
                path = sheet / f"group-{g.id}.png"
                image = contact_sheet(crops, title)
                if not cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
                    raise FaceRecognizerError(f"Could not write {str(path)!r}.")
                sheets.append(path)
    if as_json:
        click.echo(json.dumps([g.to_json() for g in groups]))
    elif not groups:
        click.echo("No stranger was seen more than once.", err=True)
    else:
        _print_table(
            ["GROUP", "SIGHTINGS", "DAYS", "FIRST", "LAST"],
            [
                [
                    g.id,
                    g.sightings,
                    g.days,
                    g.first.astimezone().strftime("%Y-%m-%d %H:%M"),
                    g.last.astimezone().strftime("%Y-%m-%d %H:%M"),
                ]
                for g in groups
            ],
        )
    if sheets:
        click.echo(f"Wrote {plural(len(sheets), 'contact sheet')} to {sheet}", err=True)


def _find_group(store: Store, group_id: int, recognizer_id: str) -> Any:
    from face_recognizer.sightings.groups import regroup

    group = next((g for g in regroup(store, recognizer_id) if g.id == group_id), None)
    if group is None:
        raise FaceRecognizerError(
            f"There is no group {group_id}.", hint="`face-recognizer unknowns` lists them."
        )
    return group


@unknowns.command("name")
@click.argument("group_id", metavar="ID", type=int)
@click.argument("name")
@db_option
@engine_options
def name_group(group_id: int, name: str, db: Path | None, engine_opts: EngineOptions) -> None:
    """Enrol a group as NAME: its best face crops go through the same photo checks as
    `import`, and its sightings become NAME's.

    \b
    Example:
      face-recognizer unknowns name 3 "Ana Lima"
    """
    from face_recognizer.enrol import enrol_images
    from face_recognizer.sightings.groups import best_crops
    from face_recognizer.store.base import normalize_name

    name = normalize_name(name)
    engine = load_engine(engine_opts)
    with _open(db) as store:
        group = _find_group(store, group_id, engine.pack.recognizer_id)
        crops = best_crops(store, group, NAME_CROPS)
        report = enrol_images(
            engine, store, name, [c for _, c in crops], [f"sighting {i}" for i, _ in crops]
        )
        if report.added == 0 and name not in {p.name for p in store.people()}:
            reasons = ", ".join(f"{n} {why}" for why, n in report.skipped.most_common())
            raise FaceRecognizerError(
                f"None of group {group_id}'s {len(crops)} best faces could be enrolled"
                f" ({reasons or 'no usable face'}); nothing changed.",
                hint="Enrol the person from photos with `face-recognizer register --images`.",
            )
        relabelled = store.name_sightings(list(group.sighting_ids), name)
    click.echo(
        f"Named group {group_id} {name}: enrolled {plural(report.added, 'face')}, "
        f"{plural(relabelled, 'sighting')} {'is' if relabelled == 1 else 'are'} now {name}'s."
    )


@unknowns.command("forget")
@click.argument("group_id", metavar="ID", type=int)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pack_options
@db_option
def forget_group(
    group_id: int, yes: bool, model_pack: str | None, model_dir: Path | None, db: Path | None
) -> None:
    """Delete a group's sightings, with their crops and embeddings.

    \b
    Example:
      face-recognizer unknowns forget 4 --yes
    """
    with _open(db) as store:
        group = _find_group(store, group_id, _pack_id(model_pack, model_dir))
        if not yes and not click.confirm(
            f"Delete group {group_id}'s {plural(group.sightings, 'sighting')}?"
        ):
            click.echo("Nothing deleted.")
            return
        gone = store.delete_sightings(list(group.sighting_ids))
    click.echo(f"Forgot group {group_id}: deleted {plural(gone, 'sighting')}.")


__all__ = ["attendance", "parse_when", "sightings", "unknowns"]
