"""The verdict: every success criterion measured against its limit, and advice.

Each criterion has a stable id (:class:`enduro.report.CriterionId`), which is
what the advice matches on; its name is for people. A criterion with too
little to judge by (an error rate under the minimum sample, a memory growth
with too few samples to fit, or one over its limit whose samples scatter too
much for the line to be a trend) is listed as not judged, saying why: it
neither passes nor fails the run.
"""

from __future__ import annotations

from typing import Any

from enduro.monitor import TREND_MIN_R_SQUARED
from enduro.report import CriterionId, CriterionResult, StressTestResults, Verdict
from enduro.stress.scenario import StressTestConfig
from enduro.stress.vocabulary import FAULTS

__all__ = ["judge", "recommendations"]

_INTEGRITY = (
    (CriterionId.RECORDS_LOST, "records lost"),
    (CriterionId.RECORDS_DUPLICATED, "records duplicated"),
    (CriterionId.RECORDS_CORRUPTED, "records corrupted"),
)


def judge(results: StressTestResults, config: StressTestConfig) -> Verdict:
    """Every criterion, measured against its limit; GO only if all judged ones pass."""
    c = config.criteria
    checks: list[CriterionResult] = []

    def check(
        id: CriterionId,
        name: str,
        passed: bool,
        measured: Any,
        limit: Any,
        detail: str = "",
        *,
        judged: bool = True,
        fault: str = "",
    ) -> None:
        checks.append(
            CriterionResult(
                id=id,
                name=name,
                fault=fault,
                passed=passed or not judged,
                judged=judged,
                measured=measured,
                limit=limit,
                detail=detail,
            )
        )

    check(
        CriterionId.COMPLETION,
        "completion",
        results.success_rate >= c.min_completion,
        results.success_rate,
        c.min_completion,
        f"{results.pages_done}/{results.pages_total} pages done",
    )
    integrity = results.integrity
    for (id, name), measured, limit in zip(
        _INTEGRITY,
        (integrity.lost, integrity.duplicated, integrity.corrupted),
        (c.max_lost, c.max_duplicated, c.max_corrupted),
        strict=True,
    ):
        if limit is not None:
            check(id, name, measured <= limit, measured, limit)
    check(
        CriterionId.CRITICAL_FAILURES,
        "critical failures",
        results.critical_failures <= c.max_critical_failures,
        results.critical_failures,
        c.max_critical_failures,
        "; ".join(results.critical[:3]),
    )
    enough = results.attempts >= c.min_sample
    check(
        CriterionId.ERROR_RATE,
        "error rate",
        results.error_rate <= c.max_error_rate,
        round(results.error_rate, 4),
        c.max_error_rate,
        "" if enough else f"{results.attempts} attempts, fewer than {c.min_sample}",
        judged=enough,
    )
    leak_limit = c.max_leak_mb_per_1000_pages
    for id, name, slope, r2, why in (
        (
            CriterionId.BROWSER_MEMORY_GROWTH,
            "browser memory growth",
            results.leak.browser_pss_mb_per_1000_pages,
            results.leak.r2,
            "too few samples within a browser lifetime past its warm-up",
        ),
        (
            CriterionId.RUNNER_MEMORY_GROWTH,
            "runner memory growth",
            results.leak.runner_rss_mb_per_1000_pages,
            results.leak.runner_r2,
            "too few samples past the warm-up",
        ),
    ):
        if leak_limit is None:
            continue
        if slope is None:
            check(id, name, True, None, leak_limit, why, judged=False)
        elif slope > leak_limit and r2 is not None and r2 < TREND_MIN_R_SQUARED:
            # a steep line through scattered samples: the scatter made the slope
            # (the monitor does not call it growth either; LeakEstimate.leaking)
            scatter = f"{slope:.0f} MB per 1,000 pages at R² {r2:.2f}: scatter, not a trend"
            check(id, name, False, round(slope, 1), leak_limit, scatter, judged=False)
        else:
            check(id, name, slope <= leak_limit, round(slope, 1), leak_limit, "MB per 1,000 pages")
    for kind, p95_limit in sorted((c.max_recovery_p95 or {}).items()):
        stats = results.injected_per_type.get(kind)
        if stats is not None and stats.recovery_p95 is not None:
            check(
                CriterionId.RECOVERY_P95,
                f"recovery p95: {kind}",
                stats.recovery_p95 <= p95_limit,
                round(stats.recovery_p95, 2),
                p95_limit,
                "seconds to the next completed page",
                fault=kind,
            )
    if results.site_served:  # the site's request log is the witness; a user's site has none
        early = results.retry_after_violations
        check(
            CriterionId.RETRY_AFTER,
            "Retry-After honoured",
            not early,
            len(early),
            0,
            "; ".join(early[:3]) or "no request reached the site inside a Retry-After window",
        )
    missing = [
        k
        for k in config.faults
        if results.injected_per_type.get(k) is None or results.injected_per_type[k].delivered == 0
    ]
    named = len(config.faults)
    if config.hybrid:  # and every fault of the API that those types stand for
        api_kinds = [kind for f in config.faults for kind in FAULTS[f].hybrid_kinds]
        missing += [kind for kind in api_kinds if not results.site_faults.get(kind)]
        named += len(api_kinds)
    check(
        CriterionId.FAULTS_DELIVERED,
        "faults delivered",
        not missing,
        named - len(missing),
        named,
        ("not delivered: " + ", ".join(missing)) if missing else "every named fault happened",
    )
    check(
        CriterionId.RAN_TO_THE_END,
        "ran to the end",
        not results.stopped_early,
        results.stopped_early or "ok",
        f"{config.duration:g}s budget, stop conditions",
        f"stopped early: {results.stopped_early}" if results.stopped_early else "",
    )
    failed = [r for r in checks if not r.passed]
    return Verdict(
        go=not failed,
        failed=failed,
        criteria=checks,
        recommendations=recommendations(results, failed, config),
    )


