"""A job that finds its pages as it runs (Job.pages, ctx.enqueue) survives SIGKILLs.

The runner is SIGKILLed at random moments (start-up, the first login, and, after a
random number of pages, mid-page or mid-commit) and started again; the final export
equals the truth, and every page found was done exactly once.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from enduro.store import Store

from .conftest import ENDURO, export_lines, kill_at_random, live_processes_of
from .hybrid_jobs import DETAILS, found_truth

pytestmark = pytest.mark.integration

LISTS = 800
ROWS = 10
KILLS = 6
JOB = "found"


def _state(store_path: Path) -> tuple[int, int, int]:
    """Pages done, pages known and runs so far."""
    if not store_path.exists():
        return 0, 0, 0
    with Store.open(store_path, create=False) as store:
        counts = store.page_counts(JOB)
        return counts["done"], counts["total"], len(store.runs())


def test_found_pages_survive_sigkills_and_are_each_done_once(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(LISTS, rows=ROWS)
    store_path = tmp_path / "found.db"
    jobs = Path(__file__).with_name("hybrid_jobs.py")
    command = [ENDURO, "run", f"{jobs}:job", "--store", str(store_path)]
    env = {**os.environ, "HYBRID_SITE_URL": site.url, "HYBRID_JOB": JOB}
    kill_at_random(
        command,
        env,
        kills=KILLS,
        # half the kills from start-up (importing, the browser, the login) to the first
        # pages, half once the run has done a random number of pages
        window=(1.0, 4.0),
        seed=20261202,
        runs=lambda: _state(store_path)[2],
        progress=lambda: _state(store_path)[:2],  # nothing done or found is ever undone
        done=lambda: _state(store_path)[0],
        advance=(1, 150),
    )

    known = _state(store_path)[1]
    assert LISTS < known < LISTS * (1 + DETAILS), "the kills came before or after the finding"
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]

    assert export_lines(store_path) == found_truth(LISTS, ROWS)
    assert live_processes_of(store_path) == []
    with Store.open(store_path, create=False) as store:
        assert store.page_counts(JOB) == {
            "pending": 0,
            "leased": 0,
            "done": LISTS * (1 + DETAILS),
            "failed": 0,
            "total": LISTS * (1 + DETAILS),
        }
        runs = store.runs()
        assert [r.status for r in runs] == ["dead"] * (len(runs) - 1) + ["finished"]
        assert len(runs) - 1 >= KILLS
        keys = store.done_at(JOB)
        rows = [store.page_status(JOB, key) for key in keys]
    # done exactly once: a page's attempts count its one completion (a kill charges none)
    assert all(row is not None and row["attempts"] == 1 for row in rows)
    details = sorted(key for key in keys if key.startswith("detail:"))
    assert len(details) == len(set(details)) == LISTS * DETAILS
