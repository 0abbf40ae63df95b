"""The flight recorder: first capture of each group, and no secret in any byte written."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import signal
import stat
import struct
import threading
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from enduro.recovery._signals import PageSignals
from enduro.session._backend import BrowserView
from enduro.session._recorder import FlightRecorder, Redactor, redact, strip_png_text
from enduro.session._selenium_view import look_through
from enduro.stress.site import SiteConfig, SiteServer

REDACTED = "[REDACTED]"
SECRET = "Kanarie-7f3a&<pw>\"q' z"
TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}
# How Chromium serializes an attribute value: ", &, < and > escaped, ' left alone.
ATTRIBUTE_FORM = "Kanarie-7f3a&amp;&lt;pw&gt;&quot;q' z"


def seen(driver: Any, timeout: float = 5.0) -> Callable[[], BrowserView]:
    """What the local Selenium backend's ``look`` asks the browser, bounded by ``timeout``."""
    return lambda: look_through(driver, timeout)


def png_chunks(data: bytes) -> list[bytes]:
    """The chunk types of a PNG, in order (asserts it is well formed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        types.append(kind)
        offset += 12 + length
    assert types[0] == b"IHDR" and types[-1] == b"IEND"
    return types


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def make_png(*extra: tuple[bytes, bytes]) -> bytes:
    """A 1x1 grey PNG with extra chunks before its image data."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x80")
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + b"".join(_chunk(k, b) for k, b in extra)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


# ---- redaction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(SECRET, safe="")),
        quote(SECRET, safe="!'()*~"),  # JavaScript's encodeURIComponent
        html.escape(SECRET),
        html.escape(SECRET, quote=False),  # a text node as Chromium serializes it
        ATTRIBUTE_FORM,
        "".join(f"&#{ord(c)};" for c in SECRET),
        "".join(f"&#x{ord(c):x};" for c in SECRET),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=True).replace("<", "\\u003C")[1:-1],  # Chromium's JSON
        "Kanarie-7f3a%26&lt;pw%3E&quot;q&#39;+z",  # forms mixed
    ],
)
def test_every_form_of_a_secret_is_redacted(form: str) -> None:
    assert redact(f"before {form} after", [SECRET]) == f"before {REDACTED} after"


def test_a_non_ascii_secret_in_its_encoded_forms() -> None:
    secret = "pässwörd€"
    forms = [secret, quote(secret), json.dumps(secret)[1:-1], html.escape(secret)]
    forms += [secret.replace("ä", "&auml;"), secret.replace("€", "&#8364;")]
    for form in forms:
        assert redact(f"<{form}>", [secret]) == f"<{REDACTED}>", form


def test_redaction_leaves_everything_else_alone() -> None:
    text = "nothing secret here: Kanarie-7f3a & <pw> \"q' y"
    assert redact(text, [SECRET]) == text
    assert redact(text, []) == text
    assert redact(text, ["", ""]) == text


def test_the_longer_of_overlapping_secrets_wins() -> None:
    assert redact("x token-123456 y token-1", ["token-1", "token-123456"]) == (
        f"x {REDACTED} y {REDACTED}"
    )


def test_a_redactor_cleans_nested_values_keys_too() -> None:
    redactor = Redactor([SECRET])
    value = {"a": [SECRET, 1, None, {SECRET: (f"x{SECRET}",)}], "n": 2.5}
    assert redactor.value(value) == {
        "a": [REDACTED, 1, None, {REDACTED: [f"x{REDACTED}"]}],
        "n": 2.5,
    }


# ---- PNG text chunks -----------------------------------------------------------------


def test_text_chunks_are_stripped_from_a_png() -> None:
    png = make_png(
        (b"tEXt", b"Comment\x00" + SECRET.encode()),
        (b"iTXt", b"Title\x00\x00\x00\x00\x00" + SECRET.encode()),
        (b"zTXt", b"Note\x00\x00" + zlib.compress(SECRET.encode())),
        (b"pHYs", struct.pack(">IIB", 3780, 3780, 1)),
    )
    assert {b"tEXt", b"iTXt", b"zTXt"} <= set(png_chunks(png))
    stripped = strip_png_text(png)
    assert png_chunks(stripped) == [b"IHDR", b"pHYs", b"IDAT", b"IEND"]
    assert SECRET.encode() not in stripped


