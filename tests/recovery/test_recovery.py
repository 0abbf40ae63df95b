"""Tests for recovery: classifying real exceptions, and the backoff policy."""

from __future__ import annotations

import random

import pytest
import urllib3.exceptions
from selenium.common import exceptions as se

from enduro.errors import AuthLost, BadRecords, BrowserDead, PageTimeout, SessionError
from enduro.recovery import Backoff, Classification, classify

# Messages as Selenium and chromedriver really word them.
PAGE_CRASH = (
    "unknown error: session deleted because of page crash\n"
    "from unknown error: cannot determine loading status\nfrom tab crashed"
)


def _max_retry() -> urllib3.exceptions.MaxRetryError:
    return urllib3.exceptions.MaxRetryError(
        None, "/session", reason=ConnectionRefusedError(111, "Connection refused")
    )


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        pytest.param(se.InvalidSessionIdException("invalid session id"), "browser_crash", id="isi"),
        pytest.param(se.WebDriverException("tab crashed"), "page_crash", id="tab-crashed"),
        pytest.param(se.WebDriverException(PAGE_CRASH), "page_crash", id="page-crash"),
        pytest.param(
            se.WebDriverException("disconnected: not connected to DevTools"),
            "browser_crash",
            id="devtools-gone",
        ),
        pytest.param(
            se.WebDriverException("unknown error: chrome not reachable"),
            "browser_crash",
            id="not-reachable",
        ),
        pytest.param(
            se.WebDriverException("unknown error: net::ERR_CONNECTION_REFUSED"),
            "network",
            id="net-err",
        ),
        pytest.param(se.WebDriverException("something odd"), "webdriver", id="webdriver"),
        pytest.param(
            se.StaleElementReferenceException("stale element reference"), "element", id="stale"
        ),
        pytest.param(se.NoSuchElementException("no such element"), "element", id="no-element"),
        pytest.param(se.JavascriptException("javascript error: x is null"), "javascript", id="js"),
        pytest.param(se.TimeoutException("timeout: Timed out receiving"), "timeout", id="se-to"),
        pytest.param(_max_retry(), "driver_dead", id="max-retry"),
        pytest.param(
            ConnectionRefusedError(111, "Connection refused"), "driver_dead", id="refused"
        ),
        pytest.param(PageTimeout("page 3 overran 60s"), "timeout", id="page-timeout"),
        pytest.param(AuthLost("login form shown"), "auth_lost", id="auth-lost"),
        pytest.param(BadRecords("record 0 has no 'id'"), "handler_bug", id="bad-records"),
        pytest.param(BrowserDead("no browser is running"), "browser_crash", id="browser-dead"),
        pytest.param(SessionError("session unusable"), "browser_crash", id="session-error"),
        pytest.param(KeyError("match_id"), "unknown", id="key-error"),
        pytest.param(ValueError("could not convert string to float: 'n/a'"), "unknown", id="val"),
    ],
)
def test_classify_maps_real_exceptions(exc: BaseException, category: str) -> None:
    result = classify(exc)

    assert isinstance(result, Classification)
    assert result.category == category
    assert result.message.startswith(type(exc).__name__)


def test_classify_does_not_read_text_of_a_handler_bug() -> None:
    """A KeyError for a field called 'timeout' is a handler bug, not a slow page.

    Text patterns are for exceptions whose class says too little
    (WebDriverException); a plain Python error's class already says it.
    """
    assert classify(KeyError("timeout")).category == "unknown"


def test_classify_message_is_one_line_and_bounded() -> None:
    result = classify(se.WebDriverException(PAGE_CRASH + "x" * 1000))

    assert "\n" not in result.message
    assert result.message.startswith(
        "WebDriverException: Message: unknown error: session deleted because of page crash"
    )
    assert len(result.message) <= len("WebDriverException: ") + 300


def test_classify_message_without_text() -> None:
    assert classify(KeyError()).message == "KeyError"


# --- backoff ------------------------------------------------------------------------


def test_backoff_grows_exponentially() -> None:
    backoff = Backoff(base=0.5, cap=1000.0, jitter=0.0)

    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_is_capped() -> None:
    backoff = Backoff(base=1.0, cap=10.0, jitter=0.0)

    assert [backoff.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


@pytest.mark.parametrize("attempt", [100, 1100, 10_000])
def test_backoff_is_capped_for_any_attempt(attempt: int) -> None:
    backoff = Backoff(base=1.0, cap=60.0, jitter=0.25, rng=random.Random(1))

    assert 60.0 * 0.875 <= backoff.delay(attempt) <= 60.0 * 1.125


def test_backoff_jitter_stays_within_bounds() -> None:
    backoff = Backoff(base=2.0, cap=30.0, jitter=0.4, rng=random.Random(7))

    for attempt in range(1, 9):
        raw = min(30.0, 2.0 * 2 ** (attempt - 1))
        delays = [backoff.delay(attempt) for _ in range(300)]
        assert all(raw * 0.8 <= d <= raw * 1.2 for d in delays), attempt
        # Jitter really spreads the delays over most of its range.
        assert max(delays) - min(delays) > raw * 0.3


def test_backoff_jitter_never_goes_negative() -> None:
    backoff = Backoff(base=1.0, cap=60.0, jitter=5.0, rng=random.Random(3))

    assert min(backoff.delay(1) for _ in range(200)) == 0.0


def test_backoff_replays_with_a_seeded_random() -> None:
    one = Backoff(rng=random.Random(42))
    two = Backoff(rng=random.Random(42))
    other = Backoff(rng=random.Random(43))

    first = [one.delay(n) for n in range(1, 20)]

    assert first == [two.delay(n) for n in range(1, 20)]
    assert first != [other.delay(n) for n in range(1, 20)]
