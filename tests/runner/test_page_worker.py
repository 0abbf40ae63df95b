"""The page worker without a browser: a fake session, a real SQLite store, each
policy outcome (done, retry, refresh, restart, re-login, cool down, skip, halt)
seen in what the worker did to the session, the store and the event stream."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import NoSuchElementException

from enduro import Job, Settings
from enduro._secrets import Redactor
from enduro.errors import (
    AuthLost,
    BrowserDead,
    Fatal,
    HaltRun,
    JobLooksBroken,
    NetworkError,
    RateLimited,
)
from enduro.job import PageContext
from enduro.recovery import (
    Backoff,
    BrokenJobWatch,
    BurstDetector,
    DeadlineWatch,
    PageSignals,
    RateLimiter,
    RecoveryPolicies,
    StallWatch,
)
from enduro.runner import PageWorker, RunControl, RunEvent, RunEvents, store_listener
from enduro.store import ClaimedPage, Store

JOB = "j"
RUN = "run-1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeBrowser:
    def __init__(self) -> None:
        self.alive_answer = True
        self.kills = 0

    @property
    def driver(self) -> Any:
        return "driver"

    @property
    def page(self) -> Any:
        return "page"

    def alive(self, timeout: float = 5.0) -> bool:
        return self.alive_answer

    def kill(self) -> None:
        self.kills += 1


class FakeSession:
    """A :class:`~enduro.runner.PageSession` that writes down what it is asked."""

    name = "w0"
    http = None
    halting = ""

    def __init__(self) -> None:
        self.session = FakeBrowser()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.probe_answers: list[bool] = []

    def _did(self, what: str, *args: Any) -> None:
        self.calls.append((what, args))

    def did(self, what: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == what]

    def ready(self, page_key: str, attempt: int) -> None:
        self._did("ready", page_key, attempt)

    def page_done(self) -> None:
        self._did("page_done")

    def signals(self) -> PageSignals | None:
        return None

    def capture(
        self, group: str, label: str, signals: PageSignals | None = None
    ) -> dict[str, str] | None:
        self._did("capture", group)
        return None

    def slow_down(
        self, category: str, status: int | None, retry_after: float | None, cooldown: float
    ) -> None:
        self._did("slow_down", category, cooldown)

    def forget_login(self) -> None:
        self._did("forget_login")

    def restart(self, reason: str, *, category: str | None = None) -> None:
        self._did("restart", reason)

    def refresh(self) -> None:
        self._did("refresh")

    def probe(self) -> tuple[bool, str]:
        ok = self.probe_answers.pop(0) if self.probe_answers else True
        self._did("probe", ok)
        return ok, "probed"


class Rig:
    """A page worker on a real store, with the handler's behaviour scripted."""

    def __init__(self, tmp_path: Path, pages: int = 2, **settings: Any) -> None:
        self.clock = Clock()
        self.store = Store.open(tmp_path / "s.db", clock=self.clock)
        self.store.seed_pages(JOB, [str(n) for n in range(1, pages + 1)])
        self.raises: list[BaseException] = []
        self.enqueue: list[str] = []

        def handler(ctx: PageContext) -> list[dict[str, Any]]:
            if self.raises:
                raise self.raises.pop(0)
            ctx.enqueue(self.enqueue)
            return [{"id": f"{ctx.key}-a"}, {"id": f"{ctx.key}-b"}]

        self.job = Job(name=JOB, pages=["1", "2"], handler=handler, record_key="id")
        self.settings = Settings(store=tmp_path / "s.db", backoff_base=0.0, **settings)
        self.control = RunControl()
        self.events: list[RunEvent] = []
        events = RunEvents(RUN, JOB, Redactor(()), self.clock)
        events.subscribe(store_listener(self.store))
        events.subscribe(self.events.append)
        self.watchdog = DeadlineWatch()
        self.watchdog.start()
        rng = random.Random(1)
        self.worker = PageWorker(
            self.job,
            self.settings,
            self.store,
            RUN,
            self.control,
            events,
            policies=RecoveryPolicies(self.settings, rng),
            limiter=RateLimiter(None),
            backoff=Backoff(base=0.0, cap=0.0, rng=rng),
            bursts=BurstDetector(self.settings.cascade_errors, self.settings.cascade_window),
            broken=BrokenJobWatch(self.settings.broken_job_errors),
            stall=StallWatch(self.settings.stall_timeout),
            watchdog=self.watchdog,
            redact=Redactor(()),
            save_rates=lambda: None,
            clock=self.clock,
        )
        self.session = FakeSession()

    def claim(self) -> ClaimedPage:
        self.clock.now += 3600  # past any retry time
        page = self.store.claim(JOB, RUN, 60.0)
        assert page is not None
        return page

    def attempt(self, *errors: BaseException) -> ClaimedPage:
        """One attempt at the next claimable page, the handler raising ``errors``."""
        self.raises.extend(errors)
        page = self.claim()
        self.worker.process(self.session, page)
        return page

    def page(self, key: str = "1") -> dict[str, Any]:
        row = self.store.page_status(JOB, key)
        assert row is not None
        return row

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def errors(self) -> list[RunEvent]:
        return [e for e in self.events if e.kind == "error"]

    def close(self) -> None:
        self.watchdog.close()
        self.store.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.close()