@pytest.mark.parametrize("data", [b"", b"GIF89a...", make_png()[:-3], make_png()[:20]])
def test_what_is_not_a_whole_png_is_left_as_it_is(data: bytes) -> None:
    assert strip_png_text(data) == data


# ---- the recorder, with a fake browser -----------------------------------------------


class _Config:
    timeout = 120.0


class _Executor:
    def __init__(self) -> None:
        self.client_config = _Config()


class _FakeDriver:
    """Shows a page that holds SECRET everywhere; ``fail`` makes one question raise."""

    def __init__(self, fail: str = "") -> None:
        self.command_executor = _Executor()
        self.fail = fail
        self.ready_state = "complete"
        self.calls: list[tuple[str, float]] = []

    def _call(self, what: str) -> None:
        self.calls.append((what, self.command_executor.client_config.timeout))
        if what == self.fail:
            raise OSError("connection refused")

    @property
    def current_url(self) -> str:
        self._call("url")
        return "http://127.0.0.1:1/page?token=" + quote(SECRET, safe="")

    def execute_cdp_cmd(self, command: str, params: dict[str, Any]) -> dict[str, Any]:
        assert command == "Page.captureScreenshot"
        self._call("screenshot")
        png = make_png((b"tEXt", b"Comment\x00" + SECRET.encode()))
        return {"data": base64.b64encode(png).decode()}

    def execute_script(self, script: str, *args: Any) -> str:
        if "readyState" in script:
            self._call("state")
            return self.ready_state
        self._call("html")
        return f"<html><body><p>{html.escape(SECRET, quote=False)}</p></body></html>"

    def get_log(self, kind: str) -> list[dict[str, Any]]:
        self._call("console")
        message = f"console-api 1:9 {json.dumps('password=' + SECRET)}"
        return [{"level": "SEVERE", "message": message, "source": "console-api", "timestamp": 1}]


def _all_bytes(directory: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(directory.rglob("*")) if p.is_file()]


def _assert_no_secret(directory: Path, secret: str = SECRET) -> None:
    prefix = secret.split("-")[0].encode()  # every form of SECRET starts with it
    for path, data in _all_bytes(directory):
        assert secret.encode() not in data, path
        assert prefix not in data, path


def test_a_capture_writes_four_redacted_files(tmp_path: Path) -> None:
    directory = tmp_path / "runs" / "flight"
    recorder = FlightRecorder(directory, [SECRET], clock=lambda: 1445412480.0)
    driver = _FakeDriver()
    signals = PageSignals(url="u", status=429, retry_after=2.0, console_errors=(f"e {SECRET}",))
    files = recorder.capture(
        seen(driver, 2.0), "element:Stale", label=f"page 3: {SECRET}", signals=signals
    )
    assert files is not None and set(files) == {"screenshot", "html", "console", "meta"}
    for path in files.values():
        assert Path(path).is_absolute() and Path(path).parent == directory.resolve()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {k: Path(p).name for k, p in files.items()} == {
        "screenshot": "001-element-Stale.png",
        "html": "001-element-Stale.html",
        "console": "001-element-Stale.console.json",
        "meta": "001-element-Stale.meta.json",
    }
    # every question was bounded by the look's timeout, which was then restored
    assert {t for _, t in driver.calls} == {2.0}
    assert driver.command_executor.client_config.timeout == 120.0

    assert REDACTED in Path(files["html"]).read_text()
    console = json.loads(Path(files["console"]).read_text())
    assert REDACTED in console[0]["message"] and console[0]["level"] == "SEVERE"
    meta = json.loads(Path(files["meta"]).read_text())
    assert meta["group"] == "element:Stale"
    assert meta["label"] == f"page 3: {REDACTED}"
    assert meta["url"] == f"http://127.0.0.1:1/page?token={REDACTED}"
    assert meta["time"] == "2015-10-21T07:28:00+00:00"
    assert meta["signals"]["status"] == 429
    assert meta["signals"]["console_errors"] == [f"e {REDACTED}"]
    assert "incomplete" not in meta
    assert not set(png_chunks(Path(files["screenshot"]).read_bytes())) & TEXT_CHUNKS
    _assert_no_secret(directory)


