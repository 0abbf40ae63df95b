"""The loop: claim a page, make sure the browser is fit, run the handler, commit.

::

    limiter.acquire() -> store.claim() -> manager.ready() -> job.handler(ctx) -> store.complete()
                                              ^                    |
                                              |                  error
                                              |                    v
                      restart / re-login / cool down  <-  policies.decide(classify(exc, signals))

One worker = one browser session = one loop. Every piece of state that must
survive a crash lives in the store; the runner holds only counters for the
progress display.

A hybrid job (``Job.site``) gives each worker's handler ``ctx.http`` too; its
per-endpoint limiters and request counts are the run's, saved in the store.
A job whose ``pages`` is a function has them found first: the first worker's
browser logs in and the function's keys are seeded before any page starts.
"""

from __future__ import annotations

import logging
import random
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TypeVar

import psutil

from enduro._secrets import Redactor, redacting_logs
from enduro.errors import HaltRun, PageTimeout
from enduro.job import Job, PageContext, unique_keys
from enduro.monitor import Alert, Monitor, ResourceSample, default_rules
from enduro.recovery import (
    Backoff,
    BurstDetector,
    CircuitBreaker,
    DeadlineWatch,
    Decision,
    EndpointLimiters,
    RateLimiter,
    RecoveryPolicies,
    StallWatch,
    classify,
)
from enduro.session import (
    BrowserSession,
    FlightRecorder,
    HttpClient,
    HttpStats,
    SessionManager,
    find_browser,
    reap_dead_runs,
)
from enduro.settings import Settings
from enduro.store import ClaimedPage, Store, prepare_records

