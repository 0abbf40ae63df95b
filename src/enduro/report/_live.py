"""Following a store while its job runs: what the dashboard shows and ``/metrics``
counts.

:class:`LiveView` reads only what is new at each look — the events and the
resource samples after the last ids it saw (``Store.events_after``,
``samples_after``), the page counts, and each run's live state (what its
workers are doing, ``enduro.runner.LIVE_STATE_PREFIX``) — and keeps the
series in memory. It opens the store read only: a reader never holds up the
runner's writes, and it survives the runner's restart (it only reads). It
waits for a store that does not exist yet (a stress run's, until its runner
makes it). See ARCHITECTURE.md, "The dashboard".
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enduro.errors import StoreError
from enduro.monitor import run_resources
from enduro.runner import LIVE_STATE_PREFIX
from enduro.store import RunRow, Store

__all__ = ["LATENCY_BUCKETS", "HostCounts", "LiveView"]

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
"""Upper bounds (seconds) of the page latency histogram."""

_BATCH = 5000  # events or samples read at once
_POINTS = 300  # at most this many points per chart series
_NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200)
_RATE_WINDOW = 60.0  # seconds over which "pages/s now" is measured
_LAST_ERRORS = 30
_MARKERS = 500
_HOLE_SECONDS = 60.0  # an id skipped this long ago is given up (a rolled-back insert)
_STALE_SECONDS = 15.0  # a run's live state older than this is not current
_LEAK_SECONDS = 10.0  # the leak estimate is fitted again at most this often
_COUNTED = frozenset({"page_done", "error", "browser_restart", "relogin"})
_MARKER_KINDS = {
    "browser_restart": "restart",
    "login": "login",
    "relogin": "re-login",
    "cooldown": "cool-down",
    "halt": "halt",
    "stall": "stall",
    "cascade": "probe",
    "run_start": "start",
    "resume": "resume",
    "run_end": "end",
    "injection": "fault",
}


@dataclass
class HostCounts:
    """What one runner host (``runs.host``) of a job did, from its events: the
    counters ``/metrics`` serves."""

    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    restarts: int = 0
    relogins: int = 0
    pages_done: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    browser_pss: int | None = None  # bytes, from the host's latest sample that saw a browser
    runner_rss: int | None = None


@dataclass
class _Job:
    """What the events of one job add up to."""

    done_by_second: collections.Counter[int] = field(default_factory=collections.Counter)
    errors_by_second: dict[int, collections.Counter[str]] = field(default_factory=dict)
    markers: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=_MARKERS)
    )
    last_errors: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=_LAST_ERRORS)
    )
    windows: list[dict[str, Any]] = field(default_factory=list)  # cool-downs told
    alerts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, HostCounts] = field(default_factory=dict)
    last_done_page: str | None = None
    changed: bool = True  # pages done since its records were last counted
    faults: int = 0  # injection events (a stress run's faults delivered)


@dataclass(frozen=True)
class _Point:
    """One sample's memory figures (MB; None: not measured)."""

    ts: float
    host: str
    browser_pss: float | None
    runner_rss: float | None


class _Follower:
    """Reads rows by increasing id, the ones committed late included: a database
    server may commit a lower id after a higher one (two runners' transactions),
    so ids skipped are asked for again until they appear or are given up."""

    def __init__(self, fetch: Callable[[int, int], list[dict[str, Any]]]) -> None:
        self._fetch = fetch
        self._last = 0
        self._holes: dict[int, float] = {}  # id -> when it was first missed

    def read(self, now: float) -> list[dict[str, Any]]:
        self._holes = {i: t for i, t in self._holes.items() if now - t < _HOLE_SECONDS}
        after = min(self._holes, default=self._last + 1) - 1
        found: list[dict[str, Any]] = []
        while True:
            rows = self._fetch(after, _BATCH)
            for row in rows:
                row_id = int(row["id"])
                if row_id > self._last:
                    self._holes.update((i, now) for i in range(self._last + 1, row_id))
                    self._last = row_id
                    found.append(row)
                elif self._holes.pop(row_id, None) is not None:
                    found.append(row)
            if len(rows) < _BATCH:
                return found
            after = int(rows[-1]["id"])


