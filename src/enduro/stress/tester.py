"""The production stress tester: the real runner, real faults, ground truth, a verdict.

It serves the built-in site (with the scenario's server-side faults) in this
process, and runs ``enduro run`` — the very command a user runs — as a child
process against it. While the run goes on it watches the store and delivers
each scheduled fault when its page count is reached, for real: the browser
or chromedriver SIGKILLed (pids from the run's PID registry; with ``--grid``,
from the Grid's sessions, when its node runs on this host), the tab crashed,
cookies wiped or the page taken offline through the browser's own DevTools
port, memory taken by a sidecar process, the runner itself SIGKILLed and
started again (the resume path). Every delivery is recorded with an id and a
time, and when the run ends everything the tester saw is written to the
report directory as the run record (``run.json``, :mod:`enduro.stress.record`),
which :func:`enduro.stress.analysis.analyse` judges: the store's records
against the site's ground truth, the results against the success criteria.

With ``config.hybrid`` set it runs the hybrid reference job instead (the
browser logs in, ``ctx.http`` walks the site's JSON API), the site's faults
hitting the API, and checks its records against the hybrid ground truth.

With ``config.job`` set it runs the user's own job instead, against the
user's own site (nothing is served): ``enduro run`` on a small generated
file that takes the job's first ``config.pages`` pages, the browser, machine
and runner faults only, and integrity checked for completeness and
duplicates, as there is no ground truth.

With ``config.runners`` above 1, or a ``database_restart`` among the faults
(:attr:`StressTestConfig.shared_store`), the store is a throwaway PostgreSQL
server the tester starts on loopback (:mod:`enduro.stress._postgres`): that
many ``enduro run`` processes share its pages, each with its own host id
(``stress-1``...), a runner crash SIGKILLs the one its injection names and
starts it again, and a database restart stops the server (``pg_ctl stop -m
fast``), holds it down and starts it. When the run ends every row is copied
into the report directory's SQLite store (:func:`enduro.store.copy_store`),
so the run is judged, and can be judged again, from its directory alone.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import psutil

from enduro.job import load_job
from enduro.session import PlaywrightSession, shown_url
from enduro.settings import Settings
from enduro.store import Store
from enduro.stress._delivery import FaultDelivery, stop_process
from enduro.stress._postgres import find_bindir
from enduro.stress._runstore import RunStore
from enduro.stress.injector import FailureInjector, FaultSchedule, Injection
from enduro.stress.record import Delivery, RunRecord, judged_requests
from enduro.stress.scenario import StressTestConfig
from enduro.stress.site import (
    REQUEST_LOG,
    Fault,
    FaultPlan,
    RequestLogEntry,
    SiteConfig,
    SiteServer,
)

__all__ = ["ProductionStressTester", "RunnerCommand", "preflight"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
SPACING_SECONDS = 1.0
DELIVERY_TRIES = 3
"""Tries at a fault whose target (a process, the DevTools page) vanished as it was hit."""
JOB_NAME = "matches"
JOB_FILE = "stress_job.py"
"""The file, in the report directory, that gives ``enduro run`` the user's job's first pages."""

RunnerCommand = Callable[[Path | str], list[str]]
"""Builds the command that runs the job against a store, a path or a PostgreSQL URL
(tests swap in broken runners)."""


def enduro_run(job: str, store: Path | str) -> list[str]:
    """``enduro run JOB --store STORE``, with this Python's enduro."""
    return [str(Path(sys.executable).parent / "enduro"), "run", job, "--store", str(store)]


def default_runner_command(store: Path | str) -> list[str]:
    """``enduro run`` with the reference job: the code path users run."""
    return enduro_run("enduro.stress.reference:job", store)


def hybrid_runner_command(store: Path | str) -> list[str]:
    """``enduro run`` with the hybrid reference job."""
    return enduro_run("enduro.stress.reference_hybrid:job", store)


def job_runner_command(directory: Path) -> RunnerCommand:
    """``enduro run`` with the user's job, through the file the tester writes in ``directory``."""
    return lambda store: enduro_run(f"{directory.resolve() / JOB_FILE}:job", store)


def preflight(config: StressTestConfig) -> None:
    """Check that this machine has what the scenario needs, before anything is written:
    PostgreSQL's server programs for a shared store, Playwright for its backend.

    Raises:
        UsageError: something is missing (one line: what, and how to get it).
    """
    if config.shared_store:
        find_bindir()
    if config.backend == "playwright":
        PlaywrightSession.preflight(Settings.model_validate({}))


