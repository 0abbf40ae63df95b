"""Signals: the last main document's outcome and console errors, from chromedriver's logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from aiohttp import web
from selenium.common.exceptions import InvalidArgumentException, WebDriverException
from selenium.webdriver.chrome.options import Options

from enduro.recovery._signals import PageSignals
from enduro.session._signals import (
    MAX_CONSOLE_ERRORS,
    MAX_MESSAGE_CHARS,
    bounded_calls,
    collect_signals,
    console_errors,
    drain_logs,
    entries_since,
    logging_options,
    parse_performance_log,
    parse_retry_after,
)

TAB = "D0C0FFEE00000000000000000000TAB1"
URL = "http://127.0.0.1:8700/matches?page=3"


def _entry(method: str, params: dict[str, Any], webview: str | None = TAB) -> dict[str, Any]:
    outer: dict[str, Any] = {"message": {"method": method, "params": params}}
    if webview is not None:
        outer["webview"] = webview
    return {"level": "INFO", "timestamp": 1, "message": json.dumps(outer)}


def _sent(rid: str, url: str = URL, kind: str = "Document", frame: str = TAB) -> dict[str, Any]:
    params = {"requestId": rid, "type": kind, "frameId": frame, "request": {"url": url}}
    return _entry("Network.requestWillBeSent", params)


def _response(
    rid: str,
    status: int,
    headers: dict[str, str] | None = None,
    url: str = URL,
    kind: str = "Document",
    frame: str = TAB,
) -> dict[str, Any]:
    response = {"url": url, "status": status, "headers": headers or {}}
    params = {"requestId": rid, "type": kind, "frameId": frame, "response": response}
    return _entry("Network.responseReceived", params)


def _failed(rid: str, error: str, kind: str = "Document") -> dict[str, Any]:
    params = {"requestId": rid, "type": kind, "errorText": error, "canceled": False}
    return _entry("Network.loadingFailed", params)


# ---- parsing, no browser ------------------------------------------------------


def test_a_429_gives_its_status_and_retry_after_seconds() -> None:
    entries = [_sent("1"), _response("1", 429, {"Retry-After": "2"})]
    assert parse_performance_log(entries) == (429, 2.0, "", URL)


@pytest.mark.parametrize("name", ["retry-after", "RETRY-AFTER", "Retry-after"])
def test_the_retry_after_header_name_is_case_insensitive(name: str) -> None:
    entries = [_response("1", 429, {name: "7"})]
    assert parse_performance_log(entries)[1] == 7.0


def test_an_http_date_retry_after_counts_from_the_response_date() -> None:
    headers = {
        "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
        "Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT",
    }
    # the clock of this machine does not matter: the server's Date is the reference
    assert parse_performance_log([_response("1", 429, headers)], now=0.0)[1] == 30.0


def test_an_http_date_retry_after_without_a_date_header_counts_from_now() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}
    now = 1445412480.0  # 2015-10-21 07:28:00 UTC
    assert parse_performance_log([_response("1", 429, headers)], now=now)[1] == 30.0


def test_a_503_without_retry_after() -> None:
    assert parse_performance_log([_sent("1"), _response("1", 503)]) == (503, None, "", URL)


def test_a_document_that_failed_after_its_response_reports_both() -> None:
    entries = [_sent("1"), _response("1", 200), _failed("1", "net::ERR_CONTENT_LENGTH_MISMATCH")]
    assert parse_performance_log(entries) == (200, None, "net::ERR_CONTENT_LENGTH_MISMATCH", URL)


def test_a_failed_navigation_after_a_good_page_reports_the_failure_only() -> None:
    other = "http://127.0.0.1:1/x"
    entries = [
        _sent("1"),
        _response("1", 429, {"Retry-After": "9"}),
        _sent("2", other),
        _failed("2", "net::ERR_CONNECTION_REFUSED"),
    ]
    assert parse_performance_log(entries) == (None, None, "net::ERR_CONNECTION_REFUSED", other)


def test_a_good_page_after_a_failed_one_reports_the_good_one() -> None:
    entries = [_sent("1"), _failed("1", "net::ERR_CONNECTION_RESET"), _sent("2")]
    entries.append(_response("2", 200))
    assert parse_performance_log(entries) == (200, None, "", URL)


def test_sub_resources_iframes_and_other_tabs_are_ignored() -> None:
    entries = [
        _sent("1"),
        _response("1", 200),
        _response("2", 429, {"Retry-After": "5"}, kind="XHR"),
        _response("3", 500, kind="Script"),
        _failed("4", "net::ERR_BLOCKED_BY_CLIENT", kind="Image"),
        _sent("5", frame="IFRAME"),
        _response("5", 503, frame="IFRAME"),
        _failed("5", "net::ERR_ABORTED"),  # no frameId: known from its request
    ]
    other_tab = _entry(
        "Network.responseReceived",
        {"requestId": "6", "type": "Document", "frameId": "TAB2", "response": {"status": 502}},
        webview="TAB2",
    )
    assert parse_performance_log([*entries, other_tab], window=TAB) == (200, None, "", URL)
    # without the window, the other tab's main document counts too
    assert parse_performance_log([*entries, other_tab])[0] == 502


def test_malformed_entries_are_ignored() -> None:
    good = [_sent("1"), _response("1", 429, {"Retry-After": "3"})]
    junk: list[Any] = [
        None,
        "text",
        {"message": 5},
        {"message": "{not json"},
        {"message": json.dumps([1, 2])},
        {"message": json.dumps({"message": "x"})},
        {"message": json.dumps({"message": {"method": "Network.responseReceived"}})},
        _entry("Network.responseReceived", {"type": "Document", "response": {"status": 500}}),
        _entry("Network.responseReceived", {"requestId": "9", "type": "Document", "response": 1}),
        _entry("Network.loadingFailed", {"requestId": 7, "type": "Document"}),
        _entry("Network.dataReceived", {"requestId": "1", "type": "Document"}),
    ]
    assert parse_performance_log(good + junk) == (429, 3.0, "", URL)
    assert parse_performance_log(junk) == (None, None, "", "")


def test_no_document_events_mean_nothing_known() -> None:
    assert parse_performance_log([]) == (None, None, "", "")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
        ("Wed, 21 Oct 2015 07:29:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:29:00 -0000", 60.0),
        ("3\n4", 3.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("", None),
    ],
)
def test_retry_after_values(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value, now=1445412480.0) == seconds


UNCAUGHT = "http://h/ok 0:45 Uncaught ReferenceError: f is not defined"


def test_console_errors_keep_severe_messages_cut_and_capped() -> None:
    long = "x" * 1000
    entries: list[Any] = [
        {"level": "INFO", "message": "hello"},
        {"level": "WARNING", "message": "careful"},
        {"level": "SEVERE", "message": UNCAUGHT},
        {"level": "SEVERE", "message": long},
        {"level": "SEVERE"},
        "junk",
        *({"level": "SEVERE", "message": f"e{i}"} for i in range(50)),
    ]
    found = console_errors(entries)
    assert found[0] == UNCAUGHT
    assert len(found[1]) == MAX_MESSAGE_CHARS and found[1].startswith("xxx")
    assert len(found) == MAX_CONSOLE_ERRORS
    assert found[2:] == tuple(f"e{i}" for i in range(MAX_CONSOLE_ERRORS - 2))


def test_logging_options_ask_for_both_logs() -> None:
    options = Options()
    logging_options(options)
    caps = options.to_capabilities()
    assert caps["goog:loggingPrefs"] == {"browser": "ALL", "performance": "ALL"}
    assert caps["goog:chromeOptions"]["perfLoggingPrefs"]["enableNetwork"] is True


class _Config:
    timeout = 120.0


class _Executor:
    def __init__(self) -> None:
        self.client_config = _Config()


class _FakeDriver:
    """Answers like chromedriver; ``fail`` makes one command raise."""

    def __init__(self, logs: dict[str, list[Any]], fail: str = "") -> None:
        self.command_executor = _Executor()
        self.logs = logs
        self.fail = fail
        self.timeouts_seen: list[float] = []

    def _call(self, what: str) -> None:
        self.timeouts_seen.append(self.command_executor.client_config.timeout)
        if what == self.fail == "perf":
            raise InvalidArgumentException("log type 'performance' not found")
        if what == self.fail:
            raise OSError("connection refused")

    @property
    def current_url(self) -> str:
        self._call("url")
        return URL

    @property
    def current_window_handle(self) -> str:
        self._call("window")
        return TAB

    def get_log(self, kind: str) -> list[Any]:
        self._call("perf" if kind == "performance" else kind)
        return self.logs.get(kind, [])


def test_collect_signals_from_a_fake_driver_bounds_each_call_and_restores() -> None:
    driver = _FakeDriver(
        {
            "performance": [_sent("1"), _response("1", 429, {"Retry-After": "2"})],
            "browser": [{"level": "SEVERE", "message": "boom"}],
        }
    )
    signals = collect_signals(driver, timeout=3.0)
    assert signals == PageSignals(
        url=URL, status=429, retry_after=2.0, net_error="", console_errors=("boom",)
    )
    assert driver.timeouts_seen == [3.0, 3.0, 3.0, 3.0]
    assert driver.command_executor.client_config.timeout == 120.0


def test_since_ignores_what_chromedriver_received_before() -> None:
    old, new = _response("1", 503), _failed("1", "net::ERR_CONNECTION_RESET")
    old["timestamp"], new["timestamp"] = 1_000_000, 1_000_500
    early = {"level": "SEVERE", "message": "old page's error", "timestamp": 999_000}
    late = {"level": "SEVERE", "message": "this page's error", "timestamp": 1_000_600}
    logs = {"performance": [old, new], "browser": [early, late]}
    signals = collect_signals(_FakeDriver(logs), since=1000.2)
    assert signals is not None
    assert (signals.status, signals.net_error) == (None, "net::ERR_CONNECTION_RESET")
    assert signals.console_errors == ("this page's error",)
    everything = collect_signals(_FakeDriver(logs))
    assert everything is not None and everything.status == 503
    assert len(everything.console_errors) == 2
    assert entries_since([{"message": "no stamp"}, early], 1000.0) == [{"message": "no stamp"}]


def test_a_browser_without_the_performance_log_still_gives_signals() -> None:
    driver = _FakeDriver({"browser": [{"level": "SEVERE", "message": "boom"}]}, fail="perf")
    assert collect_signals(driver) == PageSignals(url=URL, console_errors=("boom",))


@pytest.mark.parametrize("fail", ["url", "window", "browser"])
def test_a_browser_that_does_not_answer_gives_none_and_restores_the_timeout(fail: str) -> None:
    driver = _FakeDriver({}, fail=fail)
    assert collect_signals(driver) is None
    assert driver.command_executor.client_config.timeout == 120.0
    drain_logs(driver)  # never raises either


def test_bounded_calls_tolerates_a_driver_without_a_client_config() -> None:
    with bounded_calls(object(), 1.0):
        pass


# ---- a real browser --------------------------------------------------------------

BROKEN_PAGE = "<html><body><p>ok</p><script>undefinedFn()</script></body></html>"


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="<html><body><p>fine</p></body></html>", content_type="text/html")


async def _broken(request: web.Request) -> web.Response:
    return web.Response(text=BROKEN_PAGE, content_type="text/html")


async def _limited(request: web.Request) -> web.Response:
    return web.Response(text="slow down", status=429, headers={"Retry-After": "2"})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A tiny aiohttp site on 127.0.0.1: /ok, /broken (script error), /limited (429)."""
    app = web.Application()
    app.router.add_get("/ok", _ok)
    app.router.add_get("/broken", _broken)
    app.router.add_get("/limited", _limited)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def driver(chrome: Callable[[], AbstractContextManager[Any]]) -> Iterator[Any]:
    """A fresh browser per test: only one runs at a time."""
    with chrome() as browser:
        browser.set_page_load_timeout(15)
        yield browser


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_a_real_429_gives_status_and_retry_after(driver: Any, server: str) -> None:
    driver.get(f"{server}/ok")
    drain_logs(driver)
    driver.get(f"{server}/limited")  # does not raise: the browser shows the body
    signals = collect_signals(driver)
    assert signals is not None
    assert (signals.status, signals.retry_after, signals.net_error) == (429, 2.0, "")
    assert signals.url == f"{server}/limited"


