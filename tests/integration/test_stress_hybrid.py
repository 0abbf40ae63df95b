"""The stress tester on the hybrid reference job; the site's cookies and tokens written nowhere.

Light runs in this process (the site's tokens are recorded as it issues them,
then looked for in every file the run left); medium runs through the CLI.
The production scenario is in test_stress_slow.py (make stress).
"""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from enduro import Runner, Settings, Store
from enduro.report import render_html, write_results
from enduro.store import flight_dir
from enduro.stress.analysis import analyse
from enduro.stress.reference_hybrid import make_hybrid_job
from enduro.stress.scenario import load_scenario
from enduro.stress.site import FaultPlan, ScheduledFault, hybrid_truth
from enduro.stress.tester import ProductionStressTester, hybrid_runner_command
from enduro.stress.vocabulary import HYBRID_SITE_KINDS

from .conftest import ENDURO

pytestmark = pytest.mark.integration

CANARY = "canary-cookie-5e1f0a77"


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token the site in this process issues (sessions, CSRF), recorded as it goes."""
    tokens: list[str] = []
    original: Callable[..., str] = secrets.token_urlsafe

    def recording(nbytes: int | None = None) -> str:
        token = original(nbytes)
        tokens.append(token)
        return token

    monkeypatch.setattr(secrets, "token_urlsafe", recording)
    return tokens


def _files_with(directory: Path, needles: list[str]) -> list[str]:
    found = []
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {n[:8]}…" for n in needles if n.encode() in data]
    return found


@pytest.mark.parametrize("backend", ["selenium", "playwright"])
def test_light_hybrid_is_go_and_writes_no_cookie_or_token_anywhere(
    tmp_path: Path, issued: list[str], backend: str
) -> None:
    config = load_scenario("light", hybrid=True, backend=backend)
    tester = ProductionStressTester(
        config,
        tmp_path,
        # -vv: every log line of the runner goes into its log file
        runner_command=lambda store: [*hybrid_runner_command(store), "-vv"],
    )
    tester.run()
    tester.record_injections()
    results = analyse(tester)
    write_results(results, tmp_path)
    render_html(results, tmp_path / "report.html")

    assert results.verdict.go, [c.model_dump() for c in results.verdict.failed]
    assert results.hybrid and json.loads((tmp_path / "results.json").read_text())["hybrid"]
    integrity = results.integrity
    assert (integrity.lost, integrity.duplicated, integrity.corrupted) == (0, 0, 0)
    assert integrity.expected == config.pages * config.rows
    wanted = {kind for f in config.faults for kind in HYBRID_SITE_KINDS.get(f, ())}
    assert wanted <= {kind for kind, n in results.site_faults.items() if n}
    assert set(results.not_injected) == {"element_not_found", "javascript_error"}
    assert sum(e["retries"] for e in results.http.values()) > 0
    # the site's tokens really were issued and used, and are in no file the run left
    assert len(issued) >= 2 and results.relogins >= 1
    assert any((tmp_path / "stress.db.flight").glob("*.http.json"))
    assert _files_with(tmp_path, issued) == []


@pytest.mark.serial  # medium's memory_pressure fault holds the machine at its memory line for 20 s
def test_medium_hybrid_through_the_cli_is_go(tmp_path: Path) -> None:
    out = subprocess.run(
        [ENDURO, "stress", "--scenario", "medium", "--hybrid", "--report-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )

    results = json.loads((tmp_path / "results.json").read_text())
    assert out.returncode == 0, out.stdout[-3000:]
    assert results["hybrid"] is True and results["scenario"] == "medium (hybrid)"
    integrity = results["integrity"]
    assert (integrity["lost"], integrity["duplicated"], integrity["corrupted"]) == (0, 0, 0)
    assert integrity["expected"] == 50 * 50


def test_wire_level_logs_never_carry_the_sites_cookies(
    tmp_path: Path, site_factory: Any, caplog: pytest.LogCaptureFixture, issued: list[str]
) -> None:
    """Selenium logs CDP payloads (cookies) and httpcore response headers at DEBUG."""
    plan = FaultPlan(
        schedule=[
            ScheduledFault("csrf_rotation", page=2, after=10, request="hybrid"),
            ScheduledFault("server_error", page=3, after=5, request="hybrid"),
            ScheduledFault("session_expiry", page=4, after=20, request="hybrid"),
        ]
    )
    site = site_factory(5, fault_plan=plan)
    base = make_hybrid_job(site.url)
    assert base.login is not None
    login = base.login

    def login_with_a_canary(ctx: Any) -> None:
        login(ctx)
        ctx.driver.execute_cdp_cmd(
            "Network.setCookie", {"name": "canary", "value": CANARY, "url": site.url + "/"}
        )

    job = type(base)(**{**_fields(base), "login": login_with_a_canary})
    caplog.set_level(logging.DEBUG)
    store_path = tmp_path / "s.db"
    with Store.open(store_path) as store:
        runner = Runner(job, store, Settings(store=store_path, monitor_interval=0))
        result = runner.run()
        manager = runner._managers[0]
        assert manager.http is not None and manager.http.cookies.values()["canary"] == CANARY
        texts = list(store.iter_record_texts())

    assert result.status == "finished", result.reason
    assert texts == [
        json.dumps(r, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
        for r in hybrid_truth(1, 5, 50)
    ]
    assert plan.counts() == {"csrf_rotation": 1, "server_error": 1, "session_expiry": 1}
    secrets_seen = [CANARY, *issued]
    log_text = caplog.text
    assert "Remote response" in log_text or "remote_connection" in log_text or caplog.records
    assert any(r.name.startswith(("selenium", "httpcore")) for r in caplog.records)
    assert [s[:8] for s in secrets_seen if s in log_text] == []
    assert _files_with(tmp_path, secrets_seen) == []
    assert any(flight_dir(store_path).glob("*.http.json"))


def _fields(job: Any) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: getattr(job, f.name) for f in fields(job) if f.init}
