"""enduro's exceptions: the class of an error says what happens next.

The tree::

    EnduroError                     base of everything enduro raises
    ├── UsageError                  bad input; exit 2 with a one-line fix hint
    │   ├── JobLoadError            the job file or module can't give a Job
    │   ├── StoreError              the store can't be opened or isn't an enduro store
    │   └── BrowserNotFound         chromium / chromedriver not installed
    ├── PageError                   something went wrong with one page (retried)
    │   ├── PageTimeout             the page overran its deadline
    │   ├── RequestTimeout          an HTTP request of ctx.http got no answer in time
    │   ├── AuthLost                the site logged us out (login hook, then retry)
    │   ├── BadRecords              the handler returned records enduro can't store
    │   ├── HttpError               the site answered with an error status
    │   │   ├── RateLimited         429: slow down (cool down for Retry-After)
    │   │   └── ServerError         5xx or a maintenance page
    │   ├── BadResponse             the site's answer is not what was promised (HTML, not JSON)
    │   ├── ForeignHost             ctx.http was asked to carry the site's cookies elsewhere
    │   └── NetworkError            the site is unreachable (reset, DNS, offline, cut-off body)
    ├── SessionError                the browser session is unusable (restart it)
    │   ├── BrowserDead             the browser or its driver is gone
    │   │   └── DriverDead          chromedriver is gone
    │   ├── TabCrashed              the renderer died; the driver must restart
    │   └── MemoryPressure          the machine or the browser is short of memory
    ├── Fatal                       a configuration problem found mid-run; the run halts
    └── HaltRun                     going on would be wrong: the run stops, saying why
        └── JobLooksBroken          page after page fails in the job's own code: fix it, resume

Foreign exceptions (Selenium, urllib3, httpx, OSError) are mapped onto the error
categories in :data:`CATEGORIES` in one place, :func:`enduro.recovery.classify`,
so the runner never reads exception text itself.
"""

from __future__ import annotations

import re

__all__ = [
    "CATEGORIES",
    "PAGE_SIDE_CATEGORIES",
    "AuthLost",
    "BadRecords",
    "BadResponse",
    "BrowserDead",
    "BrowserNotFound",
    "DriverDead",
    "EnduroError",
    "Fatal",
    "ForeignHost",
    "HaltRun",
    "HttpError",
    "JobLoadError",
    "JobLooksBroken",
    "MemoryPressure",
    "NetworkError",
    "PageError",
    "PageTimeout",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "SessionError",
    "StoreError",
    "TabCrashed",
    "UsageError",
    "first_line",
    "message_shape",
]

CATEGORIES: dict[str, str] = {
    "network": "the site could not be reached (connection reset, DNS, offline)",
    "rate_limited": "the site said slow down (HTTP 429)",
    "server_error": "the site failed (HTTP 5xx, maintenance page)",
    "browser_crash": "the browser is gone or its session is unusable",
    "driver_dead": "chromedriver is gone (the driver connection is refused)",
    "page_crash": "the tab's renderer crashed",
    "element": "an element was stale or missing (the page changed under the handler)",
    "javascript": "a script on the page or run by the handler failed",
    "auth_lost": "the site no longer treats the session as logged in",
    "memory_pressure": "the machine or the browser is short of memory",
    "timeout": "the page or a driver call took too long",
    "handler_bug": "a bug in the job's handler (KeyError, TypeError, bad records, ...)",
    "bad_response": "the site's answer is not what was promised (HTML where JSON was expected)",
    "fatal": "a configuration problem: the run halts",
    "unknown": "nothing more specific is known",
}
"""Every error category, name -> one-line meaning."""

PAGE_SIDE_CATEGORIES: frozenset[str] = frozenset(
    {"handler_bug", "unknown", "element", "javascript"}
)
"""The categories that speak of the job's own code or the page's content, not of the
site or the browser being unwell: a run of them with no page done between says the job
is broken (``Settings.broken_job_errors``), and a burst of them is no reason to probe
the site. Every other category is the site's, the browser's or the network's."""


