"""The loop: claim a page, make sure the browser is fit, run the handler, commit.

::

    store.claim() -> session ready? -> job.handler(ctx) -> store.complete(page, records)
                          ^                    |
                          |                  error
                          |                    v
                     restart / login  <-  classify(exc); retry later or fail

One worker = one browser session = one loop. Every piece of state that must
survive a crash lives in the store; the runner holds only counters for the
progress display.
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
from typing import Any

import psutil

from enduro.errors import EnduroError, PageTimeout
from enduro.job import Job, PageContext
from enduro.monitor import Alert, Monitor, ResourceSample, default_rules
from enduro.recovery import Backoff, classify
from enduro.session import BrowserSession, find_browser, reap_dead_runs
from enduro.settings import Settings
from enduro.store import ClaimedPage, Store, prepare_records

__all__ = ["Progress", "RunResult", "Runner"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
# Pages a worker leases at once (one transaction instead of four).
CLAIM_BATCH = 4
IDLE_POLL_SECONDS = 0.25
# A planned restart launches the next browser this many seconds ahead, and
# waits for it past the restart's due time by at most a tenth of the interval.
SPARE_LEAD_SECONDS = 3.0
SPARE_LATE_DIVISOR = 10  # at most every/10 pages late


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


class _Halt(EnduroError):
    """Going on would be wrong (the browser won't start); the run stops."""


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


class _Watchdog:
    """One thread per run that cuts short any page past its deadline.

    Arming costs a page nothing but a lock: the thread sleeps until the
    earliest deadline it knows and, on waking, looks at what is armed now, so
    it does not wake for every page (a timer thread per page cost 4% of the
    throughput).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, Callable[[], None]]] = {}
        self._next_token = 0
        self._idle = True
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="enduro-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def arm(self, seconds: float, on_expire: Callable[[], None]) -> int:
        """Call ``on_expire`` (on the watchdog thread) in ``seconds`` unless disarmed."""
        with self._cond:
            self._next_token += 1
            self._armed[self._next_token] = (time.monotonic() + seconds, on_expire)
            if self._idle:
                self._cond.notify()
            return self._next_token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.pop(token, None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                now = time.monotonic()
                due = [t for t, (at, _) in self._armed.items() if at <= now]
                expired = [self._armed.pop(t)[1] for t in due]
                if not expired:
                    self._idle = not self._armed
                    wait = None if self._idle else min(at for at, _ in self._armed.values()) - now
                    self._cond.wait(wait)
                    continue
            for on_expire in expired:
                on_expire()


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
        self._sessions: list[BrowserSession] = []
        self._backoff = Backoff(
            base=settings.backoff_base, cap=settings.backoff_max, rng=random.Random(settings.seed)
        )
        self.progress = Progress()
        self._watchdog = _Watchdog()
        self._memory_ok = threading.Event()
        self._memory_ok.set()
        self._pss_restart: set[str] = set()  # sessions the monitor wants restarted
        self.monitor: Monitor | None = None
        if settings.monitor_interval > 0:
            self.monitor = Monitor(
                interval=settings.monitor_interval,
                browser_groups=self._browser_groups,
                spare_groups=lambda: self._browser_groups(spare=True),
                pages=lambda: self.progress.done_this_run,
                browser_starts=lambda: sum(s.starts for s in self._sessions),
                disk_path=store.path.parent,
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
        store, job = self.store, self.job
        reap_dead_runs(store, stale_after=self.settings.lease_seconds, now=time.time())
        store.reclaim_expired_leases(job.name)
        added = store.seed_pages(job.name, job.page_keys)
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
        log.info("run %s: %d/%d pages done at start", self.run_id, counts["done"], counts["total"])
        self._on_progress(self.progress)

        restore = self._install_signal_handlers()
        self._watchdog.start()
        if self.monitor is not None:
            self.monitor.start()
        try:
            workers = [
                threading.Thread(target=self._work, args=(f"w{i}",), name=f"enduro-w{i}")
                for i in range(self.settings.workers)
            ]
            for worker in workers:
                worker.start()
            last_beat = time.monotonic()
            while any(w.is_alive() for w in workers):
                for worker in workers:
                    worker.join(timeout=0.5)
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    store.heartbeat(self.run_id, self.settings.lease_seconds)
                    last_beat = time.monotonic()
        finally:
            self._watchdog.close()
            if self.monitor is not None:
                self.monitor.close()
            restore()
        return self._finish()

    def _finish(self) -> RunResult:
        counts = self.store.page_counts(self.job.name)
        if self._halt_reason:
            status, code, reason = "halted", 1, self._halt_reason
        elif self._stop.is_set() and counts["pending"] + counts["leased"]:
            status, code, reason = "interrupted", 130, "stopped by signal"
        elif counts["failed"]:
            status, code, reason = "failed", 1, f"{counts['failed']} pages failed"
        else:
            status, code, reason = "finished", 0, "every page done"
        self.store.end_run(self.run_id, status, code)
        self._event("run_end", f"{status}: {reason}", data=counts)
        log.info("run %s %s: %s", self.run_id, status, reason)
        return RunResult(self.run_id, status, code, reason, self.progress, counts)

    def _event(self, kind: str, message: str = "", **details: Any) -> None:
        """Record an event of this run and job in the store."""
        self.store.add_event(kind, message, run_id=self.run_id, job=self.job.name, **details)

    # ---- what the monitor sees -------------------------------------------

    def _browser_groups(self, spare: bool = False) -> list[int]:
        with self._lock:
            sessions = list(self._sessions)
        return [pgid for session in sessions for pgid in session.process_groups(spare)]

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
            with self._lock:
                self._pss_restart.update(s.name for s in self._sessions)
        elif alert.metric == "mem_percent":
            if alert.state == "open":
                self._memory_ok.clear()
                self._event("paused", f"no new pages while {alert.describe()}")
            else:
                self._memory_ok.set()
                self._event("resumed", alert.describe())

    def request_stop(self, hard: bool = False) -> None:
        """Stop after the page in hand (``hard``: abandon it, killing the browsers)."""
        if hard:
            self._hard_stop.set()
            with self._lock:
                sessions = list(self._sessions)
            for session in sessions:
                session.kill()
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

    def _work(self, name: str) -> None:
        session = BrowserSession(
            self.settings, self.run_id, _StoreRegistry(self.store, self.run_id), name
        )
        with self._lock:
            self._sessions.append(session)
        claimed: deque[ClaimedPage] = deque()
        try:
            while not self._stop.is_set():
                if not self._memory_ok.is_set():
                    self._stop.wait(IDLE_POLL_SECONDS)  # the machine is short of memory
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
                self._process(session, claimed.popleft())
        except _Halt as exc:
            self._halt_reason = str(exc)
            self._stop.set()
        except Exception:
            log.exception("%s: worker crashed", name)
            self._halt_reason = f"worker {name} crashed"
            self._stop.set()
        finally:
            for page in claimed:
                self.store.release(page, self.run_id)
            session.close()

    def _wait_for_work(self) -> bool:
        """Sleep until a page may be ready; False when nothing is left to do."""
        counts = self.store.page_counts(self.job.name)
        if counts["pending"] == 0 and counts["leased"] == 0:
            return False
        retry_at = self.store.next_retry_at(self.job.name)
        wait = IDLE_POLL_SECONDS if retry_at is None else retry_at - time.time()
        self._stop.wait(min(max(wait, 0.0), 1.0) or 0.01)
        return True

    def _process(self, session: BrowserSession, page: ClaimedPage) -> None:
        attempt = page.attempts + 1
        try:
            self._ensure_browser(session, page, attempt)
            records = self._call_handler(session, page, attempt)
            rows = prepare_records(page, records, self.job.record_key)
            session.pages_since_start += 1
            if self.store.complete_rows(page, self.run_id, rows):
                with self._lock:
                    self.progress.done += 1
                    self.progress.done_this_run += 1
            else:
                log.warning("page %s: lease lost; its result was dropped", page.key)
        except _Halt:
            self.store.release(page, self.run_id)
            raise
        except Exception as exc:
            if self._hard_stop.is_set():
                self.store.release(page, self.run_id)
                return
            self._page_failed(session, page, attempt, exc)
        self._on_progress(self.progress)

    def _page_failed(
        self, session: BrowserSession, page: ClaimedPage, attempt: int, exc: Exception
    ) -> None:
        found = classify(exc)
        final = attempt >= self.settings.max_attempts
        retry_at = None if final else time.time() + self._backoff.delay(attempt)
        self.store.fail_attempt(page, self.run_id, found.message, retry_at)
        self._event(
            "error",
            found.message,
            category=found.category,
            page_key=page.key,
            data={"attempt": attempt, "final": final},
        )
        log.info("page %s attempt %d: %s [%s]", page.key, attempt, found.message, found.category)
        with self._lock:
            self.progress.errors += 1
            if final:
                self.progress.failed += 1
        if final:
            self._event("page_failed", found.message, category=found.category, page_key=page.key)
        if found.category == "auth_lost":
            session.forget_cookies()
            session.needs_login = True
        if not session.alive():
            self._restart(session, f"after {found.category}")

    # ---- the browser -----------------------------------------------------

    def _ensure_browser(self, session: BrowserSession, page: ClaimedPage, attempt: int) -> None:
        if session.starts == 0 or not session.running:
            self._start(session)
        elif session.name in self._pss_restart:
            with self._lock:
                self._pss_restart.discard(session.name)
            limit = self.settings.alert_browser_pss_mb
            self._restart(session, f"browser PSS over {limit:g} MB", planned=True)
        elif due := self._restart_due(session):
            # Swap when the spare is up: a few pages late beats a page waiting for a launch.
            every = self.settings.restart_every_pages
            late = session.pages_since_start >= every + max(1, every // SPARE_LATE_DIVISOR)
            if not session.spare_launching or late:
                self._restart(session, due, planned=True)
        elif self._seconds_to_restart(session) <= SPARE_LEAD_SECONDS and self._outlasts(session):
            session.prepare_spare()
        if session.needs_login and self.job.login is not None:
            ctx = PageContext(key=page.key, driver=session.driver, attempt=attempt, job=self.job)
            self.job.login(ctx)
            session.needs_login = False
            session.save_cookies()
            self._event("login", "logged in")

    def _restart_due(self, session: BrowserSession) -> str:
        """Why the browser should be replaced now ("" if it should not)."""
        every, max_age = self.settings.restart_every_pages, self.settings.restart_max_age
        if every and session.pages_since_start >= every:
            return f"every {every} pages"
        if max_age and session.age >= max_age:
            return f"older than {max_age:.0f}s"
        return ""

    def _outlasts(self, session: BrowserSession) -> bool:
        """Whether pages remain beyond this browser's planned end (a spare is worth it)."""
        every = self.settings.restart_every_pages
        with self._lock:
            remaining = self.progress.total - self.progress.done - self.progress.failed
        return not every or remaining > every - session.pages_since_start

    def _seconds_to_restart(self, session: BrowserSession) -> float:
        """Estimated seconds until a planned restart (inf if none is planned)."""
        every, max_age = self.settings.restart_every_pages, self.settings.restart_max_age
        left = float("inf")
        if max_age:
            left = max_age - session.age
        if every and session.pages_since_start:
            per_page = session.age / session.pages_since_start
            left = min(left, (every - session.pages_since_start) * per_page)
        return left

    def _start(self, session: BrowserSession) -> None:
        failures = 0
        while True:
            try:
                session.start()
                break
            except Exception as exc:
                failures += 1
                found = classify(exc)
                self._event("browser_start_failed", found.message, category=found.category)
                if failures >= self.settings.max_restarts:
                    raise _Halt(
                        f"browser failed to start {failures} times; last: {found.message}"
                    ) from exc
                if self._stop.wait(self._backoff.delay(failures)):
                    raise _Halt("stopped while the browser would not start") from exc
        session.needs_login = not session.has_cookies
        self._event("browser_start", f"{session.name} started")

    def _restart(self, session: BrowserSession, reason: str, planned: bool = False) -> None:
        """Replace the browser; a planned restart retires the old one in the background."""
        if self._hard_stop.is_set():
            return
        session.save_cookies_if_alive()
        session.stop(background=planned)
        with self._lock:
            self.progress.restarts += 1
        self._event("browser_restart", reason, data={"reason": reason})
        log.info("%s: restarting browser (%s)", session.name, reason)
        if not self._stop.is_set():
            self._start(session)

    def _call_handler(self, session: BrowserSession, page: ClaimedPage, attempt: int) -> Any:
        """Run the handler under the page deadline; past it, the browser is killed."""
        expired = threading.Event()

        def on_deadline() -> None:
            expired.set()
            log.warning(
                "page %s: past its %ss deadline; killing the browser",
                page.key,
                self.settings.page_timeout,
            )
            session.kill()

        ctx = PageContext(key=page.key, driver=session.driver, attempt=attempt, job=self.job)
        token = self._watchdog.arm(self.settings.page_timeout, on_deadline)
        try:
            records = self.job.handler(ctx)
        except Exception as exc:
            if expired.is_set():
                raise PageTimeout(f"page {page.key} overran {self.settings.page_timeout}s") from exc
            raise
        finally:
            self._watchdog.disarm(token)
        if expired.is_set():
            raise PageTimeout(f"page {page.key} overran {self.settings.page_timeout}s")
        return records
