"""The resource monitor on real processes: the browser tree, a memory sidecar, the actions."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from enduro import Runner, Settings, Store
from enduro.monitor import AlertRule, Monitor, ResourceSample
from enduro.session import BrowserSession
from enduro.stress.reference import make_job

from .conftest import ENDURO, FakeRegistry, export_lines, live_processes_of, truth_lines

pytestmark = pytest.mark.integration

MB = 1024 * 1024

# Holds SIZE MB of touched memory until its stdin closes; prints "ready" once allocated.
SIDECAR = """
import sys
size = int(sys.argv[1]) * 1024 * 1024
block = bytearray(size)
for i in range(0, size, 4096):
    block[i] = 1
print("ready", flush=True)
sys.stdin.read()
"""


def _sidecar(megabytes: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SIDECAR, str(megabytes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, like a browser's
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def test_a_memory_sidecar_moves_the_figures_and_alerts_once_while_high(tmp_path: Path) -> None:
    groups: list[int] = []
    rule = AlertRule("browser_pss_mb", 250.0)
    monitor = Monitor(interval=1, browser_groups=lambda: groups, disk_path=tmp_path, rules=[rule])
    alerts: list[Any] = []
    monitor.subscribe(alerts.append)

    quiet = monitor.tick()
    assert (quiet.browser_count, quiet.browser_pss) == (0, 0)
    sidecar = _sidecar(400)
    groups.append(sidecar.pid)
    try:
        high = [monitor.tick() for _ in range(5)]
    finally:
        _end(sidecar)
    groups.clear()
    gone = monitor.tick()  # no process in use: says nothing, clears nothing
    small = _sidecar(20)
    groups.append(small.pid)
    try:
        after = monitor.tick()
    finally:
        _end(small)

    for sample in high:
        assert sample.browser_count == 1
        assert sample.browser_pss >= 390 * MB and sample.browser_rss >= 390 * MB
        # (the host's free memory moves with everything else the machine runs:
        # the sidecar's own figures are the controlled cause)
    assert gone.browser_pss == 0
    assert 15 * MB <= after.browser_pss < 100 * MB
    # One alert while the value stayed high for five samples, one when it cleared.
    assert [(a.metric, a.state) for a in alerts] == [
        ("browser_pss_mb", "open"),
        ("browser_pss_mb", "cleared"),
    ]


def test_the_browser_count_drops_to_the_new_browsers_after_a_restart(tmp_path: Path) -> None:
    with BrowserSession(Settings(), "montest", FakeRegistry()) as session:
        monitor = Monitor(
            interval=1,
            browser_groups=session.process_groups,
            spare_groups=lambda: session.process_groups(spare=True),
            disk_path=tmp_path,
        )
        session.start()
        session.driver.get("data:text/html,<p>one</p>")
        first = monitor.tick()
        old_group = session.process_groups()
        session.prepare_spare()
        while session.spare_launching:
            time.sleep(0.05)
        with_spare = monitor.tick()
        session.stop()
        session.start()
        session.driver.get("data:text/html,<p>two</p>")
        after = monitor.tick()
    assert first.browser_count >= 3 and first.browser_pss > 0
    assert with_spare.spare_count >= 3 and with_spare.browser_count == first.browser_count
    assert session.process_groups() == [] and old_group
    assert after.spare_count == 0
    assert 3 <= after.browser_count <= first.browser_count + 1  # one browser, not two


def _run(site: Any, store_path: Path, pages: int, **settings: Any) -> Any:
    with Store.open(store_path) as store:
        return Runner(
            make_job(site.url, pages), store, Settings(store=store_path, **settings)
        ).run()


def test_a_run_stores_samples_of_the_browser_tree(tmp_path: Path, site_factory: Any) -> None:
    site = site_factory(240)
    store_path = tmp_path / "s.db"
    # The monitor's view just before each planned restart swaps in the spare, and just
    # after: taken by the backend at those instants, not hoped for from a 1 s timer.
    seen: list[tuple[str, ResourceSample]] = []
    monitor: list[Monitor] = []

    class Watched(BrowserSession):
        def stop(self, *, background: bool = False) -> None:
            if background and self.running:  # a planned restart, old browser still in use
                seen.append(("before", monitor[0].sample()))
            super().stop(background=background)

        def start(self) -> None:
            super().start()
            if self.starts > 1:
                seen.append(("after", monitor[0].sample()))

    with Store.open(store_path) as store:
        runner = Runner(
            make_job(site.url, 240),
            store,
            Settings(store=store_path, monitor_interval=1, restart_every_pages=80),
            backend=Watched,
        )
        assert runner.monitor is not None
        monitor.append(runner.monitor)
        result = runner.run()
    assert result.status == "finished"
    with Store.open(store_path, create=False) as store:
        samples = store.samples(result.run_id)
    assert len(samples) >= 2  # at least the run's first and last
    with_browser = [s for s in samples if s["browser_count"] > 0]
    assert with_browser and all(s["browser_pss"] > 0 and s["browser_rss"] > 0 for s in with_browser)
    # Only a sample before the first start or inside a restart's gap may see none.
    assert len(samples) - len(with_browser) <= 1 + result.progress.restarts

    # Across each planned restart the tree (browser in use + spare) drops to the new
    # browser's, and the spare it was is no longer counted as one.
    assert [when for when, _ in seen] == ["before", "after"] * 2, seen
    pairs = list(zip(seen[::2], seen[1::2], strict=True))
    for (_, before), (_, after) in pairs:
        assert after.browser_starts == before.browser_starts + 1
        assert before.browser_count > 0 and after.browser_count > 0
        assert after.spare_count == 0
    assert any(
        before.spare_count > 0
        and before.browser_count + before.spare_count > after.browser_count + after.spare_count
        for (_, before), (_, after) in pairs
    )
    status = subprocess.run(
        [ENDURO, "status", str(store_path), "--json"], capture_output=True, text=True, check=True
    )
    report = json.loads(status.stdout)
    assert report["latest_sample"] == samples[-1]  # (it may postdate the last browser)
    assert report["open_alerts"] == []  # the run is over


def test_a_low_pss_threshold_makes_the_monitor_restart_the_browser(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(40)
    store_path = tmp_path / "s.db"
    result = _run(
        site, store_path, 40, monitor_interval=0.3, alert_browser_pss_mb=50, restart_every_pages=0
    )
    assert result.status == "finished"
    with Store.open(store_path, create=False) as store:
        alerts = store.events(kind="alert")
        restarts = store.events(kind="browser_restart")
    assert any(a["category"] == "browser_pss_mb" for a in alerts)
    assert [r["message"] for r in restarts] == ["browser PSS over 50 MB"]  # once, not a loop
    assert export_lines(store_path) == truth_lines(40)
    assert live_processes_of(store_path) == []


@pytest.mark.serial  # its sidecar takes ~8 points of the machine's memory; its line is read first
def test_pages_pause_while_memory_is_short_and_resume_after(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(80)
    store_path = tmp_path / "s.db"
    used = psutil.virtual_memory().percent
    sidecar_mb = int(psutil.virtual_memory().total * 0.08 / MB)  # about 8 points of memory
    held: list[int] = []
    with Store.open(store_path) as store:
        runner = Runner(
            make_job(site.url, 80),
            store,
            Settings(store=store_path, monitor_interval=0.3, alert_memory_percent=used + 5),
        )

        def squeeze_memory_mid_run() -> None:
            while store.page_counts()["done"] < 3:
                time.sleep(0.05)
            sidecar = _sidecar(sidecar_mb)
            try:
                while not store.events(kind="paused"):
                    time.sleep(0.05)
                time.sleep(0.5)  # the page in hand finishes
                held.append(store.page_counts()["done"])
                time.sleep(1.5)  # the pause must hold: no page may finish meanwhile
                held.append(store.page_counts()["done"])
            finally:
                _end(sidecar)

        watcher = threading.Thread(target=squeeze_memory_mid_run)
        watcher.start()
        result = runner.run()
        watcher.join()
        pauses = [e for e in store.events() if e["kind"] in ("paused", "resumed")]
    assert result.status == "finished"
    assert [e["kind"] for e in pauses][:2] == ["paused", "resumed"]
    assert {e["category"] for e in pauses} == {"memory_pressure"}
    assert len(held) == 2 and held[0] == held[1] < 80
    assert export_lines(store_path) == truth_lines(80)
