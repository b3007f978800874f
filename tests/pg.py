"""A real PostgreSQL server for the tests: Debian's `postgresql` package, started per session.

`postgres_server` (session) runs `initdb` into a temporary folder and starts the server on a
free TCP port of 127.0.0.1 (its unix socket stays in that folder), with password
authentication, so the URLs the tests use look like a user's:
``postgresql://frtest:<password>@127.0.0.1:<port>/<database>``. When the tests run as root the
server runs as an unprivileged user (`postgres` where the package made it, else `nobody`),
since PostgreSQL refuses to run as root. Everything is stopped and deleted at the end.

`pg_url` (per test) is a fresh, empty database on that server, dropped afterwards.
`PostgresServer.stop()` / `.start()` let a test take the server away under a running program.

Without PostgreSQL's binaries or the `psycopg` driver the fixtures skip naming the missing
piece (fail in CI, see `needs.py`).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from needs import missing

USER = "frtest"
_databases = itertools.count()


def find_bin_dir() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: $FACE_RECOGNIZER_PG_BIN where set (other
    systems), else Debian's newest /usr/lib/postgresql/N/bin."""
    given = os.environ.get("FACE_RECOGNIZER_PG_BIN")
    if given:
        return Path(given) if (Path(given) / "initdb").is_file() else None
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_account() -> pwd.struct_passwd | None:
    """Who runs the server: None (this user) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """One PostgreSQL cluster in `root` (data, socket, log), listening on 127.0.0.1:`port`."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = _free_port()
        self.password = secrets.token_urlsafe(12)
        self.account = _server_account()
        if self.account is not None:
            os.chown(root, self.account.pw_uid, self.account.pw_gid)
        os.chmod(root, 0o700)
        pwfile = root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.account is not None:
            os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / tool), *args]
        if self.account is not None:
            command = ["runuser", "-u", self.account.pw_name, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root, timeout=120)
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}\n{log}")
        return done

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """A client URL for `database`, with the real password unless `password` is given."""
        secret = self.password if password is None else password
        return f"postgresql://{USER}:{secret}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop the server now (`-m fast`: clients are cut off, as when a server goes down)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(_databases)}"
        self.sql(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run one statement as the superuser over the unix socket (no driver needed)."""
        self._run("psql", "-h", str(self.root), "-p", str(self.port), "-U", USER, "-d",
                  database, "-v", "ON_ERROR_STOP=1", "-qc", statement)  # fmt: skip

    def close(self) -> None:
        if self.data.exists() and self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server of this test session (see the module docstring)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL's server programs (apt install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("the psycopg driver (pip install -e '.[postgres]')")
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="fr-pg-")))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    if not postgres_server.running():  # a test that stopped it failed before starting it again
        postgres_server.start()
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        if not postgres_server.running():
            postgres_server.start()
        postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A `--db` value for a new, empty gallery of each store in turn: a folder (SQLite), then
    a database on the session's PostgreSQL server. Tests that take it run against both."""
    if request.param == "sqlite":
        return str(tmp_path / "db")
    return str(request.getfixturevalue("pg_url"))
