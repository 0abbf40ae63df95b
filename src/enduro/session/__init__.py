"""Starting, checking, restarting and killing the browser; logins; what it showed on errors;
``ctx.http``, the HTTP client bound to the browser's cookies.

The browser sits behind :class:`BrowserBackend`; :class:`BrowserSession` (local Selenium
and Debian's chromedriver) is the backend a run uses by default, :class:`GridSession`
(browsers from a Selenium Grid) the one for ``--grid``, :class:`PlaywrightSession`
(Playwright on Debian's Chromium) the one for ``--backend playwright``.
"""

from enduro.session._backend import (
    BrowserBackend,
    BrowserView,
    CookieKey,
    MissingHandle,
    ProcessRegistry,
)
from enduro.session._choice import BACKENDS, backend_for, backend_name
from enduro.session._cookies import Cookie, CookieChanges, SiteCookies
from enduro.session._flags import CHROMIUM_FLAGS, LAUNCH_FLAGS
from enduro.session._grid import (
    GridSession,
    GridSessionInfo,
    grid_sessions,
    grid_status,
)
from enduro.session._http import BrowserLink, HttpClient, csrf_header
from enduro.session._http_stats import HttpStats, LatencyHistogram, merge_stats
from enduro.session._manager import SessionManager
from enduro.session._playwright import PlaywrightSession, playwright_available
from enduro.session._playwright_errors import PLAYWRIGHT_ERRORS
from enduro.session._processes import (
    kill_group,
    process_alive,
    reap_dead_runs,
    shown_url,
    split_credentials,
)
from enduro.session._recorder import FlightRecorder
from enduro.session._selenium import BrowserSession, find_browser
from enduro.session._selenium_errors import SELENIUM_ERRORS
from enduro.session._signals import collect_signals, drain_logs, logging_options

__all__ = [
    "BACKENDS",
    "CHROMIUM_FLAGS",
    "LAUNCH_FLAGS",
    "PLAYWRIGHT_ERRORS",
    "SELENIUM_ERRORS",
    "BrowserBackend",
    "BrowserLink",
    "BrowserSession",
    "BrowserView",
    "Cookie",
    "CookieChanges",
    "CookieKey",
    "FlightRecorder",
    "GridSession",
    "GridSessionInfo",
    "HttpClient",
    "HttpStats",
    "LatencyHistogram",
    "MissingHandle",
    "PlaywrightSession",
    "ProcessRegistry",
    "SessionManager",
    "SiteCookies",
    "backend_for",
    "backend_name",
    "collect_signals",
    "csrf_header",
    "drain_logs",
    "find_browser",
    "grid_sessions",
    "grid_status",
    "kill_group",
    "logging_options",
    "merge_stats",
    "playwright_available",
    "process_alive",
    "reap_dead_runs",
    "shown_url",
    "split_credentials",
]
