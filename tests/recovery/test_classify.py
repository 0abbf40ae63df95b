"""Tests for classify: real exception instances, worded as Selenium and urllib3 word them."""

from __future__ import annotations

import http.client
import re
import socket

import httpx
import pytest
import urllib3
import urllib3.exceptions
from selenium.common import exceptions as se

from enduro.errors import (
    CATEGORIES,
    AuthLost,
    BadRecords,
    BadResponse,
    BrowserDead,
    DriverDead,
    Fatal,
    ForeignHost,
    HttpError,
    MemoryPressure,
    NetworkError,
    PageError,
    PageTimeout,
    RateLimited,
    ServerError,
    SessionError,
    TabCrashed,
)
from enduro.recovery import DEFAULT_LOGIN_PATTERN, Classification, PageSignals, classify

# --- exceptions as they really come (BROWSER-FACTS.md, "How things break") ----------

BROWSER_KILLED = (
    "invalid session id: session deleted as the browser has closed the connection\n"
    "from disconnected: not connected to DevTools"
)
PAGE_CRASH = (
    "unknown error: session deleted because of page crash\n"
    "from unknown error: cannot determine loading status\nfrom tab crashed"
)
_POOL = urllib3.HTTPConnectionPool("localhost", 41999)


def _driver_killed() -> urllib3.exceptions.MaxRetryError:
    """What Selenium raises once chromedriver was SIGKILLed."""
    refused = urllib3.exceptions.NewConnectionError(
        None,  # type: ignore[arg-type]
        "Failed to establish a new connection: [Errno 111] Connection refused",
    )
    return urllib3.exceptions.MaxRetryError(_POOL, "/session/4f1c/url", reason=refused)


def _driver_hung() -> urllib3.exceptions.ReadTimeoutError:
    """What Selenium raises when the frozen browser keeps a driver call past its timeout."""
    return urllib3.exceptions.ReadTimeoutError(
        _POOL, "/session/4f1c/url", "Read timed out. (read timeout=5)"
    )


def _driver_dropped() -> urllib3.exceptions.ProtocolError:
    return urllib3.exceptions.ProtocolError(
        "Connection aborted.",
        http.client.RemoteDisconnected("Remote end closed connection without response"),
    )


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


