"""A short run through the CLI leaves resource samples, and ``enduro status`` shows them.

``enduro demo --pages 60`` ends long before the 30 s sample interval; the
monitor still samples once the first browser is up and once before the
browsers close, with a CPU figure measured since the run started.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from enduro.store import Store

from .conftest import ENDURO, live_processes_of

pytestmark = pytest.mark.integration


def test_a_60_page_demo_then_status_shows_its_samples_and_resources(tmp_path: Path) -> None:
    store_path = tmp_path / "demo.db"
    demo = subprocess.run(
        [ENDURO, "demo", "--pages", "60", "--store", str(store_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]

    status = subprocess.run(
        [ENDURO, "status", str(store_path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(status.stdout)
    with Store.open(store_path, create=False) as store:
        (run,) = store.runs()
        samples = store.samples(run.run_id)

    assert len(samples) >= 2
    first, last = samples[0], samples[-1]
    assert first["browser_count"] > 0 and first["browser_pss"] > 0  # taken once it was up
    # the end sample: after the last page, before the browser closed
    assert last["pages"] == 60 and last["browser_count"] > 0 and last["browser_pss"] > 0
    assert all(s["cpu_percent"] > 0.0 for s in samples), [s["cpu_percent"] for s in samples]

    latest = report["latest_sample"]
    assert latest == {"run_id": run.run_id, **{k: v for k, v in last.items() if k != "run_id"}}
    assert latest["browser_pss"] > 0 and latest["cpu_percent"] != 0.0

    resources = report["last_run_resources"]
    assert (resources["run_id"], resources["status"]) == (run.run_id, "finished")
    assert resources["samples"] == len(samples)
    peak_pss = max(s["browser_pss"] for s in samples) / 2**20
    assert resources["peak_browser_pss_mb"] == round(peak_pss, 1) > 0
    assert resources["peak_runner_rss_mb"] > 0
    assert resources["leak_text"] == f"not fitted ({len(samples)} samples)"

    text = subprocess.run(
        [ENDURO, "status", str(store_path)], capture_output=True, text=True, check=True
    ).stdout
    # the line shows the figure above in whole MB (formatting the raw one could round
    # the other way: 518.53 is "519", its 518.5 is "518")
    shown = resources["peak_browser_pss_mb"]
    assert f"peak browser PSS {shown:.0f} MB" in " ".join(text.split())
    assert live_processes_of(store_path) == []