@pytest.mark.integration
def test_a_refused_connection_gives_the_net_error(driver: Any, server: str) -> None:
    drain_logs(driver)
    url = f"http://127.0.0.1:{_unused_port()}/gone"
    # chromedriver 156 raises "unknown error: net::ERR_CONNECTION_REFUSED" here;
    # older ones just showed the error page: either way the log has the cause.
    with contextlib.suppress(WebDriverException):
        driver.get(url)
    signals = collect_signals(driver)
    assert signals is not None
    assert signals.net_error == "net::ERR_CONNECTION_REFUSED"
    assert signals.status is None


@pytest.mark.integration
def test_a_script_error_is_in_the_console_errors_of_that_page_only(
    driver: Any, server: str
) -> None:
    drain_logs(driver)
    driver.get(f"{server}/broken")
    signals = collect_signals(driver)
    assert signals is not None and signals.status == 200
    assert any("undefinedFn is not defined" in m for m in signals.console_errors)
    driver.get(f"{server}/broken")
    drain_logs(driver)  # the runner drains before each page
    driver.get(f"{server}/ok")
    after = collect_signals(driver)
    assert after is not None and after.status == 200
    assert not any("undefinedFn" in m for m in after.console_errors)
    # or, instead of draining before each page, note the time and read since then
    driver.get(f"{server}/limited")
    driver.get(f"{server}/broken")
    mark = time.time()
    driver.get(f"{server}/ok")
    since = collect_signals(driver, since=mark)
    assert since is not None and (since.status, since.retry_after) == (200, None)
    assert not any("undefinedFn" in m for m in since.console_errors)


@pytest.mark.integration
def test_a_frozen_then_dead_browser_gives_none_within_the_timeout(
    server: str, chrome: Callable[[], AbstractContextManager[Any]]
) -> None:
    with chrome() as browser:
        browser.get(f"{server}/ok")
        pid = browser.capabilities["goog:processID"]
        os.kill(pid, signal.SIGSTOP)
        try:
            # one timeout, not four: the first question is a POST, which urllib3 never retries
            began = time.monotonic()
            assert collect_signals(browser, timeout=1.0) is None
            assert time.monotonic() - began < 2.5
            began = time.monotonic()
            drain_logs(browser, timeout=1.0)
            assert time.monotonic() - began < 2.5
        finally:
            os.kill(pid, signal.SIGCONT)
        os.killpg(browser.service.process.pid, signal.SIGKILL)
        browser.service.process.wait(10)
        began = time.monotonic()
        assert collect_signals(browser, timeout=1.0) is None
        assert time.monotonic() - began < 5.0
