"""Running a scenario, or the validation suite, to results on disk; judging one again.

``run_scenario`` is what ``enduro stress`` does; ``run_suite`` is ``enduro
suite``: light, then medium, then heavy, on the browser reference job and then
on the hybrid one, stopping at the first NO-GO. ``judge_again`` is ``enduro
report DIR`` on a scenario's directory: the verdict and the report, from the
run record and the store the run left.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from enduro.report import (
    REPORT_FILE,
    StressTestResults,
    SuiteResults,
    render_html,
    write_results,
    write_suite,
)
from enduro.stress.analysis import analyse
from enduro.stress.scenario import StressTestConfig, load_scenario
from enduro.stress.tester import ProductionStressTester

__all__ = ["SUITE", "judge_again", "run_scenario", "run_suite"]

log = logging.getLogger(__name__)

SUITE = ("light", "medium", "heavy")


def run_scenario(
    config: StressTestConfig,
    directory: Path,
    *,
    grid: str | None = None,
    watch: Callable[[ProductionStressTester], AbstractContextManager[object]] | None = None,
) -> StressTestResults:
    """Run one scenario; write the store, ``run.json``, ``results.json`` and
    ``report.html`` in ``directory``. ``grid``: take the browsers from this
    Selenium Grid. ``watch``: what looks on while the tester runs (the live
    dashboard), given the tester."""
    tester = ProductionStressTester(config, directory, grid=grid)
    log.info("scenario %s: %d pages, results in %s", config.name, config.pages, directory)
    with watch(tester) if watch is not None else contextlib.nullcontext():
        tester.run()
        tester.record_injections()
    return judge_again(directory)


def judge_again(
    directory: str | os.PathLike[str], html: str | os.PathLike[str] | None = None
) -> StressTestResults:
    """Judge a finished run from its report directory (its ``run.json`` and store), then
    write ``results.json`` there and the HTML report to ``html`` (``report.html`` there
    by default).

    Raises:
        UsageError: the directory holds no run record or no store.
    """
    folder = Path(directory)
    results = analyse(folder)
    write_results(results, folder)
    render_html(results, Path(html) if html is not None else folder / REPORT_FILE)
    return results


def run_suite(directory: Path, *, hybrid: bool | None = None, **overrides: object) -> SuiteResults:
    """Light, medium, heavy in turn, each in its own sub-directory; stop at the first NO-GO.

    Args:
        hybrid: None runs them on the browser job, then on the hybrid one
            (``light-hybrid``, ...); True on the hybrid job only; False on the browser's.
    """
    suite = SuiteResults()
    kinds = {None: (False, True), True: (True,), False: (False,)}[hybrid]
    runs = [(name, kind) for kind in kinds for name in SUITE]
    for name, on_hybrid in runs:
        config = load_scenario(name, hybrid=on_hybrid or None, **overrides)
        results = run_scenario(config, directory / (f"{name}-hybrid" if on_hybrid else name))
        suite.scenarios.append(results)
        if not results.verdict.go:
            suite.stopped_at = config.name
            break
    suite.go = suite.stopped_at is None
    suite.recommendations = [
        f"{r.scenario}: {advice}" for r in suite.scenarios for advice in r.verdict.recommendations
    ]
    write_suite(suite, directory)
    render_html(suite, directory / REPORT_FILE)
    return suite
