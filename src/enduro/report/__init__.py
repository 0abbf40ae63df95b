"""Reports of stress scenarios and suites: the results models, ``results.json``, the
terminal summary and the HTML report.

The results models (``_results``) are what a stress run's analysis fills and
what every report reads; they live here so the report depends on nothing in
``enduro.stress``. The HTML report is one self-contained file (inline styles
and SVG charts, no script, nothing fetched), so it opens offline. ``rebuild``
writes it again from a report directory's ``results.json`` or ``suite.json``.
"""

from enduro.report._confidence import (
    confidence_statement,
    confidence_statements,
    fault_plural,
    upper_bound,
)
from enduro.report._format import verdict_line
from enduro.report._html import REPORT_FILE, rebuild, render_html
from enduro.report._results import (
    NOT_JUDGED,
    RESULTS_FILE,
    SUITE_FILE,
    CriterionId,
    CriterionResult,
    InjectionRecord,
    InjectionStats,
    Integrity,
    Leak,
    SeriesStats,
    StressTestResults,
    SuiteResults,
    Timeline,
    UnexplainedError,
    Verdict,
    read_results,
    read_suite,
    write_results,
    write_suite,
)
from enduro.report._terminal import terminal_summary

__all__ = [
    "NOT_JUDGED",
    "REPORT_FILE",
    "RESULTS_FILE",
    "SUITE_FILE",
    "CriterionId",
    "CriterionResult",
    "InjectionRecord",
    "InjectionStats",
    "Integrity",
    "Leak",
    "SeriesStats",
    "StressTestResults",
    "SuiteResults",
    "Timeline",
    "UnexplainedError",
    "Verdict",
    "confidence_statement",
    "confidence_statements",
    "fault_plural",
    "read_results",
    "read_suite",
    "rebuild",
    "render_html",
    "terminal_summary",
    "upper_bound",
    "verdict_line",
    "write_results",
    "write_suite",
]
