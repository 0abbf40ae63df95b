"""The runner is SIGKILLed at random moments and restarted; nothing is lost or left behind."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from enduro.store import Store

from .conftest import (
    ENDURO,
    export_lines,
    kill_at_random,
    live_processes_of,
    reference_env,
    truth_lines,
)

pytestmark = pytest.mark.integration

PAGES = 200
KILLS = 6


def _done_and_runs(store_path: Path) -> tuple[int, int]:
    if not store_path.exists():
        return 0, 0
    with Store.open(store_path, create=False) as store:
        return store.page_counts()["done"], len(store.runs())


@pytest.mark.parametrize("backend", ["selenium", "playwright"])
def test_sigkilled_runs_resume_to_exact_truth_and_leave_no_orphans(
    tmp_path: Path, site_factory: object, backend: str
) -> None:
    site = site_factory(PAGES)  # type: ignore[operator]
    store_path = tmp_path / "crash.db"
    env = {**reference_env(site.url, PAGES), "ENDURO_BACKEND": backend}
    command = [ENDURO, "run", "enduro.stress.reference:job", "--store", str(store_path)]
    # A random moment: anywhere from browser start-up to mid-page or mid-commit.
    kill_at_random(
        command,
        env,
        kills=KILLS,
        window=(0.8, 4.0),
        seed=20261127,
        runs=lambda: _done_and_runs(store_path)[1],
        progress=lambda: _done_and_runs(store_path)[:1],  # progress is never undone
    )

    assert _done_and_runs(store_path)[0] < PAGES, "the kills came too late to test resuming"
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]

    assert export_lines(store_path) == truth_lines(PAGES)
    assert live_processes_of(store_path) == []
    with Store.open(store_path, create=False) as store:
        runs = store.runs()
        # Every killed run was found dead and cleaned up; the last one finished.
        assert [r.status for r in runs] == ["dead"] * (len(runs) - 1) + ["finished"]
        assert len(store.events(kind="run_dead")) == len(runs) - 1 >= KILLS
        assert all(p["attempts"] == 1 for p in _pages(store))  # no page charged by a kill
    tmp = Path(tempfile.gettempdir())
    leftovers = [p for p in tmp.glob("enduro-*") if p.is_dir() and _run_dir(p, store_path)]
    assert leftovers == []


def _pages(store: Store) -> list[dict[str, object]]:
    rows = []
    for key in range(1, PAGES + 1):
        row = store.page_status("matches", str(key))
        assert row is not None
        rows.append(row)
    return rows


def _run_dir(path: Path, store_path: Path) -> bool:
    with Store.open(store_path, create=False) as store:
        run_ids = {p.run_id for p in store.all_processes()}
    return any(path.name.startswith(f"enduro-{run_id}-") for run_id in run_ids)
