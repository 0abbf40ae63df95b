"""ctx.http on a fake site (httpx.MockTransport) and a fake browser: recovery inside the page.

The integration tests (tests/integration/test_hybrid*.py) prove the same against
the real site and a real Chromium; these pin down each rule on its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from enduro._secrets import Redactor
from enduro.errors import AuthLost, BadResponse, ForeignHost, HaltRun, PageTimeout, ServerError
from enduro.recovery import CircuitBreaker, EndpointLimiters
from enduro.session import CookieChanges, FlightRecorder, HttpClient, HttpStats, csrf_header
from enduro.settings import Settings

SITE = "http://127.0.0.1:9"
SESSION = {"name": "sid", "value": "S3SS10N-canary", "domain": "127.0.0.1", "path": "/"}
TOKEN = {"name": "csrf", "value": "t0ken-canary%7Csig", "domain": "127.0.0.1", "path": "/"}

Answer = Callable[[httpx.Request], httpx.Response]


class FakeBrowser:
    """The BrowserLink: a cookie jar, logins that mint a new session, a breaker."""

    def __init__(self, cookies: list[dict[str, Any]] | None = None) -> None:
        self.cookies = [dict(c) for c in (cookies if cookies is not None else [SESSION, TOKEN])]
        self.written: list[CookieChanges] = []
        self.logins = 0
        self.not_cured: list[str] = []
        self.breaker = CircuitBreaker(3, 600)
        self.alive = True

    def browser_cookies(self) -> list[dict[str, Any]] | None:
        return [dict(c) for c in self.cookies] if self.alive else None

    def write_cookies(self, changes: CookieChanges) -> None:
        self.written.append(changes)

    def relogin(self, reason: str) -> None:
        self.logins += 1
        self.cookies = [{**SESSION, "value": f"S3SS10N-{self.logins}"}, TOKEN]

    def login_not_cured(self, message: str) -> None:
        self.not_cured.append(message)
        if self.breaker.failure():
            raise HaltRun(f"login did not cure it: {message}")


class Site:
    """Answers from a script: a list of answers, then ``default``."""

    def __init__(self, *answers: Answer | httpx.Response, default: Answer | None = None) -> None:
        self.answers = list(answers)
        self.default = default or (lambda request: httpx.Response(200, json={"ok": True}))
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            answer = self.answers.pop(0) if self.answers else self.default
        return answer(request) if callable(answer) else answer


def client(
    site: Site,
    browser: FakeBrowser | None = None,
    *,
    events: list[tuple[str, dict[str, Any]]] | None = None,
    recorder: FlightRecorder | None = None,
    redactor: Redactor | None = None,
    stats: HttpStats | None = None,
    clock: Callable[[], float] | None = None,
    **settings: Any,
) -> HttpClient:
    def emit(kind: str, message: str = "", **fields: Any) -> None:
        if events is not None:
            events.append((kind, {"message": message, **fields}))

    options: dict[str, Any] = {"http_backoff_base": 0.0, "cooldown_default": 0.05, **settings}
    http = HttpClient(
        SITE,
        Settings(**options),
        link=browser or FakeBrowser(),
        limiters=EndpointLimiters(),
        stats=stats or HttpStats(),
        redactor=redactor or Redactor(()),
        prepare=csrf_header("csrf"),
        emit=emit,
        recorder=recorder,
        transport=httpx.MockTransport(site),
        **({"clock": clock} if clock else {}),
    )
    http.pull()
    http.begin_page("7", 60.0)
    return http


def test_cookies_and_the_csrf_header_go_with_every_request() -> None:
    site = Site()
    http = client(site)

    assert http.get_json("/api/v2/matches", params={"currentPage": 3}) == {"ok": True}

    sent = site.requests[0]
    assert sent.url.path == "/api/v2/matches" and sent.url.params["currentPage"] == "3"
    assert sent.headers["Cookie"] in (
        "sid=S3SS10N-canary; csrf=t0ken-canary%7Csig",
        "csrf=t0ken-canary%7Csig; sid=S3SS10N-canary",
    )
    assert sent.headers["X-CSRF-Token"] == "t0ken-canary"  # URL-decoded, cut at "|"


def test_another_host_is_refused_and_nothing_is_sent() -> None:
    site = Site()
    http = client(site)

    for url in ("http://evil.example/steal", "http://127.0.0.1:10/x", "https://127.0.0.1:9/x"):
        with pytest.raises(ForeignHost, match="sends them nowhere else"):
            http.get(url)
    assert site.requests == []
    http.get(f"{SITE}/fine")  # the site itself, written out in full
    assert len(site.requests) == 1
    with pytest.raises(ForeignHost):  # a scheme-relative URL names another host
        http.get("//evil.example/steal")
    assert len(site.requests) == 1


def test_paths_resolve_on_the_site_as_a_url_join_would() -> None:
    site = Site()
    http = client(site)

    for path in ("/api/v2/matches?currentPage=2", "/a/../b/./c", "relative/x", "/x#part"):
        http.get(path)
    sent = [str(request.url) for request in site.requests]
    assert sent == [
        str(httpx.URL(SITE).join(path))
        for path in ("/api/v2/matches?currentPage=2", "/a/../b/./c", "relative/x", "/x#part")
    ]
    assert all(url.startswith(f"{SITE}/") for url in sent), sent


def test_cookies_the_site_sets_replace_ours_and_go_back_to_the_browser() -> None:
    rotated = httpx.Response(
        200, json={}, headers={"Set-Cookie": "csrf=n3w-token%7Csig2; Path=/; SameSite=Lax"}
    )
    site = Site(rotated)
    browser = FakeBrowser()
    http = client(site, browser)

    http.get_json("/a")
    http.get_json("/b")

    assert site.requests[1].headers["X-CSRF-Token"] == "n3w-token"
    assert [c.value for change in browser.written for c in change.set] == ["n3w-token%7Csig2"]
    assert browser.written[0].set[0].to_cdp(SITE)["url"] == SITE + "/"  # host-only stays so


def test_the_httpx_client_keeps_no_cookie_of_its_own() -> None:
    rotated = httpx.Response(200, json={}, headers={"Set-Cookie": "extra=x1; Path=/"})
    site = Site(rotated)
    http = client(site)

    http.get_json("/a")

    assert http.cookies.values()["extra"] == "x1"  # SiteCookies took it ...
    assert not http._client.cookies  # ... and httpx's own jar did not
    with pytest.raises(TypeError):
        http._client.cookies = {"sid": "elsewhere"}


def test_a_deleted_cookie_is_deleted_in_the_browser_too() -> None:
    site = Site(httpx.Response(200, json={}, headers={"Set-Cookie": "sid=; Max-Age=0; Path=/"}))
    browser = FakeBrowser()
    http = client(site, browser)

    http.get_json("/logout-ish")
    http.get_json("/next")

    assert [c.name for c in browser.written[0].deleted] == ["sid"]
    assert "sid=" not in site.requests[1].headers["Cookie"]


@pytest.mark.parametrize(
    ("failure", "category"),
    [
        (httpx.Response(500, json={"error": "boom"}), "server_error"),
        (httpx.Response(503, headers={"Retry-After": "0"}), "server_error"),
        (httpx.Response(429, headers={"Retry-After": "0"}), "rate_limited"),
        (lambda r: (_ for _ in ()).throw(httpx.ReadError("reset", request=r)), "network"),
        (lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)), "network"),
        (lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)), "timeout"),
        (
            httpx.Response(
                200, content=b'{"matches": [', headers={"Content-Type": "application/json"}
            ),
            "network",
        ),
    ],
    ids=["500", "503", "429", "reset", "refused", "read-timeout", "cut-json"],
)
def test_one_failed_request_is_retried_inside_the_page(failure: Any, category: str) -> None:
    site = Site(failure)
    stats = HttpStats()
    http = client(site, stats=stats)

    assert http.get_json("/api/v2/matches/M0000000001/badge") == {"ok": True}

    assert len(site.requests) == 2
    counts = stats.snapshot()["/api/v2/matches/{id}/badge"]
    assert counts["requests"] == 2 and counts["ok"] == 1 and counts["retries"] == 1
    assert counts["errors"] == {category: 1}


def test_retries_are_bounded_then_the_handler_sees_the_error() -> None:
    site = Site(default=lambda r: httpx.Response(500))
    http = client(site, http_retries=3)

    with pytest.raises(ServerError, match=r"GET /x: HTTP 500"):
        http.get("/x")
    assert len(site.requests) == 4


def test_a_429_holds_its_endpoint_for_retry_after_for_every_worker() -> None:
    site = Site(httpx.Response(429, headers={"Retry-After": "1"}))
    events: list[tuple[str, dict[str, Any]]] = []
    now = [100.0]
    limiters = EndpointLimiters(clock=lambda: now[0])
    http = HttpClient(
        SITE,
        Settings(http_backoff_base=0.0),
        link=FakeBrowser(),
        limiters=limiters,
        stats=HttpStats(),
        redactor=Redactor(()),
        emit=lambda kind, message="", **f: events.append((kind, f)),
        transport=httpx.MockTransport(site),
    )
    waits: list[float] = []

    def wait(seconds: float) -> bool:  # the limiter's wait, with time moved by hand
        waits.append(seconds)
        now[0] += seconds
        return False

    limiter = limiters.get("/api/v2/matches")
    http._wait = wait  # type: ignore[method-assign]
    http.get("/api/v2/matches?currentPage=1")

    assert waits and abs(sum(waits) - 1.0) < 1e-9  # the retry waited out Retry-After
    assert limiter.rate is not None  # and the endpoint's rate was cut
    assert limiters.get("/api/v2/matches/{id}/badge").rate is None  # other endpoints untouched
    kind, fields = events[0]
    assert kind == "cooldown" and fields["data"]["endpoint"] == "/api/v2/matches"
    assert fields["data"]["in_flight"] == 0 and fields["data"]["retry_after"] == 1.0


def test_a_redirect_to_the_login_page_logs_in_again_through_the_browser() -> None:
    lapsed = httpx.Response(303, headers={"Location": "/login?next=/api/v2/matches"})
    site = Site(lapsed)
    browser = FakeBrowser()
    http = client(site, browser)

    assert http.get_json("/api/v2/matches") == {"ok": True}

    assert browser.logins == 1 and browser.not_cured == []
    assert "S3SS10N-canary" in site.requests[0].headers["Cookie"]
    assert "S3SS10N-1" in site.requests[1].headers["Cookie"]  # the new login's cookie


def test_lapses_a_login_does_not_cure_halt_after_the_breaker_opens() -> None:
    lapsed = httpx.Response(303, headers={"Location": "/login"})
    site = Site(default=lambda r: lapsed)
    browser = FakeBrowser()
    http = client(site, browser, http_retries=10)

    with pytest.raises(HaltRun, match="login did not cure it"):
        http.get("/api/v2/matches")
    assert browser.logins == 3 and len(browser.not_cured) == 3


def test_a_csrf_403_that_brings_a_new_token_is_retried_without_a_login() -> None:
    refused = httpx.Response(
        403,
        json={"error": "csrf token missing or invalid"},
        headers={"Set-Cookie": "csrf=fr3sh-token%7Csig; Path=/"},
    )
    site = Site(refused)
    browser = FakeBrowser()
    http = client(site, browser)

    http.get("/api/v2/matches")

    assert browser.logins == 0
    assert site.requests[1].headers["X-CSRF-Token"] == "fr3sh-token"


def test_a_403_cured_by_the_browsers_fresher_cookies_needs_no_login() -> None:
    site = Site(httpx.Response(401))
    browser = FakeBrowser()
    http = client(site, browser)
    browser.cookies[0]["value"] = "S3SS10N-newer"  # the browser has moved on meanwhile

    http.get("/x")

    assert browser.logins == 0 and "S3SS10N-newer" in site.requests[1].headers["Cookie"]


def test_html_where_json_was_promised_is_a_bad_response_asked_once_more() -> None:
    page = httpx.Response(
        200, text="<!DOCTYPE html><title>Matches</title>", headers={"Content-Type": "text/html"}
    )
    site = Site(default=lambda r: page)
    http = client(site)

    with pytest.raises(BadResponse, match=r"answered text/html.* where JSON was expected"):
        http.get_json("/matches?page=1")
    assert len(site.requests) == 2
    assert http.get("/matches?page=1").status_code == 200  # without the promise it is fine


def test_map_keeps_order_and_at_most_k_requests_in_flight() -> None:
    in_flight = 0
    most = 0
    lock = threading.Lock()
    k_reached = threading.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
            if in_flight == 3:
                k_reached.set()
        k_reached.wait(2.0)  # the first three meet here: three at once, never a fourth
        with lock:
            in_flight -= 1
        return httpx.Response(200, json={"n": int(request.url.path.rsplit("/", 1)[1])})

    http = client(Site(default=answer))

    results = http.map(http.get_json, [f"/item/{n}" for n in range(12)], concurrency=3)

    assert [r["n"] for r in results] == list(range(12))
    assert most == 3


def test_map_raises_the_first_error_and_starts_nothing_more() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if request.url.path == "/item/2" else 200, json={})

    site = Site(default=answer)
    http = client(site)

    with pytest.raises(Exception, match="HTTP 404"):
        http.map(http.get_json, [f"/item/{n}" for n in range(40)], concurrency=2)
    assert len(site.requests) < 40


def test_an_expired_page_sends_nothing_more() -> None:
    site = Site()
    http = client(site)
    http.expire()

    with pytest.raises(PageTimeout):
        http.get("/x")
    assert site.requests == []


def test_cookies_are_copied_from_the_browser_on_a_timer() -> None:
    now = [0.0]
    site = Site()
    browser = FakeBrowser()
    http = client(site, browser, clock=lambda: now[0], http_cookie_sync=120)
    browser.cookies[0]["value"] = "S3SS10N-later"

    http.get("/a")
    now[0] = 121.0
    http.begin_page("8", 60.0)
    http.get("/b")

    assert "S3SS10N-canary" in site.requests[0].headers["Cookie"]
    assert "S3SS10N-later" in site.requests[1].headers["Cookie"]


def test_cookies_and_tokens_are_learned_as_secrets_and_recorded_redacted(tmp_path: Path) -> None:
    redactor = Redactor(())
    recorder = FlightRecorder(tmp_path / "flight", redactor)
    refused = httpx.Response(
        500,
        json={"error": "your token t0ken-canary is fine, S3SS10N-canary too"},
        headers={"Set-Cookie": "sid=S3SS10N-canary; Path=/"},
    )
    events: list[tuple[str, dict[str, Any]]] = []
    http = client(Site(refused), events=events, recorder=recorder, redactor=redactor)

    http.get("/api/v2/matches")

    assert redactor("S3SS10N-canary t0ken-canary t0ken-canary|sig") == (
        "[REDACTED] [REDACTED] [REDACTED]"
    )
    (record,) = (tmp_path / "flight").iterdir()
    text = record.read_text()
    assert "canary" not in text
    saved = json.loads(text)
    assert saved["category"] == "server_error" and saved["response"]["status"] == 500
    assert saved["request"]["headers"]["cookie"] == "[REDACTED]"
    assert [kind for kind, _ in events] == ["http_error"]
    # a second error of the same kind is counted, not recorded again
    http.get("/api/v2/matches", endpoint="/api/v2/matches")
    assert len(list((tmp_path / "flight").iterdir())) == 1


def test_an_auth_error_after_the_retries_reaches_the_handler() -> None:
    site = Site(default=lambda r: httpx.Response(401))
    browser = FakeBrowser()
    http = client(site, browser, http_retries=1)

    with pytest.raises(AuthLost, match="HTTP 401"):
        http.get("/x")


def test_a_login_hook_whose_own_request_finds_no_session_fails_instead_of_recursing() -> None:
    lapsed = httpx.Response(303, headers={"Location": "/login"})
    site = Site(default=lambda r: lapsed)
    browser = FakeBrowser()
    http = client(site, browser)
    inner: list[BaseException] = []

    def login_through_the_api(reason: str) -> None:  # a login hook that uses ctx.http
        browser.logins += 1
        try:
            http.get("/api/login-check")
        except AuthLost as exc:
            inner.append(exc)
            raise

    browser.relogin = login_through_the_api  # type: ignore[method-assign]

    with pytest.raises(AuthLost):
        http.get("/api/v2/matches")
    assert browser.logins == 1 and len(inner) == 1  # one login, no login inside it
