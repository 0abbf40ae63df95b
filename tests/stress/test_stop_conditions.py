"""The tester's stop conditions, read from a real store (host memory faked)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from enduro.store import Store
from enduro.stress import tester as tester_module
from enduro.stress.scenario import PRESETS, SuccessCriteria
from enduro.stress.tester import JOB_NAME, ProductionStressTester


def _tester(tmp_path: Path, **criteria: object) -> ProductionStressTester:
    config = PRESETS["light"].model_copy(update={"criteria": SuccessCriteria(**criteria)})
    return ProductionStressTester(config, tmp_path)


def _store(
    tester: ProductionStressTester, *, failed: int = 0, errors: int = 0, done: int = 0
) -> None:
    with Store.open(tester.store_path) as store:
        store.seed_pages(JOB_NAME, tester.keys)
        for n in range(failed + done):
            page = store.claim(JOB_NAME, "w", 30)
            assert page is not None
            if n < failed:
                store.fail_attempt(page, "w", "boom", None)
            else:
                store.complete(page, "w", [], "match_id")
        for _ in range(errors):
            store.add_event("error", job=JOB_NAME, category="handler_bug", message="boom")


def _memory(monkeypatch: pytest.MonkeyPatch, percent: float) -> None:
    monkeypatch.setattr(
        tester_module.psutil, "virtual_memory", lambda: SimpleNamespace(percent=percent)
    )


def test_nothing_fires_on_a_healthy_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _memory(monkeypatch, 40.0)
    tester = _tester(tmp_path, min_sample=4)
    _store(tester, done=6, errors=2)
    assert tester._stop_condition() == ""


def test_host_memory_critically_low(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _memory(monkeypatch, 98.5)
    tester = _tester(tmp_path)
    assert tester._stop_condition() == "host memory over 97%"


def test_more_critical_failures_than_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _memory(monkeypatch, 40.0)
    tester = _tester(tmp_path, stop_critical_failures=3, min_sample=1000)
    _store(tester, failed=3)
    assert tester._stop_condition() == ""  # 3 is the limit, not over it
    with Store.open(tester.store_path) as store:
        store.add_event("halt", job=JOB_NAME, message="probe failed")
    assert tester._stop_condition().startswith("4 critical failures")


def test_error_rate_only_past_the_minimum_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _memory(monkeypatch, 40.0)
    tester = _tester(tmp_path, min_sample=10, stop_critical_failures=100)
    _store(tester, done=2, errors=7)  # 7 of 9 attempts, under the sample
    assert tester._stop_condition() == ""
    with Store.open(tester.store_path) as store:
        store.add_event("error", job=JOB_NAME, category="network", message="reset")
    assert tester._stop_condition() == "error rate 80% over 50%"
