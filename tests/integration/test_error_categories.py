"""Every error category, produced for real, classified, recovered from, and the records exact.

Browser-side faults are done to the real processes (SIGKILL, the DevTools
protocol); site-side faults come from the built-in site's fault plan. Each
test checks the category in the store's error events, the recovery the
policy names in the events that follow, and the exported records against
the ground truth.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from enduro import Job, PageContext, Runner, Settings, Store
from enduro.stress._devtools import devtools_port, page_command
from enduro.stress.reference import make_job
from enduro.stress.site import FaultPlan, ScheduledFault
from enduro.stress.site.app import REQUEST_LOG

from .conftest import ENDURO, export_lines, truth_lines

pytestmark = pytest.mark.integration

PAGES = 10
ROWS = 10
FAULT_PAGE = "4"
FAST = {
    "monitor_interval": 0,
    "backoff_base": 0.2,
    "backoff_max": 2.0,
    "cooldown_default": 1.0,
    "page_timeout": 30.0,
}

Fault = Callable[[PageContext], None]


def _job(
    url: str,
    fault: Fault | None = None,
    pages: int = PAGES,
    backend: str = "selenium",
    **job_args: Any,
) -> Job:
    """The reference job; ``fault`` runs once, just before the real handler of FAULT_PAGE."""
    base = make_job(url, pages, backend=backend, **job_args)
    fired = threading.Event()

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        if fault is not None and ctx.key == FAULT_PAGE and not fired.is_set():
            fired.set()
            fault(ctx)
        return base.handler(ctx)

    return replace(base, handler=handler)


def _run(job: Job, store_path: Path, **settings: Any) -> Any:
    with Store.open(store_path) as store:
        return Runner(job, store, Settings(store=store_path, **{**FAST, **settings})).run()


def _events(store_path: Path, kind: str | None = None) -> list[dict[str, Any]]:
    with Store.open(store_path, create=False) as store:
        return store.events(kind=kind)


def _after_first_error(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = next(i for i, e in enumerate(events) if e["kind"] == "error")
    return events[first:]


# ---- the faults, done to the browser for real, through each backend's channels ----


def _kill_browser(ctx: PageContext) -> None:
    os.kill(ctx.driver.capabilities["goog:processID"], signal.SIGKILL)


def _kill_driver(ctx: PageContext) -> None:
    os.kill(ctx.driver.service.process.pid, signal.SIGKILL)


def _crash_tab(ctx: PageContext) -> None:
    with contextlib.suppress(Exception):  # the renderer may be gone before it answers
        ctx.driver.execute_cdp_cmd("Page.crash", {})


def _offline_for_a_while(ctx: PageContext) -> None:
    driver = ctx.driver

    def conditions(offline: bool) -> None:
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )

    conditions(True)
    threading.Timer(1.5, conditions, args=(False,)).start()


def _pw_chromium() -> psutil.Process:
    """The Chromium the Playwright backend of this (in-process) run launched."""
    found = [
        p
        for p in psutil.Process().children()
        if "--remote-debugging-port=0" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE
    ]
    assert len(found) == 1, found
    return found[0]


def _pw_devtools() -> int:
    profile = next(a for a in _pw_chromium().cmdline() if a.startswith("--user-data-dir="))
    port = devtools_port(Path(profile.partition("=")[2]))
    assert port is not None
    return port


def _pw_kill_browser(ctx: PageContext) -> None:
    _pw_chromium().send_signal(signal.SIGKILL)


def _pw_kill_driver(ctx: PageContext) -> None:
    nodes = [p for p in psutil.Process().children() if "run-driver" in p.cmdline()]
    assert len(nodes) == 1, nodes
    nodes[0].send_signal(signal.SIGKILL)


def _pw_crash_tab(ctx: PageContext) -> None:
    # from outside, as the stress tester does (its own thread: Playwright's sync
    # API runs an event loop in this one)
    crash = threading.Thread(target=page_command, args=(_pw_devtools(), "Page.crash"))
    crash.start()
    crash.join()


def _pw_offline_for_a_while(ctx: PageContext) -> None:
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    port = _pw_devtools()
    # the emulation lasts while the outside DevTools session is held open
    threading.Thread(
        target=page_command,
        args=(port, "Network.emulateNetworkConditions", offline),
        kwargs={"hold": 1.5},
    ).start()
    time.sleep(0.3)  # until the emulation is on: the fault must come before the page


BROWSER_FAULTS = [
    pytest.param(
        {"selenium": _kill_browser, "playwright": _pw_kill_browser},
        "browser_crash",
        "browser_restart",
        id="sigkill-browser",
    ),
    pytest.param(
        {"selenium": _kill_driver, "playwright": _pw_kill_driver},
        "driver_dead",
        "browser_restart",
        id="sigkill-driver",
    ),
    pytest.param(
        {"selenium": _crash_tab, "playwright": _pw_crash_tab},
        "page_crash",
        "browser_restart",
        id="tab-crash",
    ),
    pytest.param(
        {"selenium": _offline_for_a_while, "playwright": _pw_offline_for_a_while},
        "network",
        "recovered",
        id="offline",
    ),
]
BACKENDS = ["selenium", "playwright"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("faults", "category", "recovery"), BROWSER_FAULTS)
def test_browser_side_faults(
    tmp_path: Path,
    site_factory: Any,
    faults: dict[str, Fault],
    category: str,
    recovery: str,
    backend: str,
) -> None:
    site = site_factory(PAGES, rows=ROWS)
    store_path = tmp_path / "s.db"
    result = _run(_job(site.url, faults[backend], backend=backend), store_path)
    assert result.status == "finished", result.reason
    errors = _events(store_path, "error")
    assert errors and {e["category"] for e in errors} == {category}, [e["message"] for e in errors]
    if category == "network":  # an outage fails whichever pages come while it lasts
        assert FAULT_PAGE in {e["page_key"] for e in errors}
    else:
        assert {e["page_key"] for e in errors} == {FAULT_PAGE}
    later = [e["kind"] for e in _after_first_error(_events(store_path))]
    assert recovery in later
    if recovery == "browser_restart":
        restart = next(e for e in _events(store_path, "browser_restart"))
        assert restart["category"] == category
        with Store.open(store_path, create=False) as store:
            page = store.page_status("matches", FAULT_PAGE)
        assert page is not None and page["attempts"] == 1 and page["recoveries"] >= 1
    assert export_lines(store_path) == truth_lines(PAGES, ROWS)


SITE_FAULTS = [
    pytest.param("rate_limit", "rate_limited", "cooldown", id="429-retry-after"),
    pytest.param("maintenance", "server_error", "cooldown", id="503-maintenance"),
    pytest.param("server_error", "server_error", "recovered", id="500"),
    pytest.param("reset", "network", "recovered", id="connection-reset"),
    pytest.param("truncate", "network", "recovered", id="truncated-body"),
    pytest.param("broken_script", "javascript", "refresh", id="broken-script"),
    pytest.param("stale_dom", "element", "refresh", id="stale-dom"),
    pytest.param("missing_element", "element", "refresh", id="missing-element"),
    pytest.param("session_expiry", "auth_lost", "relogin", id="session-expiry"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("kind", "category", "recovery"), SITE_FAULTS)
def test_site_side_faults(
    tmp_path: Path, site_factory: Any, kind: str, category: str, recovery: str, backend: str
) -> None:
    plan = FaultPlan(schedule=[ScheduledFault(kind, page=int(FAULT_PAGE))], retry_after=1)
    site = site_factory(PAGES, rows=ROWS, fault_plan=plan)
    store_path = tmp_path / "s.db"
    result = _run(_job(site.url, backend=backend), store_path)
    assert result.status == "finished", result.reason
    assert plan.counts() == {kind: 1}  # the fault really was served
    errors = _events(store_path, "error")
    assert [(e["category"], e["page_key"]) for e in errors] == [(category, FAULT_PAGE)], [
        e["message"] for e in errors
    ]
    later = [e["kind"] for e in _after_first_error(_events(store_path))]
    assert recovery in later
    assert "recovered" in later
    assert export_lines(store_path) == truth_lines(PAGES, ROWS)


def test_no_request_reaches_the_site_before_retry_after_has_elapsed(
    tmp_path: Path, site_factory: Any
) -> None:
    plan = FaultPlan(
        schedule=[
            ScheduledFault("rate_limit", page=3, times=2),
            ScheduledFault("rate_limit", page=7, times=3),
        ],
        retry_after=2,
    )
    site = site_factory(PAGES, rows=ROWS, fault_plan=plan)
    store_path = tmp_path / "s.db"
    result = _run(_job(site.url), store_path)
    assert result.status == "finished", result.reason
    assert plan.counts() == {"rate_limit": 5}
    log = list(site.app[REQUEST_LOG])
    limited = [entry for entry in log if entry.status == 429]
    assert len(limited) == 5
    for entry in limited:
        too_early = [
            later for later in log if entry.at < later.at < entry.at + 2.0 and later is not entry
        ]
        assert too_early == [], f"requests within Retry-After of the 429 at {entry.at}"
    assert len(_events(store_path, "cooldown")) == 5
    assert export_lines(store_path) == truth_lines(PAGES, ROWS)

    # the rate it learned is in the store, and the next run starts from it
    with Store.open(store_path, create=False) as store:
        learned = float(store.get_state("matches", "rate") or "nan")
        cuts = store.events(kind="rate_cut")
    first_cut = json.loads(cuts[0]["data"])["rate"]
    assert 0 < learned < first_cut
    with Store.open(store_path, create=False) as store:
        store.requeue("matches", keys=["1"])
    again = _run(_job(site.url), store_path)
    assert again.status == "finished"
    restored = _events(store_path, "rate_restored")
    assert len(restored) == 1 and f"{learned:.2f}" in restored[0]["message"]


def test_a_handler_bug_fails_its_page_only_and_requeue_brings_it_back(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(PAGES, rows=ROWS)
    store_path = tmp_path / "s.db"

    def key_error(ctx: PageContext) -> None:
        raise KeyError("shared_cm")

    base = make_job(site.url, PAGES)

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        if ctx.key == FAULT_PAGE:
            key_error(ctx)
        return base.handler(ctx)

    buggy = Job(
        name="matches", pages=base.pages, handler=handler, login=base.login, record_key="match_id"
    )
    result = _run(buggy, store_path)
    assert (result.status, result.exit_code) == ("failed", 1)
    errors = _events(store_path, "error")
    assert {(e["category"], e["page_key"]) for e in errors} == {("handler_bug", FAULT_PAGE)}
    assert len(errors) == Settings().handler_bug_attempts  # its own small budget
    with Store.open(store_path, create=False) as store:
        assert store.failed_pages("matches") == [("matches", FAULT_PAGE, "KeyError: 'shared_cm'")]
        assert store.page_counts("matches")["done"] == PAGES - 1
    truth = truth_lines(PAGES, ROWS)
    missing = [line for line in truth if f'"page": {FAULT_PAGE},' in line]
    assert export_lines(store_path) == [line for line in truth if line not in missing]

    out = subprocess.run(
        [ENDURO, "requeue", str(store_path), "--failed"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    with Store.open(store_path, create=False) as store:
        assert store.page_status("matches", FAULT_PAGE)["status"] == "pending"  # type: ignore[index]
    fixed = _run(_job(site.url), store_path)
    assert fixed.status == "finished"
    assert export_lines(store_path) == truth


def test_expiring_sessions_are_relogged_and_every_record_is_right(
    tmp_path: Path, site_factory: Any
) -> None:
    pages = 200
    plan = FaultPlan(expire_session_every=30)
    site = site_factory(pages, rows=ROWS, fault_plan=plan)
    store_path = tmp_path / "s.db"
    result = _run(_job(site.url, pages=pages), store_path, auth_check_every=0)
    assert result.status == "finished", result.reason
    expiries = plan.counts()["session_expiry"]
    assert expiries >= 6
    relogins = _events(store_path, "relogin")
    assert len(relogins) == expiries
    assert {e["category"] for e in _events(store_path, "error")} == {"auth_lost"}
    assert export_lines(store_path) == truth_lines(pages, ROWS)


def test_a_login_cookie_about_to_expire_is_renewed_before_it_does(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(60, rows=ROWS, session_ttl=4.0)
    store_path = tmp_path / "s.db"
    # renew when 3 s are left of 4: a re-login every second or so of pages
    result = _run(_job(site.url, pages=60), store_path, relogin_before_expiry=3.0)
    assert result.status == "finished", result.reason
    relogins = _events(store_path, "relogin")
    assert relogins and all("expires in" in e["message"] for e in relogins)
    assert _events(store_path, "error") == []  # renewed in time: never logged out
    assert export_lines(store_path) == truth_lines(60, ROWS)


def test_wiped_cookies_are_found_by_the_auth_check_before_a_page_fails(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(PAGES, rows=ROWS)
    store_path = tmp_path / "s.db"

    base = _job(site.url)

    def handler(ctx: PageContext) -> list[dict[str, Any]]:
        records = base.handler(ctx)
        if ctx.key == FAULT_PAGE:  # after its page: the next page's check must find it
            ctx.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        return records

    job = replace(base, handler=handler, secrets=())
    result = _run(job, store_path, auth_check_every=1)
    assert result.status == "finished", result.reason
    assert [e["page_key"] for e in _events(store_path, "auth_check")] == [None]
    assert len(_events(store_path, "relogin")) == 1
    assert _events(store_path, "error") == []  # re-logged in before the next page
    assert export_lines(store_path) == truth_lines(PAGES, ROWS)
