"""The self-contained HTML report: one file, no network, no JavaScript.

Styles are inlined, charts are inline SVG, and nothing is linked: the report
opens offline and can be mailed as it is. Jinja2 autoescaping is on for the
whole template, so every string from the results (scenario names, error
messages, scraped text in integrity examples) reaches the page escaped; only
the SVG that :mod:`enduro.report._charts` produced is marked safe.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from enduro.report._confidence import confidence_statements
from enduro.report._format import (
    criterion_line,
    duration,
    figures,
    integrity_line,
    judged_count,
    number,
    percent,
    seconds,
)
from enduro.report._results import (
    SUITE_FILE,
    StressTestResults,
    SuiteResults,
    read_results,
    read_suite,
)

__all__ = ["REPORT_FILE", "rebuild", "render_html"]

REPORT_FILE = "report.html"
"""The file name of the HTML report inside a report directory."""


def render_html(results: StressTestResults | SuiteResults, path: str | os.PathLike[str]) -> Path:
    """Write the HTML report of a scenario or a suite to ``path`` and return it.

    A suite gets one section per scenario, each with its own charts.
    """
    if isinstance(results, StressTestResults):
        title = f"enduro stress report: {results.scenario}"
        sections = [_section(results, "")]
        suite = None
    else:
        title = "enduro validation suite report"
        sections = [
            _section(scenario, f"-{i}") for i, scenario in enumerate(results.scenarios, start=1)
        ]
        suite = results
    html = (
        _environment()
        .get_template("report.html.j2")
        .render(title=title, suite=suite, sections=sections)
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target


def rebuild(directory: str | os.PathLike[str], html: str | os.PathLike[str] | None = None) -> Path:
    """Rebuild the HTML report from the ``results.json`` or ``suite.json`` in ``directory``.

    Args:
        directory: A report directory written by a stress run or a suite, or
            the ``results.json`` / ``suite.json`` file itself.
        html: Where to write the report; ``directory/report.html`` by default.

    Raises:
        UsageError: neither file is there, or the one found is unreadable.
    """
    source = Path(directory)
    folder = source if source.is_dir() else source.parent
    target = Path(html) if html is not None else folder / REPORT_FILE
    if source.is_dir():
        if (source / SUITE_FILE).exists():
            return render_html(read_suite(source), target)
        return render_html(read_results(source), target)
    if source.name == SUITE_FILE:
        return render_html(read_suite(source), target)
    return render_html(read_results(source), target)


def _section(results: StressTestResults, suffix: str) -> dict[str, Any]:
    # matplotlib loads when a report is drawn, not when the results models are imported
    from enduro.report._charts import render_charts

    return {
        "id": f"scenario{suffix}" if suffix else "scenario",
        "results": results,
        "figures": figures(results),
        "integrity": integrity_line(results.integrity),
        "charts": [
            {"id": c.id, "title": c.title, "caption": c.caption, "svg": Markup(c.svg)}
            for c in render_charts(results, suffix)
        ],
        "confidence": confidence_statements(results),
        "criteria": results.verdict.criteria or results.verdict.failed,
    }


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("enduro.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=duration,
        seconds=seconds,
        percent=percent,
        number=number,
        criterion=criterion_line,
        judged_count=judged_count,
        utc=_utc,
        elapsed=_elapsed,
    )
    return env


def _utc(epoch: float) -> str:
    """``1735732800`` -> ``"2025-01-01 12:00:00 UTC"``; ``"-"`` for an unset time."""
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _elapsed(epoch: float, start: float) -> str:
    """Time since the scenario started, e.g. ``"+12m 03s"``."""
    return f"+{duration(max(epoch - start, 0.0))}" if start else _utc(epoch)