def test_a_page_done_commits_its_records_and_the_pages_it_found(rig: Rig) -> None:
    rig.enqueue = ["d1"]
    rig.attempt()
    assert rig.page()["status"] == "done"
    assert list(rig.store.iter_record_texts(JOB)) == ['{"id": "1-a"}', '{"id": "1-b"}']
    assert rig.store.page_status(JOB, "d1") is not None  # found, in the same transaction
    assert rig.control.progress.done == 1 and rig.control.progress.total == 3
    assert rig.session.did("ready") == [("1", 1)] and rig.session.did("page_done") == [()]
    assert rig.kinds() == []


def test_a_network_error_is_retried_on_the_infra_budget_then_done(rig: Rig) -> None:
    rig.attempt(NetworkError("connection reset"))
    row = rig.page()
    assert (row["status"], row["attempts"], row["recoveries"]) == ("pending", 0, 1)
    (error,) = rig.errors()
    assert error.category == "network" and error.data is not None
    assert error.data["actions"] == ["retry"] and error.data["charge"] == "infra"
    assert rig.session.did("restart") == [] and rig.session.did("refresh") == []
    rig.attempt()
    assert rig.page()["status"] == "done"
    assert "recovered" in rig.kinds()


def test_an_element_error_drops_the_page_state_before_the_retry(rig: Rig) -> None:
    rig.attempt(NoSuchElementException("no such element: #matches"))
    assert rig.session.did("refresh") == [()]
    assert "refresh" in rig.kinds()
    assert rig.page()["attempts"] == 1  # the page's budget
    assert rig.session.did("restart") == []


def test_a_dead_browser_is_restarted(rig: Rig) -> None:
    rig.attempt(BrowserDead("chrome not reachable"))
    assert rig.session.did("restart") == [("after browser_crash",)]
    assert rig.page()["recoveries"] == 1


def test_an_unresponsive_browser_is_restarted_even_when_the_policy_did_not_ask(rig: Rig) -> None:
    rig.session.session.alive_answer = False
    rig.attempt(NetworkError("connection reset"))
    assert rig.session.did("restart") == [("browser unresponsive after network",)]


def test_a_lost_login_logs_in_again_before_the_retry(rig: Rig) -> None:
    rig.attempt(AuthLost("redirected to /login"))
    assert rig.session.did("forget_login") == [()]
    assert rig.page()["status"] == "pending"


def test_a_429_cools_the_site_down_for_its_retry_after(rig: Rig) -> None:
    rig.attempt(RateLimited("HTTP 429", retry_after=7.0))
    assert rig.session.did("slow_down") == [("rate_limited", 7.0)]
    row = rig.page()
    assert row["available_at"] >= rig.clock.now + 7.0  # not before the site said
    (error,) = rig.errors()
    assert error.data is not None and error.data["retry_after"] == 7.0


def test_a_page_whose_budget_is_spent_is_skipped_as_failed(rig: Rig) -> None:
    budget = rig.settings.handler_bug_attempts
    for _ in range(budget):
        rig.attempt(ValueError("the handler's bug"))
    row = rig.page()
    assert (row["status"], row["attempts"]) == ("failed", budget)
    assert rig.kinds().count("page_failed") == 1
    assert rig.control.progress.failed == 1
    assert [e.data["final"] for e in rig.errors() if e.data] == [False] * (budget - 1) + [True]