def new_run_id() -> str:
    """A fresh id for a run record: 12 hex digits."""
    return uuid.uuid4().hex[:12]


class ProductionStressTester:
    """Runs one scenario and records what happened in ``run.json`` (judging is separate).

    Args:
        config: the scenario.
        directory: where the store, the schedule, the run record and the results go.
        runner_command: how to start the runner (default: ``enduro run`` with
            the reference job, or with the user's job if ``config.job`` is set).
        settings_env: extra ``ENDURO_*`` settings for the runner.
        clock: epoch seconds, for the times recorded (the built-in site stamps its
            faults with the same wall clock).
        monotonic: seconds, for the time budget and the spacing of faults.
        sleep: waits between two looks at the store.
        new_id: the run record's id.
        grid: a Selenium Grid the runner takes its browsers from (``--grid``); the
            browser faults reach them when the Grid's node runs on this host.

    Raises:
        JobLoadError: ``config.job`` cannot be loaded.
    """

    def __init__(
        self,
        config: StressTestConfig,
        directory: Path,
        *,
        runner_command: RunnerCommand | None = None,
        settings_env: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        new_id: Callable[[], str] = new_run_id,
        grid: str | None = None,
    ) -> None:
        self.config = config
        self._grid = grid
        self.directory = directory
        default: RunnerCommand
        if config.job is None:
            job_name, record_key = JOB_NAME, "match_id"
            keys = [str(page) for page in range(1, config.pages + 1)]
            default = hybrid_runner_command if config.hybrid else default_runner_command
        else:
            job = load_job(config.job)
            job_name, record_key = job.name, job.record_key
            keys = job.page_keys[: config.pages]
            default = job_runner_command(directory)
        self._runner_command = runner_command or default
        self._settings_env = dict(settings_env or {})
        self._env_cache: dict[str, str] = {}
        self._clock, self._monotonic, self._sleep = clock, monotonic, sleep
        self._injector = FailureInjector(config)
        self.schedule: FaultSchedule = self._injector.schedule()
        self.record = RunRecord(
            run_id=new_id(),
            config=config,
            schedule=json.loads(self.schedule.to_json()),
            job_name=job_name,
            record_key=record_key,
            keys=keys,
            site_served=config.job is None,
            grid=shown_url(grid) if grid else "",
        ).at(directory)
        self._store = RunStore(self.record.store_path, shared=config.shared_store)
        self._faults = FaultDelivery(
            self._store.look,
            grid=grid,
            database=lambda: self._store.database,
            memory_line=lambda: float(self._env().get("ENDURO_ALERT_MEMORY_PERCENT", "90")),
            memory_hold=config.memory_hold,
            database_hold=config.database_hold,
            sleep=sleep,
        )
        self.site_plan = FaultPlan()  # the built-in site's faults (none for a user's job)
        self.site_url = ""
        self._runners: dict[int, subprocess.Popen[bytes]] = {}  # slot -> its runner
        self._exits_seen: set[int] = set()  # runner pids whose exit is in the record
        self._written: set[tuple[str, float | None]] = set()  # injection events in the store

    @property
    def store_path(self) -> Path:
        """The run's store, in the report directory."""
        return self.record.store_path

    @property
    def job_name(self) -> str:
        """The name the run's job has in the store."""
        return self.record.job_name

    def open_reader(self) -> Store:
        """The run's store, read only, while the run goes on (the live dashboard).

        Raises:
            StoreError: the run has no store yet.
        """
        return self._store.reader()

    @property
    def keys(self) -> list[str]:
        """The run's page keys."""
        return self.record.keys

    # ---- the run -------------------------------------------------------

    def run(self) -> RunRecord:
        """Run the runner until every page is done (or the budget ends), serving the
        built-in site unless the scenario is the user's job; then write ``run.json``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "schedule.json").write_text(self.schedule.to_json())
        record = self.record
        record.deliveries = [Delivery(i) for i in self.schedule.injections]
        if self.config.job is not None:
            (self.directory / JOB_FILE).write_text(_job_file(self.config.job, len(self.keys)))
            try:
                with self._store.serving():
                    self._timed(self._drive)
            finally:
                record.write()
            return record
        plan = self._injector.site_plan()
        site_config = SiteConfig(
            seed=self.config.seed,
            pages=self.config.pages,
            rows=self.config.rows,
            fault_plan=plan,
            pace=self.config.pace or 0.0,
        )
        self.site_plan = plan
        with SiteServer(site_config) as site:
            self.site_url = site.url
            try:
                with self._store.serving():
                    self._timed(self._drive)
            finally:
                served: list[RequestLogEntry] = site.app[REQUEST_LOG]
                log = list(served)
                record.site_faults = plan.delivered
                record.requests = judged_requests(log, self.config.retry_after)
                record.requests_seen = len(log)
                record.write()
        return record

    def _timed(self, drive: Callable[[float], None]) -> None:
        record = self.record
        record.started_at = self._clock()
        try:
            drive(self._monotonic() + self.config.duration)
        finally:
            self._faults.close()
            record.ended_at = self._clock()
            for delivery in record.deliveries:
                if not delivery.delivered and not delivery.detail:
                    delivery.detail = "not delivered: the run ended before it was due"

    def record_injections(self) -> None:
        """Write every fault delivered (the tester's and the site's) into the store
        as an ``injection`` event with its id and time, beside the run's own events:
        those not written while the run went on (the dashboard shows them live)."""
        if not self.store_path.exists():
            return
        with Store.open(self.store_path, create=False) as store:
            self._write_injections(store, self.record.site_faults)

    def _log_injections(self) -> None:
        """While the run goes on: the faults delivered since the last look, into the
        run's store (a fault the store can't take now goes in at the end)."""
        site_faults = self.site_plan.delivered
        fresh = any(
            d.delivered and (d.injection.id, d.at) not in self._written
            for d in self.record.deliveries
        ) or any((f.id, f.at) not in self._written for f in site_faults)
        if not fresh or not self._store.exists():
            return
        try:
            with self._store.look() as store:
                self._write_injections(store, site_faults)
        except Exception as exc:
            log.debug("injections not written yet: %s", exc)

    def _write_injections(self, store: Store, site_faults: Sequence[Fault]) -> None:
        for d in self.record.deliveries:
            i = d.injection
            if d.delivered and (i.id, d.at) not in self._written:
                store.add_event(
                    "injection",
                    f"{i.id} {i.type}: {d.detail}",
                    job=self.job_name,
                    data={"id": i.id, "type": i.type, "layer": i.layer},
                    ts=d.at,
                )
                self._written.add((i.id, d.at))
        for f in list(site_faults):
            if (f.id, f.at) not in self._written:
                store.add_event(
                    "injection",
                    f"{f.id} {f.kind} on {f.path}",
                    job=self.job_name,
                    data={"id": f.id, "kind": f.kind, "layer": "site"},
                    ts=f.at,
                )
                self._written.add((f.id, f.at))

    def _env(self) -> dict[str, str]:
        """The runner's environment: the scenario's settings (the user's own
        ``ENDURO_*`` settings are kept for their job, dropped for the reference job)."""
        if self._env_cache:
            return self._env_cache
        mine = self.config.job is not None
        env = {k: v for k, v in os.environ.items() if mine or not k.startswith("ENDURO_")}
        env.update({"ENDURO_WORKERS": str(self.config.workers), "ENDURO_MONITOR_INTERVAL": "2"})
        if not mine:
            env.update(
                {
                    "ENDURO_SITE_URL": self.site_url,
                    "ENDURO_SITE_PAGES": str(self.config.pages),
                    "ENDURO_HYBRID_SHAPE": "full",
                    "ENDURO_SEED": str(self.config.seed),
                    "ENDURO_PAGE_TIMEOUT": "20",
                    "ENDURO_BACKOFF_BASE": "0.5",
                    "ENDURO_BACKOFF_MAX": "8",
                    "ENDURO_COOLDOWN_DEFAULT": "2",
                    "ENDURO_LEASE_SECONDS": "30",
                }
            )
        if "memory_pressure" in self.config.faults:
            # the sidecar must be able to push memory past the line the runner acts on
            used = psutil.virtual_memory().percent
            env["ENDURO_ALERT_MEMORY_PERCENT"] = f"{min(95.0, used + 4.0):.1f}"
        if self._grid is not None:
            env["ENDURO_GRID_URL"] = self._grid
        if self.config.backend is not None:
            env["ENDURO_BACKEND"] = self.config.backend  # the runner's, and the reference job's
        if self._store.database is not None:
            env["PGPASSWORD"] = self._store.database.password  # not in the URL: not in `ps`
        env.update(self._settings_env)
        self._env_cache = env
        return env

    def _drive(self, deadline: float) -> None:
        record = self.record
        env = self._env()
        pending = list(record.deliveries)
        last_at = -1  # pages done when the last fault went in
        last_time = 0.0
        limit = deadline  # a cycling scenario lets the pass under way at the deadline end
        pass_started = self._monotonic()
        while True:
            runners = self._runners
            for slot in range(self.config.runners):
                runners[slot] = self._start_runner(env, slot)
            while any(runner.poll() is None for runner in runners.values()):
                if self._monotonic() > limit:
                    record.stopped_early = "time budget spent"
                    self._stop_runners()
                    return
                done = self._done_pages()
                due = [d for d in pending if d.injection.after_pages <= done]
                # One fault at a time: the next waits for a page to complete (or a
                # second to pass) after the last one, and for the site's own faults
                # to be a second old, so two faults never hit one page together
                # (asked last, to leave the site the least time to serve one).
                spaced = done > last_at or self._monotonic() - last_time > SPACING_SECONDS
                if due and spaced and self._ready_for(due[0].injection) and self._site_quiet():
                    delivery = due[0]
                    pending.remove(delivery)
                    last_at, last_time = done, self._monotonic()
                    if delivery.injection.type == "runner_crash":
                        slot = self._deliver_runner_crash(delivery)
                        runners[slot] = self._start_runner(env, slot)  # the resume path
                        continue
                    self._deliver(delivery)
                    if not delivery.delivered and delivery.tries < DELIVERY_TRIES:
                        # its target went away under it (a restart, a page load):
                        # it goes in again once there is a live one
                        pending.insert(0, delivery)
                self._log_injections()
                if reason := self._stop_condition() or self._failed_runner():
                    record.stopped_early = reason
                    self._stop_runners()
                    return
                self._sleep(POLL_SECONDS)
            for slot in sorted(runners):
                self._exited(slot)
            if reason := self._failed_runner():
                record.stopped_early = reason
                return
            now = self._monotonic()
            if not self.config.cycle or now >= deadline:
                return
            # Another pass over the pages, with the schedule's faults again.
            longest = max(now - pass_started, limit - deadline)
            limit = deadline + max(60.0, 2 * longest)
            pass_started = now
            self._next_pass()
            # a fault the last pass ended too soon for goes in as this one starts
            fresh = self._pass_deliveries(record.passes + 1)
            record.deliveries += fresh
            pending += fresh
            last_at = -1

    def _exited(self, slot: int) -> int | None:
        """The exit code of the runner in ``slot`` once it has exited, recorded the
        first time it is seen (None: it still runs)."""
        runner = self._runners[slot]
        code = runner.poll()
        if code is not None and runner.pid not in self._exits_seen:
            self._exits_seen.add(runner.pid)
            self.record.runner_exits.append(code)
        return code

    def _failed_runner(self) -> str:
        """Why the run cannot go on: a runner exited with an error while pages remain."""
        failed = [code for slot in sorted(self._runners) if (code := self._exited(slot))]
        if failed and self._done_pages() < len(self.keys):
            return f"the runner exited with {failed[0]}"
        return ""

    def _stop_runners(self) -> None:
        for runner in self._runners.values():
            stop_process(runner)

    def _next_pass(self) -> None:
        """Keep this pass's completion times, then put every page back to pending."""
        with self._store.look() as store:
            done_at = store.done_at(self.job_name)
            self.record.done_times += [done_at[k] for k in self.keys if k in done_at]
            store.requeue(self.job_name, keys=self.keys)
        self.site_plan.rearm()  # the site's pinned faults come again too
        self.record.passes += 1

    def _pass_deliveries(self, number: int) -> list[Delivery]:
        """The schedule's faults for pass ``number`` (ids ``i0001.2``, ``i0001.3``...)."""
        return [Delivery(replace(i, id=f"{i.id}.{number}")) for i in self.schedule.injections]

    def _start_runner(self, env: dict[str, str], slot: int = 0) -> subprocess.Popen[bytes]:
        """Start the runner of ``slot``; with several, each is its own host (``stress-N``),
        and with a shared store each writes its flight records under the report directory."""
        self.record.runner_starts += 1
        log_path = self.directory / f"runner-{self.record.runner_starts}.log"
        if self.config.runners > 1:
            env = {**env, "ENDURO_HOST_ID": f"stress-{slot + 1}"}
        shared = self._store.database is not None
        with log_path.open("wb") as out:
            return subprocess.Popen(
                self._runner_command(self._store.target()),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.directory if shared else None,
            )

    # ---- what the store says ---------------------------------------------

    def _done_pages(self) -> int:
        if not self._store.exists():
            return 0
        try:
            with self._store.look() as store:
                return store.page_counts(self.job_name)["done"]
        except Exception:
            return 0

    def _stop_condition(self) -> str:
        """The stop condition that fired, if one did: host memory critically low,
        too many critical failures, or the error rate past its limit."""
        criteria = self.config.criteria
        if psutil.virtual_memory().percent >= criteria.stop_memory_percent:
            return f"host memory over {criteria.stop_memory_percent:g}%"
        try:
            with self._store.look() as store:
                events = store.event_counts(self.job_name)
                counts = store.page_counts(self.job_name)
        except Exception:
            return ""
        errors = events.get("error", 0)
        critical = counts["failed"] + events.get("halt", 0)
        if critical > criteria.stop_critical_failures:
            return (
                f"{critical} critical failures (pages given up, halts), "
                f"more than {criteria.stop_critical_failures}"
            )
        attempts = errors + counts["done"] + len(self.record.done_times)
        if attempts >= criteria.min_sample and errors / attempts > criteria.stop_error_rate:
            return f"error rate {errors / attempts:.0%} over {criteria.stop_error_rate:.0%}"
        return ""

    # ---- delivering faults --------------------------------------------------

    def _site_quiet(self) -> bool:
        """No server-side fault in the last second (its page may still be in flight)."""
        delivered = self.site_plan.delivered
        return not delivered or self._clock() - delivered[-1].at > SPACING_SECONDS

    def _ready_for(self, injection: Injection) -> bool:
        """A browser fault waits for a live browser (the last one may have just died);
        a database restart for every runner to have registered its run (one that
        opens the store while the server is down gives up, as on a wrong URL)."""
        if injection.type == "database_restart":
            return self._runners_registered()
        if injection.layer != "browser":
            return True
        target = self._faults.target()
        return target.ready() or bool(target.why)  # out of reach: tried, and reported

    def _runners_registered(self) -> bool:
        live = {runner.pid for runner in self._runners.values() if runner.poll() is None}
        try:
            with self._store.look() as store:
                registered = {run.pid for run in store.running_runs()}
        except Exception:
            return False
        return live <= registered

    def _deliver(self, delivery: Delivery) -> None:
        kind = delivery.injection.type
        delivery.tries += 1
        delivery.at = self._clock()
        try:
            delivery.detail = self._faults.act(kind, delivery.injection.params)
            delivery.delivered = True
        except Exception as exc:  # a fault that could not be delivered is reported, not hidden
            delivery.detail = f"not delivered: {type(exc).__name__}: {exc}"
        log.info("injection %s %s: %s", delivery.injection.id, kind, delivery.detail)

    def _deliver_runner_crash(self, delivery: Delivery) -> int:
        """SIGKILL the runner the injection names (the next one still running if
        that one has finished); returns its slot, for the tester to start again."""
        slots = sorted(self._runners)
        wanted = int(delivery.injection.params.get("runner", 0)) % len(slots)
        order = slots[wanted:] + slots[:wanted]
        slot = next((n for n in order if self._runners[n].poll() is None), wanted)
        runner = self._runners[slot]
        delivery.at = self._clock()
        if self._exited(slot) is None:
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait()
            self._exits_seen.add(runner.pid)
            self.record.runner_exits.append(-9)
        delivery.delivered = True
        which = f"runner {slot + 1} of {len(slots)}, " if len(slots) > 1 else "runner "
        delivery.detail = f"SIGKILL {which}pid {runner.pid}; started again"
        return slot


def _job_file(ref: str, pages: int) -> str:
    """The little job file ``enduro run`` is given: the user's job, first ``pages`` pages."""
    target, colon, name = ref.partition(":")
    if target.endswith(".py") or "/" in target:
        ref = f"{Path(target).resolve()}{colon}{name}"
    return (
        f'"""Written by enduro stress: the first {pages} pages of {ref}."""\n\n'
        "import dataclasses\n\n"
        "from enduro.job import load_job\n\n"
        f"_job = load_job({ref!r})\n"
        f"job = dataclasses.replace(_job, pages=_job.page_keys[:{pages}])\n"
    )
