"""The verdict catches what it claims to: broken runners, real faults, NO-GO naming why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from enduro.stress.analysis import analyse
from enduro.stress.scenario import PRESETS, StressTestConfig, load_scenario
from enduro.stress.tester import ProductionStressTester

pytestmark = pytest.mark.integration

BROKEN = Path(__file__).with_name("broken_runners.py")


def _broken(variant: str) -> object:
    def command(store: Path) -> list[str]:
        return [
            sys.executable,
            str(BROKEN),
            variant,
            "run",
            "enduro.stress.reference:job",
            "--store",
            str(store),
        ]

    return command


def _scenario(name: str) -> StressTestConfig:
    if name == "crashes":  # runner crashes need room: production's mix over 40 pages
        # 17 faults on 40 pages: ~15 of them errors in ~55 attempts, an error rate near
        # the default 25% by design, so the bar is the one a crash-heavy mix deserves.
        # Without memory pressure: its sidecar pauses the run ~15 s and loses nothing.
        faults = tuple(f for f in PRESETS["production"].faults if f != "memory_pressure")
        return load_scenario(
            "production",
            pages=40,
            duration="10m",
            faults=faults,
            criteria={"max_error_rate": 0.5},
        )
    return load_scenario(name, duration="10m")


@pytest.mark.parametrize(
    ("variant", "scenario", "criterion"),
    [
        ("no_crash_recovery", "light", "records lost"),
        ("split_commit", "crashes", "records lost"),
        ("ignore_retry_after", "light", "Retry-After honoured"),
        ("no_relogin", "light", "completion"),
    ],
)
def test_a_broken_runner_is_no_go_naming_the_right_criterion(
    tmp_path: Path, variant: str, scenario: str, criterion: str
) -> None:
    tester = ProductionStressTester(
        _scenario(scenario),
        tmp_path / variant,
        runner_command=_broken(variant),  # type: ignore[arg-type]
    )
    tester.run()
    results = analyse(tester)
    failed = [c.name for c in results.verdict.failed]
    assert not results.verdict.go
    assert criterion in failed, (failed, results.stopped_early)


def test_the_same_launcher_with_nothing_broken_is_go(tmp_path: Path) -> None:
    # the control: the crash-heavy scenario the write-behind runner fails
    tester = ProductionStressTester(
        _scenario("crashes"),
        tmp_path / "intact",
        runner_command=_broken("intact"),  # type: ignore[arg-type]
    )
    tester.run()
    results = analyse(tester)
    assert results.verdict.go, [(c.name, c.detail) for c in results.verdict.failed]
