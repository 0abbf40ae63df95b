"""What a Playwright page showed, kept from its events for the page's signals.

No logs to scrape and no round trips: Playwright tells of each main-document
response (status, ``Retry-After``), each failed load (Chromium's ``net::ERR_*``),
each uncaught script error and console error, and a crashed tab, as they happen.

The document's response and failure come without asking: Playwright's driver
sends every navigation request's events to the client anyway (``goto`` returns
its response), and subscribing to ``response`` or ``requestfailed`` would make it
send every sub-resource's too — a script and an API call a page on the built-in
site, measured at ~5% of the Playwright backend's speed. So those two listeners
tap the page's events without subscribing (:func:`_unsubscribed`).
See ``_playwright``; ARCHITECTURE.md, "Browser backends".
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from enduro.recovery import PageSignals
from enduro.session._signals import MAX_CONSOLE_ERRORS, parse_retry_after

__all__ = ["MAX_EVENTS", "PageEvents"]

log = logging.getLogger(__name__)

# Events kept per browser (a page's are a handful; the oldest are dropped).
MAX_EVENTS = 200


@dataclass
class _Event:
    at: float
    kind: str  # "document" (a main-frame response), "failed" (its load failed), "error"
    status: int | None = None
    retry_after: float | None = None
    text: str = ""
    url: str = ""


class PageEvents:
    """The events of one browser's page, kept for :meth:`signals`.

    Args:
        end_load: ends the page's load now (called when a document that had its
            headers is cut off: Playwright would wait for it until its timeout).
    """

    def __init__(self) -> None:
        self._kept: deque[_Event] = deque(maxlen=MAX_EVENTS)
        self.crashed = False

    def listen(self, page: Any, end_load: Callable[[], None]) -> None:
        """Subscribe to ``page``'s events (on the thread that drives it)."""
        main = page.main_frame
        kept = self._kept
        keep = kept.append

        def response(answer: Any) -> None:
            with contextlib.suppress(Exception):
                if answer.frame != main or not answer.request.is_navigation_request():
                    return
                header = answer.headers.get("retry-after")
                keep(
                    _Event(
                        time.time(),
                        "document",
                        status=answer.status,
                        retry_after=parse_retry_after(header, time.time()) if header else None,
                        url=answer.url,
                    )
                )

        def failed(request: Any) -> None:
            with contextlib.suppress(Exception):
                if request.frame != main or not request.is_navigation_request():
                    return
                last = kept[-1] if kept else None
                committed = last is not None and last.kind == "document" and last.url == request.url
                keep(_Event(time.time(), "failed", text=str(request.failure), url=request.url))
                if committed:
                    # Cut off after its headers, a document never finishes loading
                    # and Playwright's goto waits out its whole timeout (Chromium
                    # and Selenium give up at once): end it, so the load fails now.
                    end_load()

        def page_error(error: Any) -> None:
            name = getattr(error, "name", "") or "Error"
            keep(_Event(time.time(), "error", text=f"Uncaught {name}: {error.message}"))

        def console(message: Any) -> None:
            with contextlib.suppress(Exception):
                if message.type == "error":
                    keep(_Event(time.time(), "error", text=message.text))

        def crashed(_page: Any) -> None:
            self.crashed = True

        self.crashed = False
        _unsubscribed(page, "response", response)
        _unsubscribed(page, "requestfailed", failed)
        page.on("pageerror", page_error)
        page.on("console", console)
        page.on("crash", crashed)

    def signals(self, since: float | None, url: str) -> PageSignals:
        """How the last main document since ``since`` (epoch s; None: all kept)
        loaded, and the script errors; ``url``: what the page shows now."""
        found = [e for e in list(self._kept) if since is None or e.at >= since]
        status = retry_after = None
        net_error = ""
        for event in found:
            if event.kind == "document":
                status, retry_after, net_error = event.status, event.retry_after, ""
            elif event.kind == "failed":
                net_error = event.text
        errors = tuple(e.text[:500] for e in found if e.kind == "error")[:MAX_CONSOLE_ERRORS]
        return PageSignals(
            url=url,
            status=status,
            retry_after=retry_after,
            net_error=net_error,
            console_errors=errors,
        )

    def console(self) -> list[dict[str, Any]]:
        """The script and console errors kept, as the flight recorder shows them."""
        return [{"level": "SEVERE", "message": e.text} for e in self._kept if e.kind == "error"]

    def clear(self) -> None:
        self._kept.clear()


def _unsubscribed(page: Any, event: str, listener: Callable[[Any], None]) -> None:
    """Listen to ``page``'s ``event`` without subscribing the driver to it: only the
    events it sends anyway arrive (a navigation request's response and failure).

    Playwright's client adds the subscription when a listener is added; this taps
    the client object's ``emit`` instead, with the listener wrapped as ``page.on``
    wraps it. So no listener is counted either: a handler's own
    ``page.on("response", ...)`` still subscribes, and this then sees every event,
    filtered by the listener as before. Where that layout is not found (another
    Playwright), ``page.on``.
    """
    try:
        impl = page._impl_obj
        emit = impl.emit
        wrapped = page._wrap_handler(listener)
    except AttributeError as exc:
        log.debug("Playwright's event layout not found (%s): subscribing to %s", exc, event)
        page.on(event, listener)
        return

    def tapped(kind: Any, *args: Any) -> bool:
        if kind == event:
            try:
                wrapped(*args)
            except Exception:  # a listener's error must not cost the handler its event
                log.debug("page event listener failed", exc_info=True)
        return bool(emit(kind, *args))

    impl.emit = tapped
