"""A throwaway PostgreSQL server for the tests: the stress tester's own
(:mod:`enduro.stress._postgres`), with a known password so the tests can give a
wrong one. A missing server is an error, not a skip: ``make setup`` installs
Debian's ``postgresql``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from enduro.stress._postgres import USER, PostgresServer, find_bindir
from enduro.stress._postgres import running_server as _running_server

__all__ = ["PASSWORD", "USER", "PostgresServer", "find_bindir", "running_server"]

PASSWORD = "enduro-test-password"


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A new cluster with :data:`PASSWORD`, started; stopped and removed afterwards."""
    with _running_server(PASSWORD) as server:
        yield server
