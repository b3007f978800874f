"""A real `face-recognizer serve` process on a free loopback port, for the server tests."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

STARTUP_SECONDS = 90.0
SERVE = [sys.executable, "-m", "face_recognizer", "serve"]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `face-recognizer ARGS` in a new process (as a user would)."""
    done = subprocess.run(
        [sys.executable, "-m", "face_recognizer", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"face-recognizer {' '.join(args)} failed: {done.stderr}")
    return done


def create_key(db: Path, name: str, *extra: str) -> str:
    """A new key from `keys create`: the last line of its output."""
    return cli("keys", "create", name, "--db", str(db), *extra).stdout.strip().splitlines()[-1]


@dataclass
class Server:
    """A running server: its base URL, the process and what it printed on stderr so far."""

    url: str
    proc: subprocess.Popen[str]
    db: Path
    stderr: list[str] = field(default_factory=list)

    def client(self, key: str | None = None, timeout: float = 60.0) -> httpx.Client:
        headers = {"x-api-key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; the exit status (130, as after any Ctrl-C)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def _pump(stream: Any, sink: Callable[[str], object]) -> None:
    """Hand every line of `stream` to `sink` on a daemon thread (so pipes never fill up)."""

    def run() -> None:
        for line in stream:
            sink(line)

    threading.Thread(target=run, daemon=True).start()


def start_server(db: Path, *args: str) -> Server:
    """`face-recognizer serve --port 0 --ctx -1 --db DB ARGS`; waits until /health answers."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "face_recognizer",
            "serve",
            "--port",
            "0",
            "--ctx",
            "-1",
            "--db",
            str(db),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    errors: list[str] = []
    assert proc.stdout is not None
    assert proc.stderr is not None
    _pump(proc.stdout, lines.put)
    _pump(proc.stderr, errors.append)
    deadline = time.monotonic() + STARTUP_SECONDS
    url = None
    while url is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"serve did not start: {''.join(errors)}")
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        found = re.search(r"Serving on (http://\S+?:\d+)", line)
        url = found.group(1) if found else None
    server = Server(url, proc, db, errors)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.stop()
    raise AssertionError(f"serve printed its address but /health did not answer: {errors}")
