"""Reports of stress scenarios and suites: terminal summary, ``results.json``, HTML.

The HTML report is one self-contained file (inline styles and SVG charts, no
script, nothing fetched), so it opens offline. ``rebuild`` writes it again from
a report directory, which is what ``enduro report DIR`` does.
"""

from enduro.report._confidence import (
    confidence_statement,
    confidence_statements,
    fault_plural,
    upper_bound,
)
from enduro.report._html import REPORT_FILE, rebuild, render_html
from enduro.report._terminal import terminal_summary

__all__ = [
    "REPORT_FILE",
    "confidence_statement",
    "confidence_statements",
    "fault_plural",
    "rebuild",
    "render_html",
    "terminal_summary",
    "upper_bound",
]
