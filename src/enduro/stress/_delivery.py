"""How the stress tester's faults reach their targets, for real.

:class:`FaultDelivery` delivers one fault of the scenario through the channel
:data:`enduro.stress.vocabulary.FAULTS` names for it: the browser or
chromedriver SIGKILLed (their pids from the run's PID registry, or, with a
Selenium Grid whose node runs on this host, from the Grid's sessions), a tab
crashed, cookies wiped or the page taken offline through the browser's own
DevTools port, memory taken by a sidecar process, the shared store's
PostgreSQL server stopped and started again. The runner's own crash is the
tester's (it starts the runner again). See ARCHITECTURE.md, "Monitor, stress
tester, report".
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from enduro.session import grid_sessions
from enduro.store import Store
from enduro.stress._devtools import DevToolsError, devtools_port, page_command
from enduro.stress._postgres import PostgresServer
from enduro.stress.vocabulary import FAULTS

__all__ = ["FaultDelivery", "Target"]


@dataclass(frozen=True)
class Target:
    """The browser of the run in progress, as the tester's faults reach it: its
    process, its chromedriver's, and its DevTools port on this host (None: not
    found, or not reachable from here)."""

    browser: int | None = None
    driver: int | None = None
    devtools: int | None = None
    why: str = ""
    """Why a part is missing, when it is for good (a Grid node on another host)."""
    session: str = ""
    """The Grid session the browser serves (empty: a local browser)."""

    def ready(self) -> bool:
        """Every part found and its processes alive."""
        parts = (self.browser, self.driver, self.devtools)
        return all(part is not None for part in parts) and all(
            _alive(pid) for pid in (self.browser, self.driver) if pid is not None
        )


class FaultDelivery:
    """Delivers faults through their channels; owns the memory sidecars it starts.

    Args:
        store: opens the run's store for a look (the PID registry, the running runs).
        grid: the Selenium Grid the runner takes its browsers from (None: local ones).
        database: the shared store's PostgreSQL server while it runs (None: SQLite).
        memory_line: the host memory percent the runner acts on (a sidecar goes past it).
        memory_hold: how long a sidecar holds its memory, unless the fault says.
        database_hold: how long a database restart keeps the server down, unless
            the fault says.
        sleep: the wait of a database restart's outage.
    """

    def __init__(
        self,
        store: Callable[[], AbstractContextManager[Store]],
        *,
        grid: str | None,
        database: Callable[[], PostgresServer | None],
        memory_line: Callable[[], float],
        memory_hold: float,
        database_hold: float,
        sleep: Callable[[float], None],
    ) -> None:
        self._store = store
        self._grid = grid
        self._database = database
        self._memory_line = memory_line
        self._memory_hold = memory_hold
        self._database_hold = database_hold
        self._sleep = sleep
        self._sidecars: list[subprocess.Popen[bytes]] = []

    def close(self) -> None:
        """Stop every sidecar still holding memory."""
        for sidecar in self._sidecars:
            stop_process(sidecar)
        self._sidecars.clear()

    def target(self) -> Target:
        """The newest browser of the run in progress: from the run's PID registry,
        or, with a Grid, from the Grid's sessions of the store's running runs."""
        if self._grid is not None:
            return self._grid_target(self._grid)
        try:
            with self._store() as store:
                rows = store.open_processes()
        except Exception:
            return Target()
        browser = next((r for r in reversed(rows) if r.kind == "browser"), None)
        if browser is None:
            return Target()
        # the newest driver of that browser: on Playwright each thread that drove it
        # had its own, and the one in use is the last to have connected
        driver = next(
            (r for r in reversed(rows) if r.kind == "driver" and r.workdir == browser.workdir),
            None,
        )
        port = devtools_port(Path(browser.workdir) / "profile") if browser.workdir else None
        return Target(browser.pid, driver.pid if driver else None, port)

    def _grid_target(self, grid: str) -> Target:
        """A Grid session's browser, found by the run id it carries; reachable for
        the tester's faults only when the Grid's node runs on this host."""
        if not _loopback(grid):
            return Target(why="the Grid is not on this host: its browsers can't be reached")
        try:
            with self._store() as store:
                running = {run.run_id for run in store.running_runs()}
            held = [info for info in grid_sessions(grid) if info.run_id in running]
        except Exception:
            return Target()
        if not held:
            return Target()
        info = held[-1]
        browser = _local_process(info.browser_pid, "chrom")
        driver = None
        if browser is not None:
            with contextlib.suppress(psutil.Error):
                driver = _local_process(psutil.Process(browser).ppid(), "chromedriver")
        host, _, port = (info.devtools or "").rpartition(":")
        local = host in ("localhost", "127.0.0.1", "[::1]") and port.isdigit()
        return Target(browser, driver, int(port) if local else None, session=info.session_id)

    def act(self, kind: str, params: Mapping[str, Any]) -> str:
        """Deliver one fault through its channel; returns what was done.

        Raises:
            LookupError: its target is not there (no browser running, out of reach).
            DevToolsError: the browser's DevTools did not take the command.
        """
        spec = FAULTS[kind]
        if spec.delivery == "sidecar":
            return self._squeeze_memory(float(params.get("hold", self._memory_hold)))
        if spec.delivery == "database":
            hold = float(params.get("hold", self._database_hold))
            return self._restart_database(str(params.get("mode", "fast")), hold)
        target = self.target()
        if target.why:
            raise LookupError(target.why)
        if spec.delivery == "kill":  # the runner's own is the tester's
            pid = {"browser": target.browser, "chromedriver": target.driver}.get(spec.target)
            if pid is None:
                raise LookupError(f"no {spec.target} running")
            what = spec.target
            if what == "chromedriver" and _local_process(pid, "chromedriver") is None:
                what = "Playwright's driver (node)"  # the Playwright backend's driver
            os.kill(pid, signal.SIGKILL)
            where = f" on the Grid's node (session {target.session})" if target.session else ""
            return f"SIGKILL {what} pid {pid}{where}"
        if spec.delivery != "devtools":
            raise DevToolsError(f"no browser-side delivery for {kind}")
        port = target.devtools
        if port is None:
            raise LookupError("no DevTools port for the browser")
        if kind != "network_timeout":
            page_command(port, spec.target)
            return f"{spec.target} through DevTools"
        seconds = float(params.get("seconds", 2.0))
        latency = int(params.get("latency_ms", 0))
        conditions = {
            "offline": not latency,
            "latency": latency,
            "downloadThroughput": -1,
            "uploadThroughput": -1,
        }
        page_command(port, spec.target, conditions, hold=seconds)
        what = f"{latency} ms latency" if latency else "offline"
        return f"{what} for {seconds:g}s through DevTools"

    def _squeeze_memory(self, hold: float) -> str:
        target = self._memory_line() + 1.0
        sidecar = subprocess.Popen(
            [sys.executable, "-m", "enduro.stress._memhog", f"{target:.1f}", f"{hold:g}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._sidecars.append(sidecar)
        return f"sidecar pid {sidecar.pid} holds memory over {target:.1f}% for {hold:g}s"

    def _restart_database(self, mode: str, hold: float) -> str:
        """Stop the shared store's server, keep it down ``hold`` seconds, start it again."""
        server = self._database()
        if server is None:
            raise LookupError("no PostgreSQL server: the store is a SQLite file")
        server.stop(mode)
        self._sleep(hold)  # the outage itself: the runners must wait it out
        server.start()
        return f"PostgreSQL stopped ({mode}) for {hold:g}s and started again"


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it does not go."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _local_process(pid: int | None, name: str) -> int | None:
    """``pid`` if it is a live process of this host whose name has ``name``."""
    if pid is None:
        return None
    try:
        return pid if name in psutil.Process(pid).name() else None
    except psutil.Error:
        return None


def _loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
