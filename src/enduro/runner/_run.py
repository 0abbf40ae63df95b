"""The run supervisor: sets a run up, starts one worker thread per browser
session, watches them (heartbeat, stall, the monitor's alerts, signals) and
says how the run ended. Each page is the page worker's (``_page``); every
event goes out on the run's event stream (``_events``), whose first listener
is the store. See ARCHITECTURE.md, "The runner".
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from types import FrameType

import psutil

from enduro._secrets import Redactor, redacting_logs
from enduro.errors import HaltRun, JobLooksBroken
from enduro.job import Job
from enduro.monitor import Alert, Monitor, ResourceSample, default_rules
from enduro.recovery import (
    Backoff,
    BrokenJobWatch,
    BurstDetector,
    CircuitBreaker,
    DeadlineWatch,
    EndpointLimiters,
    RateLimiter,
    RecoveryPolicies,
    StallWatch,
)
from enduro.runner._events import RunEvents, store_listener
from enduro.runner._live import LIVE_SECONDS, LIVE_STATE_PREFIX, live_state
from enduro.runner._pace import HTTP_PACE, StorePace
from enduro.runner._page import PageWorker
from enduro.runner._state import Progress, RunControl, RunResult
from enduro.session import (
    BrowserBackend,
    FlightRecorder,
    HttpClient,
    HttpStats,
    SessionManager,
    backend_for,
    reap_dead_runs,
    split_credentials,
)
from enduro.settings import Settings
from enduro.store import ClaimedPage, Store

__all__ = ["Runner"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
# Pages a worker leases at once (one transaction instead of four).
CLAIM_BATCH = 4
IDLE_POLL_SECONDS = 0.25
RATE_STATE_KEY = "rate"  # the learned pages/s, saved per job in the store
ENDPOINT_RATE_PREFIX = "rate:"  # + endpoint: a ctx.http endpoint's learned requests/s


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
        clock: the wall clock (leases, retry times and events are on it; default:
            the store's, :meth:`~enduro.store.Store.now`).
        run_id: this run's id (default: a new random one).
        backend: the browser backend each worker gets (default: Playwright's when
            ``settings.backend`` or the job says so,
            :class:`~enduro.session.PlaywrightSession`; browsers from the
            Selenium Grid at ``settings.grid_url`` if one is set,
            :class:`~enduro.session.GridSession`; else local Selenium and Debian's
            chromedriver, :class:`~enduro.session.BrowserSession`).
    """

    def __init__(
        self,
        job: Job,
        store: Store,
        settings: Settings,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        clock: Callable[[], float] | None = None,
        run_id: str | None = None,
        backend: type[BrowserBackend] | None = None,
    ) -> None:
        self.job = job
        self.store = store
        self.settings = settings
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._backend = backend or backend_for(settings, job)
        self._clock = clock = clock or store.now
        # learns the site's cookies and tokens as ctx.http meets them
        grid_secret = split_credentials(settings.grid_url or "")[1] or ""
        self._redact = Redactor([*job.secrets, grid_secret.partition(":")[2]])
        self.events = RunEvents(self.run_id, job.name, self._redact, clock)
        self.events.subscribe(store_listener(store))
        self._control = RunControl(
            on_progress,
            on_halt=lambda reason: self.events.emit("halt", reason),
            redact=self._redact,
        )
        self.progress = self._control.progress
        self._lock = self._control.lock
        self._managers: list[SessionManager] = []
        self._busy = 0  # workers with a page in hand
        self._in_hand: dict[str, str] = {}  # worker name -> its page (the live state)
        rng = random.Random(settings.seed)
        self._backoff = Backoff(base=settings.backoff_base, cap=settings.backoff_max, rng=rng)
        # start at the rate a previous run learned, unless settings name one
        self._saved_rate = self._learned_rate() if settings.rate_limit is None else None
        start_rate = settings.rate_limit if self._saved_rate is None else self._saved_rate
        # one pace for every runner of the job: turns, rate and cool-downs in the store
        self._pace = StorePace(store, job.name)
        self._limiter = RateLimiter(
            start_rate, min_rate=settings.rate_min, max_rate=settings.rate_max, shared=self._pace
        )
        self._relogins = CircuitBreaker(settings.relogin_max, settings.relogin_window)
        self._stall = StallWatch(settings.stall_timeout)
        self._recorder: FlightRecorder | None = None
        if settings.flight_recorder:
            self._recorder = FlightRecorder(store.flight_dir, self._redact)
        self._saved_endpoint_rates = self._learned_endpoint_rates()
        # ctx.http's endpoints: shared by the runners of a server store; a SQLite
        # store is one machine's, where a write per request would cost more than it saves
        self._endpoints = EndpointLimiters(
            min_rate=settings.http_rate_min,
            learned={k: v for k, v in self._saved_endpoint_rates.items() if v is not None},
            shared=(
                (lambda name: StorePace(store, job.name, f"{HTTP_PACE}{name}"))
                if store.serves_hosts
                else None
            ),
            on_shared_hold=self._endpoint_held if store.serves_hosts else None,
        )
        self.http_stats = HttpStats()
        self._stats_saved = -1  # the HttpStats version last saved
        self._pages_found = False  # Job.pages (a function) gave its keys this run
        self._watchdog = DeadlineWatch()
        self._pages = PageWorker(
            job,
            settings,
            store,
            self.run_id,
            self._control,
            self.events,
            policies=RecoveryPolicies(settings, rng),
            limiter=self._limiter,
            backoff=self._backoff,
            bursts=BurstDetector(settings.cascade_errors, settings.cascade_window),
            broken=BrokenJobWatch(settings.broken_job_errors),
            stall=self._stall,
            watchdog=self._watchdog,
            redact=self._redact,
            save_rates=self._save_rates,
            clock=clock,
        )
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
            BrowserNotFound: the backend can't start a browser, e.g. Chromium or
                chromedriver is missing (nothing is written).
        """
        self._backend.preflight(self.settings)
        with redacting_logs(self._redact):
            return self._run()

    def _run(self) -> RunResult:
        store, job, emit = self.store, self.job, self.events.emit
        host = self.settings.host_id
        reap_dead_runs(
            store,
            stale_after=self.settings.lease_seconds,
            now=store.now(),
            host=host,
            grid_url=self.settings.grid_url,
        )
        self._backend.reap(store, self.settings)
        store.reclaim_expired_leases(job.name)
        added = 0 if job.discovers_pages else store.seed_pages(job.name, job.page_keys)
        if self.settings.rate_limit is not None or not store.running_runs():
            # the first runner (or one told a rate) sets the pace; later ones join it
            rate = self._limiter.rate
            self._pace.set(interval=1.0 / rate if rate else 0.0)
        me = psutil.Process()
        store.begin_run(self.run_id, job.name, host, me.pid, me.create_time())
        counts = store.page_counts(job.name)
        self.progress.total, self.progress.done = counts["total"], counts["done"]
        self.progress.failed = counts["failed"]
        emit(
            "resume" if counts["done"] else "run_start",
            f"{counts['done']}/{counts['total']} pages done, {added} new",
            data={"done": counts["done"], "total": counts["total"], "added": added},
        )
        if self._saved_rate is not None:
            emit("rate_restored", f"starting at the learned {self._saved_rate:.2f} pages/s")
        log.info("run %s: %d/%d pages done at start", self.run_id, counts["done"], counts["total"])
        self._control.report()

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
            last_beat = last_live = time.monotonic()
            self._save_live()
            while any(w.is_alive() for w in workers):
                for worker in workers:
                    worker.join(timeout=0.5)
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    store.heartbeat(self.run_id, self.settings.lease_seconds)
                    self._save_http_stats()
                    last_beat = time.monotonic()
                if time.monotonic() - last_live > LIVE_SECONDS:
                    self._save_live()
                    last_live = time.monotonic()
                self._check_stall()
        finally:
            self._watchdog.close()
            if self.monitor is not None:
                self.monitor.close()
            restore()
        return self._finish()

    def _save_live(self) -> None:
        """What every worker is doing now, for the dashboard (``runner/_live.py``)."""
        with self._lock:
            managers, in_hand = list(self._managers), dict(self._in_hand)
        state = live_state(
            run_id=self.run_id,
            host=self.settings.host_id,
            now=self._clock(),
            managers=managers,
            in_hand=in_hand,
            limiter=self._limiter,
            hold_left=self._pace.hold_left(),
            endpoints=self._endpoints,
        )
        self.store.set_state(self.job.name, LIVE_STATE_PREFIX + self.run_id, state)

    def _finish(self) -> RunResult:
        self._save_http_stats()
        self._save_live()
        counts = self.store.page_counts(self.job.name)
        unfound = self.job.discovers_pages and not self._pages_found
        if self._control.halt_reason:
            status, code, reason = "halted", 1, self._control.halt_reason
        elif self._control.stop.is_set() and (counts["pending"] + counts["leased"] or unfound):
            status, code, reason = "interrupted", 130, "stopped by signal"
        elif counts["failed"]:
            status, code, reason = "failed", 1, f"{counts['failed']} pages failed"
        else:
            status, code, reason = "finished", 0, "every page done"
        self.store.end_run(self.run_id, status, code)
        self._backend.reap(self.store, self.settings)  # sessions whose close was lost, ours too
        self.events.emit("run_end", f"{status}: {reason}", data=counts)
        log.info("run %s %s: %s", self.run_id, status, reason)
        return RunResult(
            self.run_id, status, code, reason, self.progress, counts, broken=self._control.broken
        )

    # ---- the site's rate ---------------------------------------------------

    def _learned_rate(self) -> float | None:
        """The rate a previous run of the job learned (None: nothing, or "unlimited")."""
        saved = self.store.get_state(self.job.name, RATE_STATE_KEY)
        try:
            rate = float(saved or "")
        except ValueError:
            return None
        return rate if 0 < rate < float("inf") else None

    def _save_rates(self) -> None:
        """Save the page rate and the endpoints' rates that changed since last saved."""
        rate = self._limiter.rate
        if rate != self._saved_rate:
            self._saved_rate = rate
            value = "unlimited" if rate is None else repr(rate)
            self.store.set_state(self.job.name, RATE_STATE_KEY, value)
        self._save_endpoint_rates()

    def _endpoint_held(
        self, endpoint: str, seconds: float, in_flight: int, turns: list[float]
    ) -> None:
        """A ctx.http endpoint met a cool-down another runner began: the turns it
        had taken just before are on the record (the verdict allows for them)."""
        self.events.emit(
            "hold_seen",
            f"{endpoint}: held {seconds:.1f}s by another runner's cool-down",
            data={
                "endpoint": endpoint,
                "seconds": round(seconds, 3),
                "in_flight": in_flight,
                "turns_ago": turns,
            },
        )

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
        """The local process groups of every worker's browser (a backend whose browsers
        are not local processes has none, and the monitor then samples no browser)."""
        with self._lock:
            managers = list(self._managers)
        return [pgid for m in managers for pgid in m.session.process_groups(spare)]

    def _store_sample(self, sample: ResourceSample) -> None:
        self.store.add_sample(self.run_id, sample.ts, sample.pages, sample.to_dict())

    def _on_alert(self, alert: Alert) -> None:
        """Act on the monitor's alerts: restart a fat browser, pause while memory is short."""
        emit = self.events.emit
        emit(
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
                self._control.memory_ok.clear()
                emit("paused", f"no new pages while {alert.describe()}", category="memory_pressure")
            else:
                self._control.memory_ok.set()
                emit("resumed", alert.describe(), category="memory_pressure")

    def _check_stall(self) -> None:
        """No page completed for ``stall_timeout``: restart the browsers, then halt."""
        with self._lock:
            idle = self._busy == 0
        if idle:  # no page in hand: waiting out retry times, or is the rest another run's?
            counts = self.store.page_counts(self.job.name)
            idle = counts["pending"] == 0 and counts["leased"] > 0
        if idle or self._limiter.cooldown_left() > 0 or not self._control.may_start_pages():
            self._stall.progressed()  # idle on purpose, not stalled
            return
        verdict = self._stall.check()
        timeout = self.settings.stall_timeout
        if verdict == "restart":
            self.events.emit(
                "stall", f"no page completed in {timeout:.0f}s; restarting the browsers"
            )
            with self._lock:
                for manager in self._managers:
                    manager.restart_wanted = f"stall: no page completed in {timeout:.0f}s"
        elif verdict == "halt":
            self._control.halt(
                f"no page completed in {timeout:.0f}s, even after restarting the browsers"
            )

    def request_stop(self, hard: bool = False) -> None:
        """Stop after the page in hand (``hard``: abandon it, killing the browsers)."""
        if hard:
            self._control.hard_stop.set()
            with self._lock:
                managers = list(self._managers)
            for manager in managers:
                manager.session.kill()
        self._control.stop.set()

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, _frame: FrameType | None) -> None:
            hard = self._control.stop.is_set()
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

    # ---- the workers ---------------------------------------------------

    def _manager(self, name: str) -> SessionManager:
        session = self._backend(
            self.settings, self.run_id, _StoreRegistry(self.store, self.run_id), name
        )

        def restarted() -> None:
            self._control.count(restarts=1)

        manager = SessionManager(
            session,
            self.job,
            self.settings,
            emit=self.events.emit,
            limiter=self._limiter,
            relogins=self._relogins,
            stop=self._control.stop,
            hard_stop=self._control.hard_stop,
            backoff=self._backoff,
            recorder=self._recorder,
            pages_left=self._control.pages_left,
            on_restart=restarted,
            store_clock=self._clock,
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
                emit=self.events.emit,
                recorder=self._recorder,
                abort=self._control.hard_stop,
                name=name,
                rng=random.Random(None if self.settings.seed is None else self.settings.seed + 1),
            )
        return manager

    def _close_manager(self, manager: SessionManager) -> None:
        if self.monitor is not None:
            self.monitor.close()  # the run's last sample, while every browser is still up
        if manager.http is not None:
            manager.http.close()
        manager.session.close()

    def _found_pages(self, manager: SessionManager) -> bool:
        """Seed the keys ``Job.pages`` (a function) gives; whether workers may start."""
        try:
            found = self._pages.find_pages(manager)
        finally:
            manager.release_thread()  # the pages go on the worker's thread from here
        if found is None:
            return False
        given, added = found
        with self._lock:
            self.progress.total = self.store.page_counts(self.job.name)["total"]
        self.events.emit(
            "pages_found",
            f"Job.pages gave {given} pages, {added} new",
            data={"pages": given, "added": added},
        )
        log.info("Job.pages gave %d pages, %d new", given, added)
        self._control.report()
        self._pages_found = True
        return True

    def _work(self, manager: SessionManager) -> None:
        name, control = manager.name, self._control
        claimed: deque[ClaimedPage] = deque()
        try:
            while not control.stop.is_set():
                if not control.may_start_pages():
                    control.stop.wait(IDLE_POLL_SECONDS)  # short of memory, or probing the site
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
                page = claimed.popleft()
                with self._lock:
                    self._busy += 1
                    self._in_hand[name] = page.key
                try:
                    self._pages.process(manager, page)
                finally:
                    with self._lock:
                        self._busy -= 1
                        self._in_hand.pop(name, None)
        except HaltRun as exc:
            control.halt(str(exc), broken=isinstance(exc, JobLooksBroken))
        except Exception:
            log.exception("%s: worker crashed", name)
            control.halt(f"worker {name} crashed")
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
        wait = IDLE_POLL_SECONDS if retry_at is None else retry_at - self._clock()
        self._control.stop.wait(min(max(wait, 0.0), 1.0) or 0.01)
        return True
