"""When going on would be wrong the run halts: a clear reason, exit 1, and it resumes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from enduro import Job, PageContext, Runner, Settings, Store
from enduro.stress.reference import make_job
from enduro.stress.site import SiteConfig, SiteServer

from .conftest import ENDURO, export_lines, reference_env, truth_lines

pytestmark = pytest.mark.integration

FAST = {"monitor_interval": 0, "backoff_base": 0.1, "backoff_max": 1.0}


def _events(store_path: Path, kind: str) -> list[dict[str, Any]]:
    with Store.open(store_path, create=False) as store:
        return store.events(kind=kind)


def test_logins_that_keep_failing_trip_the_breaker_and_halt(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(5, rows=5)
    store_path = tmp_path / "s.db"
    env = {**reference_env(site.url, 5), "ENDURO_SITE_PASSWORD": "wrong-password"}
    env.update({"ENDURO_MONITOR_INTERVAL": "0", "ENDURO_BACKOFF_BASE": "0.1"})
    out = subprocess.run(
        [ENDURO, "run", "enduro.stress.reference:job", "--store", str(store_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 1, out.stderr
    said = " ".join(out.stderr.split())  # the summary is wrapped to the terminal
    assert "halted: login failed 3 times within 600s" in said
    assert "Resume with: enduro run enduro.stress.reference:job --store" in said
    assert len(_events(store_path, "login_failed")) == 3
    assert "wrong-password" not in store_path.read_bytes().decode("latin-1")

    fixed = subprocess.run(
        [ENDURO, "run", "enduro.stress.reference:job", "--store", str(store_path)],
        capture_output=True,
        text=True,
        env=reference_env(site.url, 5),
        timeout=300,
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert export_lines(store_path) == truth_lines(5, 5)


def test_a_site_that_stays_down_halts_after_the_probes_and_the_run_resumes(
    tmp_path: Path,
) -> None:
    pages, rows = 30, 5
    config = SiteConfig(pages=pages, rows=rows)
    site = SiteServer(config).start()
    port = site.port
    base = make_job(site.url, pages)

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        if ctx.key == "6":
            site.close()  # the site goes away for good while the run goes on
        return base.handler(ctx)

    job = Job(
        name="matches", pages=base.pages, handler=handler, login=base.login, record_key="match_id"
    )
    store_path = tmp_path / "s.db"
    try:
        with Store.open(store_path) as store:
            result = Runner(job, store, Settings(store=store_path, **FAST)).run()
    finally:
        site.close()
    assert (result.status, result.exit_code) == ("halted", 1)
    assert "network errors within 60s, and 5 probes failed" in result.reason
    assert len(_events(store_path, "cascade")) == 1
    probes = _events(store_path, "probe")
    assert len(probes) == 5 and all('"ok": false' in p["data"] for p in probes)
    with Store.open(store_path, create=False) as store:
        counts = store.page_counts("matches")
    assert counts["failed"] == 0 and counts["done"] == 5  # nothing was given up on

    with SiteServer(config, port=port) as back, Store.open(store_path, create=False) as store:
        again = Runner(make_job(back.url, pages), store, Settings(store=store_path, **FAST))
        assert again.run().status == "finished"
    assert export_lines(store_path) == truth_lines(pages, rows)


def test_no_page_completing_restarts_the_browsers_then_halts(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(3, rows=5)
    base = make_job(site.url, 3)

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        base.handler(ctx)
        raise KeyError("layout changed")  # every page fails, forever

    job = Job(
        name="matches", pages=base.pages, handler=handler, login=base.login, record_key="match_id"
    )
    store_path = tmp_path / "s.db"
    settings = Settings(
        store=store_path,
        stall_timeout=3.0,
        handler_bug_attempts=10_000,
        cascade_errors=10_000,
        broken_job_errors=0,  # the stall watch's test: a broken job would halt first
        **FAST,
    )
    with Store.open(store_path) as store:
        result = Runner(job, store, settings).run()
    assert (result.status, result.exit_code) == ("halted", 1)
    assert "no page completed in 3s, even after restarting the browsers" in result.reason
    stall = _events(store_path, "stall")
    assert len(stall) == 1
    restarts = _events(store_path, "browser_restart")
    assert any(r["message"].startswith("stall") and r["id"] > stall[0]["id"] for r in restarts)
