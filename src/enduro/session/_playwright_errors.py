"""What the Playwright backend's exceptions mean, for ``classify``.

Registered with :func:`enduro.recovery.register_errors` when :mod:`enduro.session` is
imported and Playwright is installed (see ``ARCHITECTURE.md``, "Browser backends").
The facts behind each line are in the project's browser notes: a SIGKILLed
Chromium and a SIGKILLed Node driver both raise ``TargetClosedError`` ("Target
page, context or browser has been closed"), so the class alone is a symptom: the
backend's page signals say when it was the driver that went (``lost="driver"``,
driver_dead); a crashed tab says "crash" in its text (page_crash). A handle whose
document was replaced says "Execution context was destroyed" (element). The
navigation after a failed one can fail "interrupted by another navigation to
chrome-error://…", an upstream race that is the earlier failure's echo (network).
"""

from __future__ import annotations

import re

from enduro.recovery import ErrorTable, register_errors

__all__ = ["PLAYWRIGHT_ERRORS"]

_PATTERNS = (
    (r"target crashed|page crashed", "page_crash"),
    (
        r"connection closed while reading from the driver|playwright connection closed",
        "driver_dead",
    ),
    (r"interrupted by another navigation to \"?chrome-error:", "network"),
    (
        r"execution context was destroyed|element is not attached|not attached to the dom"
        r"|stale element|no such element",
        "element",
    ),
    (r"target page, context or browser has been closed|browser has been closed", "browser_crash"),
)


_CRASHED = re.compile(r"target crashed|page crashed", re.IGNORECASE)


def _crashed_tab(exc: BaseException) -> str | None:
    """A Playwright error saying the target crashed: the tab, not the browser (its
    text decides before what the page showed: a crashed tab shows nothing new)."""
    if type(exc).__module__.startswith("playwright") and _CRASHED.search(str(exc)):
        return "page_crash"
    return None


try:
    # (the classes' home: importing it does not load the rest of Playwright)
    from playwright._impl._errors import TargetClosedError as _PwClosed
    from playwright._impl._errors import TimeoutError as _PwTimeout
except ImportError:  # the optional extra is not installed: nothing of it to classify
    PLAYWRIGHT_ERRORS = ErrorTable(name="playwright", patterns=_PATTERNS, first=_crashed_tab)
else:
    PLAYWRIGHT_ERRORS = ErrorTable(
        name="playwright",
        symptoms=(
            (_PwClosed, "browser_crash"),
            (_PwTimeout, "timeout"),
        ),
        patterns=_PATTERNS,
        first=_crashed_tab,
    )

register_errors(PLAYWRIGHT_ERRORS)
