"""One page, start to end: the page worker.

::

    limiter.wait_hold() -> session.ready() -> limiter.acquire() -> job.handler(ctx)
                              ^                                        |
                              |                          store.complete_rows(), or on error:
                              |                                        v
      restart / re-login / cool down  <-  policies.decide(classify(exc, signals))

The worker holds no state of its own beyond what it was given: the store (the
page's lease, records and done mark), the run's shared :class:`RunControl`,
and the session it drives — anything that keeps one browser fit
(:class:`PageSession`; :class:`~enduro.session.SessionManager` in a run, a
fake in the unit tests). See ARCHITECTURE.md, "How a page travels".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from enduro._secrets import Redactor
from enduro.errors import PAGE_SIDE_CATEGORIES, HaltRun, JobLooksBroken, PageTimeout
from enduro.job import Job, PageContext, unique_keys
from enduro.recovery import (
    Backoff,
    BrokenJobWatch,
    BurstDetector,
    DeadlineWatch,
    Decision,
    PageSignals,
    RateLimiter,
    RecoveryPolicies,
    StallWatch,
    classify,
)
from enduro.runner._events import RunEvents
from enduro.runner._state import RunControl
from enduro.session import HttpClient
from enduro.settings import Settings
from enduro.store import ClaimedPage, PageQueue, prepare_records

__all__ = ["DISCOVERY_KEY", "PageSession", "PageWorker"]

log = logging.getLogger(__name__)

DISCOVERY_KEY = "(pages)"  # the "page" on which Job.pages is called, in events and logs

T = TypeVar("T")


class Browser(Protocol):
    """What the worker asks of the browser itself: the part of
    :class:`~enduro.session.BrowserBackend` it uses (``ctx.driver`` or ``ctx.page``
    for the handler, a health check, and the kill the page deadline makes)."""

    @property
    def driver(self) -> Any: ...

    @property
    def page(self) -> Any: ...

    def alive(self, timeout: float = 5.0) -> bool: ...

    def kill(self) -> None: ...


class PageSession(Protocol):
    """What the page worker drives: one browser kept fit and logged in."""

    @property
    def name(self) -> str: ...

    @property
    def session(self) -> Browser: ...

    @property
    def http(self) -> HttpClient | None: ...

    @property
    def halting(self) -> str:
        """Why ``ctx.http`` halted the run ("" if it did not): the handler may swallow it."""
        ...

    def ready(self, page_key: str, attempt: int) -> None: ...

    def page_done(self) -> None: ...

    def signals(self) -> PageSignals | None: ...

    def capture(
        self, group: str, label: str, signals: PageSignals | None = None
    ) -> dict[str, str] | None: ...

    def slow_down(
        self, category: str, status: int | None, retry_after: float | None, cooldown: float
    ) -> None: ...

    def forget_login(self) -> None: ...

    def restart(self, reason: str, *, category: str | None = None) -> None: ...

    def refresh(self) -> None: ...

    def probe(self) -> tuple[bool, str]: ...


class PageWorker:
    """Processes pages through a :class:`PageSession`: the handler under its
    deadline, the commit, and on an error the policy's decision carried out.

    Args:
        save_rates: called after every page done and every slow-down (the
            runner saves the rates it learned).
        clock: the wall clock (a page's retry time is on it).
    """

    def __init__(
        self,
        job: Job,
        settings: Settings,
        store: PageQueue,
        run_id: str,
        control: RunControl,
        events: RunEvents,
        *,
        policies: RecoveryPolicies,
        limiter: RateLimiter,
        backoff: Backoff,
        bursts: BurstDetector,
        broken: BrokenJobWatch,
        stall: StallWatch,
        watchdog: DeadlineWatch,
        redact: Redactor,
        save_rates: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self.job = job
        self.settings = settings
        self._store = store
        self._run_id = run_id
        self._control = control
        self._emit = events.emit
        self._policies = policies
        self._limiter = limiter
        self._backoff = backoff
        self._bursts = bursts
        self._broken = broken
        self._stall = stall
        self._watchdog = watchdog
        self._redact = redact
        self._save_rates = save_rates
        self._clock = clock

    # ---- a page -----------------------------------------------------------

    def process(self, session: PageSession, page: ClaimedPage) -> None:
        """One attempt at ``page``: done, or charged and recovered from.

        Raises:
            HaltRun: the run must stop (the page is given back, not charged).
        """
        control, store = self._control, self._store
        attempt = page.attempts + 1
        # Past any cool-down before the browser is readied (a restart or re-login
        # must not reach the site inside a Retry-After window either), and the
        # page's turn taken once it is ready (a turn taken before a browser start
        # would go stale while the other runners' turns go on).
        if not self._limiter.wait_hold(control.stop):
            store.release(page, self._run_id)  # stopped while waiting for the site
            return
        turn_at: float | None = None  # when the page's turn came (no turn: none sent)
        started = self._clock()
        try:
            session.ready(page.key, attempt)
            if not self._limiter.acquire(control.stop):
                store.release(page, self._run_id)
                return
            turn_at = self._clock()
            records, ctx = self.call_handler(session, page.key, attempt, self.job.handler)
            if session.halting:  # ctx.http halted the run; the handler swallowed it
                raise HaltRun(session.halting)
            rows = prepare_records(page, records, self.job.record_key)
            found = ctx.enqueued or ()
            took = self._clock() - started
            if store.complete_rows(page, self._run_id, rows, found, turn_at=turn_at, took=took):
                control.count(done=1, done_this_run=1)
                if found:
                    total = store.page_counts(self.job.name)["total"]
                    with control.lock:
                        control.progress.total = total
            else:
                log.warning("page %s: lease lost; its result was dropped", page.key)
            session.page_done()
            if page.attempts or page.recoveries:
                self._emit(
                    "recovered",
                    f"page {page.key} done after {page.attempts + page.recoveries} failures",
                    page_key=page.key,
                    data={"attempts": page.attempts, "recoveries": page.recoveries},
                )
            self._limiter.succeeded()
            self._broken.done()
            self._stall.progressed()
            self._save_rates()
        except HaltRun:
            store.release(page, self._run_id)
            raise
        except Exception as exc:
            if control.hard_stop.is_set():
                store.release(page, self._run_id)
                return
            self._failed(session, page, attempt, exc, turn_at)
        control.report()

    def _failed(
        self,
        session: PageSession,
        page: ClaimedPage,
        attempt: int,
        exc: Exception,
        turn_at: float | None = None,
    ) -> None:
        """Classify the error, charge the right budget, and carry out the policy's actions."""
        signals = session.signals()
        found = classify(exc, signals, login_pattern=self.settings.login_url_pattern)
        message = self._redact(found.message)
        decision = self._policies.decide(found, attempts=page.attempts, recoveries=page.recoveries)
        if decision.halt:
            self._store.release(page, self._run_id)
            raise HaltRun(decision.halt)  # the runner redacts it
        files = session.capture(f"{found.category}:{type(exc).__name__}", message, signals)
        retry_at = None if decision.final else self._clock() + (decision.retry_in or 0.0)
        self._store.fail_attempt(page, self._run_id, message, retry_at, charge=decision.charge)
        data: dict[str, Any] = {
            "attempt": attempt,
            "charge": decision.charge,
            "actions": list(decision.actions),
            "final": decision.final,
        }
        if found.status is not None:
            data["status"] = found.status
        if found.retry_after is not None:
            data["retry_after"] = found.retry_after
        if turn_at is not None:
            data["turn_at"] = round(turn_at, 6)
        if files:
            data["flight"] = files
        self._emit("error", message, category=found.category, page_key=page.key, data=data)
        log.info("page %s attempt %d: %s [%s]", page.key, attempt, message, found.category)
        self._control.count(errors=1, failed=int(decision.final))
        if decision.final:
            self._emit("page_failed", message, category=found.category, page_key=page.key)
        if found.category in PAGE_SIDE_CATEGORIES:
            self._check_broken(page.key, message, final=decision.final)
        self.recover(session, found.category, found.status, found.retry_after, decision)
        # a burst of the job's own errors says nothing about the site: no probe for it
        if found.category not in PAGE_SIDE_CATEGORIES and self._bursts.record(found.category):
            self._probe_burst(session, found.category, message)

    def _check_broken(self, key: str, message: str, *, final: bool) -> None:
        """Halt the run when the job looks broken (``Settings.broken_job_errors``): the
        pages its failures gave up go back to pending, so the fixed job resumes them."""
        broken = self._broken.failed(key, message, final=final)
        if broken is None:
            return
        if broken.given_up:
            self._store.requeue(self.job.name, keys=broken.given_up)
        self._emit(
            "job_broken",
            broken.reason(),
            page_key=broken.example,
            data={
                "failures": broken.failures,
                "pages": broken.pages,
                "requeued": list(broken.given_up),
            },
        )
        raise JobLooksBroken(broken.reason())

    def recover(
        self,
        session: PageSession,
        category: str,
        status: int | None,
        retry_after: float | None,
        decision: Decision,
    ) -> None:
        """Carry out a decision: slow down, cool down, re-login, restart or refresh."""
        session.slow_down(category, status, retry_after, decision.cooldown)
        self._save_rates()
        if decision.relogin:
            session.forget_login()
        if decision.restart:
            session.restart(f"after {category}", category=category)
        elif not session.session.alive(self.settings.health_timeout):
            session.restart(f"browser unresponsive after {category}", category=category)
        elif decision.refresh:
            session.refresh()
            self._emit("refresh", "page state dropped before the retry", category=category)

    def _probe_burst(self, session: PageSession, category: str, message: str) -> None:
        """A burst of one kind of error: pause every worker, probe, resume or halt."""
        settings, control = self.settings, self._control
        burst = f"{settings.cascade_errors} {category} errors within {settings.cascade_window:.0f}s"
        control.sites_ok.clear()
        self._emit("cascade", f"{burst}: pausing to probe", category=category)
        log.warning("%s: pausing to probe", burst)
        detail = message
        try:
            for probe in range(1, settings.cascade_probes + 1):
                if control.stop.wait(self._backoff.delay(probe)):
                    return
                ok, detail = session.probe()
                self._emit("probe", detail, category=category, data={"ok": ok, "probe": probe})
                if ok:
                    self._emit("resumed", f"probe {probe} passed", category=category)
                    return
            raise HaltRun(f"{burst}, and {settings.cascade_probes} probes failed; last: {detail}")
        finally:
            control.sites_ok.set()

    def call_handler(
        self, session: PageSession, key: str, attempt: int, call: Callable[[PageContext], T]
    ) -> tuple[T, PageContext]:
        """Run ``call`` (the handler) under the page deadline; past it, the browser is
        killed and ``ctx.http`` sends nothing more for the page."""
        expired = threading.Event()
        browser, http = session.session, session.http
        timeout = self.settings.page_timeout

        def on_deadline() -> None:
            expired.set()
            log.warning("page %s: past its %ss deadline; killing the browser", key, timeout)
            if http is not None:
                http.expire()
            browser.kill()

        ctx = PageContext(
            key=key,
            driver=browser.driver,
            page=browser.page,
            attempt=attempt,
            job=self.job,
            client=http,
            enqueued=[],
        )
        if http is not None:
            http.begin_page(key, timeout)
        token = self._watchdog.arm(timeout, on_deadline)
        try:
            result = call(ctx)
        except HaltRun:
            raise
        except Exception as exc:
            if session.halting:  # ctx.http halted the run; the handler made something else of it
                raise HaltRun(session.halting) from exc
            if expired.is_set():
                raise PageTimeout(f"page {key} overran {timeout}s") from exc
            raise
        finally:
            self._watchdog.disarm(token)
            if http is not None:
                http.end_page()
        if expired.is_set():
            raise PageTimeout(f"page {key} overran {timeout}s")
        return result, ctx

    # ---- the job's pages, when a function gives them ------------------------

    def find_pages(self, session: PageSession) -> tuple[int, int] | None:
        """Call ``Job.pages`` (a function) after the first login and seed its keys.

        Errors are classified and recovered like a page's, within a page's budgets;
        past them the run halts naming the error.

        Returns:
            (pages given, pages new), or None if the run must not go on (halted
            or stopped).
        """
        job, control = self.job, self._control
        attempts = recoveries = 0
        while not control.stop.is_set():
            attempt = attempts + recoveries + 1
            try:
                session.ready(DISCOVERY_KEY, attempt)
                keys, ctx = self.call_handler(
                    session,
                    DISCOVERY_KEY,
                    attempt,
                    lambda ctx: unique_keys(job.pages(ctx), job.name),  # type: ignore[operator]
                )
                added = self._store.seed_pages(job.name, [*keys, *(ctx.enqueued or ())])
            except HaltRun as exc:
                control.halt(str(exc))
                return None
            except Exception as exc:
                if control.hard_stop.is_set():
                    return None
                found = classify(
                    exc, session.signals(), login_pattern=self.settings.login_url_pattern
                )
                decision = self._policies.decide(found, attempts=attempts, recoveries=recoveries)
                message = self._redact(found.message)
                self._emit(
                    "error",
                    message,
                    category=found.category,
                    page_key=DISCOVERY_KEY,
                    data={"attempt": attempt, "actions": list(decision.actions)},
                )
                if decision.halt or decision.final:
                    control.halt(f"Job.pages failed: {message}")
                    return None
                attempts += decision.charge == "page"
                recoveries += decision.charge == "infra"
                try:
                    self.recover(session, found.category, found.status, found.retry_after, decision)
                except HaltRun as halt:
                    control.halt(str(halt))
                    return None
                control.stop.wait(decision.retry_in or 0.0)
                continue
            return len(keys), added
        return None
