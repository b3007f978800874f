"""`face-recognizer keys create/list/revoke`: API keys for `face-recognizer serve`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from face_recognizer.cli.options import db_option
from face_recognizer.store import open_store


@click.group()
def keys() -> None:
    """Create, list and revoke the API keys of `face-recognizer serve`.

    Only a key's hash is stored (in the gallery database); the key itself is printed once,
    alone on the last line, so scripts can take it with `tail -n 1`.

    \b
    Examples:
      face-recognizer keys create kiosk --read-only
      face-recognizer keys list
      face-recognizer keys revoke kiosk
    """


@keys.command("create")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="May identify, verify and list, not change.")
@db_option
def create(name: str, read_only: bool, db: Path | None) -> None:
    """Make a key called NAME and print it (once).

    \b
    Example:
      KEY=$(face-recognizer keys create door-camera | tail -n 1)
    """
    from face_recognizer.server.gallery import create_key

    with open_store(db) as store:
        key = create_key(store, name, read_only)
    kind = "read-only" if read_only else "read-write"
    click.echo(f"Created the {kind} key {name.strip()!r}. It is shown only this once:")
    click.echo(key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@db_option
def list_(as_json: bool, db: Path | None) -> None:
    """Show the keys: name, read-only or not, when made (never the keys themselves).

    \b
    Example:
      face-recognizer keys list --json
    """
    with open_store(db, create=False) as store:
        found = store.api_keys()
    if as_json:
        click.echo(json.dumps([k.to_json() for k in found], ensure_ascii=False))
        return
    if not found:
        click.echo("No API key exists yet: `face-recognizer keys create NAME` makes one.", err=True)
        return
    width = max(len("NAME"), *(len(k.name) for k in found))
    click.echo(f"{'NAME':<{width}}  ACCESS      CREATED")
    for k in found:
        access = "read-only" if k.read_only else "read-write"
        click.echo(f"{k.name:<{width}}  {access:<10}  {k.created:%Y-%m-%d %H:%M}")


@keys.command("revoke")
@click.argument("name")
@db_option
def revoke(name: str, db: Path | None) -> None:
    """Delete the key NAME: it stops working at once, also in a running server.

    \b
    Example:
      face-recognizer keys revoke kiosk
    """
    from face_recognizer.server.gallery import revoke_key

    with open_store(db, create=False) as store:
        revoke_key(store, name)
    click.echo(f"Revoked the key {name.strip()!r}.")
