"""How figures read in the terminal and in the HTML report (one place, so they agree)."""

from __future__ import annotations

from enduro.report._results import (
    NOT_JUDGED,
    CriterionResult,
    Integrity,
    StressTestResults,
    Verdict,
)

__all__ = [
    "criterion_line",
    "duration",
    "figures",
    "integrity_line",
    "judged_count",
    "number",
    "percent",
    "seconds",
    "verdict_line",
]


def duration(total_seconds: float | None) -> str:
    """``3725`` -> ``"1h 02m 05s"``, ``65.2`` -> ``"1m 05s"``, ``4.25`` -> ``"4.2s"``."""
    if total_seconds is None:
        return "-"
    if total_seconds < 60:
        return f"{total_seconds:.1f}s"
    whole = round(total_seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def seconds(value: float | None) -> str:
    """A recovery time: ``"-"`` when there is none."""
    return "-" if value is None else f"{value:.1f}s"


def percent(fraction: float) -> str:
    """``0.9512`` -> ``"95.1%"``."""
    return f"{fraction * 100:.1f}%"


def number(value: float | str | None) -> str:
    """A criterion's measured value or limit, compactly."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.1f}"


def criterion_line(criterion: CriterionResult) -> str:
    """``"error rate: 0.12 (limit 0.05): 60 errors in 500 attempts"``, or for a
    criterion not judged ``"error rate: not judged: 9 attempts, fewer than 50"``."""
    if not criterion.judged:
        line = f"{criterion.name}: {NOT_JUDGED}"
    else:
        line = f"{criterion.name}: {number(criterion.measured)} (limit {number(criterion.limit)})"
    return f"{line}: {criterion.detail}" if criterion.detail else line


def judged_count(verdict: Verdict) -> str:
    """``"9 of 11 criteria judged"`` (empty when the verdict lists no criteria)."""
    if not verdict.criteria:
        return ""
    return f"{verdict.judged} of {len(verdict.criteria)} criteria judged"


def verdict_line(verdict: Verdict) -> str:
    """``"GO — 9 of 11 criteria judged"``, ``"NO-GO — 11 of 11 criteria judged"``."""
    word = "GO" if verdict.go else "NO-GO"
    count = judged_count(verdict)
    return f"{word} — {count}" if count else word


def integrity_line(integrity: Integrity) -> str:
    """The integrity check in one sentence (its units differ with its mode)."""
    if integrity.mode == "truth":
        return (
            f"{integrity.lost:,} lost, {integrity.duplicated:,} duplicated, "
            f"{integrity.corrupted:,} corrupted of {integrity.expected:,} records expected "
            f"({integrity.found:,} found), checked record by record against the site's ground truth"
        )
    return (
        f"{integrity.lost:,} of {integrity.expected:,} pages not done or without records, "
        f"{integrity.duplicated:,} record keys stored twice, {integrity.corrupted:,} malformed "
        f"records ({integrity.found:,} found), checked for completeness and duplicates only"
    )


def figures(results: StressTestResults) -> list[tuple[str, str]]:
    """The headline figures of a scenario, as (label, value) rows."""
    budget = f" of a {duration(results.time_budget_s)} budget" if results.time_budget_s else ""
    rows = [
        ("duration", f"{duration(results.duration_s)}{budget}"),
        (
            "pages processed",
            f"{results.pages_done:,} / {results.pages_total:,} ({results.pages_failed:,} failed)",
        ),
        ("success rate", percent(results.success_rate)),
        *(
            [("passes", f"{results.passes:,} ({results.pages_processed:,} pages in all)")]
            if results.passes > 1
            else []
        ),
        ("pages per hour", f"{results.pages_per_hour:,.1f}"),
        (
            "errors",
            f"{results.errors:,} in {results.attempts:,} attempts ({percent(results.error_rate)})",
        ),
        ("session restarts", f"{results.session_restarts:,}"),
        ("re-logins", f"{results.relogins:,}"),
        ("record keys moved", f"{results.keys_moved:,}"),
        ("critical failures", f"{results.critical_failures:,}"),
        ("integrity", integrity_line(results.integrity)),
    ]
    if results.shared_store:
        many = f"{results.runners} runner processes" if results.runners > 1 else "the runner"
        rows.insert(0, ("store", f"PostgreSQL, shared by {many}"))
    if results.job:
        rows.insert(0, ("job", results.job))
    if results.hybrid:
        requests = sum(int(e.get("requests", 0)) for e in results.http.values())
        retries = sum(int(e.get("retries", 0)) for e in results.http.values())
        rows.insert(
            0,
            (
                "job",
                f"hybrid: ctx.http, {requests:,} requests, {retries:,} retried inside the page",
            ),
        )
    if results.not_injected:
        why = "pages loaded in the browser" if results.hybrid else "the built-in site"
        rows.append(("not injected", ", ".join(results.not_injected) + f" (they need {why})"))
    leak = results.leak
    for name, slope, r2 in (
        ("browser memory growth", leak.browser_pss_mb_per_1000_pages, leak.r2),
        ("runner memory growth", leak.runner_rss_mb_per_1000_pages, leak.runner_r2),
    ):
        if slope is not None:
            fit = f", R² {r2:.2f}" if r2 is not None else ""
            rows.append((name, f"{slope:+.1f} MB per 1,000 pages{fit}"))
    if results.stopped_early:
        rows.append(("stopped early", results.stopped_early))
    return rows
