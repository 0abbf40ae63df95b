"""The report's four charts, drawn by matplotlib as inline SVG.

Figures are made with :class:`matplotlib.figure.Figure` directly, never
through ``pyplot``: no GUI backend is ever touched, no global figure list
grows, and rendering works headless. Each SVG has its XML prolog and
namespace URLs stripped (the HTML parser supplies the namespaces) and its
element ids prefixed with the chart's id, so several charts, and several
scenarios, live in one valid HTML document.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from enduro.report._results import StressTestResults

__all__ = ["Chart", "render_charts"]

_RC: dict[Any, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "path",  # glyphs as paths: no font needs to be installed to view
    "svg.hashsalt": "enduro",  # stable ids: the same results give the same report
}
_NO_METADATA: dict[str, str | None] = {"Creator": None, "Date": None, "Format": None, "Type": None}
_SIZE = (8.0, 3.2)
# Matplotlib 3.10 replaced boxplot's ``vert=False`` with ``orientation="horizontal"``.
_HORIZONTAL: dict[str, Any] = (
    {"orientation": "horizontal"}
    if tuple(int(part) for part in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    else {"vert": False}
)
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


@dataclass(frozen=True)
class Chart:
    """One rendered chart: its element id, a title, a one-line caption and the SVG markup."""

    id: str
    title: str
    caption: str
    svg: str


def render_charts(results: StressTestResults, suffix: str = "") -> list[Chart]:
    """Draw the four charts of one scenario.

    Args:
        results: The scenario's results; empty series give a chart saying so.
        suffix: Appended to every chart id (``chart-pages-2``), to keep ids
            unique when a suite's scenarios share one page.
    """
    clock = _Clock(results)
    drawings = [
        ("pages", "Pages completed over time", "Pages done against elapsed time.", _pages),
        (
            "memory",
            "Memory over time",
            "Browser PSS (left axis) and system memory in use (right axis); "
            "dashed lines mark browser restarts.",
            _memory,
        ),
        (
            "faults",
            "Injected faults and recoveries",
            "Each cross is a delivered fault; the dot above it is the next completed page "
            "(a green bar joins them). A cross with no dot was never recovered from.",
            _faults,
        ),
        (
            "recovery",
            "Recovery time per fault type",
            "Seconds from each fault to the next completed page (box: quartiles; dots: faults).",
            _recovery,
        ),
    ]
    charts = []
    with matplotlib.rc_context(_RC):
        for kind, title, caption, draw in drawings:
            chart_id = f"chart-{kind}{suffix}"
            figure = Figure(figsize=_SIZE, layout="constrained")
            draw(figure.add_subplot(), results, clock)
            charts.append(Chart(chart_id, title, caption, _svg(figure, chart_id)))
    return charts


class _Clock:
    """Turns epoch times into elapsed minutes or hours since the scenario started."""

    def __init__(self, results: StressTestResults) -> None:
        timeline = results.timeline
        times = [t for t, _ in timeline.pages_done] + [t for t, _ in timeline.browser_pss_mb]
        self.start = results.started_at or (min(times) if times else 0.0)
        span = results.duration_s or (max(times) - self.start if times else 0.0)
        self.hours = span > 3 * 3600
        self.label = "elapsed (hours)" if self.hours else "elapsed (minutes)"

    def __call__(self, t: float) -> float:
        return (t - self.start) / (3600 if self.hours else 60)

    def all(self, times: Sequence[float]) -> list[float]:
        return [self(t) for t in times]


def _pages(ax: Axes, results: StressTestResults, clock: _Clock) -> None:
    points = results.timeline.pages_done
    if not points:
        _empty(ax, "no pages completed")
        return
    ax.step(
        clock.all([t for t, _ in points]), [n for _, n in points], where="post", color=_COLORS[0]
    )
    if results.pages_total:
        ax.axhline(results.pages_total, color="#888888", linestyle=":", linewidth=1)
        ax.annotate(
            f"{results.pages_total:,} pages",
            (0, results.pages_total),
            xycoords=("axes fraction", "data"),
            xytext=(2, 2),
            textcoords="offset points",
            color="#666666",
        )
    ax.set_xlabel(clock.label)
    ax.set_ylabel("pages done")
    ax.set_ylim(bottom=0)


def _memory(ax: Axes, results: StressTestResults, clock: _Clock) -> None:
    timeline = results.timeline
    if not timeline.browser_pss_mb and not timeline.system_mem_percent:
        _empty(ax, "no resource samples")
        return
    if timeline.browser_pss_mb:
        ax.plot(
            clock.all([t for t, _ in timeline.browser_pss_mb]),
            [mb for _, mb in timeline.browser_pss_mb],
            color=_COLORS[0],
            linewidth=1,
            label="browser PSS (MB)",
        )
    if timeline.restarts:
        ax.vlines(
            clock.all(timeline.restarts),
            0,
            1,
            transform=ax.get_xaxis_transform(),
            colors="#999999",
            linestyles="dashed",
            linewidth=0.8,
            label="browser restart",
        )
    ax.set_ylabel("browser PSS (MB)")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(clock.label)
    handles, labels = ax.get_legend_handles_labels()
    if timeline.system_mem_percent:
        right = ax.twinx()
        right.spines["right"].set_visible(True)
        right.plot(
            clock.all([t for t, _ in timeline.system_mem_percent]),
            [pct for _, pct in timeline.system_mem_percent],
            color=_COLORS[4],
            linewidth=1,
            label="system memory (%)",
        )
        right.set_ylabel("system memory in use (%)")
        right.set_ylim(0, 100)
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(
        handles, labels, loc="lower left", bbox_to_anchor=(0, 1), ncols=3, fontsize=8, frameon=False
    )


def _faults(ax: Axes, results: StressTestResults, clock: _Clock) -> None:
    timeline = results.timeline
    kinds = sorted({kind for _, kind in timeline.injections} | {r[1] for r in timeline.recoveries})
    if not kinds:
        _empty(ax, "no faults injected")
        return
    row = {kind: i for i, kind in enumerate(kinds)}
    if timeline.recoveries:
        ax.hlines(
            [row[kind] for _, kind, _ in timeline.recoveries],
            [clock(t - seconds) for t, _, seconds in timeline.recoveries],
            clock.all([t for t, _, _ in timeline.recoveries]),
            colors=_COLORS[2],
            linewidth=2,
        )
        # Recoveries sit just above their lane: at a scale of hours a recovery of
        # seconds would hide under its fault's cross.
        ax.scatter(
            clock.all([t for t, _, _ in timeline.recoveries]),
            [row[kind] + 0.2 for _, kind, _ in timeline.recoveries],
            marker="o",
            color=_COLORS[2],
            s=14,
            zorder=3,
            label="next page done",
        )
    if timeline.injections:
        ax.scatter(
            clock.all([t for t, _ in timeline.injections]),
            [row[kind] for _, kind in timeline.injections],
            marker="x",
            color=_COLORS[1],
            s=25,
            zorder=3,
            label="fault delivered",
        )
    ax.set_yticks(range(len(kinds)), [_plain(kind) for kind in kinds])
    ax.set_ylim(-0.6, len(kinds) - 0.4)
    ax.set_xlabel(clock.label)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def _recovery(ax: Axes, results: StressTestResults, _clock: _Clock) -> None:
    seconds: dict[str, list[float]] = {}
    for _, kind, took in results.timeline.recoveries:
        seconds.setdefault(kind, []).append(took)
    if not seconds:  # older tester output: derive them from the injection records
        for record in results.injections:
            if record.delivered and record.recovered_at is not None:
                seconds.setdefault(record.type, []).append(record.recovered_at - record.at)
    if not seconds:
        _empty(ax, "no recoveries recorded")
        return
    kinds = sorted(seconds)
    ax.boxplot(
        [seconds[kind] for kind in kinds],
        **_HORIZONTAL,
        widths=0.5,
        showfliers=False,
        medianprops={"color": _COLORS[1]},
    )
    for i, kind in enumerate(kinds, start=1):
        values = seconds[kind]
        # Evenly spread offsets rather than random jitter: the same results, the same chart.
        offsets = [((j % 7) - 3) * 0.05 for j in range(len(values))]
        ax.scatter(values, [i + o for o in offsets], s=14, color=_COLORS[0], alpha=0.6, zorder=3)
    ax.set_yticks(range(1, len(kinds) + 1), [_plain(kind) for kind in kinds])
    ax.set_xlabel("seconds from fault to next completed page")
    ax.set_xlim(left=0)


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _plain(text: str) -> str:
    """Text shown as typed: a ``$`` would otherwise start matplotlib's mathtext."""
    return text.replace("$", r"\$")


_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')
_IDS = re.compile(r'(\bid="|href="#|url\(#)')


def _svg(figure: Figure, prefix: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_NO_METADATA)
    text = _PROLOG.sub("", buffer.getvalue(), count=1)
    text = _NAMESPACES.sub("", text)
    text = _IDS.sub(lambda m: f"{m.group(1)}{prefix}-", text)
    return text.strip()