def recommendations(
    results: StressTestResults, failed: list[CriterionResult], config: StressTestConfig
) -> list[str]:
    """What to change, derived from the criteria that failed (matched by id)."""
    advice = []
    ids = {r.id for r in failed}
    if ids & {id for id, _ in _INTEGRITY}:
        advice.append(
            "records were lost, duplicated or corrupted: this runner does not keep its "
            "promise; do not start the real run"
        )
    slope = results.leak.browser_pss_mb_per_1000_pages
    runner_slope = results.leak.runner_rss_mb_per_1000_pages
    if CriterionId.RUNNER_MEMORY_GROWTH in ids and runner_slope:
        advice.append(
            f"the runner's memory grows {runner_slope:.0f} MB per 1,000 pages: look for "
            "references the handler keeps between pages (a list it appends to, a cache)"
        )
    if CriterionId.BROWSER_MEMORY_GROWTH in ids and slope:
        every = max(5, int(1000 * 500 / slope / 10) // 5 * 5)
        advice.append(
            f"browser PSS grows {slope:.0f} MB per 1,000 pages: lower "
            f"ENDURO_RESTART_EVERY_PAGES to {every}"
        )
    for r in failed:
        if r.id == CriterionId.RECOVERY_P95:
            advice.append(
                f"recovery from {r.fault} takes {r.measured}s at p95 "
                f"(limit {r.limit}s): look at the events of that fault type"
            )
    if CriterionId.ERROR_RATE in ids:
        top = sorted(results.errors_by_category.items(), key=lambda kv: -kv[1])[:2]
        advice.append(
            f"error rate {results.error_rate:.0%}; most errors: "
            + ", ".join(f"{k} ({v})" for k, v in top)
        )
    if CriterionId.CRITICAL_FAILURES in ids:
        advice.extend(f"critical: {c}" for c in results.critical[:3])
    if CriterionId.RETRY_AFTER in ids:
        advice.append(
            f"{len(results.retry_after_violations)} requests reached the site inside a "
            "Retry-After window: the site will throttle or ban this client"
        )
    if CriterionId.FAULTS_DELIVERED in ids:
        advice.append("some named faults never happened: run longer or with more pages")
    if CriterionId.RAN_TO_THE_END in ids:
        advice.append(f"stopped early ({results.stopped_early})")
    if CriterionId.COMPLETION in ids and not advice:
        advice.append("pages were left undone: see `enduro status` on the store")
    return advice