class EnduroError(Exception):
    """Base class of every error enduro raises."""


class UsageError(EnduroError):
    """Bad input from the user: shown as one line on stderr, exit code 2.

    Args:
        message: what is wrong, naming the offending input.
        hint: how to fix it, in one short sentence.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def format_line(self) -> str:
        """The single line the CLI prints on stderr."""
        return f"error: {self.message}" + (f" ({self.hint})" if self.hint else "")


class JobLoadError(UsageError):
    """The job reference does not lead to a :class:`enduro.Job`."""


class StoreError(UsageError):
    """The store path is unusable or the file is not an enduro store."""


class BrowserNotFound(UsageError):
    """Chromium or chromedriver is not installed where enduro looks."""


class PageError(EnduroError):
    """A failure tied to one page; the page is retried within its budget."""


class PageTimeout(PageError):
    """The page overran its deadline (the watchdog may have killed the browser)."""


class RequestTimeout(PageError):
    """An HTTP request of ``ctx.http`` got no answer within its timeout."""


class AuthLost(PageError):
    """The site no longer treats the session as logged in."""


class BadRecords(PageError):
    """The handler returned something that is not a list of storable records."""


class HttpError(PageError):
    """The site answered the page with an error status.

    Args:
        message: what happened (default: ``HTTP <status>``).
        status: the HTTP status code.
        retry_after: seconds from the response's ``Retry-After`` header, if any.
    """

    def __init__(
        self, message: str = "", *, status: int = 0, retry_after: float | None = None
    ) -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class RateLimited(HttpError):
    """The site said slow down (HTTP 429); cool down for ``retry_after`` if given."""

    def __init__(
        self, message: str = "", *, status: int = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, retry_after=retry_after)


class ServerError(HttpError):
    """The site failed (HTTP 5xx) or shows a maintenance page."""

    def __init__(
        self, message: str = "", *, status: int = 503, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, retry_after=retry_after)


class BadResponse(PageError):
    """The site answered, but not with what the request promised (HTML where JSON was
    expected, say): usually a wrong URL or an error page served with status 200."""


class ForeignHost(PageError):
    """``ctx.http`` was asked to send the site's cookies to another host; it refuses."""


class NetworkError(PageError):
    """The site can't be reached: connection reset, DNS failure, offline, a body cut off."""


class SessionError(EnduroError):
    """The browser session can't be used; the session manager restarts it."""


class BrowserDead(SessionError):
    """The browser or its driver process is gone."""


class DriverDead(BrowserDead):
    """chromedriver is gone; the browser it drove is orphaned and must be killed."""


class TabCrashed(SessionError):
    """The tab's renderer crashed; with Selenium the driver must be restarted."""


class MemoryPressure(SessionError):
    """The machine or the browser is short of memory; restart the browser."""


class Fatal(EnduroError):
    """A configuration problem found mid-run (going on can't help); the run halts."""


class HaltRun(EnduroError):
    """Going on would be wrong (the browser won't start, logins keep failing,
    the site stays down); the run stops with this reason and a resume hint.

    Not a page's error: nothing classifies it, every worker stops on it."""


def first_line(message: str, limit: int = 300) -> str:
    """An error message's first line (a driver's goes on with a stack trace), cut at
    ``limit`` characters."""
    return (message.strip().splitlines() or [""])[0][:limit]


_NUMBERED = re.compile(r"\w*\d\w*")


def message_shape(message: str) -> str:
    """What messages that differ only in their numbers and ids share (``page 12: no
    rows`` and ``page 13: no rows``, or the same call on ``/matches/M5C89D7F8F334`` and
    ``/matches/MCD7F24B19970``, are one kind of failure): every word with a digit in it
    becomes ``#``."""
    return _NUMBERED.sub("#", first_line(message))


class JobLooksBroken(HaltRun):
    """Page after page failed in the job's own code (:data:`PAGE_SIDE_CATEGORIES`) and
    none was done between them: the run stops early, the pages stay pending, and the
    fixed job resumes where it stopped."""
