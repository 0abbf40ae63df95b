"""Exception -> category, in one place: classes first, then text patterns as data.

Issue-level detail (per-category recovery policies) builds on this table;
for now every category is retried with backoff, and the runner asks the
session whether the browser survived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import urllib3.exceptions
from selenium.common import exceptions as se

from enduro.errors import AuthLost, BadRecords, BrowserDead, PageTimeout, SessionError

__all__ = ["Classification", "classify"]


@dataclass(frozen=True)
class Classification:
    """What kind of failure an exception is.

    Attributes:
        category: the error category (``browser_crash``, ``timeout``, …).
        message: one line describing the exception (type and first line).
    """

    category: str
    message: str


# Most specific first; the first match wins.
_BY_CLASS: tuple[tuple[type[BaseException], str], ...] = (
    (PageTimeout, "timeout"),
    (AuthLost, "auth_lost"),
    (BadRecords, "handler_bug"),
    (BrowserDead, "browser_crash"),
    (SessionError, "browser_crash"),
    (se.InvalidSessionIdException, "browser_crash"),
    (se.StaleElementReferenceException, "element"),
    (se.NoSuchElementException, "element"),
    (se.JavascriptException, "javascript"),
    (se.TimeoutException, "timeout"),
    (urllib3.exceptions.MaxRetryError, "driver_dead"),
    (urllib3.exceptions.ProtocolError, "driver_dead"),
    (urllib3.exceptions.ReadTimeoutError, "timeout"),
    (ConnectionRefusedError, "driver_dead"),
    (TimeoutError, "timeout"),
)

# Text patterns for exceptions whose class says too little (WebDriverException).
_BY_TEXT: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), category)
    for pattern, category in (
        (r"tab crashed|page crash", "page_crash"),
        (
            r"chrome not reachable|browser has closed|disconnected|not connected to devtools",
            "browser_crash",
        ),
        (r"invalid session id", "browser_crash"),
        (r"net::ERR_", "network"),
        (r"timed out|timeout", "timeout"),
    )
)


def classify(exc: BaseException) -> Classification:
    """Name the category of ``exc`` (``unknown`` when nothing matches)."""
    first_line = (str(exc).strip().splitlines() or [""])[0][:300]
    message = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    for cls, category in _BY_CLASS:
        if isinstance(exc, cls):
            return Classification(category, message)
    if isinstance(exc, se.WebDriverException):
        text = str(exc)
        for pattern, category in _BY_TEXT:
            if pattern.search(text):
                return Classification(category, message)
        return Classification("webdriver", message)
    return Classification("unknown", message)
