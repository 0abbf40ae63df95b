"""The long scenarios (`make stress`): production, on both jobs, and the validation suite."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import ENDURO, live_processes_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("backend", ["selenium", "playwright"])
def test_production_scenario_is_go_with_runner_and_browser_crashes(
    tmp_path: Path, backend: str
) -> None:
    report = ["--report-dir", str(tmp_path / "p")]
    out = subprocess.run(
        [ENDURO, "stress", "--scenario", "production", "--backend", backend, *report],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    results = json.loads((tmp_path / "p" / "results.json").read_text())
    assert results["pages_done"] == 724
    integrity = results["integrity"]
    assert (integrity["lost"], integrity["duplicated"], integrity["corrupted"]) == (0, 0, 0)
    per_type = results["injected_per_type"]
    assert per_type["runner_crash"]["delivered"] >= 3
    assert per_type["browser_crash"]["delivered"] >= 5
    assert json.loads((tmp_path / "p" / "run.json").read_text())["config"]["backend"] == backend
    assert live_processes_of(tmp_path / "p" / "stress.db") == []  # no orphan processes


def test_production_hybrid_is_go_with_every_api_fault_and_retry_after_per_endpoint(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [
            ENDURO,
            "stress",
            "--scenario",
            "production",
            "--hybrid",
            "--report-dir",
            str(tmp_path / "p"),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    results = json.loads((tmp_path / "p" / "results.json").read_text())
    assert results["hybrid"] is True and results["pages_done"] == 724
    integrity = results["integrity"]
    assert (integrity["lost"], integrity["duplicated"], integrity["corrupted"]) == (0, 0, 0)
    assert results["retry_after_violations"] == []
    api = ("rate_limit", "server_error", "maintenance", "reset", "truncate", "latency")
    for kind in (*api, "session_expiry", "csrf_rotation"):
        assert results["site_faults"].get(kind, 0) >= 1, kind
    per_type = results["injected_per_type"]
    assert per_type["runner_crash"]["delivered"] >= 3
    assert per_type["browser_crash"]["delivered"] >= 5


def test_suite_runs_light_medium_heavy_on_both_jobs_and_says_go(tmp_path: Path) -> None:
    out = subprocess.run(
        [ENDURO, "suite", "--report-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    suite = json.loads((tmp_path / "s" / "suite.json").read_text())
    assert suite["go"] is True
    assert [s["scenario"] for s in suite["scenarios"]] == [
        "light",
        "medium",
        "heavy",
        "light (hybrid)",
        "medium (hybrid)",
        "heavy (hybrid)",
    ]
    assert [s["hybrid"] for s in suite["scenarios"]] == [False] * 3 + [True] * 3
    assert (tmp_path / "s" / "report.html").is_file()
