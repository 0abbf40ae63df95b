"""Fixtures for integration tests: the real site, the real CLI, the real browser."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from enduro.store import Store, dumps_record
from enduro.stress.site import SiteConfig, SiteServer, ground_truth

ENDURO = str(Path(sys.executable).parent / "enduro")


class FakeRegistry:
    """A process registry that keeps the rows it is given and nothing else (the
    browser backends' tests that need no store)."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def register(self, *row: Any) -> int:
        self.rows.append(row)
        return len(self.rows)

    def ended(self, ids: Any) -> None:
        pass


@pytest.fixture
def playwright_backend(tmp_path: Path) -> Iterator[Any]:
    """A Playwright backend (not started), closed after the test."""
    from enduro.session import PlaywrightSession
    from enduro.settings import Settings

    backend = PlaywrightSession(Settings(store=str(tmp_path / "s.db")), "pw-test", FakeRegistry())
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def site_factory() -> Iterator[object]:
    """Start built-in sites on 127.0.0.1; all are closed at the end of the test.

    ``start(pages, rows=50, seed=1, **config)`` passes any other ``SiteConfig``
    field through, e.g. ``fault_plan=FaultPlan(...)`` or ``session_ttl=4.0``.
    """
    servers: list[SiteServer] = []

    def start(pages: int, rows: int = 50, seed: int = 1, **config: Any) -> SiteServer:
        server = SiteServer(SiteConfig(seed=seed, pages=pages, rows=rows, **config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def truth_lines(pages: int, rows: int = 50, seed: int = 1) -> list[str]:
    """The ground truth as the JSONL lines ``enduro export`` must print."""
    return [dumps_record(r) for r in ground_truth(seed, pages, rows)]


def export_lines(store: Path | str) -> list[str]:
    """``enduro export STORE --format jsonl``, run for real."""
    out = subprocess.run(
        [ENDURO, "export", str(store), "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def stress_scenario(tmp_path: Path, toml: str) -> tuple[int, dict[str, Any]]:
    """Write ``toml`` as a scenario file, run ``enduro stress`` on it for real; return
    the exit code and results.json (the output is in the assertion message on a miss)."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(toml)
    out = subprocess.run(
        [ENDURO, "stress", "--scenario", str(scenario), "--report-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    results_file = tmp_path / "r" / "results.json"
    assert results_file.is_file(), out.stdout[-3000:] + out.stderr[-3000:]
    results: dict[str, Any] = json.loads(results_file.read_text())
    if out.returncode != 0:
        print(out.stdout[-3000:], out.stderr[-3000:])  # shown by pytest when a test fails
    return out.returncode, results


def reference_env(url: str, pages: int) -> dict[str, str]:
    """Environment for ``enduro run enduro.stress.reference:job``."""
    return {**os.environ, "ENDURO_SITE_URL": url, "ENDURO_SITE_PAGES": str(pages)}


def live_processes_of(store_path: Path) -> list[str]:
    """Registered browser/driver processes of any run in the store that still run,
    plus any process whose command line names one of the runs' work directories."""
    with Store.open(store_path, create=False) as store:
        rows = store.all_processes()
    alive = []
    markers = {f"enduro-{row.run_id}-" for row in rows}
    for row in rows:
        try:
            proc = psutil.Process(row.pid)
            if abs(proc.create_time() - row.create_time) < 1.0 and proc.status() != "zombie":
                alive.append(f"{row.kind} pid {row.pid} of run {row.run_id}")
        except psutil.NoSuchProcess:
            pass
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["status"] != "zombie" and any(m in cmdline for m in markers):
            alive.append(f"pid {proc.pid}: {cmdline[:120]}")
    return alive


def registered_victim(store_path: Path, kind: str) -> int | None:
    """The pid of the newest browser's process of ``kind`` ("browser" or "driver"),
    from the run's PID registry, as the stress tester finds it (None: none yet)."""
    if not store_path.exists():
        return None
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
    driver = next(
        (r for r in reversed(rows) if r.kind == "driver" and r.workdir == browser.workdir), None
    )
    return driver.pid if driver is not None else None


def sigkill(pid: int) -> bool:
    """SIGKILL ``pid`` unless it is gone or a zombie; whether it was sent."""
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
        os.kill(pid, signal.SIGKILL)
    except (psutil.Error, ProcessLookupError):
        return False
    return True


def pages_done(store_path: Path) -> int:
    """Pages done so far in the store at ``store_path``, every job (0: none yet)."""
    if not store_path.exists():
        return 0
    try:
        with Store.open(store_path, create=False, read_only=True) as store:
            return store.page_counts()["done"]
    except Exception:
        return 0


def run_under_kills(
    command: list[str],
    env: dict[str, str],
    store_path: Path,
    every: tuple[int, int],
    *,
    seed: int,
    timeout: float = 600,
) -> tuple[int, str, dict[str, int]]:
    """Run ``command`` (an ``enduro run`` on ``store_path``) while SIGKILLing the
    browser and its driver in turn, found in the run's PID registry, each time the run
    has done a random number of pages in ``every`` more. Paced by pages, not seconds,
    so the number of kills is the same on a fast machine and a slow one (by the clock,
    a fast run ended before its fourth driver kill). Returns the exit code, the output
    (stdout and stderr) and the kills made by kind."""
    runner = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(runner.stdout or ()), daemon=True)
    reader.start()
    rng = random.Random(seed)
    killed = {"browser": 0, "driver": 0}
    turn = 0
    next_kill = rng.randint(*every)
    deadline = time.monotonic() + timeout
    while runner.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        done = pages_done(store_path)
        if done < next_kill:
            continue
        kind = ("browser", "driver")[turn % 2]
        pid = registered_victim(store_path, kind)
        if pid is not None and sigkill(pid):
            killed[kind] += 1
            turn += 1
        next_kill = done + rng.randint(*every)
    if runner.poll() is None:
        runner.kill()
    runner.wait()
    reader.join(30)
    return runner.returncode, "".join(output), killed


def kill_at_random(
    command: list[str],
    env: dict[str, str],
    *,
    kills: int,
    window: tuple[float, float],
    seed: int,
    runs: Callable[[], int],
    progress: Callable[[], tuple[int, ...]],
    done: Callable[[], int] | None = None,
    advance: tuple[int, int] = (1, 100),
) -> None:
    """Start ``command`` and SIGKILL it at a random moment, ``window`` seconds after its
    start, again and again until ``kills`` runs that had registered were killed.

    ``runs`` counts the runs in the store; ``progress`` gives counts that must never go
    back (pages done, pages known...). With ``done`` (pages done so far), every second
    kill instead comes once that run has done a random number of pages in ``advance``:
    deep in the pages whatever the machine's speed, where a kill at a time alone may
    come before the first page on a slow day or after the last on a fast one.
    """
    rng = random.Random(seed)
    killed = attempt = 0
    while killed < kills:
        before, runs_before = progress(), runs()
        by_progress = done is not None and attempt % 2 == 1
        attempt += 1
        target = done() + rng.randint(*advance) if done is not None and by_progress else 0
        deadline = rng.uniform(*window)
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started = time.monotonic()
        while proc.poll() is None:
            if done is not None and by_progress:
                if done() >= target:
                    break
            elif time.monotonic() - started >= deadline:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed; give it more pages"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = progress()
        assert all(a >= b for a, b in zip(after, before, strict=True)), (before, after)
        killed += runs() - runs_before
