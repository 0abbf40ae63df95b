"""Reports of stress scenarios and suites — the results models, ``results.json``, the
terminal summary and the HTML report — and the live dashboard of a running job
with its ``/metrics``.

The results models (``_results``) are what a stress run's analysis fills and
what every report reads; they live here so the report depends on nothing in
``enduro.stress``. The HTML report is one self-contained file (inline styles
and SVG charts, no script, nothing fetched), so it opens offline. ``rebuild``
writes it again from a report directory's ``results.json`` or ``suite.json``.

The dashboard (``_dashboard``: :class:`DashboardServer`, an aiohttp app) shows
what a :class:`LiveView` (``_live``) follows in a store, read only; ``_metrics``
renders the same counts for Prometheus; ``_status`` is ``enduro status``'s
report, which the dashboard serves as ``/api/status``.
"""

from enduro.report._confidence import (
    confidence_statement,
    confidence_statements,
    fault_plural,
    upper_bound,
)
from enduro.report._dashboard import (
    DEFAULT_PORT,
    DashboardServer,
    check_bind,
    make_dashboard,
    new_token,
)
from enduro.report._format import verdict_line
from enduro.report._html import REPORT_FILE, rebuild, render_html
from enduro.report._live import LiveView
from enduro.report._metrics import render_metrics
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
from enduro.report._status import error_lines, status_report
from enduro.report._terminal import terminal_summary

__all__ = [
    "DEFAULT_PORT",
    "NOT_JUDGED",
    "REPORT_FILE",
    "RESULTS_FILE",
    "SUITE_FILE",
    "CriterionId",
    "CriterionResult",
    "DashboardServer",
    "InjectionRecord",
    "InjectionStats",
    "Integrity",
    "Leak",
    "LiveView",
    "SeriesStats",
    "StressTestResults",
    "SuiteResults",
    "Timeline",
    "UnexplainedError",
    "Verdict",
    "check_bind",
    "confidence_statement",
    "confidence_statements",
    "error_lines",
    "fault_plural",
    "make_dashboard",
    "new_token",
    "read_results",
    "read_suite",
    "rebuild",
    "render_html",
    "render_metrics",
    "status_report",
    "terminal_summary",
    "upper_bound",
    "verdict_line",
    "write_results",
    "write_suite",
]
