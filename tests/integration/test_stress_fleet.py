"""The stress tester's fleet: three ``enduro run`` processes sharing one PostgreSQL
store (a throwaway server the tester starts), each SIGKILLed in turn and started
again, the database server stopped and started mid-run — GO, every record exact,
every page done once, and the run judged from its directory alone afterwards."""

from __future__ import annotations

import collections
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import ClassVar

import psutil
import pytest

from enduro.store import Store
from enduro.stress import _runstore
from enduro.stress._postgres import PostgresServer
from enduro.stress.scenario import load_scenario
from enduro.stress.suite import judge_again, run_scenario

from .conftest import ENDURO, live_processes_of

pytestmark = pytest.mark.integration

PAGES = 45


class _Recorded(PostgresServer):
    """The tester's own server, kept in sight so the test can look for its password."""

    made: ClassVar[list[PostgresServer]] = []

    def __init__(self, password: str | None = None) -> None:
        super().__init__(password)
        self.made.append(self)


def _postmasters_of(root: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(str(root) in part for part in cmdline):
            found.append(proc.pid)
    return found


def test_three_runners_crashed_in_turn_and_a_database_restart_are_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_runstore, "PostgresServer", _Recorded)
    _Recorded.made.clear()
    config = load_scenario("fleet", pages=PAGES, duration="15m", seed=5)
    report = tmp_path / "fleet"

    results = run_scenario(config, report)

    assert results.verdict.go, [c.detail for c in results.verdict.failed]
    assert (results.runners, results.shared_store) == (3, True)
    assert results.pages_done == results.pages_total == PAGES
    integrity = results.integrity
    assert (integrity.lost, integrity.duplicated, integrity.corrupted) == (0, 0, 0)
    assert integrity.found == integrity.expected == PAGES * config.rows

    run = json.loads((report / "run.json").read_text())
    by_type = collections.defaultdict(list)
    for d in run["deliveries"]:
        by_type[d["injection"]["type"]].append(d)
    crashes = by_type["runner_crash"]
    assert len(crashes) >= 3 and all(d["delivered"] for d in crashes)
    hit = {d["detail"].split(" of ")[0] for d in crashes}
    assert hit == {"SIGKILL runner 1", "SIGKILL runner 2", "SIGKILL runner 3"}, hit
    [restart] = by_type["database_restart"]
    assert restart["delivered"] and restart["detail"].startswith("PostgreSQL stopped (fast)")
    assert run["runner_exits"].count(-9) == len(crashes)
    assert run["runner_starts"] == 3 + len(crashes)

    # the shared store, copied into the report directory: every page done once, by
    # the three hosts, no run left marked running, no process left alive
    store_path = report / "stress.db"
    with Store.open(store_path, create=False) as store:
        done = collections.Counter(e["page_key"] for e in store.events(kind="page_done"))
        hosts = {r.host for r in store.runs()}
        running = store.running_runs()
        restarts_seen = [e for e in store.events(kind="injection") if "PostgreSQL" in e["message"]]
    assert sorted(done, key=int) == [str(k) for k in range(1, PAGES + 1)]
    assert set(done.values()) == {1}, "a page was processed to done twice"
    assert hosts == {"stress-1", "stress-2", "stress-3"}
    assert running == [] and live_processes_of(store_path) == []
    assert len(restarts_seen) == 1

    # the server is gone, and its password is nowhere the run wrote
    [server] = _Recorded.made
    assert not server.root.exists() and _postmasters_of(server.root) == []
    for path in report.rglob("*"):
        if path.is_file():
            assert server.password.encode() not in path.read_bytes(), path

    # judged again from the directory alone (the server is gone): the same verdict
    again = judge_again(report, tmp_path / "again.html")
    assert again.verdict.go and again.integrity == results.integrity
    shown = subprocess.run(
        [ENDURO, "report", str(report)], capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert "PostgreSQL, shared by 3 runner processes" in shown.stdout + shown.stderr


@pytest.mark.serial  # medium's memory_pressure fault holds the machine at its memory line for 20 s
def test_three_hybrid_runners_share_every_endpoint_s_pace_and_retry_after(
    tmp_path: Path,
) -> None:
    """The hybrid job on three runners: ctx.http's endpoints keep their turns and
    cool-downs in the shared store, and no runner calls an endpoint inside a window
    another runner was told about (the verdict reads the site's own log)."""
    config = load_scenario("medium", hybrid=True, runners=3, pages=30, seed=2)
    report = tmp_path / "hybrid"

    results = run_scenario(config, report)

    assert results.verdict.go, [c.detail for c in results.verdict.failed]
    assert results.integrity.found == results.integrity.expected > 0
    honoured = next(c for c in results.verdict.criteria if c.name == "Retry-After honoured")
    assert honoured.judged and honoured.passed
    slowed = [
        q
        for q in json.loads((report / "run.json").read_text())["requests"]
        if q["status"] in (429, 503) and q["path"].startswith("/api/v2/")
    ]
    assert slowed, "no endpoint was told to slow down"
    with Store.open(report / "stress.db", create=False) as store:
        hosts = {r.host for r in store.runs()}
    assert hosts == {"stress-1", "stress-2", "stress-3"}
    with sqlite3.connect(report / "stress.db") as db:  # the paces the runners shared
        held = dict(db.execute("SELECT key, hold_until FROM pacing WHERE key LIKE 'http:%'"))
    assert len(held) >= 2 and any(until > 0 for until in held.values()), held
