"""enduro's exceptions: the class of an error says what happens next.

The tree::

    EnduroError                     base of everything enduro raises
    ├── UsageError                  bad input; exit 2 with a one-line fix hint
    │   ├── JobLoadError            the job file or module can't give a Job
    │   ├── StoreError              the store can't be opened or isn't an enduro store
    │   └── BrowserNotFound         chromium / chromedriver not installed
    ├── PageError                   something went wrong with one page (retried)
    │   ├── PageTimeout             the page overran its deadline
    │   ├── AuthLost                the site logged us out (login hook, then retry)
    │   └── BadRecords              the handler returned records enduro can't store
    └── SessionError                the browser session is unusable (restart it)
        └── BrowserDead             the browser or its driver is gone

Foreign exceptions (Selenium, urllib3, OSError) are mapped onto this tree in
one place, :func:`enduro.recovery.classify`, so the runner never reads
exception text itself.
"""

from __future__ import annotations

__all__ = [
    "AuthLost",
    "BadRecords",
    "BrowserDead",
    "BrowserNotFound",
    "EnduroError",
    "JobLoadError",
    "PageError",
    "PageTimeout",
    "SessionError",
    "StoreError",
    "UsageError",
]


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


class AuthLost(PageError):
    """The site no longer treats the session as logged in."""


class BadRecords(PageError):
    """The handler returned something that is not a list of storable records."""


class SessionError(EnduroError):
    """The browser session can't be used; the session manager restarts it."""


class BrowserDead(SessionError):
    """The browser or its driver process is gone."""
