"""A run's resources in a line, and ``enduro status`` showing them for the last run."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from enduro.cli import main
from enduro.monitor import ResourceSample, run_resources
from enduro.store import Store

MB = 1024 * 1024


def _sample(pages: int, starts: int, pss_mb: float, rss_mb: float) -> dict[str, Any]:
    """A sample as a run stores it."""
    return ResourceSample(
        ts=1000.0 + pages,
        pages=pages,
        browser_starts=starts,
        mem_total=8192 * MB,
        mem_available=4096 * MB,
        mem_percent=50.0,
        memory_limit="host",
        cpu_percent=12.5,
        runner_rss=int(rss_mb * MB),
        browser_count=3,
        browser_rss=int(pss_mb * 1.5 * MB),
        browser_pss=int(pss_mb * MB),
        spare_count=0,
        open_fds=20,
        zombies=0,
        disk_free=10_000 * MB,
    ).to_dict()


def test_a_short_run_has_its_peaks_and_no_fitted_leak() -> None:
    found = run_resources([_sample(0, 1, 180.0, 90.0), _sample(60, 1, 260.0, 95.0)])

    assert found["samples"] == 2
    assert (found["peak_browser_pss_mb"], found["peak_runner_rss_mb"]) == (260.0, 95.0)
    assert found["leak"] == {"browser_pss": None, "runner_rss": None}
    assert found["leak_text"] == "not fitted (2 samples)"


def test_a_long_run_gets_the_stress_testers_leak_estimate() -> None:
    rng = random.Random(7)
    samples = [
        _sample(page, page // 500, 400 + 0.04 * (page % 500) + rng.uniform(-2, 2), 80.0)
        for page in range(0, 2000, 10)
    ]
    found = run_resources(samples)

    browser = found["leak"]["browser_pss"]
    assert browser["leaking"] and abs(browser["slope_mb_per_1000_pages"] - 40) < 2
    assert found["leak_text"].startswith("browser grows 40 MB per 1,000 pages")
    assert "runner flat" in found["leak_text"]
    assert found["peak_browser_pss_mb"] > 419


def test_samples_lacking_fields_are_summarised_without_them() -> None:
    found = run_resources([{"browser_pss": 2 * MB, "mem_percent": 95.0}, {}])

    assert found["samples"] == 2
    assert found["peak_browser_pss_mb"] == 2.0 and found["peak_runner_rss_mb"] is None
    assert found["leak_text"] == "not fitted (2 samples)"


def _store_with_two_runs(path: Path) -> None:
    with Store.open(path) as store:
        store.begin_run("old", "matches", "host", 1, 1.0)
        store.add_sample("old", 1.0, 0, _sample(0, 1, 900.0, 300.0))
        store.end_run("old", "finished", 0)
        store.begin_run("new", "matches", "host", 1, 2.0)
        for ts, sample in enumerate([_sample(0, 1, 150.0, 70.0), _sample(60, 1, 240.5, 88.0)]):
            store.add_sample("new", 10.0 + ts, sample["pages"], sample)
        store.end_run("new", "finished", 0)


def test_status_json_shows_the_last_runs_resources_beside_the_latest_sample(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    _store_with_two_runs(path)

    done = CliRunner().invoke(main, ["status", str(path), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    resources = report["last_run_resources"]
    assert (resources["run_id"], resources["status"], resources["samples"]) == (
        "new",
        "finished",
        2,
    )
    assert resources["peak_browser_pss_mb"] == 240.5  # the last run's, not the old 900
    assert resources["peak_runner_rss_mb"] == 88.0
    assert resources["leak_text"] == "not fitted (2 samples)"
    assert report["latest_sample"]["run_id"] == "new"


def test_status_text_shows_the_last_runs_resources(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store_with_two_runs(path)

    done = CliRunner().invoke(main, ["status", str(path)], terminal_width=200)
    assert done.exit_code == 0, done.output
    out = " ".join(done.output.split())
    assert (
        "last run new (finished): 2 resource samples, peak browser PSS 240 MB, "
        "peak runner RSS 88 MB; leak not fitted (2 samples)"
    ) in out


def test_status_of_a_store_without_runs_has_no_resources(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    Store.open(path).close()

    done = CliRunner().invoke(main, ["status", str(path), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["last_run_resources"] is None


def test_samples_that_saw_no_browser_process_give_no_browser_figures(tmp_path: Path) -> None:
    """Between two browsers, or with browsers from a Selenium Grid, a sample sees
    no browser process: that is "not measured", never a 0 MB browser."""
    samples = [_sample(p, 1, 400.0 + p, 120.0) for p in (10, 20, 30)]
    for gap in (_sample(0, 0, 0.0, 110.0), _sample(40, 2, 0.0, 121.0)):
        gap["browser_count"] = 0
        samples.append(gap)

    resources = run_resources(samples)
    remote = run_resources([{**s, "browser_count": 0, "browser_pss": 0} for s in samples])

    assert resources["peak_browser_pss_mb"] == 430.0
    assert remote["peak_browser_pss_mb"] is None
    assert remote["peak_runner_rss_mb"] == 121.0
    with Store.open(tmp_path / "s.db") as store:
        store.begin_run("run-a", "matches", "host", 1, 1.0)
        store.add_sample("run-a", 1.0, 0, {**samples[-1], "browser_count": 0})
    out = CliRunner().invoke(main, ["status", str(tmp_path / "s.db")])
    shown = " ".join(out.output.split())
    assert "browser memory not measured (no browser process on this host)" in shown
    assert "1 resource samples, browser memory not measured, peak runner RSS 121 MB" in shown
    assert "PSS 0 MB" not in shown