class LiveView:
    """The live state of a store's jobs, refreshed at most every ``min_interval``.

    Args:
        open_store: opens the store (read only); called again until it succeeds.
        job: the job to show (None: the job of the run that started last).
        clock: epoch seconds (the ages of windows and live states).
        min_interval: a look at the store is reused by every request within this.
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        *,
        job: str | None = None,
        clock: Callable[[], float] = time.time,
        min_interval: float = 0.5,
    ) -> None:
        self._open_store = open_store
        self._job_wanted = job
        self._clock = clock
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._waiting = "the store does not exist yet"
        self._looked_at = -math.inf
        self._jobs: dict[str, _Job] = {}
        self._runs: dict[str, RunRow] = {}
        self._events = _Follower(self._events_after)
        self._samples = _Follower(self._samples_after)
        self._memory: dict[str, list[_Point]] = {}  # job -> samples' memory figures
        self._leak: dict[str, str] = {}  # job -> the leak estimate of its latest run
        self._leak_at = -math.inf
        self._counts: dict[str, dict[str, Any]] = {}  # job -> pages, records
        self._live: dict[str, list[dict[str, Any]]] = {}  # job -> runs' live states
        self._records: dict[str, Any] = {}

    @classmethod
    def of(cls, target: str | Path, **kwargs: Any) -> LiveView:
        """A view of the store at ``target`` (a path or URL), opened read only."""
        return cls(lambda: Store.open(target, read_only=True), **kwargs)

    # ---- looking at the store ----------------------------------------------

    def refresh(self) -> None:
        """Read what is new, unless the last look was under ``min_interval`` ago."""
        with self._lock:
            if time.monotonic() - self._looked_at < self._min_interval:
                return
            self._looked_at = time.monotonic()
            store = self._ready_store()
            if store is None:
                return
            try:
                self._read(store)
            except StoreError as exc:
                self._waiting = f"the store can't be read: {exc}"
                log.warning("dashboard: %s", exc)

    def _ready_store(self) -> Store | None:
        if self._store is None:
            try:
                self._store = self._open_store()
            except StoreError as exc:
                self._waiting = str(exc).split("\n", 1)[0]
                return None
            self._waiting = ""
        return self._store

    def _events_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        assert self._store is not None
        return self._store.events_after(after, limit=limit)

    def _samples_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        assert self._store is not None
        return self._store.samples_after(after, limit=limit)

    def _read(self, store: Store) -> None:
        now = self._clock()
        self._runs = {run.run_id: run for run in store.runs()}
        for event in self._events.read(now):
            self._add_event(event)
        for sample in self._samples.read(now):
            self._add_sample(sample)
        for name in store.jobs():
            followed = self._jobs.setdefault(name, _Job())
            counts = self._counts.setdefault(name, {"pages": {}, "records": 0})
            counts["pages"] = store.page_counts(name)
            if followed.changed:  # records change only when pages are done
                followed.changed = False
                counts["records"] = store.record_count(name)
            self._live[name] = [
                json.loads(value)
                for key, value in store.states(name, LIVE_STATE_PREFIX).items()
                if key.removeprefix(LIVE_STATE_PREFIX) in self._runs
            ]
        job = self.job
        if job is not None and time.monotonic() - self._leak_at > _LEAK_SECONDS:
            self._leak_at = time.monotonic()
            latest = [r for r in self._runs.values() if r.job == job]
            if latest:
                run = max(latest, key=lambda r: r.started_at)
                self._leak[job] = run_resources(store.samples(run.run_id))["leak_text"]
        last = self._jobs[job].last_done_page if job is not None and job in self._jobs else None
        if job is not None and last is not None and last != self._records.get("records_page"):
            self._records = {
                "records_page": last,
                "records": store.page_records(job, last, limit=10),
            }

    def _host(self, run_id: str | None) -> str:
        run = self._runs.get(run_id or "")
        return run.host if run is not None else "unknown"

    def _add_event(self, event: dict[str, Any]) -> None:
        name = event.get("job")
        if not name:
            return
        job = self._jobs.setdefault(name, _Job())
        kind, ts = str(event["kind"]), float(event["ts"])
        if kind in _COUNTED:  # a host's counters, for the events that count (not a fault's)
            host = job.hosts.setdefault(self._host(event.get("run_id")), HostCounts())
        data = _data(event)
        second = int(ts)
        if kind == "page_done":
            job.done_by_second[second] += 1
            job.last_done_page = event.get("page_key")
            job.changed = True
            host.pages_done += 1
            took = data.get("took")
            if isinstance(took, int | float):
                host.latency[_bucket(float(took))] += 1
                host.latency_sum += float(took)
            return
        if kind == "error":
            category = str(event.get("category") or "unknown")
            job.errors_by_second.setdefault(second, collections.Counter())[category] += 1
            host.errors[category] += 1
            flight = data.get("flight") or {}
            job.last_errors.append(
                {
                    "ts": ts,
                    "category": category,
                    "page": event.get("page_key"),
                    "message": (str(event.get("message") or "").splitlines() or [""])[0][:500],
                    "host": self._host(event.get("run_id")),
                    "flight": {
                        part: Path(str(path)).name
                        for part, path in flight.items()
                        if part in ("screenshot", "html")
                    },
                }
            )
        elif kind == "browser_restart":
            host.restarts += 1
        elif kind == "relogin":
            host.relogins += 1
        elif kind == "cooldown":
            seconds = data.get("seconds")
            if isinstance(seconds, int | float) and seconds > 0:
                job.windows.append(
                    {"ts": ts, "seconds": float(seconds), "endpoint": data.get("endpoint")}
                )
                job.windows = job.windows[-200:]
        elif kind == "alert":
            key = (str(event.get("run_id")), str(event.get("category")))
            job.alerts[key] = {
                "ts": ts,
                "metric": event.get("category"),
                "message": event.get("message"),
                "state": data.get("state"),
                "run_id": event.get("run_id"),
            }
        elif kind == "injection":
            job.faults += 1
        if kind in _MARKER_KINDS:
            label = _MARKER_KINDS[kind]
            job.markers.append(
                {"ts": ts, "kind": label, "text": str(event.get("message") or "")[:200]}
            )

    def _add_sample(self, sample: dict[str, Any]) -> None:
        run = self._runs.get(str(sample.get("run_id")))
        if run is None:
            return
        pss = sample.get("browser_pss") if sample.get("browser_count") else None
        rss = sample.get("runner_rss")
        mb = 2**20
        self._memory.setdefault(run.job, []).append(
            _Point(
                float(sample["ts"]),
                run.host,
                None if pss is None else round(pss / mb, 1),
                None if rss is None else round(rss / mb, 1),
            )
        )
        host = self._jobs.setdefault(run.job, _Job()).hosts.setdefault(run.host, HostCounts())
        if pss is not None:
            host.browser_pss = int(pss)
        if rss is not None:
            host.runner_rss = int(rss)

    # ---- what is shown -----------------------------------------------------

    @property
    def job(self) -> str | None:
        """The job shown: the one asked for, or the job of the run that started last."""
        if self._job_wanted is not None:
            return self._job_wanted
        if self._runs:
            return max(self._runs.values(), key=lambda r: r.started_at).job
        return next(iter(self._jobs), None)

    def snapshot(self) -> dict[str, Any]:
        """Everything the dashboard's page shows, as JSON-ready values."""
        self.refresh()
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        now = self._clock()
        name = self.job
        base: dict[str, Any] = {
            "now": now,
            "waiting": self._waiting,
            "store": self._store.location if self._store is not None else "",
            "job": name,
            "jobs": sorted(self._jobs),
        }
        if name is None or name not in self._jobs:
            return base
        job = self._jobs[name]
        counts = self._counts.get(name, {"pages": {}, "records": 0})
        pages = counts["pages"]
        started = max((r.started_at for r in self._runs.values() if r.job == name), default=now)
        rate = _recent_rate(job.done_by_second, now, since_start=now - started)
        left = int(pages.get("pending", 0)) + int(pages.get("leased", 0))
        runs = [r for r in self._runs.values() if r.job == name]
        return {
            **base,
            "pages": pages,
            "records": counts["records"],
            "rate": round(rate, 3),
            "eta_seconds": round(left / rate) if rate > 0 and left else None,
            "progress": _progress_series(job, runs, now),
            "errors": _error_series(job, runs, now),
            "markers": list(job.markers)[-200:],
            "faults": job.faults,
            "memory": _memory_series(self._memory.get(name, [])),
            "leak": self._leak.get(name, ""),
            "windows": [
                {
                    "endpoint": w["endpoint"] or "pages",
                    "ends_in": round(w["ts"] + w["seconds"] - now, 1),
                }
                for w in job.windows
                if w["ts"] + w["seconds"] > now
            ],
            "alerts": [
                a
                for a in job.alerts.values()
                if a["state"] == "open" and self._running(str(a["run_id"]))
            ],
            "last_errors": list(reversed(job.last_errors)),
            "workers": self._workers(name, now),
            "runs": [
                {
                    "run_id": r.run_id,
                    "host": r.host,
                    "status": r.status,
                    "started_at": r.started_at,
                    "heartbeat_at": r.heartbeat_at,
                }
                for r in sorted(runs, key=lambda r: r.started_at)[-10:]
            ],
            "records_page": self._records.get("records_page"),
            "latest_records": self._records.get("records", []),
        }

    def _running(self, run_id: str) -> bool:
        run = self._runs.get(run_id)
        return run is not None and run.status == "running"

    def _workers(self, name: str, now: float) -> list[dict[str, Any]]:
        rows = []
        for state in self._live.get(name, []):
            run = self._runs.get(str(state.get("run_id")))
            if run is None or run.status != "running":
                continue
            stale = now - float(state.get("ts", 0)) > _STALE_SECONDS
            for worker in state.get("workers", []):
                rows.append(
                    {
                        **worker,
                        "host": state.get("host"),
                        "run_id": run.run_id,
                        "stale": stale,
                        "rate": state.get("limiter", {}).get("rate"),
                        "cooldown": state.get("limiter", {}).get("cooldown"),
                    }
                )
        return rows

    def limiter_rates(self) -> dict[str, float | None]:
        """Each running host's allowed pages/s now, from the runs' live states."""
        with self._lock:
            name = self.job
            found: dict[str, float | None] = {}
            for state in self._live.get(name or "", []):
                if self._running(str(state.get("run_id"))):
                    found[str(state.get("host"))] = state.get("limiter", {}).get("rate")
            return found

    def counters(self) -> dict[str, tuple[dict[str, Any], dict[str, HostCounts]]]:
        """Per job: its page counts and records, and what each host did (``/metrics``)."""
        self.refresh()
        with self._lock:
            return {
                name: (self._counts.get(name, {"pages": {}, "records": 0}), dict(job.hosts))
                for name, job in self._jobs.items()
            }

    def live_states(self) -> dict[str, list[dict[str, Any]]]:
        """Per job, the live states of its running runs."""
        with self._lock:
            return {
                name: [s for s in states if self._running(str(s.get("run_id")))]
                for name, states in self._live.items()
            }

    def store(self) -> Store | None:
        """The store, opened if it can be now (None: not yet)."""
        with self._lock:
            return self._ready_store()

    def close(self) -> None:
        """Let the store go; safe to call twice."""
        with self._lock:
            if self._store is not None:
                with contextlib.suppress(Exception):
                    self._store.close()
                self._store = None