CASES = [
    # step 1: decisive classes
    (se.InvalidSessionIdException(BROWSER_KILLED), "browser_crash", "browser-killed"),
    (se.InvalidSessionIdException("invalid session id"), "browser_crash", "later-calls"),
    (
        se.NoSuchWindowException("no such window: target window already closed"),
        "browser_crash",
        "no-window",
    ),
    (_driver_killed(), "driver_dead", "driver-killed"),
    (
        urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused"),  # type: ignore[arg-type]
        "driver_dead",
        "new-connection",
    ),
    (_driver_dropped(), "driver_dead", "protocol-error"),
    (ConnectionRefusedError(111, "Connection refused"), "driver_dead", "refused"),
    (_driver_hung(), "timeout", "read-timeout"),
    (
        urllib3.exceptions.MaxRetryError(_POOL, "/session/4f1c/url", reason=_driver_hung()),
        "timeout",
        "max-retry-of-read-timeout",
    ),
    (PageTimeout("page 3 overran 60s"), "timeout", "page-timeout"),
    (AuthLost("login form shown"), "auth_lost", "auth-lost"),
    (RateLimited(retry_after=5), "rate_limited", "rate-limited"),
    (ServerError(status=502), "server_error", "server-error"),
    (NetworkError("connection reset by peer"), "network", "network-error"),
    (BadRecords("record 0 has no 'id'"), "handler_bug", "bad-records"),
    (DriverDead("chromedriver exited"), "driver_dead", "driver-dead"),
    (TabCrashed("renderer gone"), "page_crash", "tab-crashed-error"),
    (MemoryPressure("browser PSS 2 GB"), "memory_pressure", "memory-pressure"),
    (BrowserDead("no browser is running"), "browser_crash", "browser-dead"),
    (SessionError("session unusable"), "browser_crash", "session-error"),
    (Fatal("the login hook needs a password"), "fatal", "fatal"),
    # step 3: symptom classes
    (se.StaleElementReferenceException("stale element not found"), "element", "stale"),
    (se.NoSuchElementException("no such element: Unable to locate element"), "element", "gone"),
    (se.JavascriptException("javascript error: x is null"), "javascript", "js"),
    (
        se.TimeoutException("timeout: Timed out receiving message from renderer: 10.000"),
        "timeout",
        "slow-page",
    ),
    (KeyError("match_id"), "handler_bug", "key-error"),
    (IndexError("list index out of range"), "handler_bug", "index-error"),
    (TypeError("'NoneType' object is not subscriptable"), "handler_bug", "type-error"),
    (AttributeError("'NoneType' object has no attribute 'text'"), "handler_bug", "attr"),
    (ValueError("could not convert string to float: 'n/a'"), "handler_bug", "value-error"),
    (ZeroDivisionError("division by zero"), "handler_bug", "zero-division"),
    (NameError("name 'rows' is not defined"), "handler_bug", "name-error"),
    (UnboundLocalError("cannot access local variable 'x'"), "handler_bug", "unbound-local"),
    (AssertionError("expected 50 rows"), "handler_bug", "assertion"),
    (LookupError("no such codec"), "handler_bug", "lookup"),
    (ConnectionResetError(104, "Connection reset by peer"), "network", "reset"),
    (socket.gaierror(-2, "Name or service not known"), "network", "dns"),
    (ConnectionAbortedError(103, "Software caused connection abort"), "network", "aborted"),
    (TimeoutError("timed out"), "timeout", "timeout-error"),
    # step 4: text patterns
    (se.WebDriverException("tab crashed"), "page_crash", "tab-crashed"),
    (se.WebDriverException(PAGE_CRASH), "page_crash", "page-crash"),
    (
        se.WebDriverException("disconnected: not connected to DevTools"),
        "browser_crash",
        "devtools-gone",
    ),
    (se.WebDriverException("unknown error: chrome not reachable"), "browser_crash", "unreachable"),
    (
        se.WebDriverException("unknown error: net::ERR_CONNECTION_REFUSED"),
        "network",
        "net-err",
    ),
    # Offline: the word "disconnected" in it must not read as a dead browser.
    (
        se.WebDriverException("unknown error: net::ERR_INTERNET_DISCONNECTED"),
        "network",
        "offline",
    ),
    (se.WebDriverException("javascript error: Failed to fetch"), "network", "fetch"),
    (PageError("HTTP 429 Too Many Requests"), "rate_limited", "text-429"),
    (PageError("HTTP 503"), "server_error", "text-503"),
    (PageError("the site is down for maintenance"), "server_error", "maintenance"),
    (se.WebDriverException("stale element reference: node is detached"), "element", "t-stale"),
    (PageError("ReferenceError: collectRows is not defined"), "javascript", "t-js"),
    (PageError("you have been logged out"), "auth_lost", "logged-out"),
    (PageError("HTTP 401"), "auth_lost", "text-401"),
    (RuntimeError("operation timed out"), "timeout", "t-timeout"),
    # step 5: nothing fits
    (se.WebDriverException("something odd"), "unknown", "webdriver"),
    (RuntimeError("boom"), "unknown", "runtime"),
    (HttpError(status=404), "unknown", "http-404"),
    # ctx.http's own verdicts, and httpx's errors
    (BadResponse("GET /api/x answered text/html, not JSON"), "bad_response", "bad-response"),
    (ForeignHost("GET http://elsewhere/ refused"), "handler_bug", "foreign-host"),
    (httpx.ReadTimeout("timed out"), "timeout", "httpx-read-timeout"),
    (httpx.ConnectError("[Errno 111] Connection refused"), "network", "httpx-refused"),
    (
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        "network",
        "httpx-truncated",
    ),
    (httpx.ReadError("[Errno 104] Connection reset by peer"), "network", "httpx-reset"),
    (
        httpx.HTTPStatusError(
            "429",
            request=httpx.Request("GET", "http://h/x"),
            response=httpx.Response(429, headers={"Retry-After": "3"}),
        ),
        "rate_limited",
        "httpx-status-429",
    ),
    (_Unprintable(), "unknown", "unprintable"),
    (KeyboardInterrupt(), "unknown", "base-exception"),
]


@pytest.mark.parametrize(("exc", "category"), [c[:2] for c in CASES], ids=[c[2] for c in CASES])
def test_classify_maps_real_exceptions(exc: BaseException, category: str) -> None:
    result = classify(exc)

    assert isinstance(result, Classification)
    assert result.category == category
    assert result.message.startswith(type(exc).__name__)


def test_every_category_is_reachable_and_documented() -> None:
    reached = {category for _, category, _ in CASES}

    assert reached == set(CATEGORIES)


def test_handler_bug_text_is_not_read() -> None:
    """A KeyError for a field called 'timeout' is a handler bug, not a slow page."""
    assert classify(KeyError("timeout")).category == "handler_bug"


def test_http_errors_carry_status_and_retry_after() -> None:
    assert classify(RateLimited(retry_after=7.5)) == Classification(
        "rate_limited", "RateLimited: HTTP 429", status=429, retry_after=7.5
    )
    found = classify(ServerError("down for maintenance", status=503, retry_after=120))
    assert (found.category, found.status, found.retry_after) == ("server_error", 503, 120.0)
    # A bare HttpError is read by its status.
    assert classify(HttpError(status=429, retry_after=3)).category == "rate_limited"
    assert classify(HttpError(status=500)).status == 500
    assert classify(HttpError(status=403)).category == "auth_lost"


def test_message_is_one_line_and_bounded() -> None:
    result = classify(se.WebDriverException(PAGE_CRASH + "x" * 1000))

    assert "\n" not in result.message
    assert result.message.startswith(
        "WebDriverException: Message: unknown error: session deleted because of page crash"
    )
    assert len(result.message) <= len("WebDriverException: ") + 300


