"""Running a scenario, or the validation suite, to results on disk.

``run_scenario`` is what ``enduro stress`` does; ``run_suite`` is ``enduro
suite``: light, then medium, then heavy, on the browser reference job and then
on the hybrid one, stopping at the first NO-GO.
"""

from __future__ import annotations

import logging
from pathlib import Path

from enduro.report import render_html
from enduro.stress.analysis import analyse
from enduro.stress.results import StressTestResults, SuiteResults, write, write_suite
from enduro.stress.scenario import StressTestConfig, load_scenario
from enduro.stress.tester import ProductionStressTester

__all__ = ["SUITE", "run_scenario", "run_suite"]

log = logging.getLogger(__name__)

SUITE = ("light", "medium", "heavy")


def run_scenario(config: StressTestConfig, directory: Path) -> StressTestResults:
    """Run one scenario; write the store, ``results.json`` and ``report.html`` in ``directory``."""
    tester = ProductionStressTester(config, directory)
    log.info("scenario %s: %d pages, results in %s", config.name, config.pages, directory)
    tester.run()
    tester.record_injections()
    results = analyse(tester)
    write(results, directory)
    render_html(results, directory / "report.html")
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
    render_html(suite, directory / "report.html")
    return suite
