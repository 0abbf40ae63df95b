"""Chaos from outside: the browser and its driver SIGKILLed every few seconds while
``enduro run`` walks the reference job, on each backend; every record exact, nothing
left running."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from enduro.store import Store

from .conftest import ENDURO, export_lines, live_processes_of, reference_env, truth_lines

pytestmark = pytest.mark.integration

PAGES = 240
ROWS = 20
EVERY = (2.0, 4.0)  # seconds between two kills


def _victim(store_path: Path, kind: str) -> int | None:
    """The pid of the newest browser's process of ``kind`` ("browser" or "driver"),
    from the run's PID registry, as the stress tester finds it."""
    try:
        with Store.open(store_path, create=False) as store:
            rows = store.open_processes()
    except Exception:
        return None
    browser = next((r for r in reversed(rows) if r.kind == "browser"), None)
    if browser is None:
        return None
    if kind == "browser":
        return browser.pid
    driver = next((r for r in rows if r.kind == "driver" and r.workdir == browser.workdir), None)
    return driver.pid if driver is not None else None


def _kill(pid: int) -> bool:
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
        os.kill(pid, signal.SIGKILL)
    except (psutil.Error, ProcessLookupError):
        return False
    return True


@pytest.mark.parametrize("backend", ["selenium", "playwright"])
def test_browser_and_driver_killed_every_few_seconds(
    tmp_path: Path, site_factory: Any, backend: str
) -> None:
    site = site_factory(PAGES, rows=ROWS)
    store_path = tmp_path / "chaos.db"
    env = {
        **reference_env(site.url, PAGES),
        "ENDURO_BACKEND": backend,
        "ENDURO_MONITOR_INTERVAL": "0",
        "ENDURO_BACKOFF_BASE": "0.2",
    }
    command = [ENDURO, "run", "enduro.stress.reference:job", "--store", str(store_path)]
    runner = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rng = random.Random(20261206)
    killed = {"browser": 0, "driver": 0}
    turn = 0
    next_kill = time.monotonic() + rng.uniform(*EVERY)
    deadline = time.monotonic() + 600
    while runner.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        if time.monotonic() < next_kill:
            continue
        kind = ("browser", "driver")[turn % 2]
        pid = _victim(store_path, kind) if store_path.exists() else None
        if pid is not None and _kill(pid):
            killed[kind] += 1
            turn += 1
        next_kill = time.monotonic() + rng.uniform(*EVERY)
    if runner.poll() is None:
        runner.kill()
    _, stderr = runner.communicate()
    assert runner.returncode == 0, stderr.decode()[-3000:]

    assert killed["browser"] >= 4 and killed["driver"] >= 4, killed
    assert export_lines(store_path) == truth_lines(PAGES, ROWS)
    assert live_processes_of(store_path) == []
    with Store.open(store_path, create=False) as store:
        errors = store.events(kind="error")
        restarts = store.events(kind="browser_restart")
        assert store.page_counts("matches")["done"] == PAGES
    # every error a kill caused was seen for what it was (a kill between two pages
    # is found before the next one, without an error), and the browser was replaced
    categories = {e["category"] for e in errors}
    assert errors and categories <= {"browser_crash", "driver_dead"}, categories
    assert len(restarts) >= sum(killed.values()) // 2
