"""Fixtures every test package may use: a PostgreSQL server for the session,
started the first time a test asks for it (``tests/_postgres.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
