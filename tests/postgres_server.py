"""A real PostgreSQL server in a temporary folder, on a free port of 127.0.0.1.

``initdb`` makes a new cluster in the folder and ``postgres`` serves it (through
:mod:`tests.servers`, so that it is stopped by its PID like every other server).  The
server refuses to run as root: when the tests run as root, both run as the
``postgres`` user, which owns the folder.  Its Unix socket stays in the folder, and it
listens on 127.0.0.1 only.  ``fsync`` is off: a test server loses nothing it needs
when it stops, and a commit costs a test no disk flush (never set it so elsewhere).

The binaries are Debian's (``/usr/lib/postgresql/<version>/bin``), else those on
``PATH``.  Nothing here imports pytest: ``benchmarks/`` starts its servers with it too;
the fixture lives in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .servers import ServerDidNotStart, free_port, start, stop, wait_until_ready

__all__ = ["PostgresServer", "postgres_binaries"]

#: The superuser the cluster is made with (no password: it listens on loopback only,
#: with "trust" authentication for the tests).
USER = "postgres"


def postgres_binaries() -> Path | None:
    """The folder that holds ``initdb`` and ``postgres``: Debian's newest, else ``PATH``'s."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> tuple[int, ...]:
    part = Path(path).parents[1].name
    return tuple(int(n) for n in part.split(".") if n.isdigit())


def _as_postgres() -> list[str]:
    """The prefix that runs a command as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", USER, "--"]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of our own: ``start()``, then ``stop()``; start again keeps its data."""

    binaries: Path
    port: int = 0
    folder: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _made: bool = field(default=False, repr=False)

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/<database>``."""
        who = USER if password is None else f"{USER}:{password}"
        return f"postgresql://{who}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> PostgresServer:
        """Make the cluster (the first time), start the server and wait until it is ready."""
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="hookshield-pg-"))
        data = self.folder / "data"
        if not self._made:
            self._prepare(data)
        self.port = self.port or free_port()
        argv = [
            *_as_postgres(),
            str(self.binaries / "postgres"),
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.folder}",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "max_connections=200",
        ]
        output = self.folder / "server.log"
        self.process = start(argv, output=output)
        try:
            wait_until_ready(self.process, self._ready, timeout=timeout, output=output)
        except ServerDidNotStart:
            self.process = None
            raise
        return self

    def _prepare(self, data: Path) -> None:
        assert self.folder is not None
        if os.geteuid() == 0:
            # The server runs as postgres: it must own the folder it writes in.
            entry = pwd.getpwnam(USER)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                *_as_postgres(),
                str(self.binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self._made = True

    def _ready(self) -> bool:
        """Whether the server accepts a query (it listens a moment before it does)."""
        if not _accepts(self.port):
            return False
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=2) as connection:
                connection.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def create_database(self, name: str) -> str:
        """A new, empty database ``name``; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server by its PID: SIGINT, a "fast" shutdown, then SIGKILL after ``timeout``.

        Not SIGTERM, PostgreSQL's "smart" shutdown, which waits for every client to
        hang up (a pool's idle connections never do).
        """
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        stop(process, timeout)  # whatever is left of its group: SIGTERM, then SIGKILL

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
            self._made = False
