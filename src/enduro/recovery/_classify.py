"""Exception -> category, in one place: the session's verdict first, then what the page showed.

:func:`classify` decides in this order; the first step that names a category wins:

1. **Decisive classes.** enduro's own verdicts (:class:`~enduro.errors.PageTimeout`,
   :class:`~enduro.errors.AuthLost`, :class:`~enduro.errors.RateLimited`, ...), then the
   decisive classes of each browser backend's :class:`ErrorTable` (registered with
   :func:`register_errors`; the local Selenium backend's says that Selenium's
   ``InvalidSessionIdException`` is a browser_crash and that a refused connection to
   chromedriver is driver_dead — see ``enduro.session._selenium_errors``). httpx's errors
   come from a plain HTTP client, never the driver: its timeouts are timeout, its
   transport errors (refused, reset, a body cut short) network, its ``HTTPStatusError``
   goes by the status like an :class:`~enduro.errors.HttpError`. Nothing the page showed
   overrides these.
2. **Structured signals** (:class:`PageSignals`, read from the browser after the error):
   the backend's driver found gone (driver_dead: Playwright's errors look the same
   whichever of its processes died) or the tab crashed (page_crash), a ``net::ERR_*``
   load error (network), HTTP 429 (rate_limited), 5xx (server_error), 401/403 or a
   login URL (auth_lost), an uncaught script error (javascript). They override
   step 3: a ``KeyError`` in a handler that was served a 429 page is a rate limit,
   not a handler bug.
3. **Symptom classes**: the backends' first (Selenium: stale / missing elements are
   element, ``JavascriptException`` javascript, ``TimeoutException`` timeout), then plain
   Python errors raised by the handler (handler_bug), ``ConnectionError`` /
   ``socket.gaierror`` (network), ``TimeoutError`` (timeout).
4. **Text patterns**, ``(regex, category)``, case-insensitive, first match wins, read
   from ``str(exc)`` of anything still unclassified (``WebDriverException``, a bare
   ``PageError``, ...): the backends' patterns, then the table here.
5. Anything else is ``unknown``.

:func:`classify` never raises, whatever the exception does.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from enduro.errors import (
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
    PageTimeout,
    RateLimited,
    RequestTimeout,
    ServerError,
    SessionError,
    TabCrashed,
    first_line,
)
from enduro.recovery._signals import PageSignals
from enduro.settings import DEFAULT_LOGIN_PATTERN

__all__ = [
    "DEFAULT_LOGIN_PATTERN",
    "Classification",
    "ErrorTable",
    "classify",
    "is_login_url",
    "register_errors",
]

MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Classification:
    """What kind of failure an exception is.

    Attributes:
        category: the error category (a key of :data:`enduro.errors.CATEGORIES`).
        message: one line describing the exception (type and first line).
        status: the HTTP status behind the category, when one is known.
        retry_after: seconds the site asked us to wait (``Retry-After``), when given.
    """

    category: str
    message: str
    status: int | None = None
    retry_after: float | None = None


ClassTable = tuple[tuple[type[BaseException], str], ...]


@dataclass(frozen=True)
class ErrorTable:
    """What a browser backend's exceptions mean: its part of each step of :func:`classify`.

    Attributes:
        name: the backend's name; registering a table of the same name replaces it.
        decisive: classes that say what happened whatever the page showed (step 1).
        symptoms: classes that what the page showed may explain better (step 3).
        patterns: ``(regex, category)`` read from the text of what is left (step 4).
        first: looked at before anything else; a category, or None to go on (for an
            exception whose class alone misleads, e.g. a retry error whose cause was a
            timeout).
    """

    name: str
    decisive: ClassTable = ()
    symptoms: ClassTable = ()
    patterns: tuple[tuple[str, str], ...] = ()
    first: Callable[[BaseException], str | None] | None = None


# Step 1, most specific first; the first match wins.
_ENDURO: ClassTable = (
    (PageTimeout, "timeout"),
    (RequestTimeout, "timeout"),
    (AuthLost, "auth_lost"),
    (RateLimited, "rate_limited"),
    (ServerError, "server_error"),
    (NetworkError, "network"),
    (BadResponse, "bad_response"),
    (BadRecords, "handler_bug"),
    (ForeignHost, "handler_bug"),
    (DriverDead, "driver_dead"),
    (TabCrashed, "page_crash"),
    (MemoryPressure, "memory_pressure"),
    (BrowserDead, "browser_crash"),
    (SessionError, "browser_crash"),
    (Fatal, "fatal"),
)
# After the backends' decisive classes.
_HTTP_CLIENT: ClassTable = (
    # httpx (a handler's own client, or ctx.http's cause): timeouts before the
    # transport errors they are a kind of
    (httpx.TimeoutException, "timeout"),
    (httpx.TransportError, "network"),
    (httpx.DecodingError, "network"),
)

# Step 3: classes that name a symptom; what the page showed may explain them better.
_PYTHON: ClassTable = (
    (KeyError, "handler_bug"),
    (IndexError, "handler_bug"),
    (LookupError, "handler_bug"),
    (TypeError, "handler_bug"),
    (AttributeError, "handler_bug"),
    (ValueError, "handler_bug"),
    (ZeroDivisionError, "handler_bug"),
    (NameError, "handler_bug"),  # UnboundLocalError too
    (AssertionError, "handler_bug"),
    (socket.gaierror, "network"),
    (ConnectionError, "network"),  # reset, aborted, broken pipe
    (TimeoutError, "timeout"),
)

# Step 4: text patterns for exceptions whose class says too little.
_TEXT: tuple[tuple[str, str], ...] = (
    (r"tab crashed|page crash", "page_crash"),
    # \b keeps Chromium's net::ERR_INTERNET_DISCONNECTED out of browser_crash.
    (
        r"chrome not reachable|browser has closed|not connected to devtools"
        r"|invalid session id|\bdisconnected",
        "browser_crash",
    ),
    (r"net::ERR_|failed to fetch|network error|connection reset", "network"),
    (r"too many requests|\bHTTP 429\b", "rate_limited"),
    (r"\bHTTP 5\d\d\b|service unavailable|maintenance", "server_error"),
    (r"stale element|no such element", "element"),
    (
        r"script error|SyntaxError|ReferenceError|is not a function|is not defined"
        r"|javascript error",
        "javascript",
    ),
    (r"login|logged out|HTTP 40[13]\b", "auth_lost"),
    (r"timed out|timeout", "timeout"),
)


@dataclass(frozen=True)
class _Steps:
    """The tables of every registered backend merged into each step, in order."""

    first: tuple[Callable[[BaseException], str | None], ...]
    decisive: ClassTable
    symptoms: ClassTable
    patterns: tuple[tuple[re.Pattern[str], str], ...]


_tables: dict[str, ErrorTable] = {}
_tables_lock = threading.Lock()


def _merge(tables: list[ErrorTable]) -> _Steps:
    patterns = [p for t in tables for p in t.patterns] + list(_TEXT)
    return _Steps(
        first=tuple(t.first for t in tables if t.first is not None),
        decisive=_ENDURO + tuple(e for t in tables for e in t.decisive) + _HTTP_CLIENT,
        symptoms=tuple(e for t in tables for e in t.symptoms) + _PYTHON,
        patterns=tuple((re.compile(p, re.IGNORECASE), c) for p, c in patterns),
    )


_steps = _merge([])


def register_errors(table: ErrorTable) -> None:
    """Add a browser backend's exceptions to :func:`classify` (a backend calls this
    when it is imported)."""
    global _steps
    with _tables_lock:
        _tables[table.name] = table
        _steps = _merge(list(_tables.values()))


def classify(
    exc: BaseException,
    signals: PageSignals | None = None,
    *,
    login_pattern: str | re.Pattern[str] = DEFAULT_LOGIN_PATTERN,
) -> Classification:
    """Name the category of ``exc``, with what the browser showed (``unknown`` if nothing fits).

    Args:
        exc: the exception a page (or a browser call) raised.
        signals: what the browser showed after the error, if it could be read.
        login_pattern: regex searched in the URL's path and query; a match means
            the site sent us to its login page.
    """
    text = _text(exc)
    line = first_line(text, MESSAGE_CHARS)
    name = type(exc).__name__
    message = f"{name}: {line}" if line else name

    steps = _steps
    for first in steps.first:
        named = first(exc)
        if named is not None:
            return Classification(named, message)
    status, retry_after = _http(exc)
    for cls, category in steps.decisive:
        if isinstance(exc, cls):
            return Classification(category, message, status, retry_after)
    if isinstance(exc, HttpError | httpx.HTTPStatusError):
        # a status no subclass names (429 raised as HttpError, raise_for_status(), ...)
        found = _by_status(status, retry_after, message)
        if found is not None:
            return found

    if signals is not None:
        found = _from_signals(signals, message, login_pattern)
        if found is not None:
            return found

    for cls, category in steps.symptoms:
        if isinstance(exc, cls):
            return Classification(category, message)

    for pattern, category in steps.patterns:
        if pattern.search(text):
            return Classification(category, message)
    return Classification("unknown", message)


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return ""


def _http(exc: BaseException) -> tuple[int | None, float | None]:
    """Status and Retry-After of an :class:`HttpError` or an httpx status error
    (None, None for anything else)."""
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        header = response.headers.get("retry-after", "")
        seconds = _seconds(header)
        return response.status_code, seconds
    if not isinstance(exc, HttpError):
        return None, None
    status = getattr(exc, "status", None)
    retry_after = getattr(exc, "retry_after", None)
    return (
        status if isinstance(status, int) else None,
        float(retry_after) if isinstance(retry_after, int | float) else None,
    )


def _seconds(header: str) -> float | None:
    """Delay-seconds of a Retry-After header (None when absent or a date)."""
    try:
        seconds = float(header)
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


def _by_status(
    status: int | None, retry_after: float | None, message: str
) -> Classification | None:
    if status == 429:
        return Classification("rate_limited", message, status, retry_after)
    if status is not None and 500 <= status <= 599:
        return Classification("server_error", message, status, retry_after)
    if status in (401, 403):
        return Classification("auth_lost", message, status)
    return None


def _from_signals(
    signals: PageSignals, message: str, login_pattern: str | re.Pattern[str]
) -> Classification | None:
    if signals.lost == "driver":
        return Classification("driver_dead", message)
    if signals.lost == "page":
        return Classification("page_crash", message)
    if signals.net_error:
        return Classification("network", message)
    found = _by_status(signals.status, signals.retry_after, message)
    if found is not None:
        return found
    if signals.url and is_login_url(signals.url, login_pattern):
        return Classification("auth_lost", message)
    if any("uncaught" in line.lower() for line in signals.console_errors):
        return Classification("javascript", message)
    return None


def is_login_url(url: str, pattern: str | re.Pattern[str]) -> bool:
    """Whether ``pattern`` is found in the path and query of ``url`` (a login page)."""
    try:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if isinstance(pattern, str):
            return re.search(pattern, target, re.IGNORECASE) is not None
        return pattern.search(target) is not None
    except (re.error, ValueError):
        return False
