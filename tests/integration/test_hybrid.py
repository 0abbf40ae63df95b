"""Hybrid jobs for real: Chromium logs in, ctx.http walks the built-in site's JSON API.

``enduro run`` with the hybrid reference job (or a test job of hybrid_jobs.py)
against a site served here, faults injected by the site itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from enduro.store import Store, dumps_record
from enduro.stress.site import FaultPlan, ScheduledFault, hybrid_truth

from .conftest import ENDURO, export_lines

pytestmark = pytest.mark.integration

HYBRID_JOB = "enduro.stress.reference_hybrid:job"
JOBS = str(Path(__file__).with_name("hybrid_jobs.py"))


def hybrid_lines(pages: int, rows: int = 50, seed: int = 1) -> list[str]:
    return [dumps_record(r) for r in hybrid_truth(seed, pages, rows)]


def run(
    store: Path, url: str, job: str = HYBRID_JOB, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        **__import__("os").environ,
        "ENDURO_SITE_URL": url,
        "HYBRID_SITE_URL": url,
        "ENDURO_COOLDOWN_DEFAULT": "1",
        **env,
    }
    return subprocess.run(
        [ENDURO, "run", job, "--store", str(store)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pages_of(store_path: Path, job: str = "matches") -> list[dict[str, Any]]:
    with Store.open(store_path, create=False) as store:
        keys = [k for k, _ in sorted(store.done_at(job).items())]
        rows = [store.page_status(job, k) for k in keys]
        pending = store.page_counts(job)
    assert all(r is not None for r in rows)
    return [r for r in rows if r is not None] + [{"counts": pending}]


def events_of(store_path: Path, kind: str | None = None) -> list[dict[str, Any]]:
    with Store.open(store_path, create=False) as store:
        return store.events(kind=kind)


@pytest.mark.parametrize("backend", ["selenium", "playwright"])
def test_three_percent_of_requests_failing_cost_no_page_a_retry(
    tmp_path: Path, site_factory: Any, backend: str
) -> None:
    """101 calls a page, 3% of them failing (429, 500, resets, truncated JSON): every
    page is done on its first attempt; the requests were retried inside the page. The
    browser that logged in is Selenium's or Playwright's: ctx.http is the same."""
    pages = 20
    plan = FaultPlan(
        seed=3,
        rates={"rate_limit": 0.0075, "server_error": 0.0075, "reset": 0.0075, "truncate": 0.0075},
        retry_after=1,
    )
    site = site_factory(pages, fault_plan=plan)
    store_path = tmp_path / "h.db"

    out = run(store_path, site.url, ENDURO_BACKEND=backend)

    assert out.returncode == 0, out.stderr[-3000:]
    assert export_lines(store_path) == hybrid_lines(pages)
    hit = [f for f in plan.delivered if f.path.startswith("/api/v2/")]
    assert len(hit) >= 0.02 * pages * 101, plan.counts()  # the faults really happened
    assert {f.kind for f in hit} == {"rate_limit", "server_error", "reset", "truncate"}
    assert events_of(store_path, "error") == []  # no whole-page retry at all
    rows = pages_of(store_path)
    assert all(r["attempts"] == 1 and r["recoveries"] == 0 for r in rows[:-1])
    with Store.open(store_path, create=False) as store:
        (stats,) = store.http_stats("matches")
    retried = sum(e["retries"] for e in stats.values())
    failed = sum(sum(e["errors"].values()) for e in stats.values())
    assert failed == len(hit) and retried >= len(hit)  # each failed request was tried again
    assert sum(e["requests"] for e in stats.values()) == pages * 101 + 1 + len(hit)


@pytest.mark.parametrize("backend", ["selenium", "playwright"])
def test_a_session_lapsing_mid_page_takes_one_relogin_and_the_page_finishes(
    tmp_path: Path, site_factory: Any, backend: str
) -> None:
    plan = FaultPlan(
        schedule=[ScheduledFault("session_expiry", page=4, after=30, request="hybrid")]
    )
    site = site_factory(8, fault_plan=plan)
    store_path = tmp_path / "h.db"

    out = run(store_path, site.url, ENDURO_BACKEND=backend)

    assert out.returncode == 0, out.stderr[-3000:]
    assert plan.counts() == {"session_expiry": 1}
    assert export_lines(store_path) == hybrid_lines(8)
    relogins = events_of(store_path, "relogin")
    assert len(relogins) == 1, relogins
    assert "HTTP 303 to the login page" in relogins[0]["message"]
    assert events_of(store_path, "error") == []
    assert all(r["attempts"] == 1 for r in pages_of(store_path)[:-1])


def test_lapses_a_login_does_not_cure_halt_the_run_with_a_clear_line(
    tmp_path: Path, site_factory: Any
) -> None:
    # after the 150th API request every API request ends the session it came with
    plan = FaultPlan(
        schedule=[ScheduledFault("session_expiry", times=100_000, after=150, request="hybrid")]
    )
    site = site_factory(8, fault_plan=plan)
    store_path = tmp_path / "h.db"

    out = run(store_path, site.url)

    assert out.returncode == 1, out.stdout[-3000:]
    said = " ".join((out.stdout + out.stderr).split())
    assert "halted: a new login did not bring the session back 3 times within 600s" in said
    assert "Resume with: enduro run" in said
    (halt,) = events_of(store_path, "halt")
    assert "HTTP 303 to the login page" in halt["message"]
    assert len(events_of(store_path, "login_not_cured")) == 3
    counts = pages_of(store_path)[-1]["counts"]
    assert counts["failed"] == 0 and counts["pending"] > 0  # nothing given up: resumable
    done = len(pages_of(store_path)) - 1
    assert export_lines(store_path) == hybrid_lines(8)[: done * 50]


def test_a_login_that_leaves_no_cookie_halts_naming_it(tmp_path: Path, site_factory: Any) -> None:
    site = site_factory(5)
    store_path = tmp_path / "h.db"

    out = run(store_path, site.url, f"{JOBS}:job", HYBRID_JOB="no_cookies", HYBRID_SITE_PAGES="5")

    assert out.returncode == 1, out.stdout[-3000:]
    said = " ".join((out.stdout + out.stderr).split())
    assert "the login left no cookie for http://127.0.0.1" in said
    assert "login failed 3 times within 600s" in said
    with Store.open(store_path, create=False) as store:
        assert store.page_counts("no_cookies") == {
            "pending": 5,
            "leased": 0,
            "done": 0,
            "failed": 0,
            "total": 5,
        }


def test_html_where_json_was_promised_fails_those_pages_with_a_clear_category(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(10)
    store_path = tmp_path / "h.db"

    out = run(store_path, site.url, f"{JOBS}:job", HYBRID_JOB="html", HYBRID_SITE_PAGES="10")

    assert out.returncode == 1, out.stderr[-3000:]  # pages failed, the run went on
    with Store.open(store_path, create=False) as store:
        failed = store.failed_pages("html")
        assert [key for _, key, _ in failed] == ["5", "10"]
        assert all("where JSON was expected" in error for _, _, error in failed)
        assert store.page_counts("html")["done"] == 8
        assert set(store.error_counts("html")) == {"bad_response"}
        records = [json.loads(t) for t in store.iter_record_texts("html")]
    assert sorted({r["page"] for r in records}) == [1, 2, 3, 4, 6, 7, 8, 9]


def test_the_sites_cookies_are_never_sent_to_another_host(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(10)
    other = site_factory(10, seed=2)  # a second server, to see what reaches it
    store_path = tmp_path / "h.db"

    out = run(
        store_path,
        site.url,
        f"{JOBS}:job",
        HYBRID_JOB="elsewhere",
        HYBRID_SITE_PAGES="10",
        HYBRID_OTHER_URL=other.url,
    )

    assert out.returncode == 1, out.stderr[-3000:]
    from enduro.stress.site import REQUEST_LOG

    assert other.app[REQUEST_LOG] == []  # not one request, so no cookie either
    with Store.open(store_path, create=False) as store:
        failed = store.failed_pages("elsewhere")
        assert [key for _, key, _ in failed] == ["5", "10"]
        assert all("sends them nowhere else" in error for _, _, error in failed)


def test_a_pages_function_that_fails_halts_naming_its_error(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(3)
    store_path = tmp_path / "h.db"

    out = run(store_path, site.url, f"{JOBS}:job", HYBRID_JOB="broken_pages")

    assert out.returncode == 1, out.stdout[-3000:]
    said = " ".join((out.stdout + out.stderr).split())
    assert "halted: Job.pages failed: KeyError: 'pageCount'" in said
    errors = events_of(store_path, "error")
    assert [e["category"] for e in errors] == ["handler_bug", "handler_bug"]  # its 2 attempts
    with Store.open(store_path, create=False) as store:
        assert store.page_counts("broken_pages")["total"] == 0
