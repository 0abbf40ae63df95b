"""Chaos from outside: the browser and its driver SIGKILLed every 12-20 pages (a second
or two) while ``enduro run`` walks the reference job, on each backend; every record
exact, nothing left running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from enduro.store import Store

from .conftest import (
    ENDURO,
    export_lines,
    live_processes_of,
    reference_env,
    run_under_kills,
    truth_lines,
)

pytestmark = pytest.mark.integration

PAGES = 240
ROWS = 20
EVERY = (12, 20)  # pages done between two kills, alternately the browser and its driver


@pytest.mark.parametrize("backend", ["selenium", "playwright"])
def test_browser_and_driver_killed_every_few_seconds(
    tmp_path: Path, site_factory: Any, backend: str
) -> None:
    site = site_factory(PAGES, rows=ROWS)
    store_path = tmp_path / "chaos.db"
    env = {
        **reference_env(site.url, PAGES),
        "ENDURO_BACKEND": backend,
        "ENDURO_MONITOR_INTERVAL": "0",
        "ENDURO_BACKOFF_BASE": "0.2",
    }
    command = [ENDURO, "run", "enduro.stress.reference:job", "--store", str(store_path)]
    code, output, killed = run_under_kills(command, env, store_path, EVERY, seed=20261206)
    assert code == 0, output[-3000:]

    assert killed["browser"] >= 4 and killed["driver"] >= 4, killed
    assert export_lines(store_path) == truth_lines(PAGES, ROWS)
    assert live_processes_of(store_path) == []
    with Store.open(store_path, create=False) as store:
        errors = store.events(kind="error")
        restarts = store.events(kind="browser_restart")
        assert store.page_counts("matches")["done"] == PAGES
    # every error a kill caused was seen for what it was (a kill between two pages
    # is found before the next one, without an error), and the browser was replaced
    categories = {e["category"] for e in errors}
    assert errors and categories <= {"browser_crash", "driver_dead"}, categories
    assert len(restarts) >= sum(killed.values()) // 2
