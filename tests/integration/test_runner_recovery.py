"""The runner against the real browser and site: restarts, crashes, deadlines, bad pages."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from enduro import Job, PageContext, Runner, Settings, Store
from enduro.stress.reference import make_job

from .conftest import ENDURO, export_lines, live_processes_of, reference_env, truth_lines

pytestmark = pytest.mark.integration


def _run(job: Job, store_path: Path, **settings: Any) -> tuple[Any, Store]:
    store = Store.open(store_path)
    result = Runner(job, store, Settings(store=store_path, **settings)).run()
    return result, store


BACKENDS = ["selenium", "playwright"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_proactive_restarts_carry_cookies_so_one_login_is_enough(
    tmp_path: Path, site_factory: Any, backend: str
) -> None:
    site = site_factory(40)
    job = make_job(site.url, 40, backend=backend)
    result, store = _run(job, tmp_path / "s.db", restart_every_pages=10)
    with store:
        assert result.status == "finished"
        restarts = store.events(kind="browser_restart")
        assert len(restarts) >= 3
        assert all("every 10 pages" in e["message"] for e in restarts)
        assert len(store.events(kind="login")) == 1  # the restarted browsers stayed logged in
        assert store.events(kind="relogin") == []
        assert store.events(kind="auth_check") == []
    assert export_lines(tmp_path / "s.db") == truth_lines(40)
    assert live_processes_of(tmp_path / "s.db") == []


def test_a_sigkilled_browser_is_restarted_and_the_run_finishes_exactly(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(30)
    base = make_job(site.url, 30)
    killed: list[int] = []

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        if ctx.key == "12" and not killed:
            pid = ctx.driver.capabilities["goog:processID"]
            os.kill(pid, signal.SIGKILL)  # the real browser process, mid-page
            killed.append(pid)
        return base.handler(ctx)

    job = Job(
        name="matches", pages=range(1, 31), handler=handler, login=base.login, record_key="match_id"
    )
    result, store = _run(job, tmp_path / "s.db")
    with store:
        assert killed and not psutil.pid_exists(killed[0])
        assert result.status == "finished"
        errors = store.events(kind="error")
        assert [e["page_key"] for e in errors] == ["12"]
        assert errors[0]["category"] == "browser_crash"
        assert any("browser_crash" in e["message"] for e in store.events(kind="browser_restart"))
    assert export_lines(tmp_path / "s.db") == truth_lines(30)
    assert live_processes_of(tmp_path / "s.db") == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hung_page_is_cut_at_its_deadline_and_retried(
    tmp_path: Path, site_factory: Any, backend: str
) -> None:
    site = site_factory(8)
    base = make_job(site.url, 8, backend=backend)
    hung = threading.Event()

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        if ctx.key == "3" and not hung.is_set():
            hung.set()
            if backend == "selenium":
                ctx.driver.get(f"{site.url}/matches?page=3")
                ctx.driver.execute_script("while (true) {}")  # the renderer never answers
            else:  # Playwright's evaluate has no timeout of its own: only the deadline ends it
                ctx.page.goto(f"{site.url}/matches?page=3")
                ctx.page.evaluate("() => { while (true) {} }")
        return base.handler(ctx)

    job = replace(base, handler=handler)
    result, store = _run(job, tmp_path / "s.db", page_timeout=4)
    with store:
        assert result.status == "finished"
        errors = store.events(kind="error")
        assert [(e["page_key"], e["category"]) for e in errors] == [("3", "timeout")]
        assert store.page_status("matches", "3")["attempts"] == 2  # type: ignore[index]
    assert export_lines(tmp_path / "s.db") == truth_lines(8)
    assert live_processes_of(tmp_path / "s.db") == []


def test_a_handler_that_carries_on_past_its_deadline_is_not_left_hanging_on_playwright(
    tmp_path: Path, site_factory: Any
) -> None:
    """The deadline's kill ends the page's Node driver with Chromium: a handler that
    swallows the killed call and asks for a new tab (which a killed Chromium never
    answers, and ``new_page`` has no timeout) fails at once instead of hanging."""
    site = site_factory(6)
    base = make_job(site.url, 6, backend="playwright")
    tried: list[str] = []

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        if ctx.key == "2" and not tried:
            tried.append(ctx.key)
            context = ctx.page.context
            try:
                while True:  # new tabs until the deadline's kill lands inside one
                    context.new_page().close()
            except Exception as exc:
                tried.append(type(exc).__name__)
            context.new_page()  # its own retry, on the killed browser
        return base.handler(ctx)

    job = replace(base, handler=handler)
    outcome: list[Any] = []
    runner = threading.Thread(
        target=lambda: outcome.append(_run(job, tmp_path / "s.db", page_timeout=4)), daemon=True
    )
    runner.start()
    runner.join(60)  # a bound on a hang, not a wait for work: the run takes ~10 s
    assert not runner.is_alive(), "the handler's new_page on the killed browser hung"
    result, store = outcome[0]
    with store:
        assert result.status == "finished"
        errors = store.events(kind="error")
        assert [(e["page_key"], e["category"]) for e in errors] == [("2", "timeout")]
    assert len(tried) == 2  # the tabs were cut off by the kill, then the handler went on
    assert export_lines(tmp_path / "s.db") == truth_lines(6)
    assert live_processes_of(tmp_path / "s.db") == []


def test_a_page_that_always_fails_ends_failed_and_requeue_puts_it_back(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(6)
    base = make_job(site.url, 6)
    broken = {"on": True}

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        records = base.handler(ctx)
        if ctx.key == "4" and broken["on"]:
            return [{**r, "shared_cm": r["no_such_field"]} for r in records]  # KeyError
        return records

    job = Job(
        name="matches", pages=range(1, 7), handler=handler, login=base.login, record_key="match_id"
    )
    store_path = tmp_path / "s.db"
    result, store = _run(job, store_path, handler_bug_attempts=3, backoff_base=0.05)
    with store:
        assert (result.status, result.exit_code) == ("failed", 1)
        assert result.counts["done"] == 5
        page = store.page_status("matches", "4")
        assert page is not None
        assert (page["status"], page["attempts"]) == ("failed", 3)
        assert "KeyError" in page["last_error"]
        assert len(store.events(kind="error")) == 3

    requeue = subprocess.run(
        [ENDURO, "requeue", str(store_path), "--failed"], capture_output=True, text=True
    )
    assert requeue.returncode == 0 and "1 pages back" in requeue.stdout
    broken["on"] = False
    result, store = _run(job, store_path)
    with store:
        assert result.status == "finished"
        assert result.progress.done_this_run == 1  # only the requeued page ran
    assert export_lines(store_path) == truth_lines(6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_normal_run_ends_every_process_it_registered(
    tmp_path: Path, site_factory: Any, backend: str
) -> None:
    site = site_factory(12)
    store_path = tmp_path / "s.db"
    run = subprocess.run(
        [
            ENDURO,
            "run",
            "enduro.stress.reference:job",
            "--store",
            str(store_path),
            "--restart-every",
            "5",
        ],
        env={**reference_env(site.url, 12), "ENDURO_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    with Store.open(store_path, create=False) as store:
        processes = store.all_processes()
        kinds = sorted({p.kind for p in processes})
        assert kinds == ["browser", "driver"]
        # two browsers used (a restart after page 5 or 6) and a spare launched for the
        # next; a driver for each browser used (Playwright's is one process, registered
        # again under each browser it drives)
        assert sum(p.kind == "browser" for p in processes) >= 3
        assert sum(p.kind == "driver" for p in processes) >= 2
        assert store.open_processes() == []  # each one marked ended
    assert live_processes_of(store_path) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_share_the_pages_without_duplicates(
    tmp_path: Path, site_factory: Any, backend: str
) -> None:
    site = site_factory(24)
    result, store = _run(make_job(site.url, 24, backend=backend), tmp_path / "s.db", workers=2)
    with store:
        assert result.status == "finished"
        assert len(store.events(kind="browser_start")) >= 2  # one browser per worker
        assert all(
            store.page_status("matches", str(k))["attempts"] == 1  # type: ignore[index]
            for k in range(1, 25)
        )
    assert export_lines(tmp_path / "s.db") == truth_lines(24)
    assert live_processes_of(tmp_path / "s.db") == []
