"""The long scenarios (`make stress`): production and the validation suite."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import ENDURO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_production_scenario_is_go_with_runner_and_browser_crashes(tmp_path: Path) -> None:
    out = subprocess.run(
        [ENDURO, "stress", "--scenario", "production", "--report-dir", str(tmp_path / "p")],
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


def test_suite_runs_light_medium_heavy_and_says_go(tmp_path: Path) -> None:
    out = subprocess.run(
        [ENDURO, "suite", "--report-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    suite = json.loads((tmp_path / "s" / "suite.json").read_text())
    assert suite["go"] is True
    assert [s["scenario"] for s in suite["scenarios"]] == ["light", "medium", "heavy"]
    assert (tmp_path / "s" / "report.html").is_file()
