"""The resource sampler: a background thread that watches the machine, the
runner and the browser process tree, records samples and raises alerts.

Every run that starts a browser gets at least two samples, however short it
is: one as soon as the first browser is up, and one when the monitor is
closed — which the runner does before it closes any browser, so the last
sample still sees them. Between the two, one every ``interval`` seconds.

It only publishes. The session manager and the runner subscribe to alerts
and decide what to do (restart the browser, pause new pages).

The browser tree is found through the session's PID registry — the process
groups of the browsers enduro started — never by process name, so another
Chromium on the machine is not counted.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from enduro.monitor._alerts import Alert, AlertRule
from enduro.monitor._cgroup import MemoryLimit, available_under_limit, memory_limit
from enduro.monitor._cpu import CpuWindow

__all__ = ["Monitor", "ResourceSample", "group_memory"]

log = logging.getLogger(__name__)

MB = 1024 * 1024

BROWSER_POLL_SECONDS = 0.2
"""How often the monitor looks whether the first browser is up, until it is."""


@dataclass(frozen=True)
class ResourceSample:
    """One look at the machine, the runner and the browser tree."""

    ts: float
    pages: int
    """Pages completed by this run when the sample was taken."""
    browser_starts: int
    """Browsers started so far by this run (a new value: the tree was replaced)."""
    mem_total: int
    mem_available: int
    mem_percent: float
    """Memory in use, as a percentage of the cgroup limit if there is one."""
    memory_limit: str
    """Where ``mem_total`` comes from: ``host`` or the cgroup."""
    cpu_percent: float
    """The whole machine's CPU use, in percent of all CPUs, since the previous
    sample (the one before it, if that was under 0.5 s ago; since the monitor
    started, for the first)."""
    runner_rss: int
    browser_count: int
    """Processes of the browsers in use (chromedriver included)."""
    browser_rss: int
    browser_pss: int
    spare_count: int
    """Processes of spare browsers launched ahead of a planned restart (their
    memory is not read: a spare is new, and reading PSS costs ~1 ms a process)."""
    open_fds: int
    zombies: int
    disk_free: int

    @property
    def browser_pss_mb(self) -> float | None:
        """None while no browser is in use (between a stop and a start): such a
        sample says nothing about the browser, and must not clear its alert."""
        return self.browser_pss / MB if self.browser_count else None

    @property
    def disk_free_mb(self) -> float:
        return self.disk_free / MB

    def to_dict(self) -> dict[str, Any]:
        """The sample as a JSON-ready dict."""
        return asdict(self)


def group_members(pgids: Iterable[int]) -> list[int]:
    """Pids of the processes in the given process groups."""
    groups = set(pgids)
    members = []
    if groups:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.getpgid(int(entry)) in groups:
                        members.append(int(entry))
                except OSError:
                    continue
    return members


def group_memory(pgids: Iterable[int]) -> tuple[int, int, int]:
    """(count, RSS, PSS) of every process in the given process groups.

    PSS comes from ``/proc/PID/smaps_rollup`` (about 1 ms a process); summed
    RSS counts shared pages once per process, PSS shares them out.
    """
    count = rss = pss = 0
    for pid in group_members(pgids):
        try:
            proc_rss, proc_pss = _rollup(pid)
        except OSError:
            continue  # gone, or a zombie without memory maps
        count += 1
        rss += proc_rss
        pss += proc_pss
    return count, rss, pss


def _rollup(pid: int) -> tuple[int, int]:
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
        for line in rollup:
            if line.startswith(b"Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith(b"Pss:"):
                pss = int(line.split()[1]) * 1024
                break
    return rss, pss


class Monitor:
    """Samples every ``interval`` seconds on a thread of its own.

    Once started it also samples as soon as ``browser_starts`` first says a
    browser is up, and once more when it is closed (that last sample raises
    no alert: nothing is left to act on one).

    Args:
        interval: seconds between samples.
        browser_groups: returns the process groups of the browsers in use.
        spare_groups: returns the process groups of spare browsers.
        pages: returns the pages completed so far.
        browser_starts: returns how many browsers were started so far (None:
            no browser is watched for, so no sample when the first comes up).
        disk_path: where free disk space is measured (the store's directory).
        rules: alert rules, each on a field of :class:`ResourceSample`.
        sink: called with every sample (the runner stores it).
    """

    def __init__(
        self,
        *,
        interval: float,
        browser_groups: Callable[[], Iterable[int]],
        spare_groups: Callable[[], Iterable[int]] = lambda: (),
        pages: Callable[[], int] = lambda: 0,
        browser_starts: Callable[[], int] | None = None,
        disk_path: Path = Path("."),
        rules: Iterable[AlertRule] = (),
        sink: Callable[[ResourceSample], None] | None = None,
    ) -> None:
        self.interval = interval
        self._browser_groups = browser_groups
        self._spare_groups = spare_groups
        self._pages = pages
        self._browser_starts = browser_starts
        self._disk_path = disk_path
        self.rules = list(rules)
        self._sink = sink
        self._subscribers: list[Callable[[Alert], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="enduro-monitor", daemon=True)
        self._closing = threading.Lock()  # one closer takes the last sample; others wait
        self._closed = False
        self._ticking = threading.Lock()  # the rules' state is fed one sample at a time
        self._me = psutil.Process()
        self._limit_checked = False
        self._limit: MemoryLimit | None = None
        self._cpu = CpuWindow()

    def subscribe(self, callback: Callable[[Alert], None]) -> None:
        """Call ``callback`` (on the monitor's thread) for every alert change."""
        self._subscribers.append(callback)

    def start(self) -> None:
        """Open the CPU window and start sampling.

        Raises:
            RuntimeError: the monitor was started or closed before.
        """
        if self._closed or self._thread.ident is not None:
            raise RuntimeError("a monitor starts once")
        self._cpu = CpuWindow()  # primed: the first sample measures since now
        self._thread.start()

    def close(self) -> None:
        """Stop sampling and, if it was started, take the last sample; safe twice.

        Thread-safe: a second caller waits until the last sample is taken, so
        a caller that closes a browser after this sees it counted.
        """
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            if self._thread.ident is None:
                return  # never started: no run to close
            self._thread.join()
            try:
                self._record(self.sample(), alerts=False)
            except Exception:
                log.exception("the last resource sample failed")

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        """A sample when the first browser is up, then one every ``interval``."""
        awaiting_browser = self._browser_starts is not None
        due = time.monotonic() + self.interval
        while True:
            wait = due - time.monotonic()
            if awaiting_browser:
                wait = min(wait, BROWSER_POLL_SECONDS)
            if self._stop.wait(max(wait, 0.0)):
                return
            try:
                if awaiting_browser and self._browser_up():
                    awaiting_browser = False
                elif time.monotonic() < due:
                    continue
                due = time.monotonic() + self.interval
                self.tick()
            except Exception:
                log.exception("resource sample failed")

    def _browser_up(self) -> bool:
        return self._browser_starts is not None and self._browser_starts() > 0

    def tick(self) -> ResourceSample:
        """Take a sample, hand it to the sink and check the alert rules."""
        sample = self.sample()
        self._record(sample, alerts=True)
        return sample

    def _record(self, sample: ResourceSample, *, alerts: bool) -> None:
        with self._ticking:
            if self._sink is not None:
                self._sink(sample)
            if not alerts:
                return
            for rule in self.rules:
                value = getattr(sample, rule.metric)
                alert = None if value is None else rule.check(float(value))
                if alert is not None:
                    log.warning("alert %s: %s", alert.state, alert.describe())
                    for callback in self._subscribers:
                        callback(alert)

    def sample(self) -> ResourceSample:
        """Measure everything once."""
        vm = psutil.virtual_memory()
        total, available, limit_source = vm.total, vm.available, "host"
        limit = self._memory_limit(vm.total)
        if limit is not None:
            total, available = limit.limit_bytes, available_under_limit(limit)
            limit_source = limit.source
        count, rss, pss = group_memory(self._browser_groups())
        spare_count = len(group_members(self._spare_groups()))
        with self._me.oneshot():
            runner_rss = self._me.memory_info().rss
            open_fds = self._me.num_fds()
        zombies = _zombie_children()
        return ResourceSample(
            ts=time.time(),
            pages=self._pages(),
            browser_starts=0 if self._browser_starts is None else self._browser_starts(),
            mem_total=total,
            mem_available=available,
            mem_percent=round(100.0 * (total - available) / total, 2) if total else 0.0,
            memory_limit=limit_source,
            cpu_percent=self._cpu.percent(),
            runner_rss=runner_rss,
            browser_count=count,
            browser_rss=rss,
            browser_pss=pss,
            spare_count=spare_count,
            open_fds=open_fds,
            zombies=zombies,
            disk_free=shutil.disk_usage(self._disk_path).free,
        )

    def _memory_limit(self, host_total: int) -> MemoryLimit | None:
        """The cgroup limit, re-read each sample (usage moves); never again once absent."""
        if self._limit_checked and self._limit is None:
            return None
        self._limit_checked = True
        self._limit = memory_limit(host_total=host_total)
        return self._limit


def _zombie_children() -> int:
    """Children of this process that exited and were never reaped."""
    zombies = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as children:
                pids = children.read().split()
        except OSError:
            continue  # the thread ended, or the kernel lacks CONFIG_PROC_CHILDREN
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                        zombies += 1
            except (OSError, IndexError):
                continue
    return zombies
