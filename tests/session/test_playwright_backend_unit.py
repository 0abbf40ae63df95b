"""The Playwright backend's pieces that need no browser: its error table, the page
signals' ``lost`` fact, the handle a handler must not use, the backend's choice."""

from __future__ import annotations

import pytest
from playwright._impl._errors import Error, TargetClosedError, TimeoutError

from enduro import Job, PageContext
from enduro.errors import Fatal, UsageError
from enduro.recovery import PageSignals, classify
from enduro.session import (
    BrowserSession,
    GridSession,
    MissingHandle,
    PlaywrightSession,
    backend_for,
    backend_name,
)
from enduro.settings import Settings

CLOSED = "Page.evaluate: Target page, context or browser has been closed"


@pytest.mark.parametrize(
    ("exc", "signals", "category"),
    [
        # the same TargetClosedError: which process went decides
        (TargetClosedError(CLOSED), None, "browser_crash"),
        (TargetClosedError(CLOSED), PageSignals(lost="driver"), "driver_dead"),
        (
            Error("Page.goto: net::ERR_ABORTED; maybe frame was detached?"),
            PageSignals(lost="page"),
            "page_crash",
        ),
        (Error("Page.evaluate: Target crashed "), PageSignals(url="http://x/login"), "page_crash"),
        (TargetClosedError("Page.goto: Page crashed"), None, "page_crash"),
        (TimeoutError("Page.goto: Timeout 30000ms exceeded."), None, "timeout"),
        # what the page showed explains a timeout better (a load cut off)
        (
            TimeoutError("Page.goto: Timeout 30000ms exceeded."),
            PageSignals(net_error="net::ERR_CONNECTION_RESET"),
            "network",
        ),
        (
            Error("Execution context was destroyed, most likely because of a navigation"),
            None,
            "element",
        ),
        (Error("Page.evaluate: Error: stale element: #matches was re-rendered"), None, "element"),
        (Error("Page.evaluate: Error: no such element: #matches"), None, "element"),
        (
            Error(
                'Page.goto: Navigation to "http://x/" is interrupted by another navigation to "chrome-error://chromewebdata/"'
            ),
            None,
            "network",
        ),
        (Error("Page.evaluate: ReferenceError: collectRows is not defined"), None, "javascript"),
        (Error("Page.goto: net::ERR_CONNECTION_REFUSED at http://x/"), None, "network"),
        (Error("Connection closed while reading from the driver"), None, "driver_dead"),
    ],
)
def test_playwright_errors_classify_as_their_selenium_twins(
    exc: BaseException, signals: PageSignals | None, category: str
) -> None:
    assert classify(exc, signals).category == category


def test_a_handle_the_backend_does_not_give_halts_with_what_to_use() -> None:
    handle = MissingHandle("use ctx.page")
    assert not handle
    with pytest.raises(Fatal, match=r"use ctx\.page"):
        handle.get("http://x/")
    with pytest.raises(Fatal, match=r"use ctx\.page"):
        handle.timeout = 3
    assert classify(Fatal("use ctx.page")).category == "fatal"


def test_the_selenium_backend_gives_no_page_and_playwright_no_driver() -> None:
    settings = Settings()

    class NoRegistry:
        def register(self, *args: object) -> int:
            return 0

        def ended(self, ids: object) -> None:
            pass

    with pytest.raises(Fatal, match=r"use ctx\.driver"):
        BrowserSession(settings, "r", NoRegistry()).page.goto("http://x/")
    with pytest.raises(Fatal, match=r"use ctx\.page"):
        PlaywrightSession(settings, "r", NoRegistry()).driver.get("http://x/")


def _job(backend: str | None) -> Job:
    return Job(name="j", pages=[1], handler=lambda ctx: [], backend=backend)


@pytest.mark.parametrize(
    ("setting", "pin", "grid", "chosen"),
    [
        (None, None, None, BrowserSession),
        ("playwright", None, None, PlaywrightSession),
        (None, "playwright", None, PlaywrightSession),
        ("playwright", "playwright", None, PlaywrightSession),
        (None, None, "http://127.0.0.1:4444", GridSession),
        (None, "selenium", "http://127.0.0.1:4444", GridSession),
    ],
)
def test_the_backend_is_the_settings_else_the_jobs_pin_else_selenium(
    setting: str | None, pin: str | None, grid: str | None, chosen: type
) -> None:
    settings = Settings.model_validate({"backend": setting, "grid_url": grid})
    assert backend_for(settings, _job(pin)) is chosen


@pytest.mark.parametrize(
    ("setting", "pin", "grid", "words"),
    [
        ("selenium", "playwright", None, "written for the playwright backend"),
        ("playwright", "selenium", None, "written for the selenium backend"),
        ("playwright", None, "http://127.0.0.1:4444", "--grid"),
        (None, "playwright", "http://127.0.0.1:4444", "--grid"),
    ],
)
def test_a_backend_the_job_or_the_grid_cannot_have_is_refused(
    setting: str | None, pin: str | None, grid: str | None, words: str
) -> None:
    settings = Settings.model_validate({"backend": setting, "grid_url": grid})
    with pytest.raises(UsageError, match=words):
        backend_name(settings, _job(pin))


def test_a_hybrid_job_runs_on_either_backend() -> None:
    hybrid = Job(name="j", pages=[1], handler=lambda ctx: [], site="http://127.0.0.1:1")
    assert backend_name(Settings.model_validate({"backend": "playwright"}), hybrid) == "playwright"
    assert backend_name(Settings(), hybrid) == "selenium"


def test_a_job_names_a_backend_enduro_has() -> None:
    with pytest.raises(ValueError, match="'selenium' or 'playwright'"):
        _job("firefox")
    assert PageContext(key="1", driver=None, attempt=1, job=_job(None)).page is None
