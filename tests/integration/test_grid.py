"""Browsers from a real Selenium Grid 4 (standalone, on loopback, Debian's
Chromium through Debian's chromedriver): crash-resume, the node's browser
killed under a run, proactive restarts carrying the login, bad Grid URLs —
and no Grid session left open at the end (asked of the Grid itself)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver

from enduro import Job, PageContext, Runner, Settings, Store
from enduro.session._grid import RUN_CAPABILITY
from enduro.session._selenium import chromium_options
from enduro.stress.reference import make_job
from tests._grid import GridServer

from .conftest import ENDURO, export_lines, kill_at_random, reference_env, truth_lines

pytestmark = pytest.mark.integration


def _done_and_runs(store_path: Path) -> tuple[int, int]:
    if not store_path.exists():
        return 0, 0
    with Store.open(store_path, create=False) as store:
        return store.page_counts()["done"], len(store.runs())


def test_sigkilled_runs_on_grid_browsers_resume_exactly_and_close_their_sessions(
    tmp_path: Path, site_factory: Any, grid: GridServer
) -> None:
    pages = 120
    site = site_factory(pages)
    store_path = tmp_path / "grid.db"
    env = reference_env(site.url, pages)
    command = [ENDURO, "run", "enduro.stress.reference:job", "--store", str(store_path)]
    command += ["--grid", grid.url]
    kill_at_random(
        command,
        env,
        kills=5,
        window=(2.0, 6.0),
        seed=4444,
        runs=lambda: _done_and_runs(store_path)[1],
        progress=lambda: _done_and_runs(store_path)[:1],
    )
    assert _done_and_runs(store_path)[0] < pages, "the kills came too late to test resuming"

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)

    assert final.returncode == 0, final.stderr[-2000:]
    assert export_lines(store_path) == truth_lines(pages)
    # the killed runs' sessions were closed by the runs after them, the last by itself
    assert grid.open_sessions() == []
    with Store.open(store_path, create=False) as store:
        sessions = [p for p in store.all_processes() if p.kind == "grid_session"]
        assert len(sessions) >= 6  # one per run at least, each recorded
        assert store.open_processes() == []  # and each closed, by its run or the next
        assert [p for p in store.all_processes() if p.kind != "grid_session"] == []


def test_the_grid_nodes_browser_killed_under_a_run_is_replaced(
    tmp_path: Path, site_factory: Any, grid: GridServer
) -> None:
    pages = 40
    site = site_factory(pages)
    base = make_job(site.url, pages)
    killed: list[int] = []

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        if ctx.key == "15" and not killed:
            for proc in grid.browsers():  # the node's Chromium, SIGKILLed mid-page
                proc.kill()
                killed.append(proc.pid)
        return base.handler(ctx)

    job = Job(
        name="matches",
        pages=range(1, pages + 1),
        handler=handler,
        login=base.login,
        record_key="match_id",
    )
    store_path = tmp_path / "s.db"
    with Store.open(store_path) as store:
        settings = Settings(store=store_path, grid_url=grid.url, restart_every_pages=12)
        result = Runner(job, store, settings).run()
        assert result.status == "finished", result.reason
        categories = {e["category"] for e in store.events(kind="error")}
        restarts = store.events(kind="browser_restart")
        logins = store.events(kind="login")
    assert killed, "no node browser was found to kill"
    assert "browser_crash" in categories  # as a local browser killed under a page
    assert len(restarts) >= 3  # the planned ones every 12 pages, and the one after the kill
    assert len(logins) == 1  # cookies went across every restart, the kill's included
    assert export_lines(store_path) == truth_lines(pages)
    assert grid.open_sessions() == []


def test_a_session_a_killed_run_never_recorded_is_closed_by_the_next_run(
    tmp_path: Path, site_factory: Any, grid: GridServer
) -> None:
    # A run SIGKILLed while the Grid was creating its session never records it
    # (the CI run that found this: one session left open after five kills).
    # Made here for certain: sessions asked of the Grid directly, tagged as
    # enduro tags them, for a dead run of this store and for a run it doesn't know.
    pages = 6
    site = site_factory(pages)
    store_path = tmp_path / "s.db"
    with Store.open(store_path) as store:
        store.begin_run("0123456789ab", "matches", "elsewhere", 1, 0.0)
        store.mark_run_dead("0123456789ab")

    def session_of(run_id: str | None) -> Any:
        options = chromium_options(Settings())
        if run_id is not None:
            options.set_capability(RUN_CAPABILITY, run_id)
        return webdriver.Remote(command_executor=grid.url, options=options)

    orphan, foreign, untagged = (
        session_of("0123456789ab"),
        session_of("ba9876543210"),
        session_of(None),
    )
    try:
        with Store.open(store_path) as store:
            settings = Settings(store=store_path, grid_url=grid.url)
            result = Runner(make_job(site.url, pages), store, settings).run()
        assert result.status == "finished", result.reason
        left = set(grid.open_sessions())
        assert orphan.session_id not in left  # the dead run's, closed
        assert {foreign.session_id, untagged.session_id} <= left  # not this store's: left alone
        assert len(left) == 2  # and the run's own closed too
    finally:
        for driver in (orphan, foreign, untagged):
            with contextlib.suppress(Exception):
                driver.quit()


def test_a_grid_that_does_not_answer_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            ENDURO,
            "run",
            "enduro.stress.reference:job",
            "--store",
            "g.db",
            "--grid",
            "http://127.0.0.1:1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Selenium Grid at http://127.0.0.1:1 does not answer" in lines[0]
    assert list(tmp_path.iterdir()) == []