def test_a_repeated_group_does_not_touch_the_browser(tmp_path: Path) -> None:
    recorder = FlightRecorder(tmp_path / "f", [SECRET])
    driver = _FakeDriver()
    assert recorder.capture(seen(driver), "element:Stale") is not None
    calls, files = list(driver.calls), _all_bytes(tmp_path / "f")
    assert recorder.capture(seen(driver), "element:Stale", label="again") is None
    assert driver.calls == calls
    assert _all_bytes(tmp_path / "f") == files
    assert recorder.capture(seen(driver), "server_error:HTTP 503") is not None
    assert recorder.groups_seen == {"element:Stale", "server_error:HTTP 503"}
    names = sorted(p.name for p in (tmp_path / "f").iterdir())
    assert names[4:] == [
        "002-server_error-HTTP-503.console.json",
        "002-server_error-HTTP-503.html",
        "002-server_error-HTTP-503.meta.json",
        "002-server_error-HTTP-503.png",
    ]


def test_a_browser_that_does_not_answer_gives_none_and_writes_nothing(tmp_path: Path) -> None:
    recorder = FlightRecorder(tmp_path / "f", [SECRET])
    driver = _FakeDriver(fail="console")  # the first question
    assert recorder.capture(seen(driver), "browser:dead") is None
    assert [w for w, _ in driver.calls] == ["console"]  # no more questions once one fails
    assert not (tmp_path / "f").exists()
    assert driver.command_executor.client_config.timeout == 120.0


def test_a_browser_that_stops_answering_midway_leaves_what_was_read(tmp_path: Path) -> None:
    recorder = FlightRecorder(tmp_path / "f", [SECRET])
    driver = _FakeDriver(fail="screenshot")
    files = recorder.capture(seen(driver), "timeout:PageTimeout")
    assert files is not None and set(files) == {"html", "console", "meta"}
    meta = json.loads(Path(files["meta"]).read_text())
    assert meta["incomplete"] == "screenshot: OSError"
    assert meta["url"] == "http://127.0.0.1:1/page?token=[REDACTED]"  # read before it
    _assert_no_secret(tmp_path / "f")


def test_a_document_still_loading_is_not_screenshotted(tmp_path: Path) -> None:
    # Asking Chromium for a screenshot of a document cut off mid-transfer wedges
    # chromedriver: every later command times out.
    driver = _FakeDriver()
    driver.ready_state = "loading"
    files = FlightRecorder(tmp_path / "f", [SECRET]).capture(seen(driver), "network:PageError")
    assert files is not None and set(files) == {"html", "console", "meta"}
    assert "screenshot" not in [what for what, _ in driver.calls]
    meta = json.loads(Path(files["meta"]).read_text())
    assert meta["incomplete"] == "screenshot: the document never finished loading"


@pytest.mark.parametrize(
    "group", ["../../etc/passwd", "a/b\\c:d e", "..", "", "x" * 500, f"leak:{SECRET}"]
)
def test_file_names_are_safe_slugs(tmp_path: Path, group: str) -> None:
    directory = tmp_path / "f"
    files = FlightRecorder(directory, [SECRET]).capture(seen(_FakeDriver()), group)
    assert files is not None
    for path in files.values():
        assert Path(path).parent == directory.resolve()
        assert len(Path(path).name) < 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    _assert_no_secret(directory)


def test_a_second_recorder_on_the_same_directory_overwrites_nothing(tmp_path: Path) -> None:
    first = FlightRecorder(tmp_path, [SECRET]).capture(seen(_FakeDriver()), "element:Stale")
    second = FlightRecorder(tmp_path, [SECRET]).capture(seen(_FakeDriver()), "element:Stale")
    assert first is not None and second is not None
    assert Path(second["meta"]).name == "001-element-Stale-2.meta.json"
    assert len(list(tmp_path.iterdir())) == 8


def test_a_closed_recorder_captures_nothing(tmp_path: Path) -> None:
    with FlightRecorder(tmp_path / "f") as recorder:
        pass
    recorder.close()
    driver = _FakeDriver()
    assert recorder.capture(seen(driver), "element:Stale") is None
    assert driver.calls == []


