"""A throwaway PostgreSQL server for the tests: Debian's PostgreSQL binaries,
a cluster made with ``initdb`` in a temporary directory, listening on loopback
only, with password (SCRAM) authentication so wrong credentials are refused.

Run as root, the cluster belongs to the ``postgres`` user (PostgreSQL refuses
to run as root) and its commands go through ``runuser``. A missing server is
an error, not a skip: ``make setup`` installs Debian's ``postgresql``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresServer", "find_bindir", "running_server"]

USER = "enduro"
PASSWORD = "enduro-test-password"


def find_bindir() -> Path:
    """Where Debian's PostgreSQL server programs are (``/usr/lib/postgresql/N/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("no PostgreSQL server found (initdb): run `make setup`")


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One cluster: :meth:`start`, :meth:`stop`, :meth:`restart`, :meth:`new_database`."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="enduro-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.root, 0o755)
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = on\nmax_connections = 200\nshared_buffers = 64MB\n"
            )

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as, str(self.bindir / program), *args],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.root,
        )

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", *args)

    def start(self) -> None:
        self._ctl("-l", str(self.root / "log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions, close sessions;
        ``immediate``: abort, as a crash would)."""
        self._ctl("-m", mode, "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        result = subprocess.run(
            [*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
        )
        return result.returncode == 0

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql; returns what it printed (unaligned, no headers)."""
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                database,
                "-c",
                statement,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        return result.stdout.strip()

    def new_database(self) -> str:
        """A new, empty database; returns its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            if self.running():
                self.stop("immediate")
        for _ in range(3):
            try:
                shutil.rmtree(self.root)
                return
            except OSError:
                time.sleep(0.1)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A new cluster, started; stopped and removed afterwards."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