def _data(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("data")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _bucket(seconds: float) -> int:
    for n, bound in enumerate(LATENCY_BUCKETS):
        if seconds <= bound:
            return n
    return len(LATENCY_BUCKETS)


def _step(span: float) -> int:
    """Seconds per chart point: a round step that keeps a series under ``_POINTS``."""
    wanted = span / _POINTS
    return next((s for s in _NICE_STEPS if s >= wanted), math.ceil(wanted / 3600) * 3600)


def _span(job: _Job, runs: list[RunRow], now: float) -> tuple[int, int, int]:
    """The charts' step and first and last slots: from the job's first run (or
    event) to now (or its last event, on a store whose clock runs ahead of ours)."""
    seconds = list(job.done_by_second) + list(job.errors_by_second)
    start = min([r.started_at for r in runs] + seconds + [now])
    end = max([now, *seconds])
    step = _step(max(end - start, 1.0))
    return step, int(start // step), int(end // step)


def _recent_rate(done: collections.Counter[int], now: float, since_start: float) -> float:
    """Pages/s over the last minute, or since the latest run started if that is
    shorter (a run's first seconds are not a minute of nothing)."""
    window = max(5.0, min(_RATE_WINDOW, since_start))
    recent = sum(n for second, n in done.items() if second >= now - window)
    return recent / window if recent else 0.0


def _progress_series(job: _Job, runs: list[RunRow], now: float) -> dict[str, list[Any]]:
    """Pages done (cumulative) and pages/s, one point per step."""
    step, first, last = _span(job, runs, now)
    per_step = collections.Counter({k: 0 for k in range(first, last + 1)})
    for second, n in job.done_by_second.items():
        per_step[max(first, min(last, second // step))] += n
    times, done, rate = [], [], []
    total = 0
    for slot in range(first, last + 1):
        total += per_step[slot]
        times.append(slot * step)
        done.append(total)
        rate.append(round(per_step[slot] / step, 3))
    return {"t": times, "done": done, "rate": rate, "step": [step]}


def _error_series(job: _Job, runs: list[RunRow], now: float) -> dict[str, Any]:
    """Errors per step by category."""
    step, first, last = _span(job, runs, now)
    categories = sorted({c for counts in job.errors_by_second.values() for c in counts})
    series = {c: [0] * (last - first + 1) for c in categories}
    for second, counts in job.errors_by_second.items():
        slot = max(first, min(last, second // step)) - first
        for category, n in counts.items():
            series[category][slot] += n
    return {"t": [s * step for s in range(first, last + 1)], "by_category": series}


def _memory_series(points: list[_Point]) -> dict[str, Any]:
    """Browser PSS and runner RSS (MB) per host on one time axis (None where a
    host has no sample), thinned to at most ``_POINTS`` times."""
    every = max(1, math.ceil(len(points) / _POINTS))
    kept = points[::every]
    if points and kept[-1] is not points[-1]:
        kept.append(points[-1])
    hosts = sorted({p.host for p in kept})
    series: dict[str, dict[str, list[float | None]]] = {
        host: {"browser_pss_mb": [], "runner_rss_mb": []} for host in hosts
    }
    for point in kept:
        for host in hosts:
            mine = point.host == host
            series[host]["browser_pss_mb"].append(point.browser_pss if mine else None)
            series[host]["runner_rss_mb"].append(point.runner_rss if mine else None)
    return {"t": [p.ts for p in kept], "hosts": series}
