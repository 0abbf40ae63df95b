"""A job moves between a SQLite file and PostgreSQL, whole: ``copy_store`` and
``enduro migrate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from enduro.errors import StoreError
from enduro.store import Store, copy_store
from tests.store._helpers import JOB, claim, records

ENDURO = Path(sys.executable).parent / "enduro"


def _fill(store: Store) -> None:
    store.begin_run("run-a", JOB, "host-a", 101, 1.0)
    store.seed_pages(JOB, ["1", "2", "3"])
    assert store.complete(claim(store), "run-a", [{"id": "a", "name": "Zoë"}, {"id": "b"}], "id")
    page = claim(store)
    assert store.fail_attempt(page, "run-a", "gone", None)
    store.add_event("error", "boom", run_id="run-a", job=JOB, category="network", page_key="2")
    store.add_sample("run-a", 5.0, 1, {"pss_mb": 321.0})
    store.set_state(JOB, "rate", "1.5")
    store.save_http_stats("run-a", JOB, {"list": {"requests": 3}})
    store.set_pace(JOB, "pages", interval=0.5, hold_for=3.0)
    store.end_run("run-a", "failed", 1)


def _picture(store: Store) -> dict[str, Any]:
    """Everything a user can read back from a store, without its clocks."""
    return {
        "pages": store.page_counts(JOB),
        "failed": store.failed_pages(JOB),
        "records": records(store),
        "runs": [(r.run_id, r.host, r.status) for r in store.runs()],
        "events": [(e["kind"], e["category"], e["page_key"]) for e in store.events(JOB)],
        "samples": store.samples(),
        "state": store.states(JOB),
        "http": store.http_stats(JOB),
    }


def test_a_store_goes_to_postgresql_and_back_unchanged(tmp_path: Path, pg_url: str) -> None:
    with Store.open(tmp_path / "a.db") as original:
        _fill(original)
        before = _picture(original)
        where, copied = copy_store(original, pg_url)
    assert "***" in where
    assert copied["records"] == 2 and copied["events"] == len(before["events"])

    with Store.open(pg_url, create=False) as moved:
        assert _picture(moved) == before
        assert moved.take_turn(JOB, "pages")[1] == 0.5  # the shared pace came along
        _, back = copy_store(moved, tmp_path / "b.db")
    with Store.open(tmp_path / "b.db", create=False) as returned:
        assert _picture(returned) == before
    assert back == copied


def test_a_store_with_a_running_run_is_not_moved_and_nothing_is_made(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.db") as store:
        store.begin_run("run-a", JOB, "host-a", 101, 1.0)
        with pytest.raises(StoreError, match="1 run\\(s\\) still running"):
            copy_store(store, tmp_path / "b.db")
    assert not (tmp_path / "b.db").exists()


def test_migrate_refuses_a_destination_that_is_not_empty(tmp_path: Path) -> None:
    source, taken = tmp_path / "a.db", tmp_path / "taken.db"
    for path in (source, taken):
        with Store.open(path) as store:
            store.seed_pages(JOB, ["1"])

    result = subprocess.run(
        [str(ENDURO), "migrate", str(source), str(taken)], capture_output=True, text=True
    )

    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is not empty" in lines[0], result.stderr
    with Store.open(taken, create=False) as store:
        assert store.page_counts(JOB)["total"] == 1


def test_migrate_command_moves_a_job_into_postgresql(tmp_path: Path, pg_url: str) -> None:
    with Store.open(tmp_path / "a.db") as store:
        _fill(store)

    result = subprocess.run(
        [str(ENDURO), "migrate", str(tmp_path / "a.db"), pg_url], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert "2 records" in result.stdout and "***" in result.stdout
    assert "enduro-test-password" not in result.stdout + result.stderr
    with Store.open(pg_url, create=False) as moved:
        assert moved.record_count(JOB) == 2
