"""A throwaway PostgreSQL server: Debian's PostgreSQL programs, a cluster made
with ``initdb`` in a temporary directory, listening on loopback only, with
password (SCRAM) authentication.

The stress tester starts one for a scenario whose runners share a store
(``runners`` > 1) or that restarts the database (``database_restart``); the
tests start one for the PostgreSQL store. Run as root, the cluster belongs to
the ``postgres`` user (PostgreSQL refuses to run as root) and its commands go
through ``runuser``. See ARCHITECTURE.md, "Monitor, stress tester, report".
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from enduro.errors import UsageError

__all__ = ["USER", "PostgresServer", "find_bindir", "running_server"]

USER = "enduro"


def find_bindir() -> Path:
    """Where Debian's PostgreSQL server programs are (``/usr/lib/postgresql/N/bin``).

    Raises:
        UsageError: no PostgreSQL server is installed.
    """
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise UsageError(
        "no PostgreSQL server found (initdb)",
        "install Debian's postgresql: `make setup` does",
    )


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One cluster: :meth:`start`, :meth:`stop`, :meth:`restart`, :meth:`new_database`.

    Args:
        password: the password of its one user, :data:`USER` (default: a fresh
            random one, which never leaves this object but through :meth:`url`).
    """

    def __init__(self, password: str | None = None) -> None:
        self.password = password or secrets.token_urlsafe(18)
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
        pwfile.write_text(self.password + "\n")
        if self._as:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        try:
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
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = on\nmax_connections = 200\nshared_buffers = 64MB\n"
            )

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """The URL of ``database``, with ``password`` (default: the right one; ``""``: none)."""
        secret = self.password if password is None else password
        who = f"{USER}:{secret}" if secret else USER
        return f"postgresql://{who}@127.0.0.1:{self.port}/{database}"

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
        env = {**os.environ, "PGPASSWORD": self.password}
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

    def new_database(self, name: str | None = None) -> str:
        """A new, empty database (``name``, or a fresh one); returns its URL."""
        name = name or "t_" + uuid.uuid4().hex[:12]
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        """Stop the server if it runs and remove the cluster."""
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
def running_server(password: str | None = None) -> Iterator[PostgresServer]:
    """A new cluster, started; stopped and removed afterwards."""
    server = PostgresServer(password)
    try:
        server.start()
        yield server
    finally:
        server.close()
