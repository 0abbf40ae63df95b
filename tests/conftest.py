"""Fixtures every test package may use, each started the first time a test asks
for it and kept for the session: a PostgreSQL server (``tests/_postgres.py``)
and a Selenium Grid (``tests/_grid.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._grid import GridServer, running_grid
from tests._postgres import PostgresServer, running_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on loopback, for the whole test session."""
    with running_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """The URL of a new, empty database on the session's server."""
    return pg_server.new_database()


@pytest.fixture(scope="session")
def grid() -> Iterator[GridServer]:
    """A Selenium Grid 4 standalone on loopback, for the whole test session."""
    with running_grid() as server:
        yield server
