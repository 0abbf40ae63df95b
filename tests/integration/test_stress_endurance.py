"""Endurance: passes over the pages until the budget ends, with the faults on every pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from .conftest import stress_scenario

pytestmark = pytest.mark.integration


def test_a_cycling_scenario_repeats_its_pages_and_faults_until_its_budget_ends(
    tmp_path: Path,
) -> None:
    code, results = stress_scenario(
        tmp_path,
        'preset = "endurance"\npages = 20\nduration = "25s"\nfailure_rate = 0.0\n'
        'faults = ["browser_crash", "element_not_found"]\n',
    )
    assert code == 0, results["verdict"]
    passes = results["passes"]
    assert passes >= 2  # it went round again while the budget lasted
    assert results["pages_processed"] == passes * 20
    assert results["duration_s"] >= 25  # no pass started after the budget
    assert results["pages_done"] == results["pages_total"] == 20
    integrity = results["integrity"]
    assert (integrity["lost"], integrity["duplicated"], integrity["corrupted"]) == (0, 0, 0)
    # every pass got its faults: the browser killed, the site's stale DOM served
    delivered = Counter(i["type"] for i in results["injections"] if i["delivered"])
    assert delivered["browser_crash"] == passes
    assert delivered["element_not_found"] == passes
    ids = {i["id"] for i in results["injections"] if i["type"] == "browser_crash"}
    assert ids == {"i0001"} | {f"i0001.{n}" for n in range(2, passes + 1)}
    assert results["verdict"]["go"] is True
