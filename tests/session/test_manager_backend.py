"""The session manager over a fake browser backend: no Chromium, every browser action
seen in what the manager asked of the backend (start, restart with the cookies carried,
logins and their expiry on an injected clock, probes, captures)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from enduro import Job, Settings
from enduro.errors import AuthLost, BrowserDead, HaltRun
from enduro.job import PageContext
from enduro.recovery import Backoff, CircuitBreaker, PageSignals, RateLimiter, classify
from enduro.session import BrowserBackend, BrowserView, CookieKey, FlightRecorder, SessionManager

SITE = "http://127.0.0.1:9"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeBackend(BrowserBackend):
    """A browser that is a dict of cookies and a list of what it was asked."""

    errors = None  # type: ignore[assignment]  # classify needs nothing from a fake

    def __init__(self, clock: Clock) -> None:
        super().__init__(Settings(), "run-1", _NoRegistry(), "w0")
        self.clock = clock
        self.calls: list[str] = []
        self.browser = 0  # which browser runs (0: none)
        self.jar: dict[CookieKey, dict[str, Any]] = {}
        self.saved: list[dict[str, Any]] = []
        self.gone = False  # its processes vanished (SIGKILL from outside)
        self.status: int | None = None  # what the next signals say
        self.url = "about:blank"
        self.spare = False
        self.started_at = 0.0

    def _did(self, what: str) -> None:
        self.calls.append(what)

    def start(self) -> None:
        self._did("start")
        self.starts += 1
        self.browser = self.starts
        self.gone = False
        self.jar = {_key(c): dict(c) for c in self.saved}
        self.pages_since_start = 0
        self.started_at = self.clock()

    def prepare_spare(self) -> None:
        self._did("prepare_spare")
        self.spare = True

    @property
    def spare_launching(self) -> bool:
        return False

    def stop(self, *, background: bool = False) -> None:
        self._did(f"stop(background={background})")
        self.browser = 0

    def kill(self) -> None:
        self._did("kill")
        self.gone = True

    def close(self) -> None:
        self._did("close")
        self.browser = 0

    @property
    def running(self) -> bool:
        return self.browser > 0

    @property
    def age(self) -> float:
        return self.clock() - self.started_at

    def present(self) -> bool:
        return self.running and not self.gone

    def alive(self, timeout: float = 5.0) -> bool:
        return self.present()

    @property
    def driver(self) -> Any:
        return f"driver-{self.browser}"

    def goto(self, url: str) -> None:
        self._did(f"goto {url}")
        self.url = url

    def current_url(self, timeout: float) -> str:
        return self.url

    def read_cookies(self, timeout: float) -> list[dict[str, Any]] | None:
        return [dict(c) for c in self.jar.values()] if self.present() else None

    def write_cookies(
        self, cookies: list[dict[str, Any]], deleted: Iterable[CookieKey], timeout: float
    ) -> None:
        for cookie in cookies:
            self.jar[_key(cookie)] = dict(cookie)
        for key in deleted:
            self.jar.pop(key, None)

    @property
    def has_cookies(self) -> bool:
        return bool(self.saved)

    @property
    def cookies(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self.saved]

    def save_cookies(self) -> None:
        self._did("save_cookies")
        self.saved = self.read_cookies(1.0) or self.saved

    def forget_cookies(self) -> None:
        self.saved = []

    def merge_cookies(
        self, cookies: list[dict[str, Any]], deleted: Iterable[CookieKey] = ()
    ) -> None:
        merged = {_key(c): c for c in self.saved}
        for key in deleted:
            merged.pop(key, None)
        merged.update({_key(c): dict(c) for c in cookies})
        self.saved = list(merged.values())

    def signals(self, since: float | None, timeout: float) -> PageSignals | None:
        if not self.present():
            return None
        return PageSignals(url=self.url, status=self.status)

    def drain_signals(self, timeout: float) -> None:
        self._did("drain_signals")

    def look(self, timeout: float) -> BrowserView:
        self._did("look")
        return BrowserView(html="<p>page</p>", url=self.url, console=[])


class _NoRegistry:
    def register(self, *args: Any) -> int:
        raise AssertionError("a fake backend starts no process")

    def ended(self, ids: Iterable[int]) -> None:
        raise AssertionError("a fake backend starts no process")


def _key(cookie: dict[str, Any]) -> CookieKey:
    return (cookie["name"], cookie.get("domain", ""), cookie.get("path", "/"))


class Rig:
    def __init__(self, tmp_path: Path, *, expires_in: float | None = None, **settings: Any):
        self.clock = Clock(1_000_000.0)
        self.backend = FakeBackend(self.clock)
        self.events: list[tuple[str, str, str | None]] = []
        self.logins: list[Any] = []
        self.login_fails = False
        self.login_dies: BaseException | None = None  # the browser going away mid-login
        self.login_kills = False
        self.expires_in = expires_in
        self.settings = Settings(**{"relogin_max": 2, **settings})
        self.manager = SessionManager(
            self.backend,
            Job(name="j", pages=["1", "2"], handler=lambda ctx: [], login=self._login),
            self.settings,
            emit=self._emit,
            limiter=RateLimiter(None),
            relogins=CircuitBreaker(
                self.settings.relogin_max, self.settings.relogin_window, clock=self.clock
            ),
            stop=threading.Event(),
            hard_stop=threading.Event(),
            backoff=Backoff(base=0.0, cap=0.0),
            recorder=FlightRecorder(tmp_path / "flight"),
            pages_left=lambda: 100,
            on_restart=lambda: None,
            clock=self.clock,
            monotonic=self.clock,
        )

    def _login(self, ctx: PageContext) -> None:
        self.logins.append(ctx.driver)
        if self.login_dies is not None:
            self.backend.gone = self.login_kills  # its processes vanish under the login
            raise self.login_dies
        if self.login_fails:
            raise RuntimeError("wrong password")
        cookie: dict[str, Any] = {"name": "sid", "value": f"s{len(self.logins)}", "domain": "h"}
        if self.expires_in is not None:
            cookie["expires"] = self.clock() + self.expires_in
        self.backend.jar[_key(cookie)] = cookie

    def _emit(self, kind: str, message: str = "", *, category: str | None = None, **_: Any):
        self.events.append((kind, message, category))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events]

    def pages(self, n: int) -> None:
        for i in range(n):
            self.manager.ready(str(i), 1)
            self.manager.page_done()


def test_the_first_page_starts_the_browser_and_logs_in_through_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.manager.ready("1", 1)
    assert rig.backend.calls[:1] == ["start"]
    assert rig.logins == ["driver-1"]  # the login hook drove the backend's driver
    assert rig.kinds() == ["browser_start", "login"]
    assert not rig.backend.needs_login
    assert [c["name"] for c in rig.backend.cookies] == ["sid"]  # kept for the next browser


def test_a_browser_gone_from_outside_is_restarted_with_its_cookies(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.pages(1)
    rig.backend.kill()  # its processes vanish between pages
    rig.manager.ready("2", 1)
    assert rig.backend.browser == 2
    restart = [e for e in rig.events if e[0] == "browser_restart"]
    assert restart == [("browser_restart", "browser or driver process gone", "browser_crash")]
    # the new browser got the old one's cookies, so no second login
    assert len(rig.logins) == 1
    assert rig.backend.jar and not rig.backend.needs_login


def test_a_planned_restart_saves_cookies_and_retires_the_old_browser_in_background(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, restart_every_pages=3, restart_max_age=0)
    rig.pages(3)
    assert "stop(background=True)" not in rig.backend.calls
    rig.manager.ready("4", 1)
    i = rig.backend.calls.index("stop(background=True)")
    assert rig.backend.calls[i - 1] == "save_cookies"
    assert rig.backend.calls[i + 1] == "start"
    assert ("browser_restart", "every 3 pages", None) in rig.events


def test_a_login_about_to_expire_is_renewed_on_the_injected_clock(tmp_path: Path) -> None:
    rig = Rig(tmp_path, expires_in=600.0, relogin_before_expiry=60.0)
    rig.manager.ready("1", 1)
    rig.clock.now += 500  # 100 s left: not yet
    rig.manager.ready("2", 1)
    assert len(rig.logins) == 1
    rig.clock.now += 50  # 50 s left: inside the 60 s line
    rig.manager.ready("3", 1)
    assert len(rig.logins) == 2
    assert rig.kinds()[-1] == "relogin"
    assert rig.events[-1][1] == "logged in (login cookie expires in 50s)"


def test_failed_logins_raise_auth_lost_then_trip_the_breaker(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.login_fails = True
    with pytest.raises(AuthLost, match="wrong password"):
        rig.manager.ready("1", 1)
    with pytest.raises(HaltRun, match="login failed 2 times"):
        rig.manager.ready("1", 2)
    assert rig.kinds().count("login_failed") == 2


def test_a_browser_that_dies_under_a_login_is_a_crash_not_a_failed_login(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    rig.login_dies = BrowserDead("the browser has closed the connection")
    for attempt in (1, 2, 3):  # more than relogin_max: the breaker must not count them
        with pytest.raises(BrowserDead) as raised:
            rig.manager.ready("1", attempt)
        assert classify(raised.value).category == "browser_crash"
    assert "login_failed" not in rig.kinds()
    assert rig.backend.needs_login  # the next browser logs in
    # a hook that wraps the dead browser's error in AuthLost: the browser is gone, so
    # it is still a crash
    rig.login_dies = AuthLost("login did not leave the login page")
    rig.login_kills = True
    with pytest.raises(BrowserDead, match="went away during the login"):
        rig.manager.ready("1", 4)
    assert "login_failed" not in rig.kinds()
    rig.login_dies = None
    rig.manager.ready("1", 5)
    assert rig.kinds()[-1] == "login"


def test_a_probe_loads_the_last_good_url_and_reads_its_status(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.manager.ready("1", 1)
    rig.backend.goto(f"{SITE}/matches?page=1")
    rig.manager.page_done()  # notes the URL that loaded well
    assert rig.manager.last_good_url == f"{SITE}/matches?page=1"
    rig.backend.goto("about:blank")
    rig.backend.status = 503
    assert rig.manager.probe() == (False, "HTTP 503")
    assert rig.backend.calls[-1] == f"goto {SITE}/matches?page=1"
    rig.backend.status = 200
    ok, said = rig.manager.probe()
    assert ok and said == f"loaded {SITE}/matches?page=1"


def test_a_capture_asks_the_backend_to_look_once_per_group(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.manager.ready("1", 1)
    files = rig.manager.capture("element:Stale", "page 1")
    assert files is not None and Path(files["html"]).read_text() == "<p>page</p>"
    assert rig.manager.capture("element:Stale", "page 2") is None
    assert rig.backend.calls.count("look") == 1
    rig.backend.kill()
    assert rig.manager.capture("network:X", "page 3") is None  # a gone browser isn't asked
    assert rig.backend.calls.count("look") == 1
