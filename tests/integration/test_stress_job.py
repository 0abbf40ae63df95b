"""`enduro stress --job`: the user's own job and site, browser-side faults, completeness."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from enduro.store import Store
from enduro.stress.scenario import JOB_FAULTS
from enduro.stress.site import ground_truth

from .conftest import ENDURO

pytestmark = pytest.mark.integration

USER_JOB = str(Path(__file__).with_name("user_job.py"))
SITE_PAGES = 30


def _stress(
    site_url: str, report_dir: Path, *args: str, bug: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ENDURO_", "USER_"))}
    environ.update(
        USER_SITE_URL=site_url,
        USER_SITE_PAGES=str(SITE_PAGES),
        USER_JOB_BUG=bug,
        ENDURO_BACKOFF_BASE="0.5",  # the user's own settings reach their job's run
        **env,
    )
    return subprocess.run(
        [ENDURO, "stress", "--job", USER_JOB, "--report-dir", str(report_dir), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=environ,
    )


def _results(report_dir: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads((report_dir / "results.json").read_text())
    return results


def _scenario(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.serial  # its memory_pressure fault holds the machine at its memory line
def test_every_browser_side_fault_on_a_users_job_is_go_with_complete_records(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(SITE_PAGES)
    scenario = _scenario(
        tmp_path,
        f"""
        preset = "light"
        pages = 30
        duration = "10m"
        faults = {list(JOB_FAULTS)!r}
        memory_hold = 4
        [min_injections]
        network_timeout = 2
        """,
    )
    out = _stress(site.url, tmp_path / "r", "--scenario", scenario)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    results = _results(tmp_path / "r")
    assert results["verdict"]["go"] is True
    assert results["job"] == USER_JOB
    assert results["pages_done"] == results["pages_total"] == 30
    integrity = results["integrity"]
    assert integrity["mode"] == "completeness"
    assert (integrity["lost"], integrity["duplicated"], integrity["corrupted"]) == (0, 0, 0)
    for kind in JOB_FAULTS:  # every fault happened for real, and only these
        assert results["injected_per_type"][kind]["delivered"] > 0, kind
    assert {i["layer"] for i in results["injections"]} <= {"browser", "machine", "runner"}
    windows = [i["detail"] for i in results["injections"] if i["type"] == "network_timeout"]
    assert any(d.startswith("offline for") for d in windows), windows
    assert any("ms latency for" in d for d in windows), windows
    assert results["verdict"]["criteria"] and all(
        c["name"] != "Retry-After honoured" for c in results["verdict"]["criteria"]
    )  # the user's site keeps no request log to judge it by

    # completeness passed, and the records are in fact the site's, every one
    truth = {str(r["match_id"]): (r["name"], r["shared_cm"]) for r in ground_truth(1, 30, 50)}
    with Store.open(tmp_path / "r" / "stress.db", create=False) as store:
        found = [json.loads(t) for t in store.iter_record_texts("my-matches")]
    assert {r["id"]: (r["name"], r["cm"]) for r in found} == truth
    assert len(found) == len(truth)


def test_light_on_a_users_job_names_what_it_cannot_inject_and_catches_swallowed_errors(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(SITE_PAGES)
    out = _stress(site.url, tmp_path / "r", "--scenario", "light", bug="swallow")
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    results = _results(tmp_path / "r")
    failed = {c["name"] for c in results["verdict"]["failed"]}
    assert "records lost" in failed, results["verdict"]
    # every page is "done", but the ones a fault hit hold nothing
    assert results["pages_done"] == results["pages_total"] == 10
    assert any("done with no records" in e for e in results["integrity"]["examples"])
    assert results["not_injected"] == [
        "element_not_found",
        "javascript_error",
        "rate_limiting",
        "server_error",
    ]
    assert results["injected_per_type"]["cookie_wipe"]["delivered"] == 1  # auth_loss, our way
    assert "records were lost" in " ".join(results["verdict"]["recommendations"])


@pytest.mark.parametrize(
    ("criteria", "fired"),
    [
        ("min_sample = 4", "error rate 100% over 50%"),
        ("min_sample = 1000\nstop_critical_failures = 1", "halts), more than 1"),
    ],
)
def test_a_stop_condition_ends_the_run_early_and_the_result_says_which(
    tmp_path: Path, site_factory: Any, criteria: str, fired: str
) -> None:
    site = site_factory(SITE_PAGES)
    scenario = _scenario(
        tmp_path,
        f'preset = "light"\npages = 20\nduration = "10m"\n[criteria]\n{criteria}\n',
    )
    # the runner's own broken-job halt off: the stress run's stop conditions come first
    out = _stress(
        site.url,
        tmp_path / "r",
        "--scenario",
        scenario,
        bug="raise",
        ENDURO_BROKEN_JOB_ERRORS="0",
    )
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    results = _results(tmp_path / "r")
    assert fired in results["stopped_early"], results["stopped_early"]
    assert results["pages_done"] == 0 and results["pages_total"] == 20
    ran = next(c for c in results["verdict"]["criteria"] if c["name"] == "ran to the end")
    assert ran["passed"] is False and fired in ran["detail"]
    assert "stopped early" in out.stderr + out.stdout


def test_a_broken_job_halts_the_stress_run_early_saying_what_fails(
    tmp_path: Path, site_factory: Any
) -> None:
    site = site_factory(SITE_PAGES)
    scenario = _scenario(tmp_path, 'preset = "light"\npages = 20\nduration = "10m"\n')
    out = _stress(site.url, tmp_path / "r", "--scenario", scenario, bug="raise")
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    results = _results(tmp_path / "r")
    assert results["stopped_early"] == "the runner exited with 1"
    assert results["verdict"]["go"] is False
    (halt,) = [c for c in results["critical"] if c.startswith("run halted")]
    assert re.fullmatch(
        r"run halted: the job looks broken: ValueError: page \d+: this handler cannot read "
        r"anything \(\d+ pages, e\.g\. page \d+\)",
        halt,
    ), halt
    assert results["pages_done"] == 0 and results["pages_failed"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--job", "no/such_job.py"], "not found"),
        (["--job", USER_JOB, "--pages", "31"], "has 30 pages"),
        (["--job", USER_JOB, "--scenario", "FILE"], "only faults that need the built-in site"),
        (["--scenario", "FILE"], "only faults that need the built-in site"),  # job in the file
    ],
)
def test_bad_user_job_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    scenario = _scenario(
        tmp_path, f'preset = "light"\njob = "{USER_JOB}"\nfaults = ["rate_limiting"]\n'
    )
    args = [scenario if a == "FILE" else a for a in args]
    out = subprocess.run(
        [ENDURO, "stress", *args, "--report-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "USER_SITE_PAGES": str(SITE_PAGES)},
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "r").exists()
