"""The terminal summary of a scenario or a suite, printed with rich.

Every string that comes from the results (scenario names, criteria details,
recommendations) is printed as plain :class:`rich.text.Text`, so a ``[`` in it
is never read as rich markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from enduro.report._confidence import confidence_statements
from enduro.report._format import (
    criterion_line,
    figures,
    judged_count,
    number,
    percent,
    seconds,
)
from enduro.report._results import StressTestResults, SuiteResults

__all__ = ["terminal_summary"]


def terminal_summary(results: StressTestResults | SuiteResults, console: Console) -> None:
    """Print the summary of one scenario, or of every scenario of a suite and its verdict."""
    if isinstance(results, StressTestResults):
        _scenario(results, console)
        return
    for scenario in results.scenarios:
        _scenario(scenario, console)
        console.print()
    verdict = _go(results.go)
    verdict.append(f"  validation suite: {len(results.scenarios)} scenario(s) run")
    if results.stopped_at:
        verdict.append(f", stopped at {results.stopped_at}")
    console.print(verdict)
    _bullets(console, "recommendations", results.recommendations)


def _scenario(results: StressTestResults, console: Console) -> None:
    table = Table(
        title=Text(f"stress scenario {results.scenario} (seed {results.seed})"),
        show_header=False,
        title_justify="left",
    )
    table.add_column(style="bold")
    table.add_column()
    for label, value in figures(results):
        table.add_row(label, Text(value))
    console.print(table)

    verdict = results.verdict
    count = judged_count(verdict)
    console.print(_go(verdict.go) + Text(f" — {count}" if count else ""))
    for criterion in verdict.failed:
        console.print(Text("  failed: ", style="red") + Text(criterion_line(criterion)))
    for criterion in verdict.criteria:
        if not criterion.judged:
            console.print(Text("  ") + Text(criterion_line(criterion), style="yellow"))
    _bullets(console, "critical failures", results.critical)

    if results.resources:
        resources = Table(title="resources", title_justify="left")
        for column in ("series", "unit", "mean", "p95", "max"):
            resources.add_column(
                column, justify="left" if column in ("series", "unit") else "right"
            )
        for name, stats in sorted(results.resources.items()):
            resources.add_row(
                Text(name),
                Text(stats.unit),
                number(stats.mean),
                number(stats.p95),
                number(stats.max),
            )
        console.print(resources)

    if results.injected_per_type:
        faults = Table(title="injected faults", title_justify="left")
        for column in ("fault", "rate", "planned", "delivered", "unrecovered", "p50", "p95", "max"):
            faults.add_column(column, justify="left" if column == "fault" else "right")
        for kind, injected in sorted(results.injected_per_type.items()):
            faults.add_row(
                Text(kind),
                percent(injected.configured_rate),
                str(injected.planned),
                str(injected.delivered),
                str(injected.unrecovered),
                seconds(injected.recovery_p50),
                seconds(injected.recovery_p95),
                seconds(injected.recovery_max),
            )
        console.print(faults)

    if results.unexplained_errors:
        console.print(
            Text(f"unexplained errors: {len(results.unexplained_errors)}", style="yellow")
        )
    _bullets(console, "confidence", confidence_statements(results))
    _bullets(console, "recommendations", verdict.recommendations)


def _go(go: bool) -> Text:
    return (
        Text("GO", style="bold white on green") if go else Text("NO-GO", style="bold white on red")
    )


def _bullets(console: Console, title: str, lines: list[str]) -> None:
    if not lines:
        return
    console.print(Text(title, style="bold"))
    for line in lines:
        console.print(Text(f"  - {line}"))