def test_a_fatal_error_halts_and_gives_the_page_back_uncharged(rig: Rig) -> None:
    with pytest.raises(HaltRun, match="fatal"):
        rig.attempt(Fatal("the job names no site"))
    row = rig.page()
    assert (row["status"], row["attempts"], row["recoveries"]) == ("pending", 0, 0)
    assert row["lease_owner"] is None


def test_a_burst_of_errors_pauses_to_probe_and_halts_when_probes_fail(tmp_path: Path) -> None:
    rig = Rig(tmp_path, cascade_errors=2, cascade_probes=2)
    try:
        rig.session.probe_answers = [False, False]
        rig.attempt(NetworkError("reset"))
        with pytest.raises(HaltRun, match="2 probes failed"):
            rig.attempt(NetworkError("reset"))
        assert rig.session.did("probe") == [(False,), (False,)]
        assert rig.control.sites_ok.is_set()  # pages may start again after the probe
    finally:
        rig.close()


def test_a_burst_of_the_jobs_own_errors_probes_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, pages=4, cascade_errors=2, broken_job_errors=0)
    try:
        for _ in range(4):
            rig.attempt(NoSuchElementException("no such element: #matches"))
        assert rig.session.did("probe") == [] and "cascade" not in rig.kinds()
    finally:
        rig.close()


def test_a_job_failing_page_after_page_halts_as_broken_with_its_pages_pending(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, pages=6, broken_job_errors=4, handler_bug_attempts=2)
    try:
        rig.attempt(ValueError("no rows on the page"))  # page 1, attempt 1
        rig.attempt(ValueError("no rows on the page"))  # page 1 again: given up
        assert rig.page("1")["status"] == "failed"
        rig.attempt(KeyError("id"))  # page 2
        with pytest.raises(JobLooksBroken) as halted:
            rig.attempt(ValueError("no rows on the page"))  # page 2 again: the 4th
        assert str(halted.value) == (
            "the job looks broken: ValueError: no rows on the page (2 pages, e.g. page 1)"
        )
        # what the broken job gave up goes back to pending, attempts forgotten
        assert [rig.page(k)["status"] for k in "123456"] == ["pending"] * 6
        assert rig.page("1")["attempts"] == 0
        (event,) = [e for e in rig.events if e.kind == "job_broken"]
        assert event.data is not None and set(event.data["requeued"]) == {"1", "2"}
    finally:
        rig.close()


def test_infrastructure_errors_never_count_toward_a_broken_job(tmp_path: Path) -> None:
    rig = Rig(tmp_path, pages=2, broken_job_errors=2, max_recoveries=50)
    try:
        for _ in range(10):
            rig.attempt(BrowserDead("chrome not reachable"))
            rig.attempt(NetworkError("connection reset"))
        rig.attempt(ValueError("one bad page"))  # one page-side failure: not yet
        assert rig.page("1")["status"] == "pending"
    finally:
        rig.close()


def test_a_hard_stop_gives_the_page_back_without_charging_it(rig: Rig) -> None:
    def stop_then_fail(ctx: PageContext) -> list[dict[str, Any]]:
        rig.control.hard_stop.set()
        raise BrowserDead("killed by the stop")

    rig.job = rig.worker.job = Job(name=JOB, pages=["1"], handler=stop_then_fail, record_key="id")
    rig.worker.process(rig.session, rig.claim())
    row = rig.page()
    assert (row["status"], row["recoveries"]) == ("pending", 0) and rig.errors() == []


def test_a_page_past_its_deadline_kills_the_browser_and_times_out(tmp_path: Path) -> None:
    rig = Rig(tmp_path, page_timeout=0.2)
    try:
        killed = threading.Event()
        rig.session.session.kill = killed.set  # type: ignore[method-assign]

        def hang(ctx: PageContext) -> list[dict[str, Any]]:
            killed.wait(30)  # until the deadline kills "the browser"
            raise BrowserDead("the browser was killed")

        rig.job = rig.worker.job = Job(name=JOB, pages=["1"], handler=hang, record_key="id")
        rig.worker.process(rig.session, rig.claim())
        assert killed.is_set()
        (error,) = rig.errors()
        assert error.category == "timeout"
    finally:
        rig.close()
