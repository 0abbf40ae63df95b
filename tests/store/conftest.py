"""Fixtures of the store tests: a hand-moved clock, and a fresh store of every
backend (``BACKENDS``: SQLite, and PostgreSQL on the session's server) for the
conformance suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from enduro.store import Store
from tests.store._helpers import FakeClock

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture(params=BACKENDS)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, empty store of the backend under test is (a path or a URL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    raise AssertionError(f"no fixture for backend {request.param!r}")


@pytest.fixture
def store(store_target: str, clock: FakeClock) -> Iterator[Store]:
    with Store.open(store_target, clock=clock) as opened:
        yield opened
