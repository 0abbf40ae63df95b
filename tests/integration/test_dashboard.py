"""The live dashboard on a real run: ``enduro run`` against the built-in site (a
server error pinned on one page), ``enduro dashboard`` in a process of its own
reading the store, and headless Chromium on its page — the page-done count and
the charts advancing, the error shown with its category, the hostile
``<script>`` display name shown as text, no console errors; then ``/metrics``
against ``enduro status --json`` once the run is over."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from enduro.session import CHROMIUM_FLAGS, find_browser
from enduro.settings import Settings
from enduro.stress.site import FaultPlan, ScheduledFault

from .conftest import ENDURO, reference_env

pytestmark = pytest.mark.integration

XSS = '<script>alert("hi")</script>'
PAGES = 35  # the last page starts with the hostile display name (seed 1)
ERROR_PAGE = 6


def _url_from(stream: IO[str], deadline: float) -> str:
    """The ``dashboard: URL`` line a command prints (on stderr); the rest of its
    output is read on, so the command never blocks on a full pipe."""
    while time.monotonic() < deadline:
        line = stream.readline()
        if found := re.search(r"dashboard: (http://\S+)", line):
            threading.Thread(target=stream.read, daemon=True).start()
            return found.group(1)
        if not line:
            break
    raise AssertionError("no dashboard URL printed")


def _rows(browser: webdriver.Chrome, table: str) -> list[list[str]]:
    """The text of every cell of a table's body, read at once (it is redrawn every second)."""
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr'),"
        " r => Array.from(r.cells, c => c.textContent))",
        table,
    )
    return [list(map(str, row)) for row in rows]


@pytest.fixture
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    binary, driver = find_browser(Settings())
    options = Options()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--headless")
    options.add_argument("--window-size=1300,2000")
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('dash-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def test_the_dashboard_follows_a_real_run_in_a_browser(
    tmp_path: Path, site_factory: object, browser: webdriver.Chrome
) -> None:
    plan = FaultPlan(schedule=[ScheduledFault("server_error", page=ERROR_PAGE)])
    site = site_factory(PAGES, fault_plan=plan, pace=0.4)  # type: ignore[operator]
    store = tmp_path / "run.db"
    runner = subprocess.Popen(
        [ENDURO, "run", "enduro.stress.reference:job", "--store", str(store), "--dashboard", "0"],
        env=reference_env(site.url, PAGES),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    dashboard: subprocess.Popen[str] | None = None
    try:
        # the runner's own --dashboard answers while it runs
        own = _url_from(runner.stderr, time.monotonic() + 60)  # type: ignore[arg-type]
        assert httpx.get(own + "api/live", timeout=10).json()["store"] == str(store)

        dashboard = subprocess.Popen(
            [ENDURO, "dashboard", str(store), "--port", "0"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        url = _url_from(dashboard.stderr, time.monotonic() + 30)  # type: ignore[arg-type]
        browser.get(url)
        wait = WebDriverWait(browser, 60, poll_frequency=0.2)

        def done_now() -> int:
            shown = str(
                browser.execute_script('return document.getElementById("done").textContent')
            )
            return int(shown.split("/")[0]) if "/" in shown else -1

        def charted() -> int:
            last = browser.execute_script(
                'return document.getElementById("chart-progress").dataset.last || ""'
            )
            return int(last) if last else -1

        wait.until(lambda _: done_now() >= 1 and charted() >= 1)
        first, first_chart = done_now(), charted()
        assert first < PAGES, "the run ended before the page was read twice"
        # a second read, seconds later: the count and the chart have moved on
        wait.until(lambda _: done_now() > first and charted() > first_chart)
        assert runner.poll() is None, "the run ended before the second read"

        # the injected server error, listed with its category and page
        def error_row() -> list[str]:
            for cells in _rows(browser, "#errors"):
                if cells[1] == "server_error" and cells[2] == str(ERROR_PAGE):
                    return cells
            return []

        wait.until(lambda _: error_row())
        assert "Internal server error" in error_row()[3]

        assert runner.wait(180) == 0
        # the last page done holds the hostile display name: shown as text, never run
        wait.until(lambda _: any(XSS in cells for cells in _rows(browser, "#latest")))
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018
        scripts = browser.find_elements(By.TAG_NAME, "script")
        assert [s.get_attribute("src").rsplit("/", 1)[-1] for s in scripts] == [
            "uPlot.iife.min.js",
            "dashboard.js",
        ]
        assert wait.until(lambda _: done_now() == PAGES)
        problems = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert problems == []

        # /metrics at the end of the run: the counters are status --json's
        base = url.split("?", 1)[0]
        families = {
            f.name: f for f in text_string_to_metric_families(httpx.get(base + "metrics").text)
        }
        status = json.loads(
            subprocess.run(
                [ENDURO, "status", str(store), "--json"], capture_output=True, text=True, check=True
            ).stdout
        )["jobs"]["matches"]

        def total(name: str, **labels: str) -> float:
            return sum(
                s.value
                for s in families[name].samples
                if s.name in (name, name + "_total")
                and all(s.labels.get(k) == v for k, v in labels.items())
            )

        assert status["errors"].get("server_error", 0) >= 1
        for category, n in status["errors"].items():
            assert total("enduro_errors", category=category) == n, category
        assert total("enduro_browser_restarts") == status["restarts"]
        for state, n in status["pages"].items():
            assert total("enduro_pages", status=state) == n, state
        assert total("enduro_records") == status["records"] == PAGES * 50
    finally:
        for process in (runner, dashboard):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
