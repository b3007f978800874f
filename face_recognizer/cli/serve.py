"""`face-recognizer serve`: the REST API and the web console (the `[server]` extra)."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
from pathlib import Path
from types import FrameType

import click

from face_recognizer.cli.options import EngineOptions, db_option, engine_options, load_engine
from face_recognizer.errors import FaceRecognizerError

SERVER_EXTRA_HINT = (
    "Install the server extra: .venv/bin/python -m uv pip install --python .venv/bin/python "
    "-e '.[server]'"
)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, or one sentence saying why not (port taken, bad address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise FaceRecognizerError(
                f"Port {port} on {host} is already in use; pick another with --port."
            ) from None
        raise FaceRecognizerError(f"Cannot listen on {host}:{port} ({exc.strerror}).") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0: any free port, printed at start).",
)
@db_option
@click.option(
    "--source",
    default=None,
    metavar="CAMERA|FILE|URL",
    help="Camera, video file (played in a loop) or stream URL for the console's Live view.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(-1.0, 1.0),
    default=None,
    help="Similarity threshold (default: the gallery's setting, else the built-in default).",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(0.1, 1000.0),
    default=10.0,
    show_default=True,
    help="Largest photo accepted, in MB (413 above; a request may carry 5 of them).",
)
@click.option(
    "--max-megapixels",
    type=click.FloatRange(1.0, 1000.0),
    default=50.0,
    show_default=True,
    help="Largest photo accepted, in decoded megapixels (refused before decoding).",
)
@engine_options
def serve(
    host: str,
    port: int,
    db: Path | None,
    source: str | None,
    threshold: float | None,
    max_upload_mb: float,
    max_megapixels: float,
    engine_opts: EngineOptions,
) -> None:
    """Serve the REST API (/api/v1, docs at /docs) and the web console (/) on one gallery.

    Every request but /api/v1/health needs an API key (`face-recognizer keys create NAME`).
    Listening on an address other than this machine's loopback needs a key to exist first.

    \b
    Examples:
      face-recognizer keys create admin
      face-recognizer serve --source 0                 # console with the camera's live view
      face-recognizer serve --host 0.0.0.0 --port 8080 --db /srv/faces
    """
    try:
        import uvicorn

        from face_recognizer.server.app import ServerState, create_app
        from face_recognizer.server.gallery import GalleryService, LockedEngine
        from face_recognizer.server.live import LiveFeed, check_source
        from face_recognizer.server.photos import Limits
    except ImportError as exc:
        raise FaceRecognizerError(
            f"The server needs {exc.name}, which is not installed.", hint=SERVER_EXTRA_HINT
        ) from None
    from face_recognizer.store import open_store, resolve_db

    where = resolve_db(db)
    store = open_store(where)
    keys = len(store.api_keys())
    if keys == 0 and not is_loopback(host):
        store.close()
        raise FaceRecognizerError(
            f"Refusing to listen on {host} while no API key exists; create one first with "
            "`face-recognizer keys create NAME`."
        )
    with contextlib.ExitStack() as stack:
        stack.callback(store.close)
        if source is not None:
            check_source(source)
        sock = _bind(host, port)
        stack.callback(sock.close)
        engine = LockedEngine(load_engine(engine_opts))
        limits = Limits(int(max_upload_mb * 1e6), int(max_megapixels * 1e6))
        service = GalleryService(engine, store, limits, threshold)
        live = LiveFeed(source, engine, where, threshold) if source is not None else None
        state = ServerState(service, live, max_request_bytes=5 * limits.max_bytes + 100_000)
        app = create_app(state)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        click.echo(
            f"Serving on http://{shown}:{bound} (console at /, API docs at /docs); Ctrl-C stops.",
        )
        if keys == 0:
            click.echo("No API key exists yet: `face-recognizer keys create NAME` makes one.")
        config = uvicorn.Config(
            app, log_level="warning", timeout_graceful_shutdown=3, access_log=False
        )

        class Server(uvicorn.Server):
            """Ends the live streams on Ctrl-C, so open browsers do not hold the shutdown."""

            def handle_exit(self, sig: int, frame: object) -> None:
                if live is not None:
                    live.request_stop()
                super().handle_exit(sig, frame)  # type: ignore[arg-type]

        server = Server(config)
        # uvicorn stops on SIGINT and SIGTERM; SIGHUP (the terminal closed) stops it the same way
        hung_up: list[int] = []

        def hang_up(signum: int, frame: FrameType | None) -> None:
            hung_up.append(signum)
            server.handle_exit(signum, frame)

        if hasattr(signal, "SIGHUP"):
            stack.callback(signal.signal, signal.SIGHUP, signal.signal(signal.SIGHUP, hang_up))
        from face_recognizer.cli import exit_interrupted

        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn stops cleanly, then re-raises the signal it caught
            exit_interrupted("Stopped.")  # 130 after Ctrl-C, 143 after SIGTERM
        if hung_up:
            exit_interrupted("Stopped.", hung_up[0])  # 129