__all__ = ["Progress", "RunResult", "Runner"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
# Pages a worker leases at once (one transaction instead of four).
CLAIM_BATCH = 4
IDLE_POLL_SECONDS = 0.25
RATE_STATE_KEY = "rate"  # the learned pages/s, saved per job in the store
ENDPOINT_RATE_PREFIX = "rate:"  # + endpoint: a ctx.http endpoint's learned requests/s
DISCOVERY_KEY = "(pages)"  # the "page" on which Job.pages is called, in events and logs

T = TypeVar("T")


@dataclass
class Progress:
    """Counters for a progress display (a snapshot; the store is the truth)."""

    total: int = 0
    done: int = 0
    failed: int = 0
    done_this_run: int = 0
    restarts: int = 0
    errors: int = 0
    started_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class RunResult:
    """How a run ended.

    Attributes:
        status: ``finished`` (every page done), ``failed`` (some pages failed),
            ``interrupted`` (stopped by a signal) or ``halted`` (could not go on).
        exit_code: 0, 1, 1 and 130 for those statuses.
    """

    run_id: str
    status: str
    exit_code: int
    reason: str
    progress: Progress
    counts: dict[str, int]


class _StoreRegistry:
    """The PID registry of a run, kept in the store."""

    def __init__(self, store: Store, run_id: str) -> None:
        self._store = store
        self._run_id = run_id

    def register(
        self, kind: str, pid: int, create_time: float, pgid: int | None, workdir: str | None
    ) -> int:
        return self._store.register_process(self._run_id, kind, pid, create_time, pgid, workdir)

    def ended(self, ids: Iterable[int]) -> None:
        self._store.end_processes(ids)


class Runner:
    """Runs a job's pending pages to the end, durably.

    Args:
        job: what to do.
        store: where progress lives (opened by the caller).
        settings: how to run.
        on_progress: called with a :class:`Progress` after every page, error and restart.
    """

    def __init__(
        self,
        job: Job,
        store: Store,
        settings: Settings,
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.job = job
        self.store = store
        self.settings = settings
        self.run_id = uuid.uuid4().hex[:12]
        self._on_progress = on_progress or (lambda progress: None)
        self._stop = threading.Event()
        self._hard_stop = threading.Event()
        self._halt_reason = ""
        self._lock = threading.Lock()
        self._managers: list[SessionManager] = []
        rng = random.Random(settings.seed)
        self._backoff = Backoff(base=settings.backoff_base, cap=settings.backoff_max, rng=rng)
        self._policies = RecoveryPolicies(settings, rng)
        # start at the rate a previous run learned, unless settings name one
        self._saved_rate = self._learned_rate() if settings.rate_limit is None else None
        start_rate = settings.rate_limit if self._saved_rate is None else self._saved_rate
        self._limiter = RateLimiter(start_rate, min_rate=settings.rate_min)
        self._relogins = CircuitBreaker(settings.relogin_max, settings.relogin_window)
        self._bursts = BurstDetector(settings.cascade_errors, settings.cascade_window)
        self._stall = StallWatch(settings.stall_timeout)
        # learns the site's cookies and tokens as ctx.http meets them
        self._redact = Redactor(job.secrets)
        self._recorder: FlightRecorder | None = None
        if settings.flight_recorder:
            self._recorder = FlightRecorder(store.flight_dir, self._redact)
        self._saved_endpoint_rates = self._learned_endpoint_rates()
        self._endpoints = EndpointLimiters(
            min_rate=settings.http_rate_min,
            learned={k: v for k, v in self._saved_endpoint_rates.items() if v is not None},
        )
        self.http_stats = HttpStats()
        self._stats_saved = -1  # the HttpStats version last saved
        self._pages_found = False  # Job.pages (a function) gave its keys this run
        self.progress = Progress()
        self._watchdog = DeadlineWatch()
        self._memory_ok = threading.Event()
        self._memory_ok.set()
        self._sites_ok = threading.Event()  # cleared while a burst of errors is probed
        self._sites_ok.set()
        self.monitor: Monitor | None = None
        if settings.monitor_interval > 0:
            self.monitor = Monitor(
                interval=settings.monitor_interval,
                browser_groups=self._browser_groups,
                spare_groups=lambda: self._browser_groups(spare=True),
                pages=lambda: self.progress.done_this_run,
                browser_starts=lambda: sum(m.session.starts for m in self._managers),
                disk_path=store.disk_dir,
                rules=default_rules(settings),
                sink=self._store_sample,
            )
            self.monitor.subscribe(self._on_alert)

    # ---- the run -------------------------------------------------------

    def run(self) -> RunResult:
        """Process every pending page, then return how the run ended.

        Raises:
            BrowserNotFound: Chromium or chromedriver is missing (nothing is written).
        """
        find_browser(self.settings)
        with redacting_logs(self._redact):
            return self._run()

    def _run(self) -> RunResult:
        store, job = self.store, self.job
        reap_dead_runs(store, stale_after=self.settings.lease_seconds, now=time.time())
        store.reclaim_expired_leases(job.name)
        added = 0 if job.discovers_pages else store.seed_pages(job.name, job.page_keys)
        me = psutil.Process()
        store.begin_run(self.run_id, job.name, socket.gethostname(), me.pid, me.create_time())
        counts = store.page_counts(job.name)
        self.progress.total, self.progress.done = counts["total"], counts["done"]
        self.progress.failed = counts["failed"]
        self._event(
            "resume" if counts["done"] else "run_start",
            f"{counts['done']}/{counts['total']} pages done, {added} new",
            data={"done": counts["done"], "total": counts["total"], "added": added},
        )
        if self._saved_rate is not None:
            self._event("rate_restored", f"starting at the learned {self._saved_rate:.2f} pages/s")
        log.info("run %s: %d/%d pages done at start", self.run_id, counts["done"], counts["total"])
        self._on_progress(self.progress)

        restore = self._install_signal_handlers()
        self._watchdog.start()
        if self.monitor is not None:
            self.monitor.start()
        managers = [self._manager(f"w{i}") for i in range(self.settings.workers)]
        with self._lock:
            self._managers.extend(managers)
        try:
            if job.discovers_pages and not self._found_pages(managers[0]):
                for manager in managers:
                    self._close_manager(manager)
                return self._finish()
            workers = [
                threading.Thread(target=self._work, args=(m,), name=f"enduro-{m.name}")
                for m in managers
            ]
            for worker in workers:
                worker.start()
            last_beat = time.monotonic()
            while any(w.is_alive() for w in workers):
                for worker in workers:
                    worker.join(timeout=0.5)
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    store.heartbeat(self.run_id, self.settings.lease_seconds)
                    self._save_http_stats()
                    last_beat = time.monotonic()
                self._check_stall()
        finally:
            self._watchdog.close()
            if self.monitor is not None:
                self.monitor.close()
            restore()
        return self._finish()

    def _finish(self) -> RunResult:
        self._save_http_stats()
        counts = self.store.page_counts(self.job.name)
        unfound = self.job.discovers_pages and not self._pages_found
        if self._halt_reason:
            status, code, reason = "halted", 1, self._halt_reason
        elif self._stop.is_set() and (counts["pending"] + counts["leased"] or unfound):
            status, code, reason = "interrupted", 130, "stopped by signal"
        elif counts["failed"]:
            status, code, reason = "failed", 1, f"{counts['failed']} pages failed"
        else:
            status, code, reason = "finished", 0, "every page done"
        self.store.end_run(self.run_id, status, code)
        self._event("run_end", f"{status}: {reason}", data=counts)
        log.info("run %s %s: %s", self.run_id, status, reason)
        return RunResult(self.run_id, status, code, reason, self.progress, counts)

    def _event(
        self,
        kind: str,
        message: str = "",
        *,
        category: str | None = None,
        page_key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Record an event of this run and job in the store (secrets redacted)."""
        self.store.add_event(
            kind,
            self._redact(message),
            run_id=self.run_id,
            job=self.job.name,
            category=category,
            page_key=page_key,
            data=data,
        )

    def _halt(self, reason: str) -> None:
        reason = self._redact(reason)  # it is printed, logged and stored
        with self._lock:
            if not self._halt_reason:
                self._halt_reason = reason
        self._event("halt", reason)
        self._stop.set()

    # ---- the site's rate ---------------------------------------------------

    def _learned_rate(self) -> float | None:
        """The rate a previous run of the job learned (None: nothing, or "unlimited")."""
        saved = self.store.get_state(self.job.name, RATE_STATE_KEY)
        try:
            rate = float(saved or "")
        except ValueError:
            return None
        return rate if 0 < rate < float("inf") else None

    def _save_rate(self) -> None:
        rate = self._limiter.rate
        if rate != self._saved_rate:
            self._saved_rate = rate
            value = "unlimited" if rate is None else repr(rate)
            self.store.set_state(self.job.name, RATE_STATE_KEY, value)

    def _learned_endpoint_rates(self) -> dict[str, float | None]:
        """The rates previous runs learned per ctx.http endpoint (None: unlimited)."""
        found: dict[str, float | None] = {}
        states = self.store.states(self.job.name, ENDPOINT_RATE_PREFIX)
        for key, value in states.items():
            try:
                rate = float(value)
            except ValueError:
                rate = float("inf")
            found[key.removeprefix(ENDPOINT_RATE_PREFIX)] = (
                rate if 0 < rate < float("inf") else None
            )
        return found

    def _save_endpoint_rates(self) -> None:
        for endpoint, rate in self._endpoints.rates().items():
            if self._saved_endpoint_rates.get(endpoint, "new") != rate:
                self._saved_endpoint_rates[endpoint] = rate
                value = "unlimited" if rate is None else repr(rate)
                self.store.set_state(self.job.name, ENDPOINT_RATE_PREFIX + endpoint, value)

    def _save_http_stats(self) -> None:
        """The run's ctx.http counts into the store, when they changed."""
        version = self.http_stats.version
        if version != self._stats_saved:
            self._stats_saved = version
            self.store.save_http_stats(self.run_id, self.job.name, self.http_stats.snapshot())

    # ---- what the monitor and the stall watch see ----------------------------

    def _browser_groups(self, spare: bool = False) -> list[int]:
        with self._lock:
            managers = list(self._managers)
        return [pgid for m in managers for pgid in m.session.process_groups(spare)]

    def _store_sample(self, sample: ResourceSample) -> None:
        self.store.add_sample(self.run_id, sample.ts, sample.pages, sample.to_dict())

    def _on_alert(self, alert: Alert) -> None:
        """Act on the monitor's alerts: restart a fat browser, pause while memory is short."""
        self._event(
            "alert",
            alert.describe(),
            category=alert.metric,
            data={"state": alert.state, "value": alert.value, "threshold": alert.threshold},
        )
        if alert.metric == "browser_pss_mb" and alert.state == "open":
            limit = self.settings.alert_browser_pss_mb
            with self._lock:
                for manager in self._managers:
                    manager.restart_wanted = f"browser PSS over {limit:g} MB"
        elif alert.metric == "mem_percent":
            if alert.state == "open":
                self._memory_ok.clear()
                self._event(
                    "paused", f"no new pages while {alert.describe()}", category="memory_pressure"
                )
            else:
                self._memory_ok.set()
                self._event("resumed", alert.describe(), category="memory_pressure")

    def _check_stall(self) -> None:
        """No page completed for ``stall_timeout``: restart the browsers, then halt."""
        if (
            self._limiter.cooldown_left() > 0
            or not self._memory_ok.is_set()
            or not self._sites_ok.is_set()
        ):
            self._stall.progressed()  # idle on purpose, not stalled
            return
        verdict = self._stall.check()
        timeout = self.settings.stall_timeout
        if verdict == "restart":
            self._event("stall", f"no page completed in {timeout:.0f}s; restarting the browsers")
            with self._lock:
                for manager in self._managers:
                    manager.restart_wanted = f"stall: no page completed in {timeout:.0f}s"
        elif verdict == "halt":
            self._halt(f"no page completed in {timeout:.0f}s, even after restarting the browsers")

    def request_stop(self, hard: bool = False) -> None:
        """Stop after the page in hand (``hard``: abandon it, killing the browsers)."""
        if hard:
            self._hard_stop.set()
            with self._lock:
                managers = list(self._managers)
            for manager in managers:
                manager.session.kill()
        self._stop.set()

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, _frame: FrameType | None) -> None:
            hard = self._stop.is_set()
            log.warning(
                "%s: %s",
                signal.Signals(signum).name,
                "abandoning the pages in hand" if hard else "finishing the page in hand",
            )
            self.request_stop(hard=hard)

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # ---- one worker ----------------------------------------------------

    def _manager(self, name: str) -> SessionManager:
        session = BrowserSession(
            self.settings, self.run_id, _StoreRegistry(self.store, self.run_id), name
        )

        def restarted() -> None:
            with self._lock:
                self.progress.restarts += 1

        def pages_left() -> int:
            with self._lock:
                return self.progress.total - self.progress.done - self.progress.failed

        manager = SessionManager(
            session,
            self.job,
            self.settings,
            emit=self._event,
            limiter=self._limiter,
            relogins=self._relogins,
            stop=self._stop,
            hard_stop=self._hard_stop,
            backoff=self._backoff,
            recorder=self._recorder,
            pages_left=pages_left,
            on_restart=restarted,
        )
        if self.job.site is not None:
            manager.http = HttpClient(
                self.job.site,
                self.settings,
                link=manager,
                limiters=self._endpoints,
                stats=self.http_stats,
                redactor=self._redact,
                prepare=self.job.prepare_request,
                emit=self._event,
                recorder=self._recorder,
                abort=self._hard_stop,
                name=name,
                rng=random.Random(None if self.settings.seed is None else self.settings.seed + 1),
            )
        return manager

    @staticmethod
    def _close_manager(manager: SessionManager) -> None:
        if manager.http is not None:
            manager.http.close()
        manager.session.close()

    def _found_pages(self, manager: SessionManager) -> bool:
        """Call ``Job.pages`` (a function) after the first login and seed its keys.

        Errors are classified and recovered like a page's, within a page's budgets;
        past them the run halts naming the error. Returns whether workers may start.
        """
        job = self.job
        attempts = recoveries = 0
        while not self._stop.is_set():
            attempt = attempts + recoveries + 1
            try:
                manager.ready(DISCOVERY_KEY, attempt)
                keys, ctx = self._call_handler(
                    manager,
                    DISCOVERY_KEY,
                    attempt,
                    lambda ctx: unique_keys(job.pages(ctx), job.name),  # type: ignore[operator]
                )
                added = self.store.seed_pages(job.name, [*keys, *(ctx.enqueued or ())])
            except HaltRun as exc:
                self._halt(str(exc))
                return False
            except Exception as exc:
                if self._hard_stop.is_set():
                    return False
                signals = manager.signals()
                found = classify(exc, signals, login_pattern=self.settings.login_url_pattern)
                decision = self._policies.decide(found, attempts=attempts, recoveries=recoveries)
                message = self._redact(found.message)
                self._event(
                    "error",
                    message,
                    category=found.category,
                    page_key=DISCOVERY_KEY,
                    data={"attempt": attempt, "actions": list(decision.actions)},
                )
                if decision.halt or decision.final:
                    self._halt(f"Job.pages failed: {message}")
                    return False
                attempts += decision.charge == "page"
                recoveries += decision.charge == "infra"
                try:
                    self._recover(
                        manager, found.category, found.status, found.retry_after, decision
                    )
                except HaltRun as halt:
                    self._halt(str(halt))
                    return False
                self._stop.wait(decision.retry_in or 0.0)
                continue
            counts = self.store.page_counts(job.name)
            with self._lock:
                self.progress.total = counts["total"]
            self._event(
                "pages_found",
                f"Job.pages gave {len(keys)} pages, {added} new",
                data={"pages": len(keys), "added": added},
            )
            log.info("Job.pages gave %d pages, %d new", len(keys), added)
            self._on_progress(self.progress)
            self._pages_found = True
            return True
        return False

    def _work(self, manager: SessionManager) -> None:
        name = manager.name
        claimed: deque[ClaimedPage] = deque()
        try:
            while not self._stop.is_set():
                if not (self._memory_ok.is_set() and self._sites_ok.is_set()):
                    self._stop.wait(IDLE_POLL_SECONDS)  # short of memory, or probing the site
                    continue
                if not claimed:
                    claimed.extend(
                        self.store.claim_many(
                            self.job.name, self.run_id, self.settings.lease_seconds, CLAIM_BATCH
                        )
                    )
                if not claimed:
                    if not self._wait_for_work():
                        break
                    continue
                self._process(manager, claimed.popleft())
        except HaltRun as exc:
            self._halt(str(exc))
        except Exception:
            log.exception("%s: worker crashed", name)
            self._halt(f"worker {name} crashed")
        finally:
            for page in claimed:
                self.store.release(page, self.run_id)
            self._close_manager(manager)

    def _wait_for_work(self) -> bool:
        """Sleep until a page may be ready; False when nothing is left to do."""
        counts = self.store.page_counts(self.job.name)
        if counts["pending"] == 0 and counts["leased"] == 0:
            return False
        retry_at = self.store.next_retry_at(self.job.name)
        wait = IDLE_POLL_SECONDS if retry_at is None else retry_at - time.time()
        self._stop.wait(min(max(wait, 0.0), 1.0) or 0.01)
        return True

    def _process(self, manager: SessionManager, page: ClaimedPage) -> None:
        attempt = page.attempts + 1
        if not self._limiter.acquire(self._stop):
            self.store.release(page, self.run_id)  # stopped while waiting for the site
            return
        try:
            manager.ready(page.key, attempt)
            records, ctx = self._call_handler(manager, page.key, attempt, self.job.handler)
            if manager.halting:  # ctx.http halted the run; the handler swallowed it
                raise HaltRun(manager.halting)
            rows = prepare_records(page, records, self.job.record_key)
            found = ctx.enqueued or ()
            if self.store.complete_rows(page, self.run_id, rows, found):
                with self._lock:
                    self.progress.done += 1
                    self.progress.done_this_run += 1
                if found:
                    total = self.store.page_counts(self.job.name)["total"]
                    with self._lock:
                        self.progress.total = total
            else:
                log.warning("page %s: lease lost; its result was dropped", page.key)
            manager.page_done()
            if page.attempts or page.recoveries:
                self._event(
                    "recovered",
                    f"page {page.key} done after {page.attempts + page.recoveries} failures",
                    page_key=page.key,
                    data={"attempts": page.attempts, "recoveries": page.recoveries},
                )
            self._limiter.succeeded()
            self._stall.progressed()
            self._save_rate()
            self._save_endpoint_rates()
        except HaltRun:
            self.store.release(page, self.run_id)
            raise
        except Exception as exc:
            if self._hard_stop.is_set():
                self.store.release(page, self.run_id)
                return
            self._page_failed(manager, page, attempt, exc)
        self._on_progress(self.progress)

    def _page_failed(
        self, manager: SessionManager, page: ClaimedPage, attempt: int, exc: Exception
    ) -> None:
        """Classify the error, charge the right budget, and carry out the policy's actions."""
        signals = manager.signals()
        found = classify(exc, signals, login_pattern=self.settings.login_url_pattern)
        message = self._redact(found.message)
        decision = self._policies.decide(found, attempts=page.attempts, recoveries=page.recoveries)
        if decision.halt:
            self.store.release(page, self.run_id)
            raise HaltRun(decision.halt)  # _halt redacts it
        files = manager.capture(f"{found.category}:{type(exc).__name__}", message, signals)
        retry_at = None if decision.final else time.time() + (decision.retry_in or 0.0)
        self.store.fail_attempt(page, self.run_id, message, retry_at, charge=decision.charge)
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
        if files:
            data["flight"] = files
        self._event("error", message, category=found.category, page_key=page.key, data=data)
        log.info("page %s attempt %d: %s [%s]", page.key, attempt, message, found.category)
        with self._lock:
            self.progress.errors += 1
            if decision.final:
                self.progress.failed += 1
        if decision.final:
            self._event("page_failed", message, category=found.category, page_key=page.key)
        self._recover(manager, found.category, found.status, found.retry_after, decision)
        if self._bursts.record(found.category):
            self._probe_burst(manager, found.category, message)

    def _recover(
        self,
        manager: SessionManager,
        category: str,
        status: int | None,
        retry_after: float | None,
        decision: Decision,
    ) -> None:
        """Carry out a decision: slow down, cool down, re-login, restart or refresh."""
        manager.slow_down(category, status, retry_after, decision.cooldown)
        self._save_rate()
        if decision.relogin:
            manager.forget_login()
        if decision.restart:
            manager.restart(f"after {category}", category=category)
        elif not manager.session.alive(self.settings.health_timeout):
            manager.restart(f"browser unresponsive after {category}", category=category)
        elif decision.refresh:
            manager.refresh()
            self._event("refresh", "page state dropped before the retry", category=category)

    def _probe_burst(self, manager: SessionManager, category: str, message: str) -> None:
        """A burst of one kind of error: pause every worker, probe, resume or halt."""
        settings = self.settings
        burst = f"{settings.cascade_errors} {category} errors within {settings.cascade_window:.0f}s"
        self._sites_ok.clear()
        self._event("cascade", f"{burst}: pausing to probe", category=category)
        log.warning("%s: pausing to probe", burst)
        detail = message
        try:
            for probe in range(1, settings.cascade_probes + 1):
                if self._stop.wait(self._backoff.delay(probe)):
                    return
                ok, detail = manager.probe()
                self._event("probe", detail, category=category, data={"ok": ok, "probe": probe})
                if ok:
                    self._event("resumed", f"probe {probe} passed", category=category)
                    return
            raise HaltRun(f"{burst}, and {settings.cascade_probes} probes failed; last: {detail}")
        finally:
            self._sites_ok.set()

    def _call_handler(
        self, manager: SessionManager, key: str, attempt: int, call: Callable[[PageContext], T]
    ) -> tuple[T, PageContext]:
        """Run ``call`` (the handler) under the page deadline; past it, the browser is
        killed and ``ctx.http`` sends nothing more for the page."""
        expired = threading.Event()
        session, http = manager.session, manager.http

        def on_deadline() -> None:
            expired.set()
            log.warning(
                "page %s: past its %ss deadline; killing the browser",
                key,
                self.settings.page_timeout,
            )
            if http is not None:
                http.expire()
            session.kill()

        ctx = PageContext(
            key=key, driver=session.driver, attempt=attempt, job=self.job, client=http, enqueued=[]
        )
        if http is not None:
            http.begin_page(key, self.settings.page_timeout)
        token = self._watchdog.arm(self.settings.page_timeout, on_deadline)
        try:
            result = call(ctx)
        except HaltRun:
            raise
        except Exception as exc:
            if manager.halting:  # ctx.http halted the run; the handler made something else of it
                raise HaltRun(manager.halting) from exc
            if expired.is_set():
                raise PageTimeout(f"page {key} overran {self.settings.page_timeout}s") from exc
            raise
        finally:
            self._watchdog.disarm(token)
            if http is not None:
                http.end_page()
        if expired.is_set():
            raise PageTimeout(f"page {key} overran {self.settings.page_timeout}s")
        return result, ctx
