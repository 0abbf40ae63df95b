"""What a Selenium browser shows after an error: the flight recorder's questions to it.

:func:`look_through` is the local Selenium backend's
:meth:`~enduro.session.BrowserBackend.look`; the flight recorder writes (redacted)
whatever it returns.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from enduro.session._backend import BrowserView
from enduro.session._signals import bounded_calls

__all__ = ["look_through"]

# The document's HTML, from a copy whose password inputs lost their value
# attribute (frameworks mirror typed text into it). The live page is left alone.
_HTML_JS = r"""
const root = document.documentElement;
if (!root) { return ''; }
const copy = root.cloneNode(true);
for (const input of copy.querySelectorAll('input')) {
  if ((input.getAttribute('type') || '').toLowerCase() === 'password') {
    input.removeAttribute('value');
  }
}
const doctype = document.doctype ? new XMLSerializer().serializeToString(document.doctype) : '';
return (doctype ? doctype + '\n' : '') + copy.outerHTML;
"""


def look_through(driver: Any, timeout: float) -> BrowserView:
    """Ask the browser for its console log, HTML, URL and a screenshot, in that order.

    Each call is bounded by ``timeout``; the first failure ends the questions and
    what was read is returned. Never raises.
    """
    view = BrowserView()
    state: Any = None
    asks: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("console", lambda: driver.get_log("browser")),
        ("html", lambda: driver.execute_script(_HTML_JS)),
        ("url", lambda: driver.current_url),
        ("state", lambda: driver.execute_script("return document.readyState")),
        ("screenshot", lambda: _screenshot(driver)),
    )
    try:
        with bounded_calls(driver, timeout):
            # POSTs first: a GET that times out is retried three times (bounded_calls).
            # The screenshot last, and never of a document still "loading": one cut
            # off mid-transfer never paints, and asking for its screenshot wedges
            # chromedriver (every later command times out; measured).
            for key, ask in asks:
                if key == "screenshot" and state == "loading":
                    view.incomplete = "screenshot: the document never finished loading"
                    break
                try:
                    answer = ask()
                except Exception as exc:
                    view.incomplete = f"{key}: {type(exc).__name__}"
                    break
                if key == "console":
                    view.console = answer if isinstance(answer, list) else None
                elif key == "html":
                    view.html = answer if isinstance(answer, str) else None
                elif key == "url":
                    view.url = answer if isinstance(answer, str) else None
                elif key == "state":
                    state = answer
                elif isinstance(answer, bytes | bytearray):
                    view.screenshot = bytes(answer)
    except Exception as exc:  # the bound itself could not be set or restored
        view.incomplete = view.incomplete or f"browser: {type(exc).__name__}"
    return view


def _screenshot(driver: Any) -> bytes:
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    return base64.b64decode(shot["data"])