def test_message_without_text() -> None:
    assert classify(KeyError()).message == "KeyError"
    assert classify(_Unprintable()).message == "_Unprintable"


# --- signals ----------------------------------------------------------------------

SIGNAL_CASES = [
    # What the page showed explains a symptom better than the symptom does.
    (KeyError("match_id"), PageSignals(status=429, retry_after=7.0), "rate_limited"),
    (se.NoSuchElementException("no such element"), PageSignals(status=503), "server_error"),
    (se.NoSuchElementException("no such element"), PageSignals(status=500), "server_error"),
    (
        se.TimeoutException("timeout"),
        PageSignals(net_error="net::ERR_CONNECTION_RESET"),
        "network",
    ),
    (
        se.StaleElementReferenceException("stale element"),
        PageSignals(status=403),
        "auth_lost",
    ),
    (
        KeyError("match_id"),
        PageSignals(url="http://127.0.0.1:8700/login?next=%2Fmatches", status=200),
        "auth_lost",
    ),
    (
        TypeError("'NoneType' object is not iterable"),
        PageSignals(console_errors=("http://x/app.js 3:7 Uncaught SyntaxError: Unexpected '}'",)),
        "javascript",
    ),
    (se.WebDriverException("something odd"), PageSignals(status=502), "server_error"),
    (RuntimeError("boom"), PageSignals(net_error="net::ERR_INTERNET_DISCONNECTED"), "network"),
    # Signals that say nothing leave the symptom alone.
    (KeyError("match_id"), PageSignals(url="http://x/matches?page=3", status=200), "handler_bug"),
    (
        KeyError("match_id"),
        PageSignals(console_errors=("favicon.ico - Failed to load resource: 404",)),
        "handler_bug",
    ),
    (se.NoSuchElementException("no such element"), PageSignals(status=404), "element"),
    # Decisive classes are never overridden.
    (PageTimeout("page 3 overran 60s"), PageSignals(status=429, retry_after=9), "timeout"),
    (
        se.InvalidSessionIdException(BROWSER_KILLED),
        PageSignals(net_error="net::ERR_CONNECTION_RESET"),
        "browser_crash",
    ),
    (_driver_killed(), PageSignals(url="http://x/login"), "driver_dead"),
    (BadRecords("record 0 has no 'id'"), PageSignals(status=503), "handler_bug"),
    (AuthLost("login form shown"), PageSignals(status=500), "auth_lost"),
]


@pytest.mark.parametrize(("exc", "signals", "category"), SIGNAL_CASES)
def test_signals_override_symptoms_not_decisive_classes(
    exc: BaseException, signals: PageSignals, category: str
) -> None:
    assert classify(exc, signals).category == category


def test_signals_carry_status_and_retry_after() -> None:
    found = classify(KeyError("match_id"), PageSignals(status=429, retry_after=7.0))

    assert (found.status, found.retry_after) == (429, 7.0)
    assert found.message == "KeyError: 'match_id'"


def test_decisive_class_keeps_its_own_status() -> None:
    found = classify(RateLimited(retry_after=4), PageSignals(status=503, retry_after=60))

    assert (found.category, found.status, found.retry_after) == ("rate_limited", 429, 4.0)


@pytest.mark.parametrize(
    ("url", "is_login"),
    [
        ("http://127.0.0.1:8700/login?next=%2Fmatches", True),
        ("http://127.0.0.1:8700/login", True),
        ("https://example.com/account/sign-in/", True),
        ("https://example.com/SignIn", True),
        ("https://example.com/log-in?x=1", True),
        ("https://example.com/auth", True),
        ("https://example.com/matches?page=3", False),
        ("https://example.com/blog/login-tips", False),
        ("https://example.com/authors", False),
        ("https://login.example.com/matches", False),  # the host is not the path
        ("about:blank", False),
    ],
)
def test_login_url(url: str, is_login: bool) -> None:
    found = classify(se.NoSuchElementException("no such element"), PageSignals(url=url))

    assert (found.category == "auth_lost") is is_login


def test_login_pattern_is_configurable() -> None:
    signals = PageSignals(url="https://example.com/portal/welcome")
    exc = se.NoSuchElementException("no such element")

    assert classify(exc, signals).category == "element"
    assert classify(exc, signals, login_pattern=r"/portal/welcome$").category == "auth_lost"
    assert classify(exc, signals, login_pattern=re.compile("WELCOME")).category == "element"
    assert classify(exc, signals, login_pattern=re.compile("WELCOME", re.I)).category == (
        "auth_lost"
    )


def test_a_bad_login_pattern_does_not_raise() -> None:
    found = classify(KeyError("x"), PageSignals(url="http://x/login"), login_pattern="(")

    assert found.category == "handler_bug"


def test_default_login_pattern_is_the_documented_one() -> None:
    assert DEFAULT_LOGIN_PATTERN == r"/(log-?in|sign-?in|auth)(/|\?|$)"
