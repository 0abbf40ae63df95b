"""`enduro stress --scenario light`: real faults, the real runner, a GO with perfect integrity."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from enduro.session import BrowserSession
from enduro.settings import Settings
from enduro.store import Store
from enduro.stress.scenario import PRESETS

from .conftest import ENDURO, FakeRegistry, live_processes_of, stress_scenario

pytestmark = pytest.mark.integration


def _stress(report_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENDURO, "stress", "--scenario", "light", "--report-dir", str(report_dir), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


def _watched_stress(report_dir: Path, *args: str) -> dict[str, int]:
    """``enduro stress --scenario light --dashboard 0``: what its dashboard showed while
    the run went on (the most faults delivered, fault lines on the timeline)."""
    command = [ENDURO, "stress", "--scenario", "light", "--report-dir", str(report_dir)]
    stress = subprocess.Popen(
        [*command, *args, "--dashboard", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert stress.stderr is not None
    url = ""
    for line in stress.stderr:
        if found := re.search(r"dashboard: (http://\S+)", line):
            url = found.group(1)
            break
    assert url, "no dashboard URL printed"
    threading.Thread(target=stress.stderr.read, daemon=True).start()
    seen = {"faults": 0, "fault_markers": 0, "while_running": 0}
    while stress.poll() is None:
        try:
            live = httpx.get(url + "api/live", timeout=5).json()
        except httpx.HTTPError:  # the run ended while asking
            time.sleep(0.5)
            continue
        seen["faults"] = max(seen["faults"], int(live.get("faults") or 0))
        markers = [m for m in live.get("markers", []) if m["kind"] == "fault"]
        seen["fault_markers"] = max(seen["fault_markers"], len(markers))
        seen["while_running"] += stress.poll() is None
        time.sleep(0.5)
    assert stress.wait() == 0
    return seen


def test_light_scenario_is_go_with_real_injections_and_perfect_integrity(tmp_path: Path) -> None:
    out = _stress(tmp_path / "a", "--seed", "7")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["verdict"]["go"] is True
    _criteria_not_judged_say_so(out, results)
    assert results["pages_done"] == results["pages_total"] == PRESETS["light"].pages
    integrity = results["integrity"]
    assert (integrity["lost"], integrity["duplicated"], integrity["corrupted"]) == (0, 0, 0)
    assert integrity["found"] == integrity["expected"] > 0
    for kind in PRESETS["light"].faults:  # every fault the scenario names really happened
        assert results["injected_per_type"][kind]["delivered"] > 0, kind
    delivered = [i for i in results["injections"] if i["delivered"]]
    assert all(i["id"] and i["at"] > 0 for i in delivered)
    with Store.open(tmp_path / "a" / "stress.db", create=False) as store:  # and in the store
        events = store.events("matches", "injection")
    recorded = {(json.loads(e["data"])["id"], e["ts"]) for e in events}
    assert recorded == {(i["id"], i["at"]) for i in delivered}
    assert results["session_restarts"] >= 1  # the browser-side kills were recovered
    html = (tmp_path / "a" / "report.html").read_text()
    assert html.count('class="chart"') == 4
    # a site row whose name is a <script> element is in the report, as text only
    assert any("<script>" in line for line in results["sample_records"])
    assert "&lt;script&gt;alert(" in html and "<script" not in html

    # the same seed gives the same fault schedule, and the site delivers the same faults;
    # this time watched on its live dashboard, where the faults show up as they go in
    seen = _watched_stress(tmp_path / "b", "--seed", "7")
    assert seen["faults"] >= 1 and seen["fault_markers"] >= 1, seen
    assert seen["while_running"], "the dashboard was not read during the run"
    schedule_a = (tmp_path / "a" / "schedule.json").read_text()
    assert (tmp_path / "b" / "schedule.json").read_text() == schedule_a
    other = json.loads((tmp_path / "b" / "results.json").read_text())

    def site_faults(r: dict[str, object]) -> list[tuple[str, str]]:
        injections = r["injections"]
        assert isinstance(injections, list)
        return sorted((i["type"], i["detail"]) for i in injections if i["layer"] == "site")

    assert site_faults(other) == site_faults(results)

    _charts_render_in_chromium(tmp_path / "a" / "report.html", tmp_path)

    rebuilt = subprocess.run(
        [ENDURO, "report", str(tmp_path / "a"), "--html", str(tmp_path / "again.html")],
        capture_output=True,
        text=True,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (tmp_path / "again.html").read_text().count('class="chart"') == 4

    # judged again from what the run left (run.json and the store): the same results
    (tmp_path / "a" / "results.json").unlink()
    (tmp_path / "a" / "report.html").unlink()
    rejudged = subprocess.run(
        [ENDURO, "report", str(tmp_path / "a")], capture_output=True, text=True
    )
    assert rejudged.returncode == 0, rejudged.stderr
    assert json.loads((tmp_path / "a" / "results.json").read_text()) == results
    assert (tmp_path / "a" / "report.html").read_text().count('class="chart"') == 4


def test_light_scenario_on_playwright_is_go_with_every_fault_delivered(tmp_path: Path) -> None:
    out = _stress(tmp_path / "p", "--seed", "7", "--backend", "playwright")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    results = json.loads((tmp_path / "p" / "results.json").read_text())
    run = json.loads((tmp_path / "p" / "run.json").read_text())
    assert run["config"]["backend"] == "playwright"
    assert results["verdict"]["go"] is True
    assert results["pages_done"] == results["pages_total"] == PRESETS["light"].pages
    integrity = results["integrity"]
    assert (integrity["lost"], integrity["duplicated"], integrity["corrupted"]) == (0, 0, 0)
    for kind in PRESETS["light"].faults:  # the Node driver killed too, and the tab crashed
        assert results["injected_per_type"][kind]["delivered"] > 0, kind
    killed = [i["detail"] for i in results["injections"] if i["type"] == "driver_crash"]
    assert killed and all("SIGKILL Playwright's driver (node)" in d for d in killed), killed
    assert live_processes_of(tmp_path / "p" / "stress.db") == []


def _criteria_not_judged_say_so(
    out: subprocess.CompletedProcess[str], results: dict[str, Any]
) -> None:
    """Too few attempts for the error rate: "not judged" in results.json and the terminal,
    and the verdict line counts the criteria judged."""
    criteria = results["verdict"]["criteria"]
    rate = next(c for c in criteria if c["id"] == "error_rate")
    assert results["attempts"] < PRESETS["light"].criteria.min_sample
    assert (rate["judged"], rate["result"]) == (False, "not judged")
    judged = sum(1 for c in criteria if c["judged"])
    assert f"GO — {judged} of {len(criteria)} criteria judged" in out.stderr
    assert "error rate: not judged: " in out.stderr


def _charts_render_in_chromium(report: Path, tmp_path: Path) -> None:
    """Headless Chromium opens the report offline and lays out its four charts."""
    settings = Settings(store=tmp_path / "unused.db")
    with BrowserSession(settings, "report", FakeRegistry()) as session:
        session.start()
        driver = session.driver
        driver.get(report.resolve().as_uri())
        sizes = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure.chart svg'),"
            " (svg) => [svg.getBoundingClientRect().width, svg.getBoundingClientRect().height]);"
        )
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert len(sizes) == 4 and all(w > 100 and h > 100 for w, h in sizes), sizes
    assert errors == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--scenario", "nightmare"], "nightmare"),
        (["--duration", "soon"], "soon"),
        (["--scenario", "missing.toml"], "missing.toml"),
        (["--grid", "http://127.0.0.1:1"], "Selenium Grid at http://127.0.0.1:1 does not answer"),
        (["--grid", "ftp://grid"], "grid_url"),
        (["--runners", "9"], "Invalid value for '--runners': 9 is not in the range 1<=x<=8"),
        (["--scenario", "fleet", "--pages", "4"], "3 runner crashes 2 pages apart need"),
        (["--pages", "0"], "see enduro stress --help"),
    ],
)
def test_bad_scenarios_give_one_line_and_exit_2(
    tmp_path: Path, args: list[str], words: str
) -> None:
    out = subprocess.run(
        [ENDURO, "stress", *args, "--report-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0]
    assert not (tmp_path / "r").exists()


def test_two_workers_side_by_side_are_go_and_keep_retry_after(tmp_path: Path) -> None:
    code, results = stress_scenario(tmp_path, 'preset = "light"\nworkers = 2\npages = 30\n')
    assert code == 0, results["verdict"]
    integrity = results["integrity"]
    assert (integrity["lost"], integrity["duplicated"], integrity["corrupted"]) == (0, 0, 0)
    assert results["injected_per_type"]["rate_limiting"]["delivered"] >= 1
    honoured = next(
        c for c in results["verdict"]["criteria"] if c["name"] == "Retry-After honoured"
    )
    assert honoured["passed"] is True
    with Store.open(tmp_path / "r" / "stress.db", create=False) as store:
        assert store.event_counts("matches")["login"] >= 2  # each worker its own browser
