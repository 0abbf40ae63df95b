"""What the browser showed when a page failed: structured signals for classification."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PageSignals"]


@dataclass(frozen=True)
class PageSignals:
    """Facts read from the browser after an error (None / empty: not known).

    Attributes:
        url: the URL the browser was on (``driver.current_url``).
        status: HTTP status of the last main-document response.
        retry_after: seconds from that response's ``Retry-After`` header.
        net_error: Chromium's error for a failed main-document load
            (``net::ERR_CONNECTION_RESET``, ``net::ERR_INTERNET_DISCONNECTED``, …).
        console_errors: SEVERE console / script messages logged since the last look.
        lost: a part of the browser found gone when asked, whose errors may look like
            something else's: ``"driver"`` (the backend's driver process), ``"page"``
            (the tab's renderer crashed; a load then fails as ``net::ERR_ABORTED``).
    """

    url: str = ""
    status: int | None = None
    retry_after: float | None = None
    net_error: str = ""
    console_errors: tuple[str, ...] = ()
    lost: str = ""
