"""End to end through the CLI: demo equals the ground truth; SIGINT stops and resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from enduro.store import Store

from .conftest import ENDURO, export_lines, reference_env, truth_lines

pytestmark = pytest.mark.integration


def test_demo_100_pages_exports_exactly_the_ground_truth(tmp_path: Path) -> None:
    store = tmp_path / "demo.db"
    demo = subprocess.run(
        [ENDURO, "demo", "--pages", "100", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "100 / 100" in demo.stderr  # the summary
    truth = subprocess.run(
        [ENDURO, "site", "--pages", "100", "--truth"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    exported = export_lines(store)
    assert len(exported) == 5000
    assert len(set(exported)) == 5000
    assert exported == truth


def _wait_for_done(store_path: Path, at_least: int, proc: subprocess.Popen[str]) -> None:
    while proc.poll() is None:
        if store_path.exists():
            with Store.open(store_path, create=False) as store:
                if store.page_counts()["done"] >= at_least:
                    return
        time.sleep(0.1)
    raise AssertionError(f"run ended early: {proc.returncode}")


def _interrupt_then_resume(command: list[str], store_path: Path, env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_done(store_path, 5, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Resume with:" in stderr
    with Store.open(store_path, create=False) as store:
        first = store.page_counts()
        done_first = {k for k in map(str, range(1, 61)) if _status(store, k) == "done"}
    assert 5 <= first["done"] < first["total"]
    assert first["leased"] == 0  # the pages in hand were finished or given back

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    with Store.open(store_path, create=False) as store:
        resumed = store.events(kind="resume")
        assert resumed and resumed[-1]["message"].startswith(f"{first['done']}/60")
        # A page done twice would have been charged a second attempt.
        for key in done_first:
            assert store.page_status("matches", key)["attempts"] == 1  # type: ignore[index]
    assert export_lines(store_path) == truth_lines(60)


def _status(store: Store, key: str) -> str:
    row = store.page_status("matches", key)
    return "" if row is None else str(row["status"])


def test_sigint_exits_130_and_enduro_run_resumes(tmp_path: Path, site_factory: object) -> None:
    site = site_factory(60)  # type: ignore[operator]
    store_path = tmp_path / "run.db"
    command = [ENDURO, "run", "enduro.stress.reference:job", "--store", str(store_path)]
    _interrupt_then_resume(command, store_path, reference_env(site.url, 60))


def test_sigint_exits_130_and_demo_resumes(tmp_path: Path) -> None:
    store_path = tmp_path / "demo.db"
    command = [ENDURO, "demo", "--pages", "60", "--store", str(store_path)]
    _interrupt_then_resume(command, store_path, dict(os.environ))
