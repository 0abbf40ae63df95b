"""What the local Selenium + chromedriver backend's exceptions mean, for ``classify``.

Registered with :func:`enduro.recovery.register_errors` when :mod:`enduro.session` is
imported (see ``ARCHITECTURE.md``, "Browser backends"). The facts behind each line are
in the project's browser notes: a SIGKILLed chromedriver is reported by urllib3 as a
refused connection (driver_dead), not as a ``WebDriverException``; a SIGKILLed Chromium
leaves chromedriver answering ``invalid session id`` (browser_crash); a driver call that
hangs ends in urllib3's read timeout (timeout).
"""

from __future__ import annotations

import urllib3.exceptions
from selenium.common import exceptions as se

from enduro.recovery import ErrorTable, register_errors

__all__ = ["SELENIUM_ERRORS"]


def _hung_driver(exc: BaseException) -> str | None:
    """A retry error whose cause was a read timeout: the driver hung, it did not die."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and isinstance(
        getattr(exc, "reason", None), urllib3.exceptions.ReadTimeoutError
    ):
        return "timeout"
    return None


SELENIUM_ERRORS = ErrorTable(
    name="selenium",
    decisive=(
        (se.InvalidSessionIdException, "browser_crash"),
        (se.NoSuchWindowException, "browser_crash"),
        (urllib3.exceptions.ReadTimeoutError, "timeout"),
        (urllib3.exceptions.MaxRetryError, "driver_dead"),
        (urllib3.exceptions.NewConnectionError, "driver_dead"),
        (urllib3.exceptions.ProtocolError, "driver_dead"),
        # A refused connection to chromedriver: before the generic ConnectionError
        # (network) of classify's symptom step.
        (ConnectionRefusedError, "driver_dead"),
    ),
    symptoms=(
        (se.StaleElementReferenceException, "element"),
        (se.NoSuchElementException, "element"),
        (se.JavascriptException, "javascript"),
        (se.TimeoutException, "timeout"),
    ),
    first=_hung_driver,
)

register_errors(SELENIUM_ERRORS)
