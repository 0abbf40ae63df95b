"""What the browser showed when a page failed, read from chromedriver's logs.

A WebDriver ``get`` says little about how a navigation ended: a 429 or 503
page loads like any other, and a refused connection shows Chromium's error
page. With :func:`logging_options` set at launch, chromedriver keeps the
browser's network events (performance log) and console messages (browser
log); after an error :func:`collect_signals` reads both and names the last
main-document outcome. Parsing is pure (:func:`parse_performance_log`,
:func:`console_errors`, :func:`parse_retry_after`) so it is tested without
a browser.

chromedriver buffers log entries until they are read, so a long run must
drain them regularly: :func:`drain_logs` before each page, which also makes
the signals describe that page only.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from selenium.common.exceptions import InvalidArgumentException
from selenium.webdriver.chrome.options import Options

from enduro.recovery import PageSignals

__all__ = [
    "MAX_CONSOLE_ERRORS",
    "MAX_MESSAGE_CHARS",
    "bounded_calls",
    "collect_signals",
    "console_errors",
    "drain_logs",
    "entries_since",
    "logging_options",
    "parse_performance_log",
    "parse_retry_after",
]

MAX_CONSOLE_ERRORS = 20
"""At most this many console errors are kept (the first ones: the cause comes first)."""
MAX_MESSAGE_CHARS = 300
"""Console messages are cut to this length."""

_RESPONSE = "Network.responseReceived"
_FAILED = "Network.loadingFailed"
_REQUEST = "Network.requestWillBeSent"


def logging_options(options: Options) -> None:
    """Ask chromedriver to keep network events and console messages (set at launch)."""
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    options.add_experimental_option(
        "perfLoggingPrefs", {"enableNetwork": True, "enablePage": False}
    )


@contextlib.contextmanager
def bounded_calls(driver: Any, timeout: float) -> Iterator[None]:
    """Cap every WebDriver call made inside at ``timeout`` seconds.

    A frozen browser ignores page-load and script timeouts, so the HTTP client's
    own timeout is the only bound; it is restored on the way out. Selenium's
    HTTP client (urllib3) retries a GET command that timed out three times and
    never a POST, so ask a POST first (``get_log``, ``execute_script``): a
    frozen browser then costs one timeout, not four.
    """
    try:
        config = driver.command_executor.client_config
        saved = config.timeout
    except Exception:  # a fake or foreign driver: nothing to bound
        yield
        return
    config.timeout = timeout
    try:
        yield
    finally:
        config.timeout = saved


def collect_signals(
    driver: Any, timeout: float = 5.0, *, since: float | None = None
) -> PageSignals | None:
    """What the browser shows now, and how its last main document loaded.

    Drains both logs and reads the window and URL (four round trips, each
    bounded by ``timeout``). Console messages are drained here, so a
    flight-recorder capture made afterwards finds the browser log empty.

    Args:
        driver: the WebDriver.
        timeout: seconds each call may take.
        since: epoch seconds; log entries chromedriver received earlier are
            ignored. Lets a runner skip :func:`drain_logs` before each page
            (noting the time instead) and drain only now and then.

    Returns:
        The signals, or None if the browser does not answer; never raises.
    """
    try:
        with bounded_calls(driver, timeout):
            # POSTs first: urllib3 retries a GET that timed out three times, so
            # a frozen browser would hold a GET for four timeouts.
            performance = _read_log(driver, "performance")
            browser = _read_log(driver, "browser")
            window = driver.current_window_handle
            url = driver.current_url
    except Exception:
        return None
    if since is not None:
        performance, browser = entries_since(performance, since), entries_since(browser, since)
    window = window if isinstance(window, str) else None
    status, retry_after, net_error, _ = parse_performance_log(performance, window=window)
    return PageSignals(
        url=url if isinstance(url, str) else "",
        status=status,
        retry_after=retry_after,
        net_error=net_error,
        console_errors=console_errors(browser),
    )


def drain_logs(driver: Any, timeout: float = 5.0) -> None:
    """Empty both logs (two round trips), so the next signals describe the next page only.

    Never raises: a browser that does not answer is found by the next page.
    """
    with contextlib.suppress(Exception), bounded_calls(driver, timeout):
        _read_log(driver, "performance")
        _read_log(driver, "browser")


def parse_performance_log(
    entries: Iterable[Any], *, window: str | None = None, now: float | None = None
) -> tuple[int | None, float | None, str, str]:
    """The outcome of the last main-document request in performance-log entries.

    The last request is the one of the last main-frame ``Document`` event
    (request sent, response received or loading failed); sub-resources and
    iframes are ignored, and so are malformed entries.

    Args:
        entries: ``driver.get_log("performance")``, oldest first.
        window: the current window handle (chromedriver's DevTools target id);
            events of other tabs are ignored. None: every tab counts.
        now: epoch seconds for an HTTP-date ``Retry-After`` when the response
            has no ``Date`` header (default: the current time).

    Returns:
        ``(status, retry_after, net_error, url)`` of that request: status and
        Retry-After seconds if a response arrived, Chromium's error text
        (``net::ERR_...``) if loading failed (possibly after a response),
        and its URL; ``(None, None, "", "")`` when there was none.
    """
    requests: dict[str, dict[str, Any]] = {}
    frames: dict[str, str] = {}
    last: str | None = None
    for entry in entries:
        event = _event(entry)
        if event is None:
            continue
        target, method, params = event
        if window is not None and target is not None and target != window:
            continue
        request_id = params.get("requestId")
        if not isinstance(request_id, str):
            continue
        frame = params.get("frameId")  # loadingFailed has none: known from the request
        if isinstance(frame, str):
            frames[request_id] = frame
        else:
            frame = frames.get(request_id)
        if target is not None and frame is not None and frame != target:
            continue  # an iframe's document
        state = requests.setdefault(request_id, {})
        if method == _REQUEST:
            request = params.get("request")
            if isinstance(request, Mapping) and isinstance(request.get("url"), str):
                state["url"] = request["url"]
        elif method == _RESPONSE:
            response = params.get("response")
            if not isinstance(response, Mapping):
                continue
            status = response.get("status")
            state["status"] = int(status) if isinstance(status, int | float) else None
            if isinstance(response.get("url"), str):
                state["url"] = response["url"]
            headers = response.get("headers")
            state["headers"] = headers if isinstance(headers, Mapping) else {}
        else:
            error = params.get("errorText")
            state["error"] = error if isinstance(error, str) and error else "net::ERR_FAILED"
        last = request_id
    if last is None:
        return None, None, "", ""
    state = requests[last]
    retry_after = None
    if state.get("status") is not None:
        headers = state.get("headers", {})
        value = _header(headers, "retry-after")
        if value is not None:
            reference = _http_date(_header(headers, "date"))
            if reference is None:
                reference = time.time() if now is None else now
            retry_after = parse_retry_after(value, reference)
    return state.get("status"), retry_after, state.get("error", ""), state.get("url", "")


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date.

    Args:
        value: the header's value.
        now: epoch seconds the date is relative to (the response's ``Date``).

    Returns:
        Non-negative seconds, or None if the value is neither form.
    """
    value = value.strip().split("\n")[0].strip()  # repeated headers arrive joined by newlines
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return None
        return max(0.0, when - now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def console_errors(entries: Iterable[Any]) -> tuple[str, ...]:
    """SEVERE messages of browser-log entries: the first :data:`MAX_CONSOLE_ERRORS`, each cut."""
    found: list[str] = []
    for entry in entries:
        if len(found) >= MAX_CONSOLE_ERRORS:
            break
        if not isinstance(entry, Mapping) or entry.get("level") != "SEVERE":
            continue
        message = entry.get("message")
        if isinstance(message, str):
            found.append(_cut(message))
    return tuple(found)


def entries_since(entries: Iterable[Any], since: float) -> list[Any]:
    """Log entries chromedriver received at or after ``since`` (epoch seconds).

    Entry timestamps are chromedriver's wall clock in milliseconds; entries
    without one are kept.
    """
    floor = since * 1000.0
    kept = []
    for entry in entries:
        stamp = entry.get("timestamp") if isinstance(entry, Mapping) else None
        if not isinstance(stamp, int | float) or stamp >= floor:
            kept.append(entry)
    return kept


def _read_log(driver: Any, kind: str) -> list[Any]:
    """A log's entries; empty if the session was started without it (no logging_options)."""
    try:
        entries = driver.get_log(kind)
    except InvalidArgumentException:  # "log type 'performance' not found"
        return []
    return entries if isinstance(entries, list) else []


def _cut(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def _event(entry: Any) -> tuple[str | None, str, Mapping[str, Any]] | None:
    """(target id, method, params) of a main-document network event; None for anything else."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("message"), str):
        return None
    try:
        outer = json.loads(entry["message"])
    except ValueError:
        return None
    if not isinstance(outer, dict) or not isinstance(outer.get("message"), dict):
        return None
    method = outer["message"].get("method")
    params = outer["message"].get("params")
    if method not in (_REQUEST, _RESPONSE, _FAILED) or not isinstance(params, dict):
        return None
    if params.get("type") != "Document":
        return None
    target = outer.get("webview")
    return (target if isinstance(target, str) else None), method, params


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, says RFC 5322
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