def test_threads_capturing_one_group_write_it_once(tmp_path: Path) -> None:
    recorder = FlightRecorder(tmp_path / "f", [SECRET])
    results: list[dict[str, str] | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(recorder.capture(seen(_FakeDriver()), "g")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1
    assert len(list((tmp_path / "f").iterdir())) == 4


# ---- a real browser on the built-in site ---------------------------------------------

OTHER = "PwAttr-91c2e"  # a value mirrored into a password input's attribute


def _show_secret(driver: Any) -> None:
    """Put SECRET in the page (text, link, attribute) and the console; OTHER in a password."""
    driver.execute_script(
        """
        const [secret, other] = arguments;
        const p = document.createElement('p');
        p.id = 'echo';
        p.textContent = 'echo ' + secret;
        const a = document.createElement('a');
        a.href = '/search?q=' + encodeURIComponent(secret);
        a.title = secret;
        a.textContent = 'search';
        const pw = document.createElement('input');
        pw.type = 'password';
        pw.id = 'pw2';
        pw.setAttribute('value', other);
        document.body.append(p, a, pw);
        console.error('debug password=' + secret);
        """,
        SECRET,
        OTHER,
    )


@pytest.mark.integration
def test_a_real_capture_after_login_holds_no_secret(
    tmp_path: Path, chrome: Callable[[], AbstractContextManager[Any]]
) -> None:
    config = SiteConfig(pages=2, rows=5, username="flight", password=SECRET)
    with SiteServer(config) as site, chrome() as driver:
        driver.get(f"{site.url}/login")
        driver.find_element(By.ID, "username").send_keys("flight")
        driver.find_element(By.ID, "password").send_keys(SECRET)
        driver.find_element(By.ID, "login-button").click()
        # click() does not wait for the navigation it starts
        WebDriverWait(driver, 15).until(lambda d: "/login" not in d.current_url)
        assert "/matches" in driver.current_url  # the canary really was the password
        driver.get(f"{site.url}/matches?page=1&token={quote(SECRET, safe='')}")
        assert "Kanarie" in driver.current_url
        _show_secret(driver)

        # Without secrets the canary is in every file: what redaction must take out.
        plain = FlightRecorder(tmp_path / "plain").capture(seen(driver), "probe")
        assert plain is not None
        page = Path(plain["html"]).read_text()
        assert page.count("Kanarie-7f3a") >= 3  # text, link, title
        assert "Kanarie-7f3a" in Path(plain["console"]).read_text()
        assert "Kanarie-7f3a" in json.loads(Path(plain["meta"]).read_text())["url"]
        # the password input's value attribute is not saved, and the live page keeps it
        assert 'id="pw2"' in page and OTHER not in page
        assert driver.execute_script("return pw2.getAttribute('value')") == OTHER
        # Chromium's own screenshot carries no text chunks
        assert not set(png_chunks(driver.get_screenshot_as_png())) & TEXT_CHUNKS

        _show_secret(driver)  # the plain capture drained the console
        flight = tmp_path / "flight"
        recorder = FlightRecorder(flight, [SECRET])
        group = "element:StaleElementReferenceException"
        files = recorder.capture(seen(driver), group, label=f"page 1 as flight/{SECRET}")
        assert files is not None and set(files) == {"screenshot", "html", "console", "meta"}
        assert all(Path(p).is_file() for p in files.values())
        assert Path(files["html"]).read_text().count(REDACTED) >= 3
        assert REDACTED in Path(files["console"]).read_text()
        meta = json.loads(Path(files["meta"]).read_text())
        assert REDACTED in meta["url"] and REDACTED in meta["label"]
        assert meta["group"] == group
        png = Path(files["screenshot"]).read_bytes()
        assert not set(png_chunks(png)) & TEXT_CHUNKS
        _assert_no_secret(flight)

        before = _all_bytes(flight)
        assert recorder.capture(seen(driver), group) is None
        assert _all_bytes(flight) == before

        os.killpg(driver.service.process.pid, signal.SIGKILL)
        driver.service.process.wait(10)
        assert recorder.capture(seen(driver), "browser:BrowserDead") is None
        assert _all_bytes(flight) == before
